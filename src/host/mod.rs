//! Facts about the host: the calling user, binfmt_misc handlers, ELF
//! executables, how a process ended.

pub mod binfmt;
pub mod elf;
pub mod user;

/// The exit code a finished child reports, 128+N for a signal death.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    }
}
