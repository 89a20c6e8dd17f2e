//! Warm toolchain sessions: one long-lived container per (engine, image,
//! mount set, uid:gid) running an agent (this binary, statically linked and
//! bind-mounted read-only). A call connects to the agent's unix socket and
//! hands over argv, cwd, umask, the allowed environment and its stdin,
//! stdout and stderr; the compiler writes straight to them.
//!
//! The hot path makes no engine call: sessions are found through records in
//! the per-user runtime folder, and revalidated by the dockerfile checksum
//! recorded beside them. A record whose agent does not answer is removed and
//! a new session started; anything failing before the program starts falls
//! back to a one-shot `run --rm`.

mod agent;
mod protocol;

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::call::argpaths::is_broad;
use crate::call::mounts::{self, MountSet};
use crate::call::request::Request;
use crate::engine::labels;
use crate::engine::{Choice, Engine, Flavor, Kind};
use crate::signals;

pub use protocol::Status;

/// The hidden subcommand the session container runs.
pub const AGENT_COMMAND: &str = "__agent";

/// Label marking session containers (besides the instance label).
pub const SESSION_LABEL: &str = "com.qemu-cross-cc.session";

/// The target a session container serves (when it has one).
pub const TARGET_LABEL: &str = "com.qemu-cross-cc.target";

/// The runtime folder whose records name a session container: a session
/// whose record is lost is found by it (a user may have several runtime
/// folders; each sees only its own sessions).
pub const RUNTIME_LABEL: &str = "com.qemu-cross-cc.runtime";

/// The value of `RUNTIME_LABEL` for this process.
pub fn runtime_label() -> String {
    crate::state::paths::runtime_location()
        .display()
        .to_string()
}

/// Where the agent binary appears inside the container.
const AGENT_PATH: &str = "/.qemu-cross-cc-agent";

/// The agent inside a session container.
pub fn agent_main(args: &[OsString]) -> Result<i32> {
    agent::main(args)
}

/// Sessions are on unless `QEMU_CROSS_CC_SESSION=0`.
pub fn enabled() -> bool {
    !matches!(
        std::env::var("QEMU_CROSS_CC_SESSION").as_deref(),
        Ok("0" | "no" | "off" | "false")
    )
}

fn idle_seconds() -> u64 {
    std::env::var("QEMU_CROSS_CC_SESSION_IDLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(600)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A mounted folder and the identity it had when the session started: a
/// folder removed and made again (`rm -rf build; mkdir build`) is another
/// one, which the container cannot see.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MountRecord {
    pub path: PathBuf,
    /// The host folder mounted there (differs from `path` for an alias).
    pub source: PathBuf,
    pub writable: bool,
    pub dev: u64,
    pub ino: u64,
    pub born: u128,
}

/// Device, inode and birth time (0 where the file system has none): inode
/// numbers are reused at once, birth times tell a new folder from the old.
fn identity(path: &Path) -> Option<(u64, u64, u128)> {
    let m = std::fs::metadata(path).ok()?;
    let born = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Some((m.dev(), m.ino(), born))
}

/// What a session is, kept in `RUNTIME/sessions/<id>/record.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub engine: Kind,
    pub image: String,
    pub image_id: String,
    /// The dockerfile checksum the image was built from ("" for `cc -i`).
    pub checksum: String,
    pub target: Option<String>,
    /// The folder mounted read-write that calls from below it share.
    pub root: PathBuf,
    pub mounts: Vec<MountRecord>,
    pub uid: u32,
    pub gid: u32,
    pub container: String,
    pub created: u64,
    /// Identity of the binary that started it (the agent is that binary).
    pub exe: String,
}

impl Record {
    fn dir(&self) -> PathBuf {
        crate::state::paths::runtime_location()
            .join("sessions")
            .join(&self.id)
    }

    fn socket(&self) -> PathBuf {
        self.dir().join("agent.sock")
    }

    fn mount_set(&self) -> MountSet {
        let mut s = MountSet::new();
        for m in &self.mounts {
            s.add_alias(m.path.clone(), m.source.clone(), m.writable);
        }
        s
    }

    pub fn engine(&self) -> Engine {
        Engine::new(self.engine)
    }

    /// Same engine family, image, dockerfile checksum, user and binary.
    fn compatible(&self, image: &str, checksum: &str, choice: Choice, exe: &str) -> bool {
        let flavor_ok = match choice {
            Choice::Auto => true,
            Choice::Docker => self.engine.flavor() == Flavor::Docker,
            Choice::Podman => self.engine.flavor() == Flavor::Podman,
        };
        flavor_ok
            && self.image == image
            && self.checksum == checksum
            && self.uid == crate::host::user::uid()
            && self.gid == crate::host::user::gid()
            && self.exe == exe
    }

    /// Whether it runs an image since rebuilt from another dockerfile: the
    /// next call for that image ends it (it would never be used again).
    /// A `cc -i IMAGE` call (no checksum) says nothing about the dockerfile.
    fn outdated(&self, image: &str, checksum: &str) -> bool {
        self.image == image
            && !checksum.is_empty()
            && !self.checksum.is_empty()
            && self.checksum != checksum
    }

    /// Whether every mounted folder is still the one the container sees.
    fn mounts_current(&self) -> bool {
        self.mounts
            .iter()
            .all(|m| identity(&m.source) == Some((m.dev, m.ino, m.born)))
    }
}

/// Remove a record and its folder (the agent's socket with it).
pub fn forget(rec: &Record) {
    match std::fs::remove_dir_all(rec.dir()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            crate::diag::debug(format!("cannot remove {}: {e}", rec.dir().display()));
        }
        _ => {}
    }
}

/// The sessions folder, private to the user.
pub fn sessions_dir() -> Result<PathBuf> {
    crate::state::paths::runtime_subdir("sessions")
}

/// A record is named by its folder: a short hex id.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How long a session folder may stay without its record: a start takes
/// seconds (`start_container` gives up after 15), so an older one is what a
/// killed starter left.
const UNRECORDED_LIMIT: Duration = Duration::from_secs(300);

/// All recorded sessions of this user. Only records that are this user's
/// own private files, in a folder named after their id, are read (a record
/// never carries a command: only what the session is). A record that does
/// not parse or names another folder, and a folder left without a record
/// by a killed starter, are removed with their folder, so that no later
/// call reads them again; an agent whose folder goes ends by itself.
pub fn records() -> Vec<Record> {
    let Some(dir) = crate::state::paths::existing_runtime_subdir("sessions") else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<Record> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !valid_id(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                return None;
            }
            let file = e.path().join("record.json");
            match crate::state::safefs::read_state(&file, 1 << 20) {
                Some(bytes) => match serde_json::from_slice::<Record>(&bytes) {
                    Ok(rec) if rec.id == name => return Some(rec),
                    _ => crate::diag::debug(format!("removing the corrupt {}", file.display())),
                },
                None if std::fs::symlink_metadata(&file).is_ok() => return None,
                None => {
                    let age = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_none_or(|a| a < UNRECORDED_LIMIT) {
                        return None;
                    }
                }
            }
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                crate::diag::debug(format!("cannot remove {}: {err}", e.path().display()));
            }
            None
        })
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.created));
    v
}

/// Identity of the running binary: sessions started by another build are
/// not used (the agent speaks its own build's protocol).
fn exe_identity() -> Option<(PathBuf, String)> {
    let path = std::fs::canonicalize("/proc/self/exe").ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    Some((
        path,
        format!(
            "{}-{}-{}",
            meta.ino(),
            meta.len(),
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000
        ),
    ))
}

/// Whether `path` is an ELF executable without an interpreter (static): only
/// such a binary runs inside any image.
fn is_static_elf(path: &Path) -> bool {
    crate::host::elf::is_dynamic(path) == Some(false)
}

/// Where a session's read-write root should be: the top of the build tree
/// containing `cwd` (recursive make enters subfolders, which must share the
/// session), found by walking up while the parent still looks like part of
/// a build (Makefile, config.status...).
fn build_root(cwd: &Path) -> PathBuf {
    const MARKERS: &[&str] = &[
        "Makefile",
        "GNUmakefile",
        "makefile",
        "config.status",
        "config.log",
        "CMakeCache.txt",
        "build.ninja",
        "meson-private",
    ];
    let home = crate::host::user::home();
    let mut root = cwd.to_path_buf();
    while let Some(parent) = root.parent() {
        if is_broad(parent, home.as_deref()) || !MARKERS.iter().any(|m| parent.join(m).exists()) {
            break;
        }
        root = parent.to_path_buf();
    }
    root
}

/// What the live sessions made of a call.
pub enum Live {
    /// A session ran it: the program's exit status.
    Ran(i32),
    /// A session that could serve it is only slow to answer (a loaded
    /// machine) or at its limit of calls: it is kept, with the calls it
    /// runs, and this call runs one-shot rather than in a new session.
    Busy,
    /// No session can serve it.
    None,
}

/// Run `req` in a live session, without any engine call. Sessions that
/// cannot serve any more are retired on the way; a slow one is never
/// stopped by a caller that merely timed out.
pub fn run_in_live(req: &Request, checksum: &str, choice: Choice) -> Live {
    let Some((_, exe)) = exe_identity() else {
        return Live::None;
    };
    let mut busy = false;
    for rec in records() {
        if rec.outdated(&req.image, checksum) {
            stop(&rec);
            continue;
        }
        if !rec.compatible(&req.image, checksum, choice, &exe)
            || !rec.mount_set().covers_set(&req.mounts)
        {
            continue;
        }
        if !rec.mounts_current() {
            stop(&rec);
            continue;
        }
        match call(&rec, req) {
            Ok(code) => return Live::Ran(code),
            Err(CallError::Gone) => stop(&rec),
            Err(CallError::Retired) => {}
            Err(CallError::Skip) => busy = true,
        }
    }
    if busy { Live::Busy } else { Live::None }
}

/// An engine and image id known from an earlier session of the same image
/// and dockerfile checksum: a new session can start without probing the
/// engine or inspecting the image.
pub fn known_image(image: &str, checksum: &str, choice: Choice) -> Option<(Engine, String)> {
    let (_, exe) = exe_identity()?;
    records()
        .into_iter()
        .find(|r| r.compatible(image, checksum, choice, &exe))
        .map(|r| (r.engine(), r.image_id))
}

/// Why a call did not run in a session (nothing ran: the caller may run
/// the program another way).
enum CallError {
    /// The session cannot serve: its agent is gone, ending or refused the
    /// call. The caller retires it.
    Gone,
    /// The agent did not answer and its container is not running (paused,
    /// stopped, gone): already forgotten and its container removed.
    Retired,
    /// The session is kept: its agent is only slow or busy (its container
    /// runs), or this process could not guard the call (a socket option or
    /// a descriptor it could not set up). Only this call goes elsewhere.
    Skip,
}

/// Connect to the session's agent, send `first` and read its answer,
/// within a second for each step: a frozen agent (a paused container) never
/// answers though the kernel completes a connect from its listen backlog,
/// and one whose backlog is full leaves a blocking connect waiting.
fn ask(
    rec: &Record,
    first: &protocol::Request,
) -> Result<(std::os::unix::net::UnixStream, protocol::Reply), CallError> {
    let stream = match protocol::connect_within(&rec.socket(), protocol::ANSWER_TIMEOUT) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(unresponsive(rec)),
        Err(_) => return Err(CallError::Gone),
    };
    // Without its time limits a frozen agent would hang the build.
    stream
        .set_read_timeout(Some(protocol::ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(protocol::ANSWER_TIMEOUT)))
        .map_err(|_| CallError::Skip)?;
    // An agent at its limit answers `Busy` as it accepts and hangs up, maybe
    // before the request arrives: its answer is read even when the send
    // failed.
    let sent = protocol::send(&stream, first, &[]);
    let answer = protocol::recv::<protocol::Reply>(&stream, protocol::REPLY_CAP);
    match (sent, answer) {
        (_, Ok(Some((protocol::Reply::Busy, _)))) => {
            crate::diag::debug(format!(
                "session {} runs as many calls as it takes; not used for this call",
                rec.id
            ));
            Err(CallError::Skip)
        }
        (Ok(()), Ok(Some((reply, _)))) => Ok((stream, reply)),
        (Ok(()), Err(e)) if protocol::timed_out(&e) => Err(unresponsive(rec)),
        _ => Err(CallError::Gone),
    }
}

/// Shake hands with the session's agent before a call.
fn connect_ready(rec: &Record) -> Result<std::os::unix::net::UnixStream, CallError> {
    match ask(rec, &protocol::Request::Hello)? {
        (stream, protocol::Reply::Ready) => Ok(stream),
        _ => Err(CallError::Gone),
    }
}

/// An agent that did not answer in time: retired when its container is
/// paused, stopped or gone; kept (only this call goes elsewhere) when it
/// runs, since then it is only slow.
fn unresponsive(rec: &Record) -> CallError {
    if give_up(rec) {
        CallError::Skip
    } else {
        CallError::Retired
    }
}

/// Give up a session whose agent does not answer: wait for nothing more
/// from it. When its container is paused, stopped or gone, forget it (so
/// that other callers stop trying it) and remove the container. One that is
/// running is only slow (a loaded machine): its calls in progress must not
/// be killed, so it is kept. Returns whether it was kept.
fn give_up(rec: &Record) -> bool {
    let engine = rec.engine();
    let state = engine
        .output([
            "container",
            "inspect",
            "--format",
            "{{.State.Status}}",
            &rec.container,
        ])
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_lowercase());
    if state.as_deref() == Some("running") {
        crate::diag::debug(format!(
            "session {} is slow to answer; not used for this call",
            rec.id
        ));
        return true;
    }
    forget(rec);
    engine.remove_containers(std::slice::from_ref(&rec.container));
    false
}

/// Ask the agent to run `req`; forwards SIGINT/SIGTERM/SIGHUP to the program
/// meanwhile. Everything that guards the call (time limits, the descriptor
/// that forwards signals) is set up before the program is asked for: when
/// a step fails, nothing ran and the call goes elsewhere.
fn call(rec: &Record, req: &Request) -> Result<i32, CallError> {
    let stream = connect_ready(rec)?;
    // A hung agent must not hang the build: bound the wait for the start
    // (and the sending of a long command line).
    stream
        .set_read_timeout(Some(protocol::START_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(protocol::START_TIMEOUT)))
        .map_err(|_| CallError::Skip)?;
    let forward = stream.try_clone().map_err(|_| CallError::Skip)?;
    let devnull;
    let out_fd = if let Some(fd) = &req.stdout_to {
        fd.as_raw_fd()
    } else if req.quiet {
        devnull = OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|_| CallError::Skip)?;
        devnull.as_raw_fd()
    } else {
        1
    };
    let run = protocol::Run {
        version: protocol::VERSION,
        program: req.program.as_bytes().to_vec(),
        args: req.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        cwd: req.cwd.as_os_str().as_bytes().to_vec(),
        env: req
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect(),
        umask: current_umask(),
    };
    let started = protocol::send(&stream, &protocol::Request::Run(run), &[0, out_fd, 2])
        .and_then(|()| protocol::recv::<protocol::Reply>(&stream, protocol::REPLY_CAP));
    match started {
        Ok(Some((protocol::Reply::Started(_), _))) => {}
        Ok(Some((protocol::Reply::NotStarted(code), _))) => return Ok(code),
        Err(e) if protocol::timed_out(&e) => return Err(unresponsive(rec)),
        _ => return Err(CallError::Gone),
    }
    // The program runs: from here on it is waited for however long it
    // takes. Clearing a time limit cannot fail on a connected socket; if it
    // did, the wait below would end early and report the session as ended.
    if stream.set_read_timeout(None).is_err() {
        crate::diag::debug("cannot clear the session socket's time limit");
    }
    let _guard = signals::ForwardGuard::new(move |sig| {
        // Best effort: a send that fails means the agent is gone, which the
        // wait below reports.
        let _ = protocol::send(&forward, &protocol::Request::Signal(sig as i32), &[]);
    });
    match protocol::recv::<protocol::Reply>(&stream, protocol::REPLY_CAP) {
        Ok(Some((protocol::Reply::Exit(code), _))) => Ok(code),
        // The agent went away while the program ran (the container was
        // killed): the program's fate is unknown and it may have written
        // output already, so it is not run again; the build sees a failure
        // like a killed compiler.
        _ => {
            eprintln!(
                "qemu-cross-cc: error: the session container ended during the call; rerun the command"
            );
            forget(rec);
            Ok(137)
        }
    }
}

fn current_umask() -> u32 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o022));
    umask(old);
    old.bits()
}

/// Start a session for `req` (unless one appeared meanwhile) and run the
/// request in it. None when no session can serve it: sessions cannot work
/// here (the binary is not static), or the one that serves it is slow to
/// answer. Errors are for the caller to fall back on.
pub fn start_and_run(
    engine: &Engine,
    req: &Request,
    checksum: &str,
    image_id: &str,
    target: Option<&str>,
    choice: Choice,
) -> Result<Option<i32>> {
    let Some((exe_path, exe)) = exe_identity() else {
        return Ok(None);
    };
    if !is_static_elf(&exe_path) {
        crate::diag::debug("sessions need a statically linked qemu-cross-cc");
        return Ok(None);
    }
    let dir = sessions_dir()?;
    // One starter at a time per image and user; the others then find it.
    let lock_file = crate::state::safefs::open_private(
        &dir.join(format!(
            ".start-{}.lock",
            crate::image::dockerfile::bytes_checksum(req.image.as_bytes())
        )),
        OpenOptions::new().create(true).truncate(false).write(true),
    )?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("lock: {e}"))?;
    match run_in_live(req, checksum, choice) {
        Live::Ran(code) => return Ok(Some(code)),
        // Another caller's session came up and is slow: one-shot.
        Live::Busy => return Ok(None),
        Live::None => {}
    }

    // Short: the socket path must stay short (unix socket addresses).
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let sdir = crate::state::paths::runtime_subdir(&format!("sessions/{id}"))?;
    let _removed_on_signal = signals::TempDirGuard::new(&sdir);
    let root = build_root(&req.cwd);
    let mut set = req.mounts.clone();
    set.add(root.clone(), true);
    // The build tree's parent, read-only: out-of-tree builds usually keep
    // their sources beside the build folder (`../src`).
    let home = crate::host::user::home();
    if let Some(parent) = root.parent() {
        if !is_broad(parent, home.as_deref()) {
            set.add(parent.to_path_buf(), false);
        }
    }
    // Sessions of the same tree that did not cover this call: the new one
    // covers what they did too, and replaces them.
    let superseded: Vec<Record> = records()
        .into_iter()
        .filter(|r| {
            r.compatible(&req.image, checksum, choice, &exe) && r.root == root && r.mounts_current()
        })
        .collect();
    for r in &superseded {
        for m in &r.mounts {
            set.add_alias(m.path.clone(), m.source.clone(), m.writable);
        }
    }
    let mut mounts = Vec::new();
    for m in set.iter() {
        let (dev, ino, born) =
            identity(&m.source).with_context(|| format!("cannot stat {}", m.source.display()))?;
        mounts.push(MountRecord {
            path: m.path.clone(),
            source: m.source.clone(),
            writable: m.writable,
            dev,
            ino,
            born,
        });
    }
    let rec = Record {
        id: id.clone(),
        engine: engine.kind(),
        image: req.image.clone(),
        image_id: image_id.to_string(),
        checksum: checksum.to_string(),
        target: target.map(String::from),
        root,
        mounts,
        uid: crate::host::user::uid(),
        gid: crate::host::user::gid(),
        container: format!("qemu-cross-cc-session-{id}"),
        created: now(),
        exe,
    };
    // From here on, a failure removes the container it started: a session
    // nobody can find must not idle on.
    let started = start_container(engine, &rec, &exe_path, &set).and_then(|()| {
        crate::state::safefs::write_private(
            &sdir.join("record.json"),
            &serde_json::to_vec_pretty(&rec)?,
        )
    });
    if let Err(e) = started {
        engine.remove_containers(std::slice::from_ref(&rec.container));
        forget(&rec);
        return Err(e);
    }
    drop(_lock);
    for r in &superseded {
        stop(r);
    }
    match call(&rec, req) {
        Ok(code) => Ok(Some(code)),
        Err(CallError::Skip) => bail!("the new session is slow to answer"),
        Err(CallError::Retired) => bail!("the new session did not answer"),
        Err(CallError::Gone) => {
            stop(&rec);
            bail!("the new session did not accept the call")
        }
    }
}

fn start_container(engine: &Engine, rec: &Record, exe: &Path, set: &MountSet) -> Result<()> {
    // A signal before the session is up removes its container.
    let _removed_on_signal = crate::engine::container::removed_on_signal(engine, &rec.id);
    let sdir = rec.dir();
    let selinux = mounts::selinux_enabled();
    let z = if selinux { ",z" } else { "" };
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "-d".into(),
        "--rm".into(),
        "--name".into(),
        rec.container.clone().into(),
        "--label".into(),
        format!("{}={}", labels::INSTANCE, rec.id).into(),
        "--label".into(),
        format!("{SESSION_LABEL}={}", rec.id).into(),
    ];
    args.extend(
        crate::engine::orphans::label_args()
            .into_iter()
            .map(OsString::from),
    );
    if let Some(t) = &rec.target {
        args.extend(["--label".into(), format!("{TARGET_LABEL}={t}").into()]);
    }
    args.extend([
        "--label".into(),
        format!("{RUNTIME_LABEL}={}", runtime_label()).into(),
    ]);
    args.extend(engine.user_args().into_iter().map(OsString::from));
    args.extend([
        "--network".into(),
        "none".into(),
        "--entrypoint".into(),
        AGENT_PATH.into(),
    ]);
    let mut exe_vol = OsString::from(exe.as_os_str());
    exe_vol.push(format!(":{AGENT_PATH}:ro"));
    args.extend(["-v".into(), exe_vol]);
    let mut sock_vol = OsString::from(sdir.as_os_str());
    sock_vol.push(":");
    sock_vol.push(sdir.as_os_str());
    sock_vol.push(format!(":rw{z}"));
    args.extend(["-v".into(), sock_vol]);
    args.extend(set.volume_args(selinux)?.into_iter().map(OsString::from));
    args.push(rec.image.clone().into());
    args.push(AGENT_COMMAND.into());
    args.push("--socket".into());
    args.push(rec.socket().into_os_string());
    args.push("--idle".into());
    args.push(idle_seconds().to_string().into());
    for m in set.iter() {
        args.push("--mount".into());
        args.push(m.path.clone().into_os_string());
    }
    let out = engine
        .command(&args)
        .stdin(Stdio::null())
        .output()
        .context("cannot start a session container")?;
    if !out.status.success() {
        bail!(
            "starting a session container failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // The agent creates its socket within milliseconds of starting; check
    // now and then that the container still runs, so that an agent that
    // cannot start costs little.
    let started = Instant::now();
    let mut checked = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if protocol::connect_within(&rec.socket(), protocol::ANSWER_TIMEOUT).is_ok() {
            return Ok(());
        }
        if checked.elapsed() > Duration::from_millis(300) {
            checked = Instant::now();
            let o = engine
                .command(["ps", "-q", "--filter", &format!("name={}", rec.container)])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            if o.is_ok_and(|o| o.status.success() && o.stdout.is_empty()) {
                bail!("the session agent exited at once");
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    engine.remove_containers(std::slice::from_ref(&rec.container));
    bail!("the session agent did not start")
}

/// What an agent says of itself.
pub enum Health {
    /// It answered with its counters.
    Live(Status),
    /// Its container runs but it did not answer in time: kept.
    Slow,
    /// It is gone (its record may be forgotten).
    Gone,
}

/// Ask an agent for its counters. An agent that takes the connection but
/// stays silent for a second is given up (its container removed) unless
/// its container runs, as in a call.
pub fn status(rec: &Record) -> Health {
    match ask(rec, &protocol::Request::Status) {
        Ok((_, protocol::Reply::Status(st))) => Health::Live(st),
        Ok(_) | Err(CallError::Gone | CallError::Retired) => Health::Gone,
        Err(CallError::Skip) => Health::Slow,
    }
}

/// End a session: ask its agent to exit once its running calls are done,
/// and forget it. A container whose agent is gone, paused or stopped is
/// removed; one that runs but is slow to answer is only forgotten (its
/// socket goes with its record, and the agent ends by itself once its calls
/// are done): a caller that merely timed out never kills calls in flight.
/// A record already forgotten was dealt with by whoever forgot it.
pub fn stop(rec: &Record) {
    if !rec.dir().exists() {
        return;
    }
    match ask(rec, &protocol::Request::Shutdown) {
        Ok((_, protocol::Reply::Bye)) | Err(CallError::Skip) => {}
        Err(CallError::Retired) => return,
        Ok(_) | Err(CallError::Gone) => rec
            .engine()
            .remove_containers(std::slice::from_ref(&rec.container)),
    }
    forget(rec);
}

/// Forget the sessions of this engine (after `clean` removed their
/// containers).
pub fn forget_all(engine: &Engine) {
    for rec in records() {
        if rec.engine == engine.kind() {
            forget(&rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_binary_is_static() {
        // The project builds static-pie binaries (.cargo/config.toml).
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        assert!(is_static_elf(&exe));
        assert!(!is_static_elf(Path::new("/bin/sh")));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
    }

    #[test]
    fn build_root_climbs_through_makefiles() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("proj/build");
        std::fs::create_dir_all(top.join("sub/deeper")).unwrap();
        std::fs::write(top.join("Makefile"), "").unwrap();
        std::fs::write(top.join("sub/Makefile"), "").unwrap();
        assert_eq!(build_root(&top.join("sub/deeper")), top);
        assert_eq!(build_root(&top.join("sub")), top);
        assert_eq!(build_root(&top), top);
    }
}
