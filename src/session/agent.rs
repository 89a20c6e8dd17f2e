//! The agent: this same binary, running inside a session container as the
//! calling user. It listens on a unix socket and, for each call, starts the
//! program with the caller's descriptors, working directory, umask and
//! environment, forwards signals to its process group and reports its exit
//! status. It exits after an idle period, which ends the container.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::sys::socket::getsockopt;
use nix::sys::socket::sockopt::PeerCredentials;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::protocol::{self, Reply, Request, Run, Status};

/// The most connections served at once (each by a taker thread, with a
/// second thread while its program runs); more get `Busy` and run
/// elsewhere.
const MAX_CONNECTIONS: usize = 256;

/// How long a connection may take to send its request: a caller sends it
/// within milliseconds of connecting; a silent one must not hold a thread.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Agent {
    /// The host folders mounted for the calls.
    mounts: Vec<PathBuf>,
    /// Connections being served.
    connections: AtomicUsize,
    /// Shutdown asked: no new calls; exit once the running ones end.
    draining: AtomicBool,
    calls: AtomicU64,
    active: AtomicU64,
    last: Mutex<Instant>,
    started: u64,
    socket: PathBuf,
    /// This process's umask: calls with the same one are spawned (see
    /// `spawn`), the others forked to set theirs.
    umask: u32,
}

impl Agent {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Stop taking calls. A call counts itself active before it checks this
    /// flag, and the watcher sets it before it checks for active calls, so
    /// that no call starts once the watcher decided to exit.
    fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    fn exit(&self, code: i32) -> ! {
        let _ = std::fs::remove_file(&self.socket);
        std::process::exit(code)
    }
}

/// `__agent --socket PATH --idle SECONDS [--mount PATH]...`
///
/// `main` calls this before anything else, with no thread started: as the
/// container's PID 1 the agent forks first (see `reap_as_init`), and only
/// then starts threads.
pub fn main(args: &[OsString]) -> Result<i32> {
    let mut socket = None;
    let mut idle = 600u64;
    let mut mounts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--socket") => socket = it.next().map(PathBuf::from),
            Some("--mount") => mounts.extend(it.next().map(PathBuf::from)),
            Some("--idle") => {
                idle = it
                    .next()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse().ok())
                    .context("--idle needs seconds")?
            }
            _ => bail!("agent: unknown argument {a:?}"),
        }
    }
    let socket = socket.context("agent: --socket is required")?;
    if std::process::id() == 1 {
        reap_as_init()?;
    }
    // Read while no other thread can create a file in between.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(umask);
    crate::signals::install().context("agent: cannot install signal handlers")?;
    match std::fs::remove_file(&socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            bail!("agent: cannot remove the old {}: {e}", socket.display())
        }
        _ => {}
    }
    let listener = protocol::bind(&socket)
        .with_context(|| format!("agent: cannot listen on {}", socket.display()))?;
    let state = Arc::new(Agent {
        mounts,
        connections: AtomicUsize::new(0),
        draining: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        active: AtomicU64::new(0),
        last: Mutex::new(Instant::now()),
        started: crate::host::unix_now(),
        socket: socket.clone(),
        umask: umask.bits(),
    });
    {
        // `docker stop` and friends: leave no socket behind.
        let st = state.clone();
        let _keep = crate::signals::ForwardGuard::new(move |_| st.exit(0));
        std::mem::forget(_keep);
    }
    {
        let st = state.clone();
        let limit = Duration::from_secs(idle);
        std::thread::Builder::new()
            .name("idle".into())
            .spawn(move || watch(&st, limit))
            .context("agent: cannot start its idle watch")?;
    }
    let (takers, wanted) = Takers::new(listener, nix::unistd::getuid().as_raw());
    take_calls(&takers, wanted, &state)
}

/// Start a taker, then another each time one takes the last waiting place
/// (see `take_connections`). The senders live as long as `takers`: this
/// waits until the idle watch ends the process.
fn take_calls(takers: &Arc<Takers>, wanted: Receiver<()>, state: &Arc<Agent>) -> Result<i32> {
    start_taker(takers, state).context("agent: cannot start a thread to take calls")?;
    for () in wanted.iter() {
        if let Err(e) = start_taker(takers, state) {
            // The next caller waits for a taker to finish its call; the
            // one that takes it asks again.
            crate::diag::debug(format!("agent: cannot start a thread to take calls: {e}"));
        }
    }
    Ok(0)
}

/// Threads waiting in accept(2) beyond which one that served its call ends
/// instead of waiting again.
const SPARE_TAKERS: usize = 4;

/// The threads that take the calls: each waits for a connection, serves it
/// and waits again, so that a call starts no thread before its program.
struct Takers {
    listener: UnixListener,
    /// Takers waiting for a connection.
    waiting: AtomicUsize,
    /// Asks the agent's main thread for another taker.
    more: Sender<()>,
    /// The agent's user (see `peer_allowed`).
    me: u32,
}

impl Takers {
    /// The takers of `listener`'s connections, and the requests for more.
    fn new(listener: UnixListener, me: u32) -> (Arc<Takers>, Receiver<()>) {
        let (more, wanted) = std::sync::mpsc::channel();
        let takers = Takers {
            listener,
            waiting: AtomicUsize::new(0),
            more,
            me,
        };
        (Arc::new(takers), wanted)
    }
}

fn start_taker(takers: &Arc<Takers>, state: &Arc<Agent>) -> std::io::Result<()> {
    let (takers, state) = (takers.clone(), state.clone());
    std::thread::Builder::new()
        .name("taker".into())
        .spawn(move || take_connections(&takers, &state))
        .map(drop)
}

/// Take connections and serve them, one at a time. The taker that leaves
/// nobody waiting asks for another before it serves, so that the next
/// caller finds one (the main thread starts it meanwhile); one that finds
/// enough others waiting after its call ends.
fn take_connections(takers: &Takers, state: &Arc<Agent>) {
    loop {
        // Counted and compared at once: never more than the spare ones wait.
        if takers.waiting.fetch_add(1, Ordering::SeqCst) >= SPARE_TAKERS {
            takers.waiting.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let got = takers.listener.accept();
        if takers.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Only fails once the main thread is gone, at exit.
            let _ = takers.more.send(());
        }
        match got {
            Ok((conn, _)) => {
                if peer_allowed(&conn, takers.me) {
                    accept(conn, state);
                }
            }
            // Out of descriptors, say: not a busy loop meanwhile.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Serve a connection within the limits: at most `MAX_CONNECTIONS` at once
/// (a caller beyond them is told `Busy` and runs its program elsewhere),
/// each with a time limit for sending its request.
fn accept(conn: UnixStream, state: &Agent) {
    let timed = conn
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(REQUEST_TIMEOUT)));
    if state.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS || timed.is_err() {
        state.connections.fetch_sub(1, Ordering::SeqCst);
        // The caller learns from the closed connection if this fails.
        let _ = protocol::send(&conn, &Reply::Busy, &[]);
        return;
    }
    if let Err(e) = serve(conn, state) {
        crate::diag::debug(format!("agent: {e:#}"));
    }
    state.connections.fetch_sub(1, Ordering::SeqCst);
}

/// Every 20 ms: exit once draining (asked to, idle too long, or the socket
/// removed with its folder on the host, which leaves nobody able to call) and
/// no call runs.
fn watch(st: &Agent, limit: Duration) -> ! {
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let idle = st.active.load(Ordering::SeqCst) == 0;
        if !st.draining() && (idle && st.idle_for() >= limit || socket_gone(&st.socket)) {
            st.drain();
        }
        if st.draining() && st.active.load(Ordering::SeqCst) == 0 {
            st.exit(0);
        }
    }
}

/// Whether the socket is gone (`rm -rf` of the runtime folder on the host):
/// the bind-mounted folder shows it at once.
fn socket_gone(socket: &Path) -> bool {
    std::fs::symlink_metadata(socket).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// A second wall behind the private runtime folder: only the agent's own
/// user (the caller, as mapped into the container) and root may call.
fn peer_allowed(conn: &UnixStream, me: u32) -> bool {
    match getsockopt(conn, PeerCredentials) {
        Ok(c) if c.uid() == me || c.uid() == 0 => true,
        Ok(c) => {
            eprintln!(
                "qemu-cross-cc agent: refused a connection from uid {}",
                c.uid()
            );
            false
        }
        Err(e) => {
            eprintln!("qemu-cross-cc agent: refused a connection: {e}");
            false
        }
    }
}

/// The agent process, for PID 1 to pass signals on to.
static AGENT_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(sig: nix::libc::c_int) {
    let pid = AGENT_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe {
            nix::libc::kill(pid, sig);
        }
    }
}

/// As PID 1 of the container: fork, let the child be the agent, and reap
/// every orphan until it exits (compilers' children re-parent to PID 1).
/// `docker stop`'s SIGTERM (and SIGINT, SIGHUP) reach PID 1, which passes
/// them on to the agent: it removes its socket and exits, and PID 1 with it.
fn reap_as_init() -> Result<()> {
    // SAFETY: the process has one thread here (`main` starts none before
    // the agent's `main`, which forks before installing its signal thread),
    // so the child is a whole copy of a single-threaded process and may run
    // ordinary code: no lock can be held by a thread that is not there.
    match unsafe { fork() }.context("agent: fork")? {
        ForkResult::Child => Ok(()),
        ForkResult::Parent { child } => {
            AGENT_PID.store(child.as_raw(), Ordering::Relaxed);
            let action = nix::sys::signal::SigAction::new(
                nix::sys::signal::SigHandler::Handler(pass_on),
                nix::sys::signal::SaFlags::SA_RESTART,
                nix::sys::signal::SigSet::empty(),
            );
            for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
                // SAFETY: the handler only calls kill(2).
                unsafe { nix::sys::signal::sigaction(sig, &action) }.context("agent: sigaction")?;
            }
            loop {
                match waitpid(Pid::from_raw(-1), None) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                        std::process::exit(128 + sig as i32)
                    }
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => std::process::exit(0),
                }
            }
        }
    }
}

/// Serve one connection: one request.
fn serve(conn: UnixStream, st: &Agent) -> Result<()> {
    let Some((req, fds)) = protocol::recv::<Request>(&conn, protocol::REQUEST_CAP)? else {
        return Ok(());
    };
    match req {
        Request::Status => protocol::send(&conn, &Reply::Status(status(st)), &[]),
        Request::Shutdown => {
            // Calls already running finish; new ones cannot connect.
            let _ = std::fs::remove_file(&st.socket);
            st.drain();
            protocol::send(&conn, &Reply::Bye, &[])
        }
        Request::Signal(_) => Ok(()),
        Request::Run(run) => serve_run(&conn, st, run, fds),
    }
}

fn status(st: &Agent) -> Status {
    Status {
        version: protocol::VERSION,
        started: st.started,
        calls: st.calls.load(Ordering::SeqCst),
        active: st.active.load(Ordering::SeqCst),
    }
}

/// The session is on its way out: nothing runs, the caller goes elsewhere.
fn send_ending(conn: &UnixStream) -> Result<()> {
    protocol::send(conn, &Reply::Stale("the session is ending".into()), &[])
}

fn serve_run(conn: &UnixStream, st: &Agent, run: Run, fds: Vec<OwnedFd>) -> Result<()> {
    if run.version != protocol::VERSION {
        return protocol::send(
            conn,
            &Reply::Refused(format!(
                "protocol {} wanted, {} offered",
                protocol::VERSION,
                run.version
            )),
            &[],
        );
    }
    // A folder removed (and maybe made again) on the host is still the old,
    // deleted one here: no links left.
    if let Some(m) = st
        .mounts
        .iter()
        .find(|m| std::fs::metadata(m).map(|x| x.nlink() == 0).unwrap_or(true))
    {
        return protocol::send(conn, &Reply::Stale(m.display().to_string()), &[]);
    }
    st.active.fetch_add(1, Ordering::SeqCst);
    if st.draining() {
        st.active.fetch_sub(1, Ordering::SeqCst);
        return send_ending(conn);
    }
    // The caller waits for the start only so long (there is no handshake
    // before the request): one that gave up may be running the program
    // elsewhere by now, so it is not started here too (nor counted).
    if caller_gone(conn) {
        st.active.fetch_sub(1, Ordering::SeqCst);
        bail!("the caller gave up before its program started");
    }
    // The caller commits to waiting once it reads this: a send that fails
    // (it hung up meanwhile) starts nothing.
    if let Err(e) = protocol::send(conn, &Reply::Accepted, &[]) {
        st.active.fetch_sub(1, Ordering::SeqCst);
        return Err(e.context("the caller gave up before its program started"));
    }
    st.calls.fetch_add(1, Ordering::SeqCst);
    st.touch();
    let r = execute(conn, run, fds, st.umask);
    st.touch();
    st.active.fetch_sub(1, Ordering::SeqCst);
    r
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// The private temporary folder of one call (mode 0700, under /tmp),
/// removed when the call ends however it ends: a compiler killed with its
/// caller leaves its temporary files behind.
struct CallTmp(PathBuf);

impl CallTmp {
    /// None when the caller passes its own TMPDIR (a mounted host folder),
    /// or when /tmp is not writable (the program then runs as before).
    fn for_run(run: &Run) -> Option<CallTmp> {
        if run.env.iter().any(|(k, _)| k == "TMPDIR") {
            return None;
        }
        nix::unistd::mkdtemp("/tmp/qemu-cross-cc-call.XXXXXX")
            .ok()
            .map(CallTmp)
    }
}

impl Drop for CallTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The program's command: argv, cwd, environment, umask, own process group.
fn command(run: &Run, tmp: Option<&CallTmp>) -> Command {
    let mut cmd = Command::new(os(&run.program));
    cmd.args(run.args.iter().map(|a| os(a)))
        .current_dir(os(&run.cwd))
        .envs(run.env.iter().map(|(k, v)| (k.as_str(), os(v))))
        .process_group(0);
    if let Some(t) = tmp {
        cmd.env("TMPDIR", &t.0);
    }
    let umask = nix::sys::stat::Mode::from_bits_truncate(run.umask);
    // SAFETY: the closure runs in the child between fork and exec, in a
    // process that had other threads: it may only make async-signal-safe
    // calls. It makes one, umask(2), on a value computed before the fork; it
    // allocates nothing and takes no lock. (The umask is per process, so it
    // cannot be set in the agent for calls that run at the same time.)
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::stat::umask(umask);
            Ok(())
        });
    }
    cmd
}

/// The program could not start: say so on its stderr, as the engines
/// report it (127 not found, 126 not executable).
fn not_started(conn: &UnixStream, run: &Run, stderr: OwnedFd, e: std::io::Error) -> Result<()> {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let mut f = std::fs::File::from(stderr);
    use std::io::Write;
    let _ = writeln!(
        f,
        "qemu-cross-cc: cannot run {} in the container: {e}",
        os(&run.program).to_string_lossy()
    );
    protocol::send(conn, &Reply::NotStarted(code), &[])
}

/// A call's running program.
enum Program {
    /// Started with posix_spawn (see `spawn`).
    Spawned(Pid),
    /// Forked by `Command`, to set a umask other than the agent's.
    Forked(std::process::Child),
}

impl Program {
    fn id(&self) -> i32 {
        match self {
            Program::Spawned(pid) => pid.as_raw(),
            Program::Forked(child) => child.id() as i32,
        }
    }

    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            Program::Spawned(pid) => super::spawn::wait(*pid),
            Program::Forked(child) => child.wait(),
        }
    }
}

/// Start the program with the caller's descriptors: spawned when its umask
/// is the agent's and where it is can be told before it starts, else forked.
fn start(
    run: &Run,
    tmp: Option<&CallTmp>,
    [stdin, stdout, stderr]: [&OwnedFd; 3],
    agent_umask: u32,
) -> std::io::Result<Program> {
    use std::os::fd::AsRawFd;
    let program = os(&run.program);
    if run.umask == agent_umask {
        let path = run
            .env
            .iter()
            // The last value, as the program's environment gets it.
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| OsString::from(os(v)))
            .or_else(|| std::env::var_os("PATH"));
        if let Some(found) = super::spawn::find(program, path.as_deref()) {
            let mut env: Vec<(OsString, OsString)> = run
                .env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(os(v))))
                .collect();
            if let Some(t) = tmp {
                env.push(("TMPDIR".into(), t.0.clone().into_os_string()));
            }
            let spawn = super::spawn::Spawn {
                program,
                args: run.args.iter().map(|a| os(a)).collect(),
                cwd: os(&run.cwd),
                env,
                fds: [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
            };
            match super::spawn::spawn(&spawn, &found?) {
                // execvp runs a file without `#!` with /bin/sh, as `Command`
                // does below; posix_spawn refuses it.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOEXEC) => {}
                r => return r.map(Program::Spawned),
            }
        }
    }
    let mut cmd = command(run, tmp);
    cmd.stdin(Stdio::from(stdin.try_clone()?))
        .stdout(Stdio::from(stdout.try_clone()?))
        .stderr(Stdio::from(stderr.try_clone()?));
    cmd.spawn().map(Program::Forked)
}

fn execute(conn: &UnixStream, run: Run, fds: Vec<OwnedFd>, agent_umask: u32) -> Result<()> {
    let [stdin, stdout, stderr]: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| anyhow::anyhow!("a run needs three descriptors"))?;
    // Removed once the program (and, when killed, its group) is gone.
    let tmp = CallTmp::for_run(&run);
    let mut child = match start(&run, tmp.as_ref(), [&stdin, &stdout, &stderr], agent_umask) {
        Ok(c) => c,
        Err(e) => return not_started(conn, &run, stderr, e),
    };
    // The program holds its own copies now.
    drop((stdin, stdout, stderr));
    let pgid = Pid::from_raw(child.id());
    // The program runs as long as it takes: only the request had a limit.
    let untimed = conn.set_read_timeout(None).map_err(anyhow::Error::from);
    let done = Arc::new(AtomicBool::new(false));
    let killed = match untimed.and_then(|()| watch_caller(conn, pgid, done.clone())) {
        Ok(killed) => killed,
        Err(e) => {
            // The caller cannot follow the program (it is gone, or nothing
            // can watch for it going): the program must not run on unseen.
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = child.wait();
            wait_group_gone(pgid, Duration::from_secs(2));
            return Err(e);
        }
    };
    let status = child.wait()?;
    done.store(true, Ordering::SeqCst);
    if killed.load(Ordering::SeqCst) {
        // Its children may still be dying: let them go before their
        // temporary folder does.
        wait_group_gone(pgid, Duration::from_secs(2));
    }
    drop(tmp);
    protocol::send(conn, &Reply::Exit(crate::host::exit_code(status)), &[])?;
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Whether the caller closed its end of the connection (it gave up
/// waiting): nothing of it is left to read but the end.
fn caller_gone(conn: &UnixStream) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    loop {
        return match recv(
            conn.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(0) => true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => false,
            Ok(_) => false,
            Err(_) => true,
        };
    }
}

/// Forward the caller's signals to the program's process group, and kill
/// the group when the caller goes away before `done`. Returns whether it
/// did.
fn watch_caller(conn: &UnixStream, pgid: Pid, done: Arc<AtomicBool>) -> Result<Arc<AtomicBool>> {
    let reader = conn.try_clone()?;
    let killed = Arc::new(AtomicBool::new(false));
    let flag = killed.clone();
    std::thread::Builder::new().spawn(move || {
        loop {
            match protocol::recv::<Request>(&reader, protocol::REQUEST_CAP) {
                Ok(Some((Request::Signal(n), _))) => {
                    if let Ok(sig) = Signal::try_from(n) {
                        let _ = killpg(pgid, sig);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    if !done.load(Ordering::SeqCst) {
                        flag.store(true, Ordering::SeqCst);
                        let _ = killpg(pgid, Signal::SIGKILL);
                    }
                    return;
                }
            }
        }
    })?;
    Ok(killed)
}

/// Wait (at most `limit`) until no process of group `pgid` is left.
fn wait_group_gone(pgid: Pid, limit: Duration) {
    let start = Instant::now();
    while killpg(pgid, None).is_ok() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsRawFd;

    fn state(socket: PathBuf) -> Arc<Agent> {
        Arc::new(Agent {
            mounts: Vec::new(),
            connections: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            active: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
            started: 0,
            socket,
            umask: 0o22,
        })
    }

    /// A client end with the agent serving the other end in a thread.
    fn serving(st: &Arc<Agent>) -> UnixStream {
        let (client, agent) = UnixStream::pair().unwrap();
        let st = st.clone();
        std::thread::spawn(move || serve(agent, &st));
        client
    }

    fn ask(c: &UnixStream, req: &Request) -> Reply {
        protocol::send(c, req, &[]).unwrap();
        protocol::recv::<Reply>(c, protocol::REPLY_CAP)
            .unwrap()
            .unwrap()
            .0
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A call starts no thread: takers wait for the calls, the one that
    /// takes the last waiting place has another started, and those beyond
    /// the spare ones end after their call.
    #[test]
    fn takers_serve_calls_at_once_and_do_not_pile_up() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let listener = protocol::bind(&socket).unwrap();
        let st = state(socket.clone());
        let (takers, wanted) = Takers::new(listener, nix::unistd::getuid().as_raw());
        {
            let (takers, st) = (takers.clone(), st.clone());
            std::thread::spawn(move || take_calls(&takers, wanted, &st));
        }
        let status = || {
            let c = UnixStream::connect(&socket).unwrap();
            matches!(ask(&c, &Request::Status), Reply::Status(_))
        };
        for _ in 0..20 {
            assert!(status());
        }
        wait_until("a spare taker", || {
            takers.waiting.load(Ordering::SeqCst) >= 1
        });
        let spare = takers.waiting.load(Ordering::SeqCst);
        assert!(spare <= SPARE_TAKERS, "{spare} takers wait");
        // Eight silent callers hold eight takers; another is still served.
        let held: Vec<UnixStream> = (0..8)
            .map(|_| UnixStream::connect(&socket).unwrap())
            .collect();
        wait_until("eight connections served", || {
            st.connections.load(Ordering::SeqCst) == 8
        });
        assert!(status());
        drop(held);
        wait_until("the connections ended", || {
            st.connections.load(Ordering::SeqCst) == 0
        });
        wait_until("the spare takers back", || {
            takers.waiting.load(Ordering::SeqCst) == SPARE_TAKERS
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(takers.waiting.load(Ordering::SeqCst), SPARE_TAKERS);
        assert!(status());
    }

    #[test]
    fn one_request_on_one_connection() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        let c = serving(&st);
        assert!(matches!(ask(&c, &Request::Status), Reply::Status(_)));
        assert!(
            protocol::recv::<Reply>(&c, protocol::REPLY_CAP)
                .unwrap()
                .is_none()
        );
    }

    /// Run `run` with /dev/null as its descriptors; the first reply.
    fn first_reply(st: &Arc<Agent>, run: Run) -> Reply {
        let c = serving(st);
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        protocol::send(&c, &Request::Run(run), &[fd, fd, fd]).unwrap();
        reply(&c)
    }

    #[test]
    fn a_draining_agent_takes_no_call() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        st.drain();
        assert!(matches!(
            first_reply(&st, run("exit 0", Vec::new())),
            Reply::Stale(_)
        ));
        assert_eq!(st.active.load(Ordering::SeqCst), 0);
        assert_eq!(st.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn another_protocol_version_is_refused() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        let mut r = run("exit 0", Vec::new());
        r.version = protocol::VERSION - 1;
        assert!(matches!(first_reply(&st, r), Reply::Refused(_)));
        assert_eq!(st.calls.load(Ordering::SeqCst), 0);
    }

    /// A caller that gave up waiting (its request sent, its end closed)
    /// before the agent read the request: the program is not started.
    #[test]
    fn a_caller_gone_before_the_start_runs_nothing() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        let d = tempfile::tempdir().unwrap();
        let mark = d.path().join("ran");
        let (c, agent) = UnixStream::pair().unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        let script = format!("touch {}", mark.display());
        protocol::send(&c, &Request::Run(run(&script, Vec::new())), &[fd, fd, fd]).unwrap();
        drop(c);
        assert!(serve(agent, &st).is_err());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!mark.exists());
        // Not counted as a call, and not left active.
        assert_eq!(st.calls.load(Ordering::SeqCst), 0);
        assert_eq!(st.active.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn own_user_and_root_may_call() {
        let (a, _b) = UnixStream::pair().unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert!(peer_allowed(&a, me));
        assert_eq!(peer_allowed(&a, me + 1), me == 0);
    }

    #[test]
    fn socket_gone_only_when_missing() {
        let d = tempfile::tempdir().unwrap();
        assert!(!socket_gone(d.path()));
        assert!(socket_gone(&d.path().join("agent.sock")));
    }

    fn run(script: &str, env: Vec<(String, Vec<u8>)>) -> Run {
        Run {
            version: protocol::VERSION,
            program: b"/bin/sh".to_vec(),
            args: vec![b"-c".to_vec(), script.as_bytes().to_vec()],
            cwd: b"/".to_vec(),
            env,
            umask: 0o22,
        }
    }

    /// Start `run` in the agent; returns the client end and the program's
    /// stdout.
    fn start(st: &Arc<Agent>, run: Run) -> (UnixStream, BufReader<std::fs::File>) {
        let c = serving(st);
        let (r, w) = nix::unistd::pipe().unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fds = [null.as_raw_fd(), w.as_raw_fd(), 2];
        protocol::send(&c, &Request::Run(run), &fds).unwrap();
        let started = protocol::recv::<Reply>(&c, protocol::REPLY_CAP)
            .unwrap()
            .unwrap()
            .0;
        assert!(matches!(started, Reply::Accepted), "{started:?}");
        (c, BufReader::new(std::fs::File::from(r)))
    }

    /// The next reply on a connection.
    fn reply(c: &UnixStream) -> Reply {
        protocol::recv::<Reply>(c, protocol::REPLY_CAP)
            .unwrap()
            .unwrap()
            .0
    }

    fn line(r: &mut BufReader<std::fs::File>) -> String {
        let mut s = String::new();
        r.read_line(&mut s).unwrap();
        s.trim().to_string()
    }

    #[test]
    fn each_call_gets_a_private_tmpdir_removed_when_it_ends() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        let (c, mut out) = start(&st, run("echo $TMPDIR; mktemp", Vec::new()));
        let tmp = PathBuf::from(line(&mut out));
        let file = PathBuf::from(line(&mut out));
        assert!(
            tmp.starts_with("/tmp") && file.starts_with(&tmp),
            "{tmp:?} {file:?}"
        );
        assert!(matches!(reply(&c), Reply::Exit(0)));
        assert!(!tmp.exists());
        // The caller's own TMPDIR is kept.
        let env = vec![("TMPDIR".to_string(), b"/var/tmp".to_vec())];
        let (_c, mut out) = start(&st, run("echo $TMPDIR", env));
        assert_eq!(line(&mut out), "/var/tmp");
    }

    #[test]
    fn a_caller_gone_kills_the_call_and_removes_its_tmpdir() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        let script = "mktemp; (sleep 60; :) & sleep 60";
        let (c, mut out) = start(&st, run(script, Vec::new()));
        let file = PathBuf::from(line(&mut out));
        assert!(file.exists());
        drop(c);
        let deadline = Instant::now() + Duration::from_secs(5);
        while file.parent().is_some_and(Path::exists) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!file.parent().unwrap().exists(), "{file:?} left behind");
        // Killed, with its background child: the pipe's write ends closed.
        assert_eq!(line(&mut out), "");
    }

    /// A program is spawned when its umask is the agent's and forked
    /// otherwise; both start it alike but for the umask.
    #[test]
    fn spawned_and_forked_programs_start_alike() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        let script = "umask; pwd; echo \"$QCC_V\" $TMPDIR; ps -o pgid= -p $$; echo $$; \
                      grep -E '^Sig(Ign|Blk)' /proc/self/status; echo end";
        let env = || vec![("QCC_V".to_string(), b"v 1".to_vec())];
        let mut seen = Vec::new();
        for umask in [0o22, 0o77] {
            let mut r = run(script, env());
            r.umask = umask;
            r.cwd = b"/tmp".to_vec();
            let (c, mut out) = start(&st, r);
            let mut lines = Vec::new();
            loop {
                let l = line(&mut out);
                if l == "end" || l.is_empty() {
                    break;
                }
                lines.push(l);
            }
            assert!(matches!(reply(&c), Reply::Exit(0)));
            assert_eq!(lines[0], format!("{umask:04o}"), "{lines:?}");
            assert_eq!(lines[1], "/tmp");
            assert!(
                lines[2].starts_with("v 1 /tmp/qemu-cross-cc-call."),
                "{lines:?}"
            );
            assert_eq!(lines[3].trim(), lines[4].trim(), "its own group: {lines:?}");
            seen.push(lines);
        }
        // Masks as the program's shell sees them: alike (what was ignored
        // before the agent started stays ignored, as exec keeps it), but for
        // glibc's own signals 32 and 33, which its posix_spawn leaves ignored
        // and every glibc program takes back as it starts.
        let ignored = |lines: &[String]| {
            let hex = lines[6].strip_prefix("SigIgn:\t").unwrap();
            u64::from_str_radix(hex, 16).unwrap() & !(0b11 << 31)
        };
        assert_eq!(ignored(&seen[0]), ignored(&seen[1]), "{seen:?}");
        assert_eq!(ignored(&seen[0]) & (1 << (nix::libc::SIGPIPE - 1)), 0);
        assert_eq!(seen[0][5], "SigBlk:\t0000000000000000");
        assert_eq!(seen[1][5], "SigBlk:\t0000000000000000");
    }

    #[test]
    fn a_program_not_found_or_not_executable_is_127_or_126() {
        let st = state(PathBuf::from("/nonexistent/agent.sock"));
        for (program, code) in [
            (b"no-such-program-qcc".to_vec(), 127),
            (b"/etc/passwd".to_vec(), 126),
        ] {
            let c = serving(&st);
            let (r, w) = nix::unistd::pipe().unwrap();
            let null = std::fs::File::open("/dev/null").unwrap();
            let mut req = run("", Vec::new());
            req.program = program;
            protocol::send(
                &c,
                &Request::Run(req),
                &[null.as_raw_fd(), null.as_raw_fd(), w.as_raw_fd()],
            )
            .unwrap();
            assert!(matches!(reply(&c), Reply::Accepted));
            let reply = reply(&c);
            assert!(
                matches!(reply, Reply::NotStarted(c) if c == code),
                "{reply:?}"
            );
            drop(w);
            let mut msg = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut msg).unwrap();
            assert!(msg.starts_with("qemu-cross-cc: cannot run "), "{msg}");
        }
    }
}
