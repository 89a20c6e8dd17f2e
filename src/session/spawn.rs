//! Starting a call's program in the agent with posix_spawn(3).
//!
//! glibc's posix_spawn starts the child with `clone(CLONE_VM|CLONE_VFORK)`:
//! no copy of the agent's page tables and no copy-on-write faults in either
//! process, where a fork costs both on every call. It cannot set a umask, so
//! it serves the calls whose umask is the agent's own (nearly all of them:
//! the session was started with its caller's); the others fork (see
//! `agent::command`).
//!
//! The child starts as `std::process::Command` would start it: its own
//! process group, an empty signal mask, SIGPIPE at its default action (the
//! agent ignores it), the three descriptors on 0, 1 and 2, the working
//! directory, and the agent's environment with the call's variables over it.
//! One difference: glibc's posix_spawn leaves its two internal signals (32
//! and 33) ignored in the child; every glibc program installs its own
//! handlers for them as it starts, so only a shell's `trap -p` could tell.
//! The program is looked up on the call's `PATH` (or the agent's) before the
//! spawn, as `execvp` would look it up.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::libc;

/// What the spawned program gets.
pub(super) struct Spawn<'a> {
    pub program: &'a OsStr,
    pub args: Vec<&'a OsStr>,
    pub cwd: &'a OsStr,
    /// Set over the agent's own environment.
    pub env: Vec<(OsString, OsString)>,
    /// Its stdin, stdout and stderr.
    pub fds: [RawFd; 3],
}

/// Where `program` is, as `execvp` would find it with `path` (the call's
/// `PATH`): None when it cannot be told before the working directory
/// changes (a relative folder on the `PATH`), an error when no folder has
/// it (`ENOENT`) or none may run it (`EACCES`).
pub(super) fn find(program: &OsStr, path: Option<&OsStr>) -> Option<io::Result<PathBuf>> {
    if program.is_empty() {
        return Some(Err(io::Error::from_raw_os_error(libc::ENOENT)));
    }
    if program.as_bytes().contains(&b'/') {
        // Resolved by the kernel after the change of folder.
        return Some(Ok(PathBuf::from(program)));
    }
    // glibc's execvp searches "/bin:/usr/bin" without a PATH.
    let path = path.unwrap_or(OsStr::new("/bin:/usr/bin"));
    let dirs: Vec<PathBuf> = std::env::split_paths(path).collect();
    if dirs.iter().any(|d| !d.is_absolute()) {
        return None;
    }
    let mut denied = false;
    for dir in dirs {
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() => {
                if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
                    return Some(Ok(candidate));
                }
                denied = true;
            }
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    Some(Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    })))
}

/// The environment the program gets: the agent's, with `over` set over it
/// (a name set twice there has its last value, as with `Command::env`).
fn environment(over: &[(OsString, OsString)]) -> Vec<CString> {
    let mut env: std::collections::BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    env.extend(over.iter().cloned());
    env.into_iter()
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).ok()
        })
        .collect()
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The attributes and file actions of one spawn, destroyed when dropped.
struct Setup {
    attr: libc::posix_spawnattr_t,
    actions: libc::posix_spawn_file_actions_t,
}

impl Setup {
    fn new(s: &Spawn, cwd: &CString) -> io::Result<Setup> {
        // SAFETY: plain C structs, zeroed and then initialised by their init
        // functions before any other use. Neither points into itself, so
        // they may move once initialised. Until both are, nothing is left to
        // destroy but the attribute, destroyed by hand; from then on Drop
        // destroys both.
        let mut setup = unsafe {
            let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
            check(libc::posix_spawnattr_init(&mut attr))?;
            let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
            if let Err(e) = check(libc::posix_spawn_file_actions_init(&mut actions)) {
                libc::posix_spawnattr_destroy(&mut attr);
                return Err(e);
            }
            Setup { attr, actions }
        };
        // SAFETY: the attribute and actions are initialised; the sigsets are
        // initialised by sigemptyset before they are read; the descriptors
        // and the folder's name stay alive until the spawn.
        unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let mut default: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut default);
            libc::sigaddset(&mut default, libc::SIGPIPE);
            let flags = libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(
                &mut setup.attr,
                flags as libc::c_short,
            ))?;
            check(libc::posix_spawnattr_setpgroup(&mut setup.attr, 0))?;
            check(libc::posix_spawnattr_setsigmask(&mut setup.attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(
                &mut setup.attr,
                &default,
            ))?;
            for (target, fd) in s.fds.iter().enumerate() {
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut setup.actions,
                    *fd,
                    target as libc::c_int,
                ))?;
            }
            check(libc::posix_spawn_file_actions_addchdir_np(
                &mut setup.actions,
                cwd.as_ptr(),
            ))?;
        }
        Ok(setup)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: both were initialised (a Setup exists only then).
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

/// Start the program found at `path` (see `find`); its pid.
pub(super) fn spawn(s: &Spawn, path: &Path) -> io::Result<nix::unistd::Pid> {
    let path = cstring(path.as_os_str())?;
    let cwd = cstring(s.cwd)?;
    let mut argv: Vec<CString> = Vec::with_capacity(s.args.len() + 1);
    argv.push(cstring(s.program)?);
    for a in &s.args {
        argv.push(cstring(a)?);
    }
    let env = environment(&s.env);
    let mut argv_ptrs: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr() as *mut libc::c_char)
        .collect();
    argv_ptrs.push(std::ptr::null_mut());
    let mut env_ptrs: Vec<*mut libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr() as *mut libc::c_char)
        .collect();
    env_ptrs.push(std::ptr::null_mut());
    let setup = Setup::new(s, &cwd)?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is to a NUL-terminated string or a
    // NULL-terminated array of them that outlives the call; the attribute
    // and the file actions are initialised. posix_spawn may be called from
    // any thread of a threaded process.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &setup.actions,
            &setup.attr,
            argv_ptrs.as_ptr(),
            env_ptrs.as_ptr(),
        )
    })?;
    Ok(nix::unistd::Pid::from_raw(pid))
}

/// Wait for a spawned program to end.
pub(super) fn wait(pid: nix::unistd::Pid) -> io::Result<ExitStatus> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waits for this process's own child, writing one int.
        let rc = unsafe { libc::waitpid(pid.as_raw(), &mut status, 0) };
        if rc == pid.as_raw() {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn run_sh(script: &str, env: Vec<(OsString, OsString)>) -> (i32, String) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let out_file = std::fs::File::create(&out).unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let s = Spawn {
            program: OsStr::new("sh"),
            args: vec![OsStr::new("-c"), OsStr::new(script)],
            cwd: dir.path().as_os_str(),
            env,
            fds: [null.as_raw_fd(), out_file.as_raw_fd(), out_file.as_raw_fd()],
        };
        let path = find(s.program, Some(OsStr::new("/usr/bin:/bin")))
            .unwrap()
            .unwrap();
        let pid = spawn(&s, &path).unwrap();
        let code = crate::host::exit_code(wait(pid).unwrap());
        (code, std::fs::read_to_string(out).unwrap())
    }

    #[test]
    fn the_child_starts_as_command_would_start_it() {
        let (code, out) = run_sh(
            "pwd; echo \"$QCC_X\"; ps -o pgid= -p $$; echo $$; \
             grep -E '^(SigIgn|SigBlk)' /proc/self/status; exit 7",
            vec![("QCC_X".into(), "a b".into())],
        );
        assert_eq!(code, 7, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].contains(".tmp"), "{out}");
        assert_eq!(lines[1], "a b");
        assert_eq!(lines[2].trim(), lines[3].trim(), "own process group: {out}");
        // SIGPIPE at its default (the test harness ignores it, as the agent
        // does), nothing blocked.
        let ignored = lines[5].strip_prefix("SigIgn:\t").unwrap();
        let ignored = u64::from_str_radix(ignored, 16).unwrap();
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
        assert_eq!(lines[4], "SigBlk:\t0000000000000000", "{out}");
    }

    #[test]
    fn a_variable_set_twice_has_its_last_value() {
        let (_, out) = run_sh(
            "env | grep -c '^QCC_TWICE='; echo $QCC_TWICE",
            vec![
                ("QCC_TWICE".into(), "first".into()),
                ("QCC_TWICE".into(), "last".into()),
            ],
        );
        assert_eq!(out, "1\nlast\n");
    }

    #[test]
    fn a_signal_death_is_reported() {
        let (code, _) = run_sh("kill -TERM $$", vec![]);
        assert_eq!(code, 128 + libc::SIGTERM);
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("plain"), "").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let path = std::env::join_paths([d, Path::new("/bin")]).unwrap();
        let found = |p: &str| find(OsStr::new(p), Some(&path)).unwrap();
        assert_eq!(found("sh").unwrap(), Path::new("/bin/sh"));
        assert_eq!(
            found("no-such-program").unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        assert_eq!(found("sub").unwrap_err().raw_os_error(), Some(libc::EACCES));
        assert_eq!(found("./x").unwrap(), Path::new("./x"));
        assert!(find(OsStr::new("sh"), Some(OsStr::new("rel:/bin"))).is_none());
    }
}
