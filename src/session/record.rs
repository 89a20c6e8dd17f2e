//! Session records: what a session is, kept in
//! `RUNTIME/sessions/<id>/record.json`, read only when it is the user's own
//! private file; and the identity of the binary that started it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::call::mounts::MountSet;
use crate::engine::{Choice, Engine, Flavor, Kind};

/// A mounted folder and the identity it had when the session started: a
/// folder removed and made again (`rm -rf build; mkdir build`) is another
/// one, which the container cannot see.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MountRecord {
    pub path: PathBuf,
    /// The host folder mounted there (differs from `path` for an alias).
    pub source: PathBuf,
    pub writable: bool,
    pub dev: u64,
    pub ino: u64,
    pub born: u128,
}

/// Device, inode and birth time (0 where the file system has none): inode
/// numbers are reused at once, birth times tell a new folder from the old.
pub(super) fn identity(path: &Path) -> Option<(u64, u64, u128)> {
    let m = std::fs::metadata(path).ok()?;
    let born = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Some((m.dev(), m.ino(), born))
}

/// What a session is, kept in `RUNTIME/sessions/<id>/record.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub engine: Kind,
    pub image: String,
    pub image_id: String,
    /// The dockerfile checksum the image was built from ("" for `cc -i`).
    pub checksum: String,
    pub target: Option<String>,
    /// The folder mounted read-write that calls from below it share.
    pub root: PathBuf,
    pub mounts: Vec<MountRecord>,
    pub uid: u32,
    pub gid: u32,
    pub container: String,
    pub created: u64,
    /// Identity of the binary that started it (the agent is that binary).
    pub exe: String,
}

impl Record {
    pub(super) fn dir(&self) -> PathBuf {
        crate::state::paths::runtime_location()
            .join("sessions")
            .join(&self.id)
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.dir().join("agent.sock")
    }

    pub(super) fn mount_set(&self) -> MountSet {
        let mut s = MountSet::new();
        for m in &self.mounts {
            s.add_alias(m.path.clone(), m.source.clone(), m.writable);
        }
        s
    }

    pub fn engine(&self) -> Engine {
        Engine::new(self.engine)
    }

    /// Same engine family, image, dockerfile checksum, user and binary.
    pub(super) fn compatible(
        &self,
        image: &str,
        checksum: &str,
        choice: Choice,
        exe: &str,
    ) -> bool {
        let flavor_ok = match choice {
            Choice::Auto => true,
            Choice::Docker => self.engine.flavor() == Flavor::Docker,
            Choice::Podman => self.engine.flavor() == Flavor::Podman,
        };
        flavor_ok
            && self.image == image
            && self.checksum == checksum
            && self.uid == crate::host::user::uid()
            && self.gid == crate::host::user::gid()
            && self.exe == exe
    }

    /// Whether it runs an image since rebuilt from another dockerfile: the
    /// next call for that image ends it (it would never be used again).
    /// A `cc -i IMAGE` call (no checksum) says nothing about the dockerfile.
    pub(super) fn outdated(&self, image: &str, checksum: &str) -> bool {
        self.image == image
            && !checksum.is_empty()
            && !self.checksum.is_empty()
            && self.checksum != checksum
    }

    /// Whether every mounted folder is still the one the container sees.
    pub(super) fn mounts_current(&self) -> bool {
        self.mounts
            .iter()
            .all(|m| identity(&m.source) == Some((m.dev, m.ino, m.born)))
    }
}

/// Remove a record and its folder (the agent's socket with it).
pub fn forget(rec: &Record) {
    match std::fs::remove_dir_all(rec.dir()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            crate::diag::debug(format!("cannot remove {}: {e}", rec.dir().display()));
        }
        _ => {}
    }
}

/// The sessions folder, private to the user.
pub fn sessions_dir() -> Result<PathBuf> {
    crate::state::paths::runtime_subdir("sessions")
}

/// A record is named by its folder: a short hex id.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How long a session folder may stay without its record: a start takes
/// seconds (`start_container` gives up after 15), so an older one is what a
/// killed starter left.
const UNRECORDED_LIMIT: Duration = Duration::from_secs(300);

/// All recorded sessions of this user. Only records that are this user's
/// own private files, in a folder named after their id, are read (a record
/// never carries a command: only what the session is). A record that does
/// not parse or names another folder, and a folder left without a record
/// by a killed starter, are removed with their folder, so that no later
/// call reads them again; an agent whose folder goes ends by itself.
pub fn records() -> Vec<Record> {
    let Some(dir) = crate::state::paths::existing_runtime_subdir("sessions") else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<Record> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !valid_id(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                return None;
            }
            let file = e.path().join("record.json");
            match crate::state::safefs::read_state(&file, 1 << 20) {
                Some(bytes) => match serde_json::from_slice::<Record>(&bytes) {
                    Ok(rec) if rec.id == name => return Some(rec),
                    _ => crate::diag::debug(format!("removing the corrupt {}", file.display())),
                },
                None if std::fs::symlink_metadata(&file).is_ok() => return None,
                None => {
                    let age = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    if age.is_none_or(|a| a < UNRECORDED_LIMIT) {
                        return None;
                    }
                }
            }
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                crate::diag::debug(format!("cannot remove {}: {err}", e.path().display()));
            }
            None
        })
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.created));
    v
}

/// Identity of the running binary: sessions started by another build are
/// not used (the agent speaks its own build's protocol).
pub(super) fn exe_identity() -> Option<(PathBuf, String)> {
    let path = std::fs::canonicalize("/proc/self/exe").ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    Some((
        path,
        format!(
            "{}-{}-{}",
            meta.ino(),
            meta.len(),
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000
        ),
    ))
}

/// Whether `path` is an ELF executable without an interpreter (static): only
/// such a binary runs inside any image.
pub(super) fn is_static_elf(path: &Path) -> bool {
    crate::host::elf::is_dynamic(path) == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_binary_is_static() {
        // The project builds static-pie binaries (.cargo/config.toml).
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        assert!(is_static_elf(&exe));
        assert!(!is_static_elf(Path::new("/bin/sh")));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
    }
}
