//! Which host folders a compiler command line needs in the container.
//!
//! The current directory is mounted read-write. Paths in the arguments that
//! lie outside it (`../src/foo.c`, `-I../src/include`, `-o ../obj/x.o`,
//! `-MF dep.d`, `@responsefile`) get their folders mounted at the same path:
//! read-only for inputs, read-write for outputs. For an input outside the
//! current directory the folder mounted is the one the path enters after
//! leaving the directory it shares with the current directory (for
//! `../src/a/b.c` from `/w/build`, that is `/w/src`): out-of-tree builds reach
//! sibling headers through relative includes, so the whole source tree is
//! wanted, not one folder of it. Paths in system folders (`/usr`, `/lib`...)
//! are the image's own and are never mounted.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::mounts::{self, MountSet};

/// Folders whose contents come from the image, never from the host.
const SYSTEM: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/dev",
    "/sys", "/run", "/var/run", "/boot",
];

/// Options whose next argument is an input path.
const INPUT_NEXT: &[&str] = &[
    "-I",
    "-L",
    "-B",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-include",
    "-imacros",
    "-isysroot",
    "--sysroot",
    "-T",
    "-specs",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-Xlinker",
    "-Xassembler",
    "-Xpreprocessor",
    "-imultilib",
    "-cxx-isystem",
];

/// Options whose input path may be attached (`-I../inc`).
const INPUT_ATTACHED: &[&str] = &[
    "-isystem",
    "-iquote",
    "-idirafter",
    "-isysroot",
    "-include",
    "-imacros",
    "-I",
    "-L",
    "-B",
    "-T",
];

/// Options whose next argument is an output path.
const OUTPUT_NEXT: &[&str] = &["-o", "-MF", "-aux-info", "--output"];

/// Options whose next argument is not a path at all.
const NOT_PATH_NEXT: &[&str] = &[
    "-D", "-U", "-MT", "-MQ", "-x", "-l", "-u", "-e", "-z", "--param", "-G", "-A",
];

/// The paths a command line reads and writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Paths {
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<PathBuf>,
}

fn text(arg: &OsStr) -> Option<&str> {
    arg.to_str()
}

/// Collect input and output paths from compiler arguments.
pub fn scan(args: &[OsString], cwd: &Path) -> Paths {
    let mut p = Paths::default();
    scan_into(args, cwd, &mut p, 0);
    p
}

fn scan_into(args: &[OsString], cwd: &Path, p: &mut Paths, depth: usize) {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(a) = text(arg) else {
            // Not UTF-8: a file name only, never an option we know.
            if arg.as_bytes().first() != Some(&b'-') {
                p.inputs.push(mounts::normalize(Path::new(arg), cwd));
            }
            continue;
        };
        if a == "-" || a.is_empty() {
            continue;
        }
        if let Some(file) = a.strip_prefix('@') {
            let path = mounts::normalize(Path::new(file), cwd);
            if depth < 8 {
                if let Ok(body) = std::fs::read_to_string(&path) {
                    if let Ok(words) = shell_words::split(&body) {
                        let words: Vec<OsString> = words.into_iter().map(OsString::from).collect();
                        scan_into(&words, cwd, p, depth + 1);
                    }
                }
            }
            p.inputs.push(path);
            continue;
        }
        if !a.starts_with('-') {
            p.inputs.push(mounts::normalize(Path::new(a), cwd));
            continue;
        }
        if OUTPUT_NEXT.contains(&a) {
            if let Some(v) = args.get(i) {
                p.outputs.push(mounts::normalize(Path::new(v), cwd));
                i += 1;
            }
            continue;
        }
        if INPUT_NEXT.contains(&a) {
            if let Some(v) = args.get(i) {
                if v.as_bytes().first() != Some(&b'-') {
                    p.inputs.push(mounts::normalize(Path::new(v), cwd));
                }
                i += 1;
            }
            continue;
        }
        if NOT_PATH_NEXT.contains(&a) {
            i += 1;
            continue;
        }
        if let Some(rest) = a.strip_prefix("-o").filter(|r| !r.is_empty()) {
            p.outputs.push(mounts::normalize(Path::new(rest), cwd));
            continue;
        }
        if let Some(rest) = a.strip_prefix("-MF").filter(|r| !r.is_empty()) {
            p.outputs.push(mounts::normalize(Path::new(rest), cwd));
            continue;
        }
        if a.starts_with("-D")
            || a.starts_with("-U")
            || a.starts_with("-MT")
            || a.starts_with("-MQ")
        {
            continue;
        }
        if let Some(list) = a
            .strip_prefix("-Wl,")
            .or_else(|| a.strip_prefix("-Wa,"))
            .or_else(|| a.strip_prefix("-Wp,"))
        {
            for part in list.split(',') {
                if let Some(map) = part.strip_prefix("-Map=") {
                    p.outputs.push(mounts::normalize(Path::new(map), cwd));
                } else if let Some((_, v)) = part.split_once('=') {
                    push_if_pathlike(v, cwd, &mut p.inputs);
                } else if !part.starts_with('-') {
                    push_if_pathlike(part, cwd, &mut p.inputs);
                }
            }
            continue;
        }
        if let Some(pre) = INPUT_ATTACHED.iter().find(|pre| a.starts_with(**pre)) {
            let v = &a[pre.len()..];
            let v = v.strip_prefix('=').unwrap_or(v);
            if !v.is_empty() {
                p.inputs.push(mounts::normalize(Path::new(v), cwd));
            }
            continue;
        }
        // Generic `-option=VALUE` with a path-like value (`--sysroot=`,
        // `-specs=`, `-fplugin=`...).
        if let Some((opt, v)) = a.split_once('=') {
            if !opt.ends_with("-prefix-map") {
                push_if_pathlike(v, cwd, &mut p.inputs);
            }
        }
    }
}

fn push_if_pathlike(v: &str, cwd: &Path, out: &mut Vec<PathBuf>) {
    if v.contains('/') {
        out.push(mounts::normalize(Path::new(v), cwd));
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

/// Add to `set` the mounts that the paths in `args` need.
pub fn add_mounts(set: &mut MountSet, args: &[OsString], cwd: &Path) {
    let paths = scan(args, cwd);
    add_path_mounts(set, &paths, cwd);
}

/// Add to `set` the mounts that `paths` need.
pub fn add_path_mounts(set: &mut MountSet, paths: &Paths, cwd: &Path) {
    let home = crate::user::home();
    // Outputs first: a folder nobody mounted yet becomes writable. One that
    // is already mounted keeps its access (an explicit read-only source
    // stays read-only, as `cc -s` promises).
    for out in &paths.outputs {
        if is_system(out) || set.covering(out).is_some() {
            continue;
        }
        if let Some(dir) = out.parent() {
            if dir.is_dir() && mounts::refusal(dir).is_none() && !is_system(dir) {
                set.add(dir.to_path_buf(), true);
            }
        }
    }
    for input in &paths.inputs {
        if is_system(input) || set.covers(input, false) {
            continue;
        }
        if let Some(root) = input_root(input, cwd, home.as_deref()) {
            set.add(root, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
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
        add_mounts(
            &mut set,
            &os(&[
                "-c",
                "../src/lib/a.c",
                "-o",
                "../obj/a.o",
                "-I/usr/include/x",
            ]),
            &cwd,
        );
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
        add_mounts(
            &mut set,
            &os(&["/nonexistent/qcc/a.c", "-I/usr/include", "/etc/passwd"]),
            cwd,
        );
        assert!(set.is_empty());
    }
}
