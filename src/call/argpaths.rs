//! Which host folders a compiler command line needs in the container.
//!
//! The current directory is mounted read-write. The paths the command line
//! reads and writes (`CmdLine::read_paths` and `written_paths`, see
//! `cmdline`) that lie outside it (`../src/foo.c`, `-I../src/include`,
//! `-o ../obj/x.o`, `-MF dep.d`, `@responsefile`) get their folders mounted
//! at the same path: read-only for inputs, read-write for outputs. For an input outside the
//! current directory the folder mounted is the one the path enters after
//! leaving the directory it shares with the current directory (for
//! `../src/a/b.c` from `/w/build`, that is `/w/src`): out-of-tree builds reach
//! sibling headers through relative includes, so the whole source tree is
//! wanted, not one folder of it. Paths in system folders (`/usr`, `/lib`...)
//! are the image's own and are never mounted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::call::cmdline::{self, CmdLine};
use crate::call::mounts::{self, MountSet};

/// Folders whose contents come from the image, never from the host.
const SYSTEM: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/dev",
    "/sys", "/run", "/var/run", "/boot",
];

/// The largest response file read: only a regular file of at most this
/// size is read (`@/dev/zero` never ends, a FIFO blocks or is consumed).
const RESPONSE_CAP: u64 = 4 << 20;

/// The paths a command line reads and writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Paths {
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<PathBuf>,
}

/// The command line `args` run in `cwd`, read once (see `cmdline`). A
/// response file is read only when it is a regular file of at most 4 MiB;
/// one that is not read is passed on as it is (gcc then reports it, or
/// takes `@x` as a file name, as it does).
pub fn command_line(args: &[OsString], cwd: &Path) -> CmdLine {
    cmdline::parse(args, cwd, &mut |path| {
        crate::state::safefs::read_config(path, RESPONSE_CAP)
            .map(String::into_bytes)
            .map_err(|e| format!("{e:#}"))
    })
}

/// The paths `cmd` reads and writes on the host. A response file that was
/// not read is named under `QEMU_CROSS_CC_DEBUG`: the paths in it are not
/// mounted.
pub fn paths(cmd: &CmdLine) -> Paths {
    for r in &cmd.response_files {
        if let Err(why) = &r.words {
            crate::diag::debug(format!(
                "response file @{} not scanned, so the paths in it are not mounted: {why}",
                r.file.given.display()
            ));
        }
    }
    Paths {
        inputs: cmd.read_paths(),
        outputs: cmd.written_paths(),
    }
}

fn is_system(path: &Path) -> bool {
    SYSTEM.iter().any(|s| path.starts_with(s))
}

/// A folder too wide to mount on a guess: the root's children, system
/// folders, home itself or anything above it.
pub fn is_broad(path: &Path, home: Option<&Path>) -> bool {
    path.components().count() <= 2
        || is_system(path)
        || home.is_some_and(|h| h.starts_with(path))
        || mounts::refusal(path).is_some()
}

/// The folder to mount read-only so that `input` (absolute, outside the
/// mounts) is visible.
fn input_root(input: &Path, cwd: &Path, home: Option<&Path>) -> Option<PathBuf> {
    let meta = std::fs::metadata(input).ok()?;
    let dir = if meta.is_dir() {
        input.to_path_buf()
    } else {
        input.parent()?.to_path_buf()
    };
    // The shared ancestor with cwd, then one step towards the input.
    let mut common = PathBuf::from("/");
    let mut rest = dir.components().skip(1);
    let mut cwd_parts = cwd.components().skip(1);
    let mut next = None;
    for c in rest.by_ref() {
        if cwd_parts.next() == Some(c) {
            common.push(c);
        } else {
            next = Some(c);
            break;
        }
    }
    if let Some(n) = next {
        let candidate = common.join(n);
        if !is_broad(&candidate, home) {
            return Some(candidate);
        }
    }
    if !is_broad(&dir, home) {
        return Some(dir);
    }
    // Only the file itself is safe to mount.
    (!meta.is_dir() && !is_system(input)).then(|| input.to_path_buf())
}

/// Add to `set` the mounts that the paths `cmd` reads and writes need.
pub fn add_mounts(set: &mut MountSet, cmd: &CmdLine) -> Result<()> {
    add_path_mounts(set, &paths(cmd), &cmd.cwd)
}

/// Outputs that are the same file inside the container as outside.
fn passes_through(out: &Path) -> bool {
    ["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"]
        .iter()
        .any(|p| out == Path::new(p))
        || out.starts_with("/dev/fd")
        || out.starts_with("/proc/self/fd")
}

/// Where a path really is: every symlink resolved (for a file that does
/// not exist yet, its folder resolved). None when its folder is missing.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let real_dir = std::fs::canonicalize(path.parent()?).ok()?;
    Some(real_dir.join(path.file_name()?))
}

/// Why the folder of an output cannot be mounted, if it cannot.
fn unwritable_reason(dir: &Path) -> Option<String> {
    if is_system(dir) {
        return Some(format!(
            "{} is a system folder, of which the container has its own copy (the file would be lost)",
            dir.display()
        ));
    }
    mounts::refusal(dir)
}

/// Make `real` (a resolved folder or file) visible in the container under
/// the name `given`: when `given` lies below a mount, the container follows
/// the host's symlinks itself and needs `real` at its own path; otherwise
/// `real` is mounted at `given` (an alias).
fn mount_as_given(set: &mut MountSet, given: &Path, real: &Path, writable: bool) {
    if set.covering(given).is_some() {
        if set.covering(real).is_none() {
            set.add(real.to_path_buf(), writable);
        }
    } else if !is_system(given) && mounts::refusal(given).is_none() {
        set.add_alias(given.to_path_buf(), real.to_path_buf(), writable);
    }
}

/// Add to `set` the mounts that `paths` need. Every path is resolved first
/// (symlinks followed), and the refusals and the system-folder rule apply to
/// where it really is: a symlink can never bring a host system folder or
/// the engine socket into the container. An output that cannot be mounted
/// is an error, never a file silently written inside the container.
pub fn add_path_mounts(set: &mut MountSet, paths: &Paths, cwd: &Path) -> Result<()> {
    let home = crate::host::user::home();
    // Outputs first: a folder nobody mounted yet becomes writable. One that
    // is already mounted keeps its access (an explicit read-only source
    // stays read-only, as `cc -s` promises).
    for out in &paths.outputs {
        if passes_through(out) {
            continue;
        }
        let Some(dir) = out.parent() else { continue };
        if let Some(why) = unwritable_reason(dir) {
            bail!(
                "cannot write {}: {why}; write it below a project folder",
                out.display()
            );
        }
        let Ok(real_dir) = std::fs::canonicalize(dir) else {
            // A missing folder: the compiler reports it, as on the host.
            continue;
        };
        if let Some(why) = unwritable_reason(&real_dir) {
            bail!(
                "cannot write {}: {} leads to {}: {why}; write it below a project folder",
                out.display(),
                dir.display(),
                real_dir.display()
            );
        }
        if real_dir == dir {
            if set.covering(out).is_none() {
                set.add(real_dir, true);
            }
        } else {
            mount_as_given(set, dir, &real_dir, true);
        }
    }
    for input in &paths.inputs {
        if is_system(input)
            || (set.covers(input, false) && resolve(input).as_deref() == Some(input))
        {
            continue;
        }
        let Some(real) = resolve(input) else { continue };
        if is_system(&real) || mounts::refusal(&real).is_some() {
            crate::diag::debug(format!(
                "not mounting {}: it leads to {}",
                input.display(),
                real.display()
            ));
            continue;
        }
        let Some(root) = input_root(&real, cwd, home.as_deref()) else {
            continue;
        };
        if real == *input {
            set.add(root, false);
            continue;
        }
        // A symlinked name: mount the folder under the name it was given
        // when the name ends like the real path, else just its own folder.
        let tail = real.strip_prefix(&root).unwrap_or(Path::new(""));
        let given_root = if input.ends_with(tail) {
            input
                .ancestors()
                .nth(tail.components().count())
                .map(Path::to_path_buf)
        } else {
            None
        };
        match given_root {
            Some(g) if !is_broad(&g, home.as_deref()) => mount_as_given(set, &g, &root, false),
            _ => mount_as_given(set, input, &real, false),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn scan(args: &[OsString], cwd: &Path) -> Paths {
        paths(&command_line(args, cwd))
    }

    #[test]
    fn scans_inputs_and_outputs() {
        let cwd = Path::new("/w/build");
        let p = scan(
            &os(&[
                "-c",
                "../src/a.c",
                "-I../src/include",
                "-I",
                "/x/inc",
                "-o",
                "../obj/a.o",
                "-MF",
                "dep.d",
                "-DX=/not/a/path",
                "-D",
                "Y=/nope",
                "-Wl,--version-script=../v.map",
                "-isystem",
                "/sys/inc",
                "--sysroot=/sr",
                "-MT",
                "t/t.o",
                "-",
            ]),
            cwd,
        );
        let inputs: Vec<&str> = p.inputs.iter().map(|x| x.to_str().unwrap()).collect();
        assert_eq!(
            inputs,
            vec![
                "/w/src/a.c",
                "/w/src/include",
                "/x/inc",
                "/w/v.map",
                "/sys/inc",
                "/sr"
            ]
        );
        let outputs: Vec<&str> = p.outputs.iter().map(|x| x.to_str().unwrap()).collect();
        assert_eq!(outputs, vec!["/w/obj/a.o", "/w/build/dep.d"]);
    }

    /// What gcc writes is mounted writable, never read-only; what it takes
    /// as a name below the sysroot or a value is not a host path.
    #[test]
    fn outputs_passed_on_and_values_that_are_no_paths() {
        let cwd = Path::new("/w/build");
        let p = scan(
            &os(&[
                "-c",
                "a.c",
                "-Wp,-MMD,../dep/a.d",
                "-Xlinker",
                "-Map",
                "-Xlinker",
                "../map/x.map",
                "-Wa,-adhln=../lst/a.lst",
                "-Wl,--out-implib,../lib/x.dll.a",
                "-I=/usr/include/x",
                "-iquote=/inc",
                "-iwithprefix",
                "/pre/inc",
                "-imultilib",
                "m/32",
                "-dumpdir",
                "../dump/",
                "-fprofile-generate=../prof",
                "-o",
                "-",
            ]),
            cwd,
        );
        let inputs: Vec<&str> = p.inputs.iter().map(|x| x.to_str().unwrap()).collect();
        assert_eq!(inputs, vec!["/w/build/a.c"]);
        let outputs: Vec<&str> = p.outputs.iter().map(|x| x.to_str().unwrap()).collect();
        assert_eq!(
            outputs,
            vec![
                "/w/dep/a.d",
                "/w/map/x.map",
                "/w/lst/a.lst",
                "/w/lib/x.dll.a"
            ]
        );
    }

    #[test]
    fn response_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let rsp = d.path().join("args.rsp");
        std::fs::write(&rsp, "-I '/q/in c' -o /q/out.o\n").unwrap();
        let p = scan(&os(&[&format!("@{}", rsp.display())]), Path::new("/w"));
        assert!(p.inputs.contains(&PathBuf::from("/q/in c")));
        assert!(p.inputs.contains(&rsp));
        assert_eq!(p.outputs, vec![PathBuf::from("/q/out.o")]);
    }

    /// `scan` of `args`, failing the test when it takes more than 10 s.
    fn scan_promptly(args: Vec<OsString>) -> Paths {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(scan(&args, Path::new("/w"))));
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("scan hung on a response file")
    }

    #[test]
    fn response_files_that_never_end_are_not_read() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("args.rsp");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let zero = d.path().join("zero.rsp");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for rsp in [fifo, zero, PathBuf::from("/dev/zero")] {
            let p = scan_promptly(os(&[&format!("@{}", rsp.display()), "-o", "/q/o"]));
            assert_eq!(p.inputs, vec![rsp]);
            assert_eq!(p.outputs, vec![PathBuf::from("/q/o")]);
        }
    }

    #[test]
    fn oversized_response_files_are_not_read() {
        let d = tempfile::tempdir().unwrap();
        let rsp = d.path().join("big.rsp");
        let mut body = "-I/q/in ".repeat((1 << 19) + 1);
        body.truncate(RESPONSE_CAP as usize + 1);
        std::fs::write(&rsp, body).unwrap();
        let p = scan_promptly(os(&[&format!("@{}", rsp.display())]));
        assert_eq!(p.inputs, vec![rsp]);
    }

    #[test]
    fn out_of_tree_inputs_mount_the_source_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for sub in ["build", "src/lib", "obj"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("src/lib/a.c"), "").unwrap();
        let cwd = root.join("build");
        let mut set = MountSet::new();
        set.add(cwd.clone(), true);
        let cmd = command_line(
            &os(&[
                "-c",
                "../src/lib/a.c",
                "-o",
                "../obj/a.o",
                "-I/usr/include/x",
            ]),
            &cwd,
        );
        add_mounts(&mut set, &cmd).unwrap();
        let got: Vec<(PathBuf, bool)> = set.iter().map(|m| (m.path.clone(), m.writable)).collect();
        assert_eq!(
            got,
            vec![
                (cwd.clone(), true),
                (root.join("obj"), true),
                (root.join("src"), false)
            ]
        );
    }

    #[test]
    fn missing_inputs_and_system_paths_are_not_mounted() {
        let cwd = Path::new("/tmp");
        let mut set = MountSet::new();
        let cmd = command_line(
            &os(&["/nonexistent/qcc/a.c", "-I/usr/include", "/etc/passwd"]),
            cwd,
        );
        add_mounts(&mut set, &cmd).unwrap();
        assert!(set.is_empty());
    }
}
