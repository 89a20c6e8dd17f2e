//! SIGINT, SIGTERM and SIGHUP: remove this process's containers, then exit
//! with 128 + the signal number.
//!
//! The handler only writes the signal number to a pipe; a thread reads it and
//! does the work (engine calls are not async-signal-safe). Handlers, unlike
//! blocked masks, are reset by exec, so the compiler and the engine client
//! start with the default dispositions.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

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

/// Install the handlers and start the thread that acts on them.
pub fn install() -> anyhow::Result<()> {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    PIPE_WRITE.store(write.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(write);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut buf = [0u8; 1];
            let file = std::fs::File::from(read);
            loop {
                use std::io::Read;
                match (&file).read(&mut buf) {
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
        })?;
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in HANDLED {
        // SAFETY: the handler only calls write(2).
        unsafe { signal::sigaction(sig, &action)? };
    }
    Ok(())
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
    lock().child = pid.map(|p| p as i32);
}

/// While the guard lives, a signal runs `cleanup` (which removes the
/// containers of the running command) before the process exits.
pub struct CleanupGuard;

impl CleanupGuard {
    pub fn new(cleanup: impl Fn() + Send + Sync + 'static) -> CleanupGuard {
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
        lock().forward = Some(Box::new(f));
        ForwardGuard
    }
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        lock().forward = None;
    }
}
