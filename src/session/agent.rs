//! The agent: this same binary, running inside a session container as the
//! calling user. It listens on a unix socket and, for each call, starts the
//! program with the caller's descriptors, working directory, umask and
//! environment, forwards signals to its process group and reports its exit
//! status. It exits after an idle period, which ends the container.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::protocol::{self, Reply, Request, Run, Status};

struct State {
    /// The host folders mounted for the calls.
    mounts: Vec<PathBuf>,
    /// Shutdown asked: no new calls; exit once the running ones end.
    draining: AtomicBool,
    calls: AtomicU64,
    active: AtomicU64,
    last: Mutex<Instant>,
    started: u64,
    socket: PathBuf,
}

impl State {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    fn exit(&self, code: i32) -> ! {
        let _ = std::fs::remove_file(&self.socket);
        std::process::exit(code)
    }
}

/// `__agent --socket PATH --idle SECONDS`
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
    let _ = std::fs::remove_file(&socket);
    let listener = protocol::bind(&socket)
        .with_context(|| format!("agent: cannot listen on {}", socket.display()))?;
    let state = Arc::new(State {
        mounts,
        draining: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        active: AtomicU64::new(0),
        last: Mutex::new(Instant::now()),
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        socket: socket.clone(),
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
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let idle = st.active.load(Ordering::SeqCst) == 0;
                if idle && (st.draining.load(Ordering::SeqCst) || st.idle_for() >= limit) {
                    st.exit(0);
                }
            }
        });
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let st = state.clone();
        std::thread::spawn(move || {
            let _ = serve(conn, &st);
        });
    }
    Ok(0)
}

/// As PID 1 of the container: fork, let the child be the agent, and reap
/// every orphan until it exits (compilers' children re-parent to PID 1).
fn reap_as_init() -> Result<()> {
    // SAFETY: called before any thread but the signal thread exists; the
    // child only continues with ordinary code.
    match unsafe { fork() }.context("agent: fork")? {
        // The signal thread stayed in the parent: start the child's own.
        ForkResult::Child => crate::signals::install(),
        ForkResult::Parent { child } => loop {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    std::process::exit(128 + sig as i32)
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => std::process::exit(0),
            }
        },
    }
}

fn serve(conn: UnixStream, st: &State) -> Result<()> {
    let Some((req, fds)) = protocol::recv::<Request>(&conn)? else {
        return Ok(());
    };
    match req {
        Request::Status => protocol::send(
            &conn,
            &Reply::Status(Status {
                version: protocol::VERSION,
                started: st.started,
                calls: st.calls.load(Ordering::SeqCst),
                active: st.active.load(Ordering::SeqCst),
            }),
            &[],
        ),
        Request::Shutdown => {
            // Calls already running finish; new ones cannot connect.
            let _ = std::fs::remove_file(&st.socket);
            st.draining.store(true, Ordering::SeqCst);
            protocol::send(&conn, &Reply::Bye, &[])
        }
        Request::Signal(_) => Ok(()),
        Request::Run(run) => {
            if run.version != protocol::VERSION {
                return protocol::send(
                    &conn,
                    &Reply::Refused(format!(
                        "protocol {} wanted, {} offered",
                        protocol::VERSION,
                        run.version
                    )),
                    &[],
                );
            }
            // A folder removed (and maybe made again) on the host is still
            // the old, deleted one here: no links left.
            if let Some(m) = st
                .mounts
                .iter()
                .find(|m| std::fs::metadata(m).map(|x| x.nlink() == 0).unwrap_or(true))
            {
                return protocol::send(&conn, &Reply::Stale(m.display().to_string()), &[]);
            }
            st.calls.fetch_add(1, Ordering::SeqCst);
            st.active.fetch_add(1, Ordering::SeqCst);
            st.touch();
            let r = execute(&conn, run, fds);
            st.touch();
            st.active.fetch_sub(1, Ordering::SeqCst);
            r
        }
    }
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn execute(conn: &UnixStream, run: Run, fds: Vec<OwnedFd>) -> Result<()> {
    let [stdin, stdout, stderr]: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|_| anyhow::anyhow!("a run needs three descriptors"))?;
    let mut cmd = Command::new(os(&run.program));
    cmd.args(run.args.iter().map(|a| os(a)))
        .current_dir(os(&run.cwd))
        .envs(run.env.iter().map(|(k, v)| (k.as_str(), os(v))))
        .process_group(0);
    let umask = run.umask;
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
            Ok(())
        });
    }
    let err_copy = stderr.try_clone()?;
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // As the engines report it: 127 not found, 126 not executable.
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let mut f = std::fs::File::from(err_copy);
            use std::io::Write;
            let _ = writeln!(
                f,
                "qemu-cross-cc: cannot run {} in the container: {e}",
                os(&run.program).to_string_lossy()
            );
            return protocol::send(conn, &Reply::NotStarted(code), &[]);
        }
    };
    drop(cmd);
    drop(err_copy);
    let pgid = Pid::from_raw(child.id() as i32);
    protocol::send(conn, &Reply::Started(child.id() as i32), &[])?;

    // Signals from the caller, or the caller going away.
    let done = Arc::new(AtomicBool::new(false));
    let reader = conn.try_clone()?;
    let watch_done = done.clone();
    std::thread::spawn(move || {
        loop {
            match protocol::recv::<Request>(&reader) {
                Ok(Some((Request::Signal(n), _))) => {
                    if let Ok(sig) = Signal::try_from(n) {
                        let _ = killpg(pgid, sig);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    if !watch_done.load(Ordering::SeqCst) {
                        let _ = killpg(pgid, Signal::SIGKILL);
                    }
                    return;
                }
            }
        }
    });
    let status = child.wait()?;
    done.store(true, Ordering::SeqCst);
    protocol::send(conn, &Reply::Exit(crate::engine::exit_code(status)), &[])?;
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(())
}
