//! binfmt_misc checks and shared-library discovery for `--include-executable`
//! and `update --executable`: the qemu-user binary is copied into images so
//! foreign binaries run inside them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regex::Regex;

/// The outcome of looking up the binfmt_misc entry of an executable.
#[derive(Debug, PartialEq, Eq)]
pub struct Binfmt {
    /// Where the kernel expects the interpreter; None for persistent (F)
    /// entries, which keep the host binary open and need no copy.
    pub interpreter: Option<String>,
    pub enabled: bool,
}

/// The binfmt_misc folder (`QEMU_CROSS_CC_BINFMT_DIR` replaces it).
fn binfmt_dir() -> PathBuf {
    std::env::var_os("QEMU_CROSS_CC_BINFMT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/sys/fs/binfmt_misc"))
}

/// An enabled binfmt_misc handler.
#[derive(Debug, PartialEq, Eq)]
pub struct Handler {
    /// F (fix-binary): the kernel opened the interpreter when it was
    /// registered, so it works in any container.
    pub fixed: bool,
    /// Where the kernel looks for the interpreter otherwise.
    pub interpreter: Option<PathBuf>,
}

/// The enabled handler `qemu-<qemu>` (the name Debian, Fedora, systemd and
/// QEMU's own script register), if binfmt_misc is enabled at all.
pub fn handler(qemu: &str) -> Option<Handler> {
    let dir = binfmt_dir();
    if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
        if status.trim() != "enabled" {
            return None;
        }
    }
    let text = std::fs::read_to_string(dir.join(format!("qemu-{qemu}"))).ok()?;
    parse_handler(&text)
}

pub fn parse_handler(text: &str) -> Option<Handler> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "enabled" {
        return None;
    }
    let mut h = Handler {
        fixed: false,
        interpreter: None,
    };
    for line in lines {
        if let Some(flags) = line.strip_prefix("flags:") {
            h.fixed = flags.contains('F');
        } else if let Some(i) = line.strip_prefix("interpreter ") {
            h.interpreter = Some(PathBuf::from(i.trim()));
        }
    }
    Some(h)
}

/// docker.py's check: the entry named after the executable's file name must
/// exist; a persistent entry needs no interpreter copied. Prints the same
/// messages.
pub fn check(executable: &str) -> Binfmt {
    let binary = Path::new(executable)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let entry = binfmt_dir().join(&binary);
    let Ok(text) = std::fs::read_to_string(&entry) else {
        println!("No binfmt_misc entry for {binary}");
        return Binfmt {
            interpreter: None,
            enabled: false,
        };
    };
    parse_entry(&text, executable, &binary)
}

fn parse_entry(text: &str, executable: &str, binary: &str) -> Binfmt {
    let flags = Regex::new(r"flags:.*F.*\n").expect("valid regex");
    if flags.is_match(text) {
        println!("binfmt_misc for {binary} uses persistent(F) mapping to host binary");
        return Binfmt {
            interpreter: None,
            enabled: true,
        };
    }
    let interp = Regex::new(r"interpreter ([^ \t\n]+)\n").expect("valid regex");
    let interpreter = interp.captures(text).map(|c| c[1].to_string());
    if let Some(i) = &interpreter {
        if i != executable {
            println!("binfmt_misc for {binary} does not point to {executable}, using {i}");
        }
    }
    Binfmt {
        interpreter,
        enabled: true,
    }
}

/// The shared libraries `ldd` reports for an executable (absolute paths
/// only; the vDSO has no file).
pub fn so_libs(executable: &str) -> Vec<String> {
    let re = Regex::new(r"(?:[^ \t\n]+ => )?([^ \t\n]*) \(:?0x[0-9a-f]+\)").expect("valid regex");
    let out = std::process::Command::new("ldd").arg(executable).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
            .filter(|l| l.starts_with('/'))
            .collect(),
        _ => {
            println!("{executable} had no associated libraries (static build?)");
            Vec::new()
        }
    }
}

/// Copy `src` to `root/sub_path/name` (file name of `src` by default),
/// creating folders; a missing source is reported and skipped, as docker.py
/// does.
pub fn copy_with_mkdir(src: &Path, root: &Path, sub_path: &str, name: Option<&str>) -> Result<()> {
    let dest_dir = root.join(sub_path.trim_start_matches('/'));
    std::fs::create_dir_all(&dest_dir)
        .with_context(|| format!("cannot create {}", dest_dir.display()))?;
    let name = match name {
        Some(n) => n.to_string(),
        None => src
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    };
    let dest = dest_dir.join(name);
    if !src.exists() {
        println!("Couldn't copy {} to {}", src.display(), dest.display());
        return Ok(());
    }
    std::fs::copy(src, &dest)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dest.display()))?;
    Ok(())
}

/// Copy the executable (when `bin_dest` is set) and its libraries into the
/// build context `dest_dir`, at the paths they have on the host.
pub fn copy_binary_with_libs(src: &str, bin_dest: Option<&str>, dest_dir: &Path) -> Result<()> {
    match bin_dest {
        Some(dest) => {
            let parent = Path::new(dest)
                .parent()
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            copy_with_mkdir(Path::new(src), dest_dir, &parent, None)?;
        }
        None => println!("only copying support libraries for {src}"),
    }
    copy_libs(src, dest_dir)
}

/// Copy the shared libraries of `exe` into `dest_dir` at their host paths
/// (symbolic links resolved, names kept).
pub fn copy_libs(exe: &str, dest_dir: &Path) -> Result<()> {
    for lib in so_libs(exe) {
        let lib = Path::new(&lib);
        let dir = lib
            .parent()
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = lib.file_name().map(|n| n.to_string_lossy().to_string());
        let real = std::fs::canonicalize(lib).unwrap_or_else(|_| lib.to_path_buf());
        copy_with_mkdir(&real, dest_dir, &dir, name.as_deref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binfmt_entries() {
        let f = "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: POF\n\
                 offset 0\nmagic 7f45\nmask ffff\n";
        assert_eq!(
            parse_handler(f),
            Some(Handler {
                fixed: true,
                interpreter: Some(PathBuf::from("/usr/libexec/qemu-binfmt/s390x-binfmt-P")),
            })
        );
        let p = parse_handler(&f.replace("POF", "P")).unwrap();
        assert!(!p.fixed);
        assert_eq!(parse_handler(&f.replace("enabled", "disabled")), None);
    }

    #[test]
    fn persistent_entries_need_no_interpreter() {
        let e = "enabled\ninterpreter /usr/bin/qemu-x\nflags: OCF\noffset 0\n";
        assert_eq!(
            parse_entry(e, "/usr/bin/qemu-x", "qemu-x"),
            Binfmt {
                interpreter: None,
                enabled: true
            }
        );
    }

    #[test]
    fn other_entries_name_their_interpreter() {
        let e = "enabled\ninterpreter /opt/qemu-x\nflags: \noffset 0\n";
        assert_eq!(
            parse_entry(e, "/build/qemu-x", "qemu-x"),
            Binfmt {
                interpreter: Some("/opt/qemu-x".into()),
                enabled: true
            }
        );
    }

    #[test]
    fn dynamic_executables_have_libraries() {
        let libs = so_libs("/bin/sh");
        assert!(libs.iter().any(|l| l.contains("libc")), "{libs:?}");
        assert!(libs.iter().all(|l| l.starts_with('/')));
    }

    #[test]
    fn copies_keep_host_paths() {
        let d = tempfile::tempdir().unwrap();
        copy_binary_with_libs("/bin/sh", Some("/usr/bin/sh"), d.path()).unwrap();
        assert!(d.path().join("usr/bin/sh").exists());
        let libc = so_libs("/bin/sh")
            .into_iter()
            .find(|l| l.contains("libc"))
            .unwrap();
        assert!(d.path().join(libc.trim_start_matches('/')).exists());
    }
}
