//! Session records: what a session is, kept in
//! `RUNTIME/sessions/<id>/record.json`, read only when it is the user's own
//! private file; the key that finds the session a call most likely wants
//! without reading every record; and the identity of the binary that
//! started it.

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

/// Remove a record and its folder (the agent's socket with it), and its
/// key link when it still names it.
pub fn forget(rec: &Record) {
    if let Some(dir) = rec.dir().parent() {
        let link = dir.join(key_link_name(&rec.key()));
        if std::fs::read_link(&link).is_ok_and(|t| t.as_os_str() == rec.id.as_str()) {
            remove_link(&link);
        }
    }
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

/// The container of session `id` (a record naming another is refused, so
/// a record read from the runtime folder names only its own container).
pub(super) fn container_name(id: &str) -> String {
    format!("qemu-cross-cc-session-{id}")
}

/// A record is named by its folder: a short hex id.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What decides whether a session may serve a call, but for its engine
/// (which `Choice::Auto` leaves open) and its mounts (a call's are fewer):
/// image, dockerfile checksum, user and binary, hashed into a short name.
pub(super) fn key(image: &str, checksum: &str, uid: u32, gid: u32, exe: &str) -> String {
    let text = format!("1\0{image}\0{checksum}\0{uid}\0{gid}\0{exe}");
    crate::image::dockerfile::bytes_checksum(text.as_bytes())
        .chars()
        .take(16)
        .collect()
}

impl Record {
    pub(super) fn key(&self) -> String {
        key(&self.image, &self.checksum, self.uid, self.gid, &self.exe)
    }
}

/// The name of the link `RUNTIME/sessions/key-KEY`, whose target is the id
/// of the newest session of that key (a name, never followed).
fn key_link_name(key: &str) -> String {
    format!("key-{key}")
}

fn remove_link(link: &Path) {
    match std::fs::remove_file(link) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            crate::diag::debug(format!("cannot remove {}: {e}", link.display()));
        }
        _ => {}
    }
}

/// Point the key link of `rec` at it (the newest session of a key is the
/// one tried first): a link made beside it and renamed over the old one.
pub(super) fn set_key_link(rec: &Record) -> Result<()> {
    let dir = sessions_dir()?;
    let link = dir.join(key_link_name(&rec.key()));
    let tmp = dir.join(format!(".{}.{}", key_link_name(&rec.key()), rec.id));
    remove_link(&tmp);
    std::os::unix::fs::symlink(&rec.id, &tmp)
        .and_then(|()| std::fs::rename(&tmp, &link))
        .map_err(|e| {
            remove_link(&tmp);
            crate::state::safefs::io_error(e, "link", &link)
        })
}

/// The session the key link names, when it is a private record of this
/// user in a private sessions folder: one `readlink` and one record read
/// instead of every record. The link is only a hint: its target is read
/// as a name (never followed), and the record it names is checked by the
/// caller like any other; a missing or stale link finds nothing.
pub(super) fn keyed(key: &str) -> Option<Record> {
    keyed_in(
        &crate::state::paths::existing_runtime_subdir("sessions")?,
        key,
    )
}

fn keyed_in(dir: &Path, key: &str) -> Option<Record> {
    let target = std::fs::read_link(dir.join(key_link_name(key))).ok()?;
    let id = target.to_str().filter(|id| valid_id(id))?;
    read_record(&dir.join(id).join("record.json"), id)
}

/// A record file, when it is the user's private file and names its folder.
fn read_record(file: &Path, id: &str) -> Option<Record> {
    parse_record(&crate::state::safefs::read_state(file, RECORD_CAP)?, id)
}

/// The largest record read.
const RECORD_CAP: u64 = 1 << 20;

/// A record's bytes as the record of session `id`: None when they do not
/// parse or name another session or another container.
fn parse_record(bytes: &[u8], id: &str) -> Option<Record> {
    serde_json::from_slice::<Record>(bytes)
        .ok()
        .filter(|rec| rec.id == id && rec.container == container_name(id))
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
            if name.starts_with("key-") {
                // A key link whose session is gone: removed.
                let target = std::fs::read_link(e.path()).ok();
                let live = target
                    .as_ref()
                    .and_then(|t| t.to_str())
                    .is_some_and(|id| valid_id(id) && e.path().with_file_name(id).is_dir());
                if !live && e.file_type().is_ok_and(|t| t.is_symlink()) {
                    remove_link(&e.path());
                }
                return None;
            }
            if let Some(rest) = name.strip_prefix(".key-") {
                // A new key link a killed starter left before renaming it
                // into place (`.key-KEY.ID`): removed once its session is gone.
                let id = rest.rsplit('.').next().unwrap_or("");
                let gone = !valid_id(id) || !e.path().with_file_name(id).is_dir();
                if gone && e.file_type().is_ok_and(|t| t.is_symlink()) {
                    remove_link(&e.path());
                }
                return None;
            }
            if !valid_id(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                return None;
            }
            let file = e.path().join("record.json");
            match crate::state::safefs::read_state(&file, RECORD_CAP) {
                Some(bytes) => match parse_record(&bytes, &name) {
                    Some(rec) => return Some(rec),
                    None => crate::diag::debug(format!("removing the corrupt {}", file.display())),
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
/// not used (the agent speaks its own build's protocol). One `stat` of
/// `/proc/self/exe`, which the kernel resolves to the running file.
pub(super) fn exe_identity() -> Option<String> {
    std::fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| identity_of(&m))
}

fn identity_of(meta: &std::fs::Metadata) -> String {
    format!(
        "{}-{}-{}",
        meta.ino(),
        meta.len(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000
    )
}

/// The running binary's path and identity (a session mounts the path):
/// None when the file at that path is no longer the one running.
pub(super) fn exe_path_and_identity() -> Option<(PathBuf, String)> {
    let running = std::fs::metadata("/proc/self/exe").ok()?;
    let path = std::fs::canonicalize("/proc/self/exe").ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    let same = meta.dev() == running.dev() && identity_of(&meta) == identity_of(&running);
    same.then(|| (path, identity_of(&meta)))
}

/// Whether `path` is an ELF executable without an interpreter (static): only
/// such a binary runs inside any image.
pub(super) fn is_static_elf(path: &Path) -> bool {
    crate::host::elf::is_dynamic(path) == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            engine: Kind::Docker,
            image: "qemu/x".into(),
            image_id: "sha256:1".into(),
            checksum: "c".into(),
            target: None,
            root: "/w".into(),
            mounts: Vec::new(),
            uid: 1,
            gid: 2,
            container: container_name(id),
            created: 0,
            exe: "1-2-3".into(),
        }
    }

    #[test]
    fn the_key_changes_with_everything_that_decides() {
        let k = key("qemu/x", "c", 1, 2, "1-2-3");
        assert_eq!(k, record("ab").key());
        assert_eq!(k.len(), 16);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        for other in [
            key("qemu/y", "c", 1, 2, "1-2-3"),
            key("qemu/x", "d", 1, 2, "1-2-3"),
            key("qemu/x", "c", 3, 2, "1-2-3"),
            key("qemu/x", "c", 1, 3, "1-2-3"),
            key("qemu/x", "c", 1, 2, "1-2-4"),
            // No field runs into the next.
            key("qemu/x\0c", "", 1, 2, "1-2-3"),
        ] {
            assert_ne!(k, other);
        }
    }

    #[test]
    fn a_key_link_is_only_a_hint() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let rec = record("00aa");
        let k = rec.key();
        // No link, or a link to nothing: nothing found.
        assert!(keyed_in(dir, &k).is_none());
        symlink("00aa", dir.join(key_link_name(&k))).unwrap();
        assert!(keyed_in(dir, &k).is_none());
        // The record it names.
        std::fs::create_dir(dir.join("00aa")).unwrap();
        let file = dir.join("00aa/record.json");
        std::fs::write(&file, serde_json::to_vec(&rec).unwrap()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(keyed_in(dir, &k).unwrap().id, "00aa");
        // A record that others may write is refused.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(keyed_in(dir, &k).is_none());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        // A link to another folder than its record names, to a path, or to
        // something that is not an id: nothing.
        std::fs::create_dir(dir.join("00bb")).unwrap();
        std::fs::copy(&file, dir.join("00bb/record.json")).unwrap();
        for target in ["00bb", "../00aa", "/etc", "00aa/..", "key-x"] {
            std::fs::remove_file(dir.join(key_link_name(&k))).unwrap();
            symlink(target, dir.join(key_link_name(&k))).unwrap();
            assert!(keyed_in(dir, &k).is_none(), "{target}");
        }
        // A regular file in the link's place is no link.
        std::fs::remove_file(dir.join(key_link_name(&k))).unwrap();
        std::fs::write(dir.join(key_link_name(&k)), "00aa").unwrap();
        assert!(keyed_in(dir, &k).is_none());
    }

    #[test]
    fn a_record_names_only_its_own_container() {
        let rec = record("00aa");
        let bytes = serde_json::to_vec(&rec).unwrap();
        assert!(parse_record(&bytes, "00aa").is_some());
        assert!(parse_record(&bytes, "00bb").is_none());
        // Another container in its place (whose network a new session
        // would join, or which `stop` would remove): refused.
        for other in ["someone-elses", "qemu-cross-cc-session-00bb", ""] {
            let mut planted = rec.clone();
            planted.container = other.into();
            let bytes = serde_json::to_vec(&planted).unwrap();
            assert!(parse_record(&bytes, "00aa").is_none(), "{other}");
        }
    }

    #[test]
    fn own_binary_is_static() {
        // The project builds static-pie binaries (.cargo/config.toml).
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        assert!(is_static_elf(&exe));
        assert!(!is_static_elf(Path::new("/bin/sh")));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
    }
}
