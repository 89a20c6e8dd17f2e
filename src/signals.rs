//! SIGINT, SIGTERM and SIGHUP: remove this process's containers, then exit
//! with 128 + the signal number.
//!
//! Until something registers a clean-up (a container, a child, a temporary
//! folder, a forwarding), the handler exits at once with 128 + N: there is
//! nothing to clean up, and a warm compile starts no thread for it. From
//! the first registration on, the handler only writes the signal number to
//! a pipe; a thread, started then, reads it and does the work (engine calls
//! are not async-signal-safe). A session call waits for its program with
//! `wait_forwarding`, which reads the same pipe in the calling thread.
//! Handlers, unlike blocked masks, are reset by exec, so the compiler and
//! the engine client start with the default dispositions.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static PIPE_READ: AtomicI32 = AtomicI32::new(-1);

/// Who acts on a signal: the handler itself (nothing to clean up), the
/// signal thread, or a thread waiting in `wait_forwarding`.
static MODE: AtomicU8 = AtomicU8::new(DIRECT);
const DIRECT: u8 = 0;
const THREAD: u8 = 1;
const POLL: u8 = 2;

/// A clean-up action run when a signal ends the process.
type Cleanup = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Set once a signal is being handled: the process is on its way out.
static TERMINATING: AtomicBool = AtomicBool::new(false);

/// What a signal must clean up.
#[derive(Default)]
struct OnSignal {
    /// The engine client or compiler child currently running in the foreground.
    child: Option<i32>,
    /// Removes the containers of the running command (given by whoever
    /// started them: this module knows no engine).
    cleanup: Option<Cleanup>,
    /// Temporary folders to remove (build contexts).
    temp_dirs: Vec<std::path::PathBuf>,
    /// Called instead of the default clean-up (the session client forwards
    /// the signal to the remote compiler).
    forward: Option<Box<dyn Fn(Signal) + Send>>,
}

fn state() -> &'static Mutex<OnSignal> {
    static STATE: OnceLock<Mutex<OnSignal>> = OnceLock::new();
    STATE.get_or_init(|| Mutex::new(OnSignal::default()))
}

fn lock() -> std::sync::MutexGuard<'static, OnSignal> {
    state().lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn on_signal(sig: nix::libc::c_int) {
    if MODE.load(Ordering::SeqCst) == DIRECT {
        // SAFETY: _exit(2) is async-signal-safe; nothing is registered
        // that a clean-up would have to remove.
        unsafe { nix::libc::_exit(128 + sig) }
    }
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        unsafe {
            nix::libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Install the handlers (the thread that acts on them starts with the
/// first clean-up registered).
pub fn install() -> anyhow::Result<()> {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    PIPE_WRITE.store(write.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(write);
    PIPE_READ.store(read.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(read);
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in HANDLED {
        // SAFETY: the handler only calls write(2) or _exit(2).
        unsafe { signal::sigaction(sig, &action)? };
    }
    Ok(())
}

/// Start the signal thread unless it runs: called before anything is
/// registered for it to clean up, so that from then on no signal ends the
/// process without its clean-up.
fn ensure_thread() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let fd = PIPE_READ.load(Ordering::Relaxed);
        if fd < 0 {
            return;
        }
        // While a `wait_forwarding` reads the pipe, the thread must not.
        while MODE
            .compare_exchange(DIRECT, THREAD, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            std::thread::yield_now();
        }
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut buf = [0u8; 1];
                // SAFETY: the read end is this module's, never closed.
                let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
                loop {
                    use std::io::Read;
                    match (&*file).read(&mut buf) {
                        Ok(1) => {
                            if let Ok(sig) = Signal::try_from(i32::from(buf[0])) {
                                handle(sig);
                            }
                        }
                        Ok(_) => return,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            // Signals end the process at once again, as before anything
            // was registered.
            MODE.store(DIRECT, Ordering::SeqCst);
            crate::diag::debug(format!("cannot start the signal thread: {e}"));
        }
    });
}

/// Wait until `fd` is readable, handing each SIGINT, SIGTERM or SIGHUP
/// that arrives meanwhile to `forward`: in this thread when no signal
/// thread runs (none is started for it), else through the signal thread.
pub fn wait_forwarding(
    fd: BorrowedFd<'_>,
    forward: impl Fn(Signal) + Send + 'static,
) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let pipe = PIPE_READ.load(Ordering::Relaxed);
    let polled = pipe >= 0
        && MODE
            .compare_exchange(DIRECT, POLL, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
    if !polled {
        let _guard = ForwardGuard::new(forward);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        return loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => break Err(e.into()),
                Ok(_) => break Ok(()),
            }
        };
    }
    /// Back to the handler acting itself; a signal that came after the
    /// last poll (its byte still in the pipe) then ends the process as it
    /// would have a moment later, never lost.
    struct Direct(BorrowedFd<'static>);
    impl Drop for Direct {
        fn drop(&mut self) {
            MODE.store(DIRECT, Ordering::SeqCst);
            let mut fds = [PollFd::new(self.0, PollFlags::POLLIN)];
            let pending = poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0);
            let mut buf = [0u8; 16];
            let n = if pending {
                // Readable: this read does not block.
                nix::unistd::read(self.0, &mut buf).unwrap_or(0)
            } else {
                0
            };
            if let Some(sig) = buf[..n]
                .iter()
                .find_map(|b| Signal::try_from(i32::from(*b)).ok())
            {
                // SAFETY: as in the handler: nothing is registered that a
                // clean-up would have to remove.
                unsafe { nix::libc::_exit(128 + sig as i32) }
            }
        }
    }
    // SAFETY: the read end is this module's, never closed.
    let pipe = unsafe { BorrowedFd::borrow_raw(pipe) };
    let _direct = Direct(pipe);
    loop {
        let mut fds = [
            PollFd::new(fd, PollFlags::POLLIN),
            PollFd::new(pipe, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let signalled = fds[1].revents().is_some_and(|r| !r.is_empty());
        let ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        if signalled {
            let mut buf = [0u8; 16];
            // Readable: this read does not block.
            if let Ok(n) = nix::unistd::read(pipe, &mut buf) {
                for b in &buf[..n] {
                    if let Ok(sig) = Signal::try_from(i32::from(*b)) {
                        forward(sig);
                    }
                }
            }
        }
        if ready {
            return Ok(());
        }
    }
}

fn handle(sig: Signal) {
    let forward = lock().forward.take();
    if let Some(f) = forward {
        f(sig);
        lock().forward = Some(f);
        return;
    }
    TERMINATING.store(true, Ordering::SeqCst);
    let (child, cleanup) = {
        let st = lock();
        (st.child, st.cleanup.clone())
    };
    if let Some(pid) = child {
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        // The main thread reaps it; wait until it has, so that no engine
        // request from it can still be on its way.
        let deadline = Instant::now() + Duration::from_secs(3);
        while lock().child == Some(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if let Some(cleanup) = cleanup {
        cleanup();
    }
    for dir in std::mem::take(&mut lock().temp_dirs) {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(128 + sig as i32);
}

/// When a signal is being handled, wait here for the handler to exit the
/// process (so that the main thread does not exit first, leaving
/// containers behind).
pub fn hold_if_terminating() {
    while TERMINATING.load(Ordering::SeqCst) {
        std::thread::park_timeout(std::time::Duration::from_secs(1));
    }
}

/// Record the foreground child (None when it has been reaped).
pub fn set_child(pid: Option<u32>) {
    if pid.is_some() {
        ensure_thread();
    }
    lock().child = pid.map(|p| p as i32);
}

/// While the guard lives, a signal runs `cleanup` (which removes the
/// containers of the running command) before the process exits.
pub struct CleanupGuard;

impl CleanupGuard {
    pub fn new(cleanup: impl Fn() + Send + Sync + 'static) -> CleanupGuard {
        ensure_thread();
        lock().cleanup = Some(std::sync::Arc::new(cleanup));
        CleanupGuard
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        lock().cleanup = None;
    }
}

/// While the guard lives, a signal removes the folder (destructors do not
/// run when a signal ends the process).
pub struct TempDirGuard(std::path::PathBuf);

impl TempDirGuard {
    pub fn new(dir: &std::path::Path) -> TempDirGuard {
        ensure_thread();
        lock().temp_dirs.push(dir.to_path_buf());
        TempDirGuard(dir.to_path_buf())
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        lock().temp_dirs.retain(|d| d != &self.0);
    }
}

/// While the guard lives, signals are handed to `f` instead.
pub struct ForwardGuard;

impl ForwardGuard {
    pub fn new(f: impl Fn(Signal) + Send + 'static) -> ForwardGuard {
        ensure_thread();
        lock().forward = Some(Box::new(f));
        ForwardGuard
    }
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        lock().forward = None;
    }
}
