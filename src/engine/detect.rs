//! Finding a working engine: podman, docker, `sudo -n docker` in docker.py's
//! order, probed with a time limit, remembered for a while (see `facts`),
//! and asked where it runs its containers (see `endpoint`).

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::endpoint::{self, Endpoint, RemoteEngine};
use super::{Choice, Engine, Flavor, Kind, NoEngine, facts, first_line};

/// How long `ENGINE version` may take before the engine counts as hung.
fn probe_timeout() -> Duration {
    std::env::var("QEMU_CROSS_CC_ENGINE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30))
}

/// What an engine client may print when asked about itself; more is
/// discarded.
const ANSWER_CAP: u64 = 1 << 16;

/// Read at most `ANSWER_CAP` bytes of `from` in a thread, discarding the
/// rest (the writer never blocks on a full pipe).
fn read_capped(
    from: Option<impl std::io::Read + Send + 'static>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut s = Vec::new();
        if let Some(mut r) = from {
            let _ = r.by_ref().take(ANSWER_CAP).read_to_end(&mut s);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Run `cmd` to completion, killing it after `timeout`. Returns its
/// status, stdout and stderr (each cut at `ANSWER_CAP`).
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> std::io::Result<(ExitStatus, String, String)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stdout = read_capped(child.stdout.take());
    let stderr = read_capped(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {}s", timeout.as_secs_f64()),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((
        status,
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    ))
}

/// `ENGINE ARGS...` with the probe's timeout: its stdout, or why not.
fn ask(kind: Kind, args: &[&str], timeout: Duration) -> Result<String, String> {
    let prog = kind.prog();
    let mut cmd = Command::new(prog[0]);
    cmd.args(&prog[1..]).args(args);
    match run_with_timeout(cmd, timeout) {
        Ok((status, stdout, _)) if status.success() => Ok(stdout),
        Ok((_, _, stderr)) => Err(first_line(&stderr)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("not installed".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Ask `kind` for its version; the reason when it does not answer. podman's
/// answer also says whether it is remote (docker's does not: see
/// `Engine::endpoint`).
fn probe(kind: Kind, timeout: Duration) -> Result<Option<Endpoint>, String> {
    match kind.flavor() {
        Flavor::Podman => {
            let json = ask(kind, &["version", "--format", "json"], timeout)?;
            Ok(Some(endpoint::podman(json.as_bytes(), |v| {
                std::env::var(v).ok()
            })))
        }
        Flavor::Docker => ask(kind, &["version"], timeout).map(|_| None),
    }
}

/// Probe the engine in use again: up to three tries, a moment apart.
fn probe_with_retries(kind: Kind) -> Result<Option<Endpoint>, String> {
    let timeout = probe_timeout();
    let mut last = String::new();
    for delay in [0, 300, 1000] {
        std::thread::sleep(Duration::from_millis(delay));
        match probe(kind, timeout) {
            Ok(endpoint) => return Ok(endpoint),
            Err(why) => last = why,
        }
    }
    Err(last)
}

/// What the engine `auto` found is remembered by: the choice, `PATH` and
/// the variables that point the engines elsewhere.
fn detect_key(choice: Choice) -> String {
    format!(
        "{choice:?}|{}|{}",
        std::env::var("PATH").unwrap_or_default(),
        endpoint::env_key()
    )
}

/// The last change of engine that `auto` made, if any: (from, to, when,
/// why), for `probe` and `sessions` to show.
pub fn last_switch(choice: Choice) -> Option<String> {
    let key = detect_key(choice);
    facts::get_switch(&key).map(|s| {
        format!(
            "the engine changed from {} to {} {} ago because {} failed: {}",
            s.from.name(),
            s.to.name(),
            facts::ago(s.at),
            s.from.prog().join(" "),
            s.why
        )
    })
}

impl Engine {
    /// A detected engine; where it runs containers when its probe told
    /// (podman), remembered for the calls that follow.
    fn found(kind: Kind, endpoint: Option<Endpoint>) -> Engine {
        let e = Engine::new(kind);
        if let Some(at) = endpoint {
            facts::set_endpoint(kind, &at);
            let _ = e.endpoint.set(at);
        }
        e
    }

    /// Where its containers run: what the client said when this engine was
    /// detected, remembered as long as the detection (keyed by the engine
    /// and the variables that point it elsewhere), else asked now:
    /// `docker context inspect` (the endpoint `DOCKER_HOST`, `DOCKER_CONTEXT`
    /// or the config's current context selects; no daemon call) or
    /// podman's `version`.
    pub fn endpoint(&self) -> &Endpoint {
        self.endpoint.get_or_init(|| {
            if let Some(at) = facts::get_endpoint(self.kind) {
                return at;
            }
            let timeout = probe_timeout();
            let asked = match self.flavor() {
                Flavor::Podman => probe(self.kind, timeout).map(|at| at.unwrap_or(Endpoint::Local)),
                Flavor::Docker => ask(
                    self.kind,
                    &[
                        "context",
                        "inspect",
                        "--format",
                        "{{.Endpoints.docker.Host}}",
                    ],
                    timeout,
                )
                .map(|host| endpoint::docker(&host)),
            };
            match asked {
                Ok(at) => {
                    facts::set_endpoint(self.kind, &at);
                    at
                }
                // A docker client without contexts (before 19.03) had
                // only DOCKER_HOST; through sudo, which drops it unless
                // its policy keeps it, nothing can be said.
                Err(why) => {
                    crate::diag::debug(format!(
                        "{} cannot say where it runs containers: {why}",
                        self.kind.name()
                    ));
                    if self.kind == Kind::Docker {
                        endpoint::docker_from_env(|v| std::env::var(v).ok())
                    } else {
                        Endpoint::Local
                    }
                }
            }
        })
    }

    /// Refuse an engine that runs containers on another machine: what is
    /// about to run bind-mounts this machine's folders. The user may say
    /// otherwise (`QEMU_CROSS_CC_ENGINE_LOCAL=1`).
    pub fn require_local(&self) -> Result<(), RemoteEngine> {
        if endpoint::declared_local() {
            return Ok(());
        }
        match self.endpoint() {
            Endpoint::Local => Ok(()),
            Endpoint::Remote(at) => Err(RemoteEngine {
                engine: format!("{} {at}", self.kind.name()),
            }),
        }
    }

    /// The first of podman, docker, `sudo -n docker` (filtered by `choice`)
    /// whose `version` succeeds, as docker.py does.
    pub fn detect(choice: Choice) -> Result<Engine, NoEngine> {
        let timeout = probe_timeout();
        let mut tried = Vec::new();
        for kind in Kind::ALL.into_iter().filter(|k| k.allowed_by(choice)) {
            match probe(kind, timeout) {
                Ok(endpoint) => return Ok(Engine::found(kind, endpoint)),
                Err(why) => tried.push(format!("{} ({why})", kind.prog().join(" "))),
            }
        }
        Err(NoEngine {
            tried: tried.join(", "),
        })
    }

    /// `detect`, remembered in the runtime folder: a build that runs the
    /// compiler hundreds of times probes once a minute at most, and keeps
    /// the engine it started with. The remembered engine is checked again
    /// when its minute is over, with retries: a slow or briefly failing
    /// `podman version` does not move a build to docker. Only an engine that
    /// keeps failing is replaced, and the change is recorded for `probe`,
    /// `sessions` and `QEMU_CROSS_CC_DEBUG`.
    pub fn detect_cached(choice: Choice) -> Result<Engine, NoEngine> {
        let key = detect_key(choice);
        let remembered = facts::get_detected(&key);
        let mut failed = None;
        if let Some((kind, fresh, endpoint)) = remembered {
            if fresh {
                let e = Engine::new(kind);
                if let Some(at) = endpoint {
                    let _ = e.endpoint.set(at);
                }
                return Ok(e);
            }
            match probe_with_retries(kind) {
                Ok(endpoint) => {
                    facts::set_detected(&key, kind, None);
                    return Ok(Engine::found(kind, endpoint));
                }
                Err(why) => failed = Some((kind, why)),
            }
        }
        let e = Engine::detect(choice).map_err(|mut err| {
            if let Some((kind, why)) = &failed {
                err.tried = format!(
                    "{} (the engine in use until now, {}, stopped answering: {why})",
                    err.tried,
                    kind.name()
                );
            }
            err
        })?;
        let switch = failed
            .filter(|(from, _)| *from != e.kind)
            .map(|(from, why)| {
                crate::diag::debug(format!(
                    "engine changed from {} to {}: {} {why}",
                    from.name(),
                    e.kind.name(),
                    from.prog().join(" ")
                ));
                facts::Switch {
                    from,
                    to: e.kind,
                    at: facts::now(),
                    why,
                }
            });
        facts::set_detected(&key, e.kind, switch);
        Ok(e)
    }
}
