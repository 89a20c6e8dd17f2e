//! The client side of a session: finding a live one for a call, the call
//! itself (one round trip to start it), and giving up or stopping a session without
//! ever killing what it runs because a caller merely timed out.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;

use crate::call::request::Request;
use crate::engine::{Choice, Engine};
use crate::signals;

use super::protocol::{self, Status};
use super::record::{Record, exe_identity, forget, key, keyed, records};

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

/// Run `req` in a live session, without any engine call. The session the
/// call's key names is tried first (one link and one record read); only
/// when it cannot serve are all records read. Sessions that cannot serve
/// any more are retired on the way; a slow one is never stopped by a
/// caller that merely timed out.
pub fn run_in_live(req: &Request, checksum: &str, choice: Choice) -> Live {
    let Some(exe) = exe_identity() else {
        return Live::None;
    };
    let mut busy = false;
    let key = key(
        &req.image,
        checksum,
        crate::host::user::uid(),
        crate::host::user::gid(),
        &exe,
    );
    let candidate = keyed(&key);
    crate::diag::timing("records");
    let tried = candidate.map(|rec| (try_one(&rec, req, checksum, choice, &exe), rec.id));
    let tried_id = match tried {
        Some((Tried::Ran(code), _)) => return Live::Ran(code),
        Some((Tried::Busy, id)) => {
            busy = true;
            Some(id)
        }
        Some((Tried::No, id)) => Some(id),
        None => None,
    };
    for rec in records() {
        if tried_id.as_deref() == Some(rec.id.as_str()) {
            continue;
        }
        match try_one(&rec, req, checksum, choice, &exe) {
            Tried::Ran(code) => return Live::Ran(code),
            Tried::Busy => busy = true,
            Tried::No => {}
        }
    }
    if busy { Live::Busy } else { Live::None }
}

/// What one session made of a call.
enum Tried {
    Ran(i32),
    Busy,
    No,
}

/// Run `req` in `rec` if it may serve it; retire it when it never will.
fn try_one(rec: &Record, req: &Request, checksum: &str, choice: Choice, exe: &str) -> Tried {
    if rec.outdated(&req.image, checksum) {
        stop(rec);
        return Tried::No;
    }
    if !rec.compatible(&req.image, checksum, choice, exe)
        || !rec.mount_set().covers_set(&req.mounts)
    {
        return Tried::No;
    }
    if !rec.mounts_current() {
        // A folder made again: the session that replaces this one ends it
        // once started (see `start_and_run`).
        return Tried::No;
    }
    match call(rec, req) {
        Ok(code) => Tried::Ran(code),
        Err(CallError::Gone) => {
            stop(rec);
            Tried::No
        }
        Err(CallError::Retired) => Tried::No,
        Err(CallError::Skip) => Tried::Busy,
    }
}

/// An engine and image id known from an earlier session of the same image
/// and dockerfile checksum: a new session can start without probing the
/// engine or inspecting the image.
pub fn known_image(image: &str, checksum: &str, choice: Choice) -> Option<(Engine, String)> {
    let exe = exe_identity()?;
    records()
        .into_iter()
        .find(|r| r.compatible(image, checksum, choice, &exe))
        .map(|r| (r.engine(), r.image_id))
}

/// Why a call did not run in a session (nothing ran: the caller may run
/// the program another way).
pub(super) enum CallError {
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
    ask_with(rec, first, &[])
}

/// `ask`, with descriptors attached to the request.
fn ask_with(
    rec: &Record,
    first: &protocol::Request,
    fds: &[std::os::fd::RawFd],
) -> Result<(std::os::unix::net::UnixStream, protocol::Reply), CallError> {
    let stream = match protocol::connect_within(&rec.socket(), protocol::ANSWER_TIMEOUT) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(unresponsive(rec)),
        Err(_) => return Err(CallError::Gone),
    };
    crate::diag::timing("connect");
    // Without its time limits a frozen agent would hang the build.
    stream
        .set_read_timeout(Some(protocol::ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(protocol::ANSWER_TIMEOUT)))
        .map_err(|_| CallError::Skip)?;
    // An agent at its limit answers `Busy` as it accepts and hangs up, maybe
    // before the request arrives: its answer is read even when the send
    // failed.
    let sent = protocol::send(&stream, first, fds);
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
        (sent, Err(e)) if protocol::timed_out(&e) => {
            // An answer that arrived just as the wait ended counts: the
            // agent may have started the program on it.
            if sent.is_ok() {
                if let Some(reply) = last_look(&stream) {
                    return Ok((stream, reply));
                }
            }
            // Hang up before asking the engine about the container (which
            // takes a while): an agent that wakes up meanwhile finds this
            // caller gone when it answers, and starts nothing for it. A
            // request it did not take in time (a send that timed out) is
            // no sign of a dead session either.
            drop(stream);
            Err(unresponsive(rec))
        }
        _ => Err(CallError::Gone),
    }
}

/// The answer already in the socket after the wait for it ended, if one
/// is whole there (read without waiting).
fn last_look(stream: &std::os::unix::net::UnixStream) -> Option<protocol::Reply> {
    stream.set_nonblocking(true).ok()?;
    let got = protocol::recv::<protocol::Reply>(stream, protocol::REPLY_CAP);
    stream.set_nonblocking(false).ok()?;
    got.ok().flatten().map(|(reply, _)| reply)
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
/// be killed, so it is kept; so is one whose state the engine cannot tell
/// (podman fails an inspect now and then while other commands change its
/// store): only the engine's word that it is not running retires it.
/// Returns whether it was kept.
fn give_up(rec: &Record) -> bool {
    let engine = rec.engine();
    let mut state = ContainerState::Unknown(String::new());
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = engine
            .output([
                "container",
                "inspect",
                "--format",
                "{{.State.Status}}",
                &rec.container,
            ])
            .ok();
        state = container_state(out.as_ref());
        if !matches!(state, ContainerState::Unknown(_)) {
            break;
        }
    }
    match state {
        ContainerState::Running => {
            crate::diag::debug(format!(
                "session {} is slow to answer; not used for this call",
                rec.id
            ));
            true
        }
        ContainerState::Unknown(why) => {
            crate::diag::debug(format!(
                "session {} is slow to answer and the engine cannot tell whether it runs ({why}); \
                 not used for this call",
                rec.id
            ));
            true
        }
        ContainerState::NotRunning => {
            forget(rec);
            engine.remove_containers(std::slice::from_ref(&rec.container));
            false
        }
    }
}

/// What the engine's `container inspect` of a session says.
#[derive(Debug, PartialEq)]
enum ContainerState {
    Running,
    /// Paused, stopped, exited, or no such container.
    NotRunning,
    /// The inspect failed for another reason (the engine could not be run,
    /// a store locked for a moment): what it printed.
    Unknown(String),
}

fn container_state(out: Option<&std::process::Output>) -> ContainerState {
    let Some(out) = out else {
        return ContainerState::Unknown("the engine could not be run".into());
    };
    if out.status.success() {
        return match String::from_utf8_lossy(&out.stdout).trim() {
            s if s.eq_ignore_ascii_case("running") => ContainerState::Running,
            _ => ContainerState::NotRunning,
        };
    }
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    if err.contains("no such container") || err.contains("no such object") {
        ContainerState::NotRunning
    } else {
        ContainerState::Unknown(err.trim().lines().next().unwrap_or("").to_string())
    }
}

/// Ask the agent to run `req`; forwards SIGINT/SIGTERM/SIGHUP to the program
/// meanwhile. The run request is the first frame (no handshake): its answer
/// must come within `ANSWER_TIMEOUT`, as a handshake's did, and the agent
/// starts nothing for a caller that gave up waiting. Everything that guards
/// the call (time limits, the descriptor that forwards signals) is set up
/// before the program is asked for: when a step fails, nothing ran and the
/// call goes elsewhere.
pub(super) fn call(rec: &Record, req: &Request) -> Result<i32, CallError> {
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
    let (stream, reply) = ask_with(rec, &protocol::Request::Run(run), &[0, out_fd, 2])?;
    match reply {
        protocol::Reply::Accepted => crate::diag::timing("accepted"),
        _ => return Err(CallError::Gone),
    }
    // The program runs: a call must not go elsewhere now (it would run
    // twice). Without a second descriptor (out of descriptors) it is still
    // waited for, only its signals are not forwarded.
    let forward = stream.try_clone().ok();
    if forward.is_none() {
        crate::diag::debug("cannot forward signals to the session's program");
    }
    // The program runs: from here on it is waited for however long it
    // takes. Clearing a time limit cannot fail on a connected socket; if it
    // did, the wait below would end early and report the session as ended.
    if stream.set_read_timeout(None).is_err() {
        crate::diag::debug("cannot clear the session socket's time limit");
    }
    let waited = signals::wait_forwarding(stream.as_fd(), move |sig| {
        // Best effort: a send that fails means the agent is gone, which the
        // wait below reports.
        if let Some(f) = &forward {
            let _ = protocol::send(f, &protocol::Request::Signal(sig as i32), &[]);
        }
    });
    let exit = waited
        .map_err(anyhow::Error::from)
        .and_then(|()| protocol::recv::<protocol::Reply>(&stream, protocol::REPLY_CAP));
    match exit {
        Ok(Some((protocol::Reply::Exit(code) | protocol::Reply::NotStarted(code), _))) => {
            crate::diag::timing("exited");
            Ok(code)
        }
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
    use std::os::unix::process::ExitStatusExt;
    use std::process::{ExitStatus, Output};

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn only_the_engines_word_retires_a_session() {
        use ContainerState::*;
        assert_eq!(container_state(Some(&out(0, "running\n", ""))), Running);
        for status in ["paused\n", "exited\n", "created\n", "stopping\n", ""] {
            assert_eq!(container_state(Some(&out(0, status, ""))), NotRunning);
        }
        // docker 20.10 and podman 4.3 on a container that is gone.
        let gone = [
            "Error response from daemon: No such container: qemu-cross-cc-session-00aa\n",
            "Error: No such object: qemu-cross-cc-session-00aa\n",
            "Error: inspecting object: no such container qemu-cross-cc-session-00aa\n",
        ];
        for err in gone {
            assert_eq!(container_state(Some(&out(1, "", err))), NotRunning, "{err}");
        }
        // Failures that say nothing of the container: kept.
        assert!(matches!(container_state(None), Unknown(_)));
        let locked = out(125, "", "Error: database is locked\nmore\n");
        assert_eq!(
            container_state(Some(&locked)),
            Unknown("error: database is locked".into())
        );
        let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n";
        assert!(matches!(
            container_state(Some(&out(1, "", down))),
            Unknown(_)
        ));
    }
}
