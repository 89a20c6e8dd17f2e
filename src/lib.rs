//! qemu-cross-cc: run cross compilers inside container images as if they
//! were installed on the host; a drop-in for QEMU's tests/docker/docker.py.

// Layers, bottom up; a module uses only those of its layer and below
// (see ARCHITECTURE.md):
//  - foundations: what the rest is written with;
mod diag;
mod embedded;
mod error;
mod host;
mod signals;
mod state;
//  - the container engine and its images;
mod context;
mod engine;
mod image;
//  - one tool call, resolved (arguments, mounts, environment, depfiles),
//    and the warm sessions that run calls;
mod call;
mod session;
//  - targets: plugins, project files, their images, sysroots;
mod target;
//  - scale-out, the compile path (which may send a compile to distcc),
//    and the runner (which runs target programs the way compiles run);
mod compile;
mod distcc;
mod run;
//  - the command line.
mod cli;
mod commands;

/// Only stdin, stdout and stderr reach the programs this one starts. A
/// compiler's caller may hold other descriptors open without close-on-exec
/// (configure's `config.log` on 5 and its messages on 6, make's jobserver
/// pipe), and podman hands what it inherits to conmon, which outlives the
/// call by minutes when it monitors a session: `configure | tee log` would
/// never see the end of its output.
fn close_inherited_descriptors_on_exec() {
    use nix::libc;
    // One system call on Linux 5.11 and later; older kernels (ENOSYS,
    // EINVAL) get the walk of /proc/self/fd.
    // SAFETY: sets the close-on-exec flag of descriptors 3 and up, whatever
    // they are; it touches no memory of this process.
    let flagged = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if flagged == 0 {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: setting a flag on a descriptor number; a closed one fails
        // harmlessly.
        unsafe {
            let flags = nix::libc::fcntl(fd, nix::libc::F_GETFD);
            if flags >= 0 {
                nix::libc::fcntl(fd, nix::libc::F_SETFD, flags | nix::libc::FD_CLOEXEC);
            }
        }
    }
}

/// The program: `main.rs` only calls this.
pub fn main() {
    diag::start_timings();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    close_inherited_descriptors_on_exec();
    if args.get(1).is_some_and(|a| a == session::AGENT_COMMAND) {
        // The agent starts its own threads, after it forked as the
        // container's PID 1 (a fork in a threaded process is unsafe). It
        // keeps SIGPIPE ignored: a caller's closed stderr must not end it.
        let code = session::agent_main(&args[2..]).unwrap_or_else(|e| {
            eprintln!("qemu-cross-cc: error: {e:#}");
            1
        });
        std::process::exit(code);
    }
    // `qemu-cross-cc targets | head` ends quietly, like any filter, instead
    // of panicking on the closed pipe.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
    if let Err(e) = signals::install() {
        eprintln!("qemu-cross-cc: error: cannot install signal handlers: {e:#}");
        std::process::exit(1);
    }
    diag::timing("ready");
    let code = cli::main(args);
    diag::timing("end");
    signals::hold_if_terminating();
    std::process::exit(code);
}
