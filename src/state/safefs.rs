//! File-system access that trusts nothing it did not just create.
//!
//! The tool often runs as root next to other users, with its state in `/tmp`
//! when `XDG_RUNTIME_DIR` is unset. Every per-user folder (runtime, cache,
//! sessions, locks, logs) is created 0700, and one that already exists is
//! used only when it is a real directory (not a symlink) owned by the caller
//! that no other user can write to; state files are read only when they are
//! regular files owned by the caller. Files from configuration folders
//! (plugins, dockerfiles, response files) are read only when they are regular
//! files, and only up to a size cap.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// A per-user folder that cannot be trusted: the error names it and the fix.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to use {}: {why}; remove it (or set {var} to a folder of your own)",
    path.display()
)]
pub struct Untrusted {
    pub path: PathBuf,
    pub why: String,
    pub var: &'static str,
}

/// What makes an existing folder unfit to hold private state, if anything.
fn folder_problem(meta: &std::fs::Metadata) -> Option<String> {
    let uid = crate::host::user::uid();
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return Some("it is not a directory".into());
    }
    if meta.uid() != uid {
        return Some(format!(
            "it is owned by uid {}, not by you (uid {uid})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "other users can write to it (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Make sure `dir` is a private folder of the caller: create it (and its
/// missing parents) with mode 0700, or check the existing one with lstat and
/// take away any group or other read access it still has. `var` names the
/// variable that moves it elsewhere, for the error.
pub fn private_dir(dir: &Path, var: &'static str) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => check_existing(dir, &meta, var),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                if !parent.as_os_str().is_empty() && !parent.exists() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .map_err(|e| io_error(e, "create", parent))?;
                }
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Made by a concurrent call: check it like any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(e, "create", dir)),
            }
            let meta = std::fs::symlink_metadata(dir).map_err(|e| io_error(e, "inspect", dir))?;
            check_existing(dir, &meta, var)
        }
        Err(e) => Err(io_error(e, "inspect", dir)),
    }
}

fn check_existing(dir: &Path, meta: &std::fs::Metadata, var: &'static str) -> Result<()> {
    if let Some(why) = folder_problem(meta) {
        return Err(Untrusted {
            path: dir.to_path_buf(),
            why,
            var,
        }
        .into());
    }
    if meta.mode() & 0o077 != 0 {
        // Ours and not writable by others: only its read bits are too wide.
        // Change the very folder that was checked (no symlink to follow).
        let f = File::open(dir).map_err(|e| io_error(e, "open", dir))?;
        let now = f.metadata().map_err(|e| io_error(e, "inspect", dir))?;
        if now.ino() == meta.ino() && now.dev() == meta.dev() {
            f.set_permissions(std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error(e, "restrict the mode of", dir))?;
        }
    }
    Ok(())
}

/// Read a state file this user wrote: None when it does not exist or is not
/// a regular file owned by the caller that only the caller can write (a
/// planted file is ignored, never trusted), or is larger than `cap`.
pub fn read_state(path: &Path, cap: u64) -> Option<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file()
        || meta.uid() != crate::host::user::uid()
        || meta.mode() & 0o022 != 0
        || meta.len() > cap
    {
        return None;
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(cap).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Open a private file for writing (created 0600, never through a symlink),
/// refusing one that is not the caller's own regular file.
pub fn open_private(path: &Path, opts: &mut OpenOptions) -> Result<File> {
    let f = opts
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(e, "open", path))?;
    let meta = f.metadata().map_err(|e| io_error(e, "inspect", path))?;
    if !meta.is_file() || meta.uid() != crate::host::user::uid() || meta.mode() & 0o022 != 0 {
        bail!(
            "refusing to use {}: it is not a private file of yours; remove it",
            path.display()
        );
    }
    Ok(f)
}

/// Write `bytes` to `path` atomically: a private temporary file beside it,
/// renamed over it. Nothing is left behind when a step fails.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| io_error(e, "create a file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .map_err(|e| io_error(e, "write", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| io_error(e.error, "write", path))?;
    Ok(())
}

/// Read a file from a configuration folder: only a regular file (a FIFO
/// would block, a device never ends), at most `cap` bytes.
pub fn read_config(path: &Path, cap: u64) -> Result<String> {
    read_config_checked(path, cap, |_| Ok(()))
}

/// `read_config`, with `check` deciding on the open file's own metadata
/// (fstat) before it is read: the file checked is the file read.
pub fn read_config_checked(
    path: &Path,
    cap: u64,
    check: impl FnOnce(&std::fs::Metadata) -> Result<()>,
) -> Result<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(e, "read", path))?;
    let meta = f.metadata().map_err(|e| io_error(e, "inspect", path))?;
    check(&meta)?;
    if !meta.is_file() {
        bail!(
            "refusing to read {}: it is not a regular file ({}); remove it",
            path.display(),
            kind(&meta)
        );
    }
    if meta.len() > cap {
        bail!(
            "refusing to read {}: it is {} bytes, more than the {cap} allowed; remove it",
            path.display(),
            meta.len()
        );
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(e, "read", path))?;
    if buf.len() as u64 > cap {
        bail!(
            "refusing to read {}: it grew past the {cap} bytes allowed",
            path.display()
        );
    }
    String::from_utf8(buf).map_err(|_| anyhow::anyhow!("{} is not valid UTF-8", path.display()))
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// An I/O error that names the path, what was being done, and the fix.
pub fn io_error(e: std::io::Error, action: &str, path: &Path) -> anyhow::Error {
    let fix = match e.raw_os_error() {
        Some(nix::libc::ENOSPC) | Some(nix::libc::EDQUOT) => {
            "; free some space there or point QEMU_CROSS_CC_CACHE_DIR / QEMU_CROSS_CC_RUNTIME_DIR elsewhere"
        }
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => {
            "; check the folder's owner and permissions"
        }
        Some(nix::libc::EROFS) => "; the file system is read-only, point the tool elsewhere",
        _ => "",
    };
    anyhow::anyhow!("cannot {action} {}: {e}{fix}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_made_0700_and_tightened() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b");
        private_dir(&p, "X").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o777, 0o700);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&p, "X").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn writable_by_others_or_symlinked_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&p, "QEMU_CROSS_CC_RUNTIME_DIR")
            .unwrap_err()
            .to_string();
        assert!(e.contains("other users can write") && e.contains("QEMU_CROSS_CC_RUNTIME_DIR"));
        let l = d.path().join("l");
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, &l).unwrap();
        let e = private_dir(&l, "X").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn state_files_must_be_private_regular_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("s.json");
        write_private(&f, b"{}").unwrap();
        assert_eq!(read_state(&f, 100).unwrap(), b"{}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read_state(&f, 100).is_none());
        let l = d.path().join("l.json");
        std::os::unix::fs::symlink("/etc/passwd", &l).unwrap();
        assert!(read_state(&l, 1 << 20).is_none());
        assert!(read_state(Path::new("/dev/zero"), 100).is_none());
    }

    #[test]
    fn config_reads_refuse_fifos_and_devices() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("x.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_config(&fifo, 100).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        let e = read_config(Path::new("/dev/zero"), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device"), "{e}");
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'x'; 200]).unwrap();
        assert!(read_config(&big, 100).is_err());
        assert_eq!(read_config(&big, 200).unwrap().len(), 200);
    }
}
