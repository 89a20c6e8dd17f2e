//! The container engine: finding a working one, and the one way every engine
//! command is run.

pub mod container;
mod detect;
mod endpoint;
mod facts;
pub mod labels;
pub mod orphans;
mod pending;

use std::cell::OnceCell;
use std::ffi::OsStr;
use std::fmt;
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::signals;

pub use detect::last_switch;
pub use endpoint::Endpoint;

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

/// The `image inspect` format of an image's id and labels.
const ID_AND_LABELS: &str = "{{.Id}} {{json .Config.Labels}}";

/// The id and dockerfile checksum label ("" when unlabelled) in the output
/// of an inspect with `ID_AND_LABELS`.
fn id_and_checksum(stdout: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(stdout);
    let (id, labels) = text.trim().split_once(' ').unwrap_or((text.trim(), "null"));
    let labels: serde_json::Value = serde_json::from_str(labels).unwrap_or_default();
    let checksum = labels[labels::DOCKERFILE_CHECKSUM]
        .as_str()
        .unwrap_or("")
        .to_string();
    (id.to_string(), checksum)
}

/// An image inspect running in the background (`Engine::start_image_check`).
/// Dropped unread, it is killed and reaped.
pub struct ImageCheck(pending::Pending);

impl ImageCheck {
    /// The image's id when the inspect says it carries `checksum` (any
    /// image when `checksum` is empty); None when it is missing or stale,
    /// or the inspect failed for any reason (the caller then asks the
    /// engine the usual way, which retries and reports).
    pub fn finish(self, checksum: &str) -> Option<String> {
        let a = self.0.wait(detect::probe_timeout()).ok()?;
        if !a.status.success() {
            return None;
        }
        let (id, have) = id_and_checksum(&a.stdout);
        (!id.is_empty() && (checksum.is_empty() || have == checksum)).then_some(id)
    }
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
        let Some(out) = self.inspect_output(tag, ID_AND_LABELS)? else {
            return Ok(None);
        };
        Ok(Some(id_and_checksum(&out.stdout)))
    }

    /// `image_id_and_checksum`, asked in the background: the caller starts a
    /// container of the image meanwhile and checks it once that runs (see
    /// `ImageCheck`). None when the engine cannot be started.
    pub fn start_image_check(&self, tag: &str) -> Option<ImageCheck> {
        // An id and the labels: a few kilobytes, far below the bound.
        let cmd = self.command(["image", "inspect", "--format", ID_AND_LABELS, tag]);
        pending::Pending::start(cmd, 1 << 20).ok().map(ImageCheck)
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
