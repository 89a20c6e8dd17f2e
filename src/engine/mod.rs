//! The container engine: finding a working one, and the one way every engine
//! command is run.

pub mod container;
mod endpoint;
pub mod labels;
pub mod orphans;

use std::cell::OnceCell;
use std::ffi::OsStr;
use std::fmt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::signals;

pub use endpoint::{Endpoint, RemoteEngine};

/// What `--engine` / `QEMU_CROSS_CC_ENGINE` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Docker,
    Podman,
}

impl Choice {
    /// The value of `QEMU_CROSS_CC_ENGINE` that asks for this choice.
    pub fn name(self) -> &'static str {
        match self {
            Choice::Auto => "auto",
            Choice::Docker => "docker",
            Choice::Podman => "podman",
        }
    }
}

impl FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Choice, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Choice::Auto),
            "docker" => Ok(Choice::Docker),
            "podman" => Ok(Choice::Podman),
            _ => Err(format!(
                "invalid engine '{s}' (choose from auto, docker, podman)"
            )),
        }
    }
}

/// Which command-line dialect the engine speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    Docker,
    Podman,
}

/// Which engine command: the only thing about an engine that is ever
/// remembered in a state file. The command line itself is always made
/// here, never read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Podman,
    Docker,
    SudoDocker,
}

impl Kind {
    /// Candidates in docker.py's order.
    const ALL: [Kind; 3] = [Kind::Podman, Kind::Docker, Kind::SudoDocker];

    /// The command words.
    pub fn prog(self) -> &'static [&'static str] {
        match self {
            Kind::Podman => &["podman"],
            Kind::Docker => &["docker"],
            Kind::SudoDocker => &["sudo", "-n", "docker"],
        }
    }

    pub fn flavor(self) -> Flavor {
        match self {
            Kind::Podman => Flavor::Podman,
            Kind::Docker | Kind::SudoDocker => Flavor::Docker,
        }
    }

    /// What `probe` prints: podman, docker or sudo docker.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Podman => "podman",
            Kind::Docker => "docker",
            Kind::SudoDocker => "sudo docker",
        }
    }

    fn allowed_by(self, choice: Choice) -> bool {
        match choice {
            Choice::Auto => true,
            Choice::Docker => self.flavor() == Flavor::Docker,
            Choice::Podman => self.flavor() == Flavor::Podman,
        }
    }
}

/// A working engine command (`podman`, `docker` or `sudo -n docker`).
#[derive(Clone)]
pub struct Engine {
    kind: Kind,
    rootless: OnceCell<bool>,
    buildkit: OnceCell<bool>,
    endpoint: OnceCell<Endpoint>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())
    }
}

/// The failure callers branch on: nothing to run containers with.
#[derive(Debug, thiserror::Error)]
#[error(
    "no working container engine (tried: {tried}); install and start docker or podman, \
     or choose one with --engine / QEMU_CROSS_CC_ENGINE"
)]
pub struct NoEngine {
    pub tried: String,
}

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

/// The first (or last) non-empty line of an engine's message, without its
/// `Error: ` prefix, shortened for a one-line error.
pub fn message_line(s: &str, last: bool) -> String {
    let mut lines = s.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = if last {
        lines.next_back()
    } else {
        lines.next()
    };
    let line = line.unwrap_or("failed");
    let line = line.strip_prefix("Error: ").unwrap_or(line);
    if line.chars().count() > 160 {
        let cut: String = line.chars().take(157).collect();
        format!("{cut}...")
    } else {
        line.to_string()
    }
}

fn first_line(s: &str) -> String {
    message_line(s, false)
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
    /// An engine of a known kind, not probed (used for sessions whose
    /// engine was probed before).
    pub fn new(kind: Kind) -> Engine {
        Engine {
            kind,
            rootless: OnceCell::new(),
            buildkit: OnceCell::new(),
            endpoint: OnceCell::new(),
        }
    }

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

    /// Whether this engine should be swept for orphaned containers now:
    /// once per detection period, the first time a call reaches it.
    pub fn sweep_due(&self) -> bool {
        facts::sweep_due(self.kind)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn flavor(&self) -> Flavor {
        self.kind.flavor()
    }

    /// The engine command words, e.g. `["sudo", "-n", "docker"]`.
    pub fn prog(&self) -> &'static [&'static str] {
        self.kind.prog()
    }

    /// What `probe` prints: docker, sudo docker or podman.
    pub fn probe_name(&self) -> &'static str {
        self.kind.name()
    }

    /// A `Command` for `ENGINE args...`; the only place engine commands are
    /// made.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let prog = self.prog();
        let mut cmd = Command::new(prog[0]);
        cmd.args(&prog[1..]).args(args);
        cmd
    }

    /// Run in the foreground, stdin/stderr inherited, stdout discarded when
    /// `quiet`; a signal meanwhile kills it. Returns the exit code.
    pub fn run<I, S>(&self, args: I, quiet: bool) -> Result<i32>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        if quiet {
            cmd.stdout(Stdio::null());
        }
        self.run_command(cmd)
    }

    /// Run a prepared engine command in the foreground; returns its exit code.
    pub fn run_command(&self, cmd: Command) -> Result<i32> {
        self.foreground(cmd, |_| ()).map(|(code, ())| code)
    }

    /// Spawn `cmd` as the foreground child (a signal meanwhile kills it), let
    /// `during` read from it, and wait for its exit code.
    fn foreground<T>(
        &self,
        mut cmd: Command,
        during: impl FnOnce(&mut Child) -> T,
    ) -> Result<(i32, T)> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.prog().join(" ")))?;
        signals::set_child(Some(child.id()));
        let got = during(&mut child);
        let status = child.wait();
        signals::set_child(None);
        signals::hold_if_terminating();
        Ok((crate::host::exit_code(status?), got))
    }

    /// Run in the foreground with stderr captured; on failure the error
    /// names `what` and the engine's last message, on success the captured
    /// stderr is passed on.
    pub fn run_reporting<I, S>(&self, args: I, quiet: bool, what: &str) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        cmd.stderr(Stdio::piped());
        if quiet {
            cmd.stdout(Stdio::null());
        }
        let (code, err) = self.foreground(cmd, |child| {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            err
        })?;
        if code != 0 {
            bail!("{what}: {}", message_line(&err, true));
        }
        eprint!("{err}");
        Ok(())
    }

    /// Capture stdout and stderr.
    pub fn output<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.prog().join(" ")))
    }

    /// `image inspect TAG` as JSON, None when the image does not exist.
    pub fn inspect_image(&self, tag: &str) -> Result<Option<serde_json::Value>> {
        let out = self.output(["image", "inspect", tag])?;
        if !out.status.success() {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("cannot parse the engine's inspect output for {tag}"))?;
        Ok(v.get(0).cloned())
    }

    /// `image inspect --format FORMAT TAG`; None when the image does not
    /// exist. podman 4.3 fails an inspect for a moment while other commands
    /// change its image store (about a parent, a layer or a manifest, not
    /// this image): such a failure is asked again, so that a concurrent
    /// build elsewhere never makes an image look missing (and rebuilt).
    fn inspect_output(&self, tag: &str, format: &str) -> Result<Option<Output>> {
        let mut tries = 0;
        loop {
            let out = self.output(["image", "inspect", "--format", format, tag])?;
            if out.status.success() {
                return Ok(Some(out));
            }
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            let missing = err.contains("no such image")
                || (err.contains("image not known") && !err.contains("retrieving"));
            tries += 1;
            if missing || self.flavor() != Flavor::Podman || tries == 4 {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The image's id, None when it does not exist.
    pub fn image_id(&self, tag: &str) -> Result<Option<String>> {
        let Some(out) = self.inspect_output(tag, "{{.Id}}")? else {
            return Ok(None);
        };
        Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    }

    /// The image's id and dockerfile checksum label ("" when unlabelled),
    /// in one engine call; None when the image does not exist.
    pub fn image_id_and_checksum(&self, tag: &str) -> Result<Option<(String, String)>> {
        let Some(out) = self.inspect_output(tag, "{{.Id}} {{json .Config.Labels}}")? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let (id, labels) = text.trim().split_once(' ').unwrap_or((text.trim(), "null"));
        let labels: serde_json::Value = serde_json::from_str(labels).unwrap_or_default();
        let checksum = labels[labels::DOCKERFILE_CHECKSUM]
            .as_str()
            .unwrap_or("")
            .to_string();
        Ok(Some((id.to_string(), checksum)))
    }

    /// The image's dockerfile checksum label ("" when unlabelled), None when
    /// the image does not exist.
    pub fn image_checksum(&self, tag: &str) -> Result<Option<String>> {
        Ok(self
            .image_id_and_checksum(tag)?
            .map(|(_, checksum)| checksum))
    }

    /// Whether the engine runs without root (rootless podman or docker):
    /// decides the user-namespace options.
    pub fn is_rootless(&self) -> bool {
        *self.rootless.get_or_init(|| {
            // `podman info` takes half a second: its answer is remembered.
            let key = facts::engine_key(self.kind);
            if let Some(r) = facts::get_rootless(&key) {
                return r;
            }
            let out = match self.flavor() {
                Flavor::Podman => self.output(["info", "--format", "{{.Host.Security.Rootless}}"]),
                Flavor::Docker => self.output(["info", "--format", "{{json .SecurityOptions}}"]),
            };
            match out {
                Ok(o) if o.status.success() => {
                    let s = String::from_utf8_lossy(&o.stdout);
                    let r = match self.flavor() {
                        Flavor::Podman => s.trim() == "true",
                        Flavor::Docker => s.contains("rootless"),
                    };
                    facts::set_rootless(&key, r);
                    r
                }
                _ => false,
            }
        })
    }

    /// BuildKit only when the docker client has buildx (docker.py forces it
    /// and fails where buildx is missing).
    pub fn buildkit(&self) -> bool {
        *self.buildkit.get_or_init(|| {
            self.flavor() == Flavor::Docker
                && self
                    .command(["buildx", "version"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
        })
    }

    /// Extra `build` options: rootless podman needs `/dev/net/tun` for its
    /// default (slirp4netns) network; where the user cannot open it, builds
    /// use the host's network instead, so `RUN apt-get install` works.
    fn build_network_args(&self) -> &'static [&'static str] {
        let tun_usable = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .is_ok()
        };
        if self.flavor() == Flavor::Podman && self.is_rootless() && !tun_usable() {
            &["--network=host"]
        } else {
            &[]
        }
    }

    /// A `build` command with the builder chosen explicitly.
    pub fn build_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(["build"]);
        cmd.args(self.build_network_args()).args(args);
        if self.flavor() == Flavor::Docker {
            cmd.env("DOCKER_BUILDKIT", if self.buildkit() { "1" } else { "0" });
        }
        cmd
    }

    /// The options that make the container run as the calling user:
    /// `-u uid:gid`, plus `--userns=keep-id` for rootless podman; rootless
    /// docker maps its root to the calling user, so it gets none.
    pub fn user_args(&self) -> Vec<String> {
        match (self.flavor(), self.is_rootless()) {
            (Flavor::Podman, true) => vec![
                "--userns=keep-id".into(),
                "-u".into(),
                crate::host::user::uid_gid(),
            ],
            (Flavor::Docker, true) => vec![],
            (_, false) => vec!["-u".into(), crate::host::user::uid_gid()],
        }
    }

    /// Ids of containers carrying the instance label (any value when
    /// `value` is None).
    pub fn instance_containers(&self, value: Option<&str>, all: bool) -> Result<Vec<String>> {
        let filter = match value {
            Some(v) => format!("--filter=label={}={v}", labels::INSTANCE),
            None => format!("--filter=label={}", labels::INSTANCE),
        };
        let mut args = vec!["ps", "-q"];
        if all {
            args.push("-a");
        }
        args.push(&filter);
        let out = self.output(&args)?;
        if !out.status.success() {
            bail!(
                "listing containers failed: {}",
                first_line(&String::from_utf8_lossy(&out.stderr))
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect())
    }

    /// `rm -f` that kills at once (podman otherwise waits 10 s for a
    /// process that ignores SIGTERM, such as any PID 1 without a handler).
    pub fn remove_args<'a>(&self, ids: &'a [String]) -> Vec<&'a str> {
        let mut args = vec!["rm", "-f"];
        if self.flavor() == Flavor::Podman {
            args.extend(["-t", "0"]);
        }
        args.extend(ids.iter().map(String::as_str));
        args
    }

    /// Force-remove containers; errors are ignored (it runs on the way out).
    pub fn remove_containers(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let _ = self
            .command(self.remove_args(ids))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Force-remove the containers of one instance.
    pub fn remove_instance(&self, label: &str) {
        if let Ok(ids) = self.instance_containers(Some(label), true) {
            self.remove_containers(&ids);
        }
    }
}

/// Facts about the engines remembered in `RUNTIME/engine.json`: which
/// engine `auto` found and where each engine runs its containers (checked
/// again after a minute), and whether an engine is rootless (for a day).
/// All are keyed by the variables that point an engine at another service.
/// Only engine kinds are stored, never commands.
mod facts {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    use super::{Endpoint, Kind};

    const ROOTLESS_TTL: u64 = 86_400;
    /// A state file larger than this is not ours.
    const MAX_BYTES: u64 = 256 << 10;

    /// How long the detected engine is used without asking it again
    /// (`QEMU_CROSS_CC_ENGINE_TTL`, seconds; default 60).
    fn detect_ttl() -> u64 {
        std::env::var("QEMU_CROSS_CC_ENGINE_TTL")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60)
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Switch {
        pub from: Kind,
        pub to: Kind,
        pub at: u64,
        pub why: String,
    }

    #[derive(Serialize, Deserialize)]
    struct Detected {
        kind: Kind,
        verified: u64,
        #[serde(default)]
        switch: Option<Switch>,
    }

    #[derive(Default, Serialize, Deserialize)]
    struct Facts {
        #[serde(default)]
        detected: BTreeMap<String, Detected>,
        #[serde(default)]
        rootless: BTreeMap<String, (bool, u64)>,
        /// When each engine was last swept for orphaned containers.
        #[serde(default)]
        swept: BTreeMap<String, u64>,
        /// Where each engine runs containers, and when it said so.
        #[serde(default)]
        endpoints: BTreeMap<String, (Endpoint, u64)>,
    }

    fn path() -> Option<PathBuf> {
        crate::state::paths::runtime_dir()
            .ok()
            .map(|d| d.join("engine.json"))
    }

    pub fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    pub fn ago(at: u64) -> String {
        let s = now().saturating_sub(at);
        match s {
            s if s < 120 => format!("{s}s"),
            s if s < 7200 => format!("{}m", s / 60),
            s => format!("{}h", s / 3600),
        }
    }

    /// The facts, when the file is this user's own private file.
    fn load() -> Facts {
        path()
            .and_then(|p| crate::state::safefs::read_state(&p, MAX_BYTES))
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Best effort: a full or read-only runtime folder only costs probes.
    fn save(f: &Facts) {
        if let (Some(p), Ok(b)) = (path(), serde_json::to_vec(f)) {
            let _ = crate::state::safefs::write_private(&p, &b);
        }
    }

    /// An engine as it is pointed now.
    pub fn engine_key(kind: Kind) -> String {
        format!("{}|{}", kind.name(), super::endpoint::env_key())
    }

    fn fresh_endpoint(f: &mut Facts, kind: Kind) -> Option<Endpoint> {
        let (at, when) = f.endpoints.remove(&engine_key(kind))?;
        (now().saturating_sub(when) < detect_ttl()).then_some(at)
    }

    /// The remembered engine, whether it is still fresh, and where it runs
    /// containers when that is known and fresh.
    pub fn get_detected(key: &str) -> Option<(Kind, bool, Option<Endpoint>)> {
        let mut f = load();
        let d = f.detected.remove(key)?;
        Some((
            d.kind,
            now().saturating_sub(d.verified) < detect_ttl(),
            fresh_endpoint(&mut f, d.kind),
        ))
    }

    pub fn get_endpoint(kind: Kind) -> Option<Endpoint> {
        fresh_endpoint(&mut load(), kind)
    }

    pub fn set_endpoint(kind: Kind, at: &Endpoint) {
        let mut f = load();
        f.endpoints.insert(engine_key(kind), (at.clone(), now()));
        save(&f);
    }

    pub fn get_switch(key: &str) -> Option<Switch> {
        load().detected.remove(key)?.switch
    }

    /// Remember `kind` as verified now; a new switch replaces the last one,
    /// which is kept otherwise.
    pub fn set_detected(key: &str, kind: Kind, switch: Option<Switch>) {
        let mut f = load();
        let old = f.detected.remove(key).and_then(|d| d.switch);
        f.detected.insert(
            key.to_string(),
            Detected {
                kind,
                verified: now(),
                switch: switch.or(old),
            },
        );
        save(&f);
    }

    /// Whether `kind` is due for a sweep (once per detection period); marks
    /// it swept.
    pub fn sweep_due(kind: Kind) -> bool {
        let mut f = load();
        let at = f.swept.get(kind.name()).copied().unwrap_or(0);
        if now().saturating_sub(at) < detect_ttl() {
            return false;
        }
        f.swept.insert(kind.name().to_string(), now());
        save(&f);
        true
    }

    pub fn get_rootless(key: &str) -> Option<bool> {
        let (r, at) = load().rootless.remove(key)?;
        (now().saturating_sub(at) < ROOTLESS_TTL).then_some(r)
    }

    pub fn set_rootless(key: &str, r: bool) {
        let mut f = load();
        f.rootless.insert(key.to_string(), (r, now()));
        save(&f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_parses_case_insensitively() {
        assert_eq!("Docker".parse::<Choice>(), Ok(Choice::Docker));
        assert_eq!("PODMAN".parse::<Choice>(), Ok(Choice::Podman));
        assert!(
            "lxc"
                .parse::<Choice>()
                .unwrap_err()
                .contains("auto, docker, podman")
        );
    }

    #[test]
    fn flavor_and_probe_names() {
        let e = Engine::new(Kind::SudoDocker);
        assert_eq!(e.flavor(), Flavor::Docker);
        assert_eq!(e.probe_name(), "sudo docker");
        assert_eq!(e.prog(), ["sudo", "-n", "docker"]);
        assert_eq!(Engine::new(Kind::Podman).probe_name(), "podman");
        assert_eq!(
            serde_json::to_string(&Kind::SudoDocker).unwrap(),
            "\"sudo-docker\""
        );
    }

    #[test]
    fn first_line_is_short() {
        assert_eq!(first_line("\nError: boom\nmore"), "boom");
        assert!(first_line(&"x".repeat(500)).len() <= 160);
        assert_eq!(message_line("a\nError: b\n\n", true), "b");
    }
}
