//! Finding a working engine: podman, docker, `sudo -n docker` in docker.py's
//! order, probed with a time limit, remembered for a while (see `facts`),
//! and asked where it runs its containers (see `endpoint`).

use std::time::Duration;

use super::endpoint::{self, Endpoint, RemoteEngine};
use super::pending::Pending;
use super::{Choice, Engine, Flavor, Kind, NoEngine, facts, first_line, orphans};

/// How long `ENGINE version` may take before the engine counts as hung.
pub(super) fn probe_timeout() -> Duration {
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

/// How docker says where it runs containers: the endpoint that
/// `DOCKER_HOST`, `DOCKER_CONTEXT` or the config's current context selects
/// (no daemon call).
const CONTEXT_HOST: [&str; 4] = [
    "context",
    "inspect",
    "--format",
    "{{.Endpoints.docker.Host}}",
];

/// `ENGINE ARGS...`, started in the background.
fn start_ask(kind: Kind, args: &[&str]) -> std::io::Result<Pending> {
    Pending::start(Engine::new(kind).command(args), ANSWER_CAP)
}

/// The stdout of a started `ask` when it succeeds within `timeout`, else
/// why not.
fn answer(started: std::io::Result<Pending>, timeout: Duration) -> Result<String, String> {
    match started.and_then(|p| p.wait(timeout)) {
        Ok(a) if a.status.success() => Ok(String::from_utf8_lossy(&a.stdout).into_owned()),
        Ok(a) => Err(first_line(&String::from_utf8_lossy(&a.stderr))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("not installed".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// `ENGINE ARGS...` with the probe's timeout: its stdout, or why not.
fn ask(kind: Kind, args: &[&str], timeout: Duration) -> Result<String, String> {
    answer(start_ask(kind, args), timeout)
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
                Flavor::Docker => {
                    ask(self.kind, &CONTEXT_HOST, timeout).map(|host| endpoint::docker(&host))
                }
            };
            self.settle_endpoint(asked)
        })
    }

    /// Where its containers run, from what the client said (remembered),
    /// or from the environment when it could not say.
    fn settle_endpoint(&self, asked: Result<Endpoint, String>) -> Endpoint {
        match asked {
            Ok(at) => {
                facts::set_endpoint(self.kind, &at);
                at
            }
            // A docker client without contexts (before 19.03) had only
            // DOCKER_HOST; through sudo, which drops it unless its policy
            // keeps it, nothing can be said.
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
    /// `sessions` and `QEMU_CROSS_CC_DEBUG`. The first call in a while also
    /// removes containers that killed callers left in state Created (see
    /// `orphans`).
    pub fn detect_cached(choice: Choice) -> Result<Engine, NoEngine> {
        let (e, sweep) = Engine::detect_remembered(choice)?;
        if let Some(sweep) = sweep.or_else(|| orphans::Sweep::start_if_due(&e)) {
            if let Err(err) = sweep.finish(&e, probe_timeout()) {
                crate::diag::debug(format!("sweeping orphaned containers: {err:#}"));
            }
        }
        Ok(e)
    }

    /// `detect_cached` but for the sweep, and the sweep when it was started
    /// alongside the probe.
    fn detect_remembered(choice: Choice) -> Result<(Engine, Option<orphans::Sweep>), NoEngine> {
        let key = detect_key(choice);
        let remembered = facts::get_detected(&key);
        let mut failed = None;
        if let Some((kind, fresh, endpoint)) = remembered {
            if fresh {
                let e = Engine::new(kind);
                if let Some(at) = endpoint {
                    let _ = e.endpoint.set(at);
                }
                return Ok((e, None));
            }
            // What the first call after a pause needs next is asked of
            // docker while the probe runs: where it runs containers, and
            // the list of the orphan sweep when one is due (killed unread
            // when the probe fails). Not of podman: its probe says where it
            // runs containers, and its commands take the same locks, so that
            // one run beside the probe only slowed it (docs/performance.md).
            let docker = kind.flavor() == Flavor::Docker;
            let context = (docker && facts::get_endpoint(kind).is_none())
                .then(|| start_ask(kind, &CONTEXT_HOST));
            let sweep = docker
                .then(|| orphans::Sweep::start_if_due(&Engine::new(kind)))
                .flatten();
            match probe_with_retries(kind) {
                Ok(endpoint) => {
                    facts::set_detected(&key, kind, None);
                    let e = Engine::found(kind, endpoint);
                    if let Some(started) = context {
                        let asked = answer(started, probe_timeout());
                        let at = e.settle_endpoint(asked.map(|host| endpoint::docker(&host)));
                        let _ = e.endpoint.set(at);
                    }
                    return Ok((e, sweep));
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
        Ok((e, None))
    }
}
