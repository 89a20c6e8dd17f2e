//! Per-user directories: configuration (user plugins and dockerfiles), cache
//! (build logs, locks) and runtime (session sockets, engine facts).
//!
//! The cache and runtime folders hold state that decides what runs: each is
//! made private (0700) on first use and refused when it is not the caller's
//! own (see `safefs::private_dir`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use directories::ProjectDirs;

use crate::state::safefs;

/// Computed once: the compile path asks for these folders many times.
fn project() -> Option<&'static ProjectDirs> {
    static DIRS: OnceLock<Option<ProjectDirs>> = OnceLock::new();
    DIRS.get_or_init(|| ProjectDirs::from("", "", "qemu-cross-cc"))
        .as_ref()
}

fn overridden(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `~/.config/qemu-cross-cc` (XDG_CONFIG_HOME honoured;
/// `QEMU_CROSS_CC_CONFIG_DIR` replaces it).
pub fn config_dir() -> Option<PathBuf> {
    overridden("QEMU_CROSS_CC_CONFIG_DIR")
        .or_else(|| project().map(|p| p.config_dir().to_path_buf()))
}

/// The variable that moves the cache folder.
pub const CACHE_VAR: &str = "QEMU_CROSS_CC_CACHE_DIR";
const RUNTIME_VAR: &str = "QEMU_CROSS_CC_RUNTIME_DIR";

/// Where the cache is: `~/.cache/qemu-cross-cc` (XDG_CACHE_HOME honoured),
/// or a per-user folder in the temp dir when there is no home
/// (`QEMU_CROSS_CC_CACHE_DIR` replaces it). Not checked: see `cache_dir`.
pub fn cache_location() -> PathBuf {
    if let Some(d) = overridden(CACHE_VAR) {
        return d;
    }
    match project() {
        Some(p) => p.cache_dir().to_path_buf(),
        None => {
            std::env::temp_dir().join(format!("qemu-cross-cc-cache-{}", crate::host::user::uid()))
        }
    }
}

/// Where the runtime folder is: `$XDG_RUNTIME_DIR/qemu-cross-cc`, else
/// `/tmp/qemu-cross-cc-UID` (`QEMU_CROSS_CC_RUNTIME_DIR` replaces it). Not
/// checked: see `runtime_dir`.
pub fn runtime_location() -> PathBuf {
    if let Some(d) = overridden(RUNTIME_VAR) {
        return d;
    }
    match project().and_then(|p| p.runtime_dir().map(|d| d.to_path_buf())) {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("qemu-cross-cc-{}", crate::host::user::uid())),
    }
}

/// A folder made private once per process.
fn checked(cell: &'static OnceLock<PathBuf>, dir: PathBuf, var: &'static str) -> Result<PathBuf> {
    if let Some(d) = cell.get() {
        return Ok(d.clone());
    }
    safefs::private_dir(&dir, var)?;
    Ok(cell.get_or_init(|| dir).clone())
}

/// The cache folder, created private or checked to be the caller's own.
pub fn cache_dir() -> Result<PathBuf> {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    checked(&CELL, cache_location(), CACHE_VAR)
}

/// The runtime folder, created private or checked to be the caller's own.
pub fn runtime_dir() -> Result<PathBuf> {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    checked(&CELL, runtime_location(), RUNTIME_VAR)
}

/// A private subfolder of the cache folder (`logs`, `locks`).
pub fn cache_subdir(name: &str) -> Result<PathBuf> {
    private_subdir(&cache_dir()?, name, CACHE_VAR)
}

/// An exclusive lock on `<cache>/locks/<name>.lock` (the file created
/// private, or checked to be the caller's), held while the value lives.
pub fn cache_lock(name: &str) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = cache_subdir("locks")?.join(format!("{name}.lock"));
    let file = safefs::open_private(
        &path,
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
    )?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", path.display()))
}

/// The folder `name` in the subfolder `sub` (`ccache`, `wine`) of the cache
/// folder `cache`, made to be mounted read-write into a container: both
/// private to the caller (created 0700, or checked by lstat: a planted
/// link is refused, never followed), resolved, the resolved folder the one
/// checked, and not a folder a container may not get.
pub fn mounted_cache_folder(cache: &Path, sub: &str, name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let parent = cache.join(sub);
    safefs::private_dir(&parent, CACHE_VAR)?;
    let dir = parent.join(name);
    safefs::private_dir(&dir, CACHE_VAR)?;
    let real = std::fs::canonicalize(&dir).map_err(|e| safefs::io_error(e, "resolve", &dir))?;
    match (std::fs::symlink_metadata(&dir), std::fs::metadata(&real)) {
        (Ok(a), Ok(b)) if a.is_dir() && a.dev() == b.dev() && a.ino() == b.ino() => {}
        _ => anyhow::bail!(
            "the {sub} folder {} changed while it was checked; run the command again",
            dir.display()
        ),
    }
    if let Some(why) = crate::call::mounts::refusal(&real) {
        anyhow::bail!(
            "cannot use the {sub} folder {}: {why}; set {CACHE_VAR} to a folder of your own",
            real.display()
        );
    }
    Ok(real)
}

/// A private subfolder of the runtime folder (`sessions`,
/// `sessions/<id>`), created when missing.
pub fn runtime_subdir(name: &str) -> Result<PathBuf> {
    private_subdir(&runtime_dir()?, name, RUNTIME_VAR)
}

/// A subfolder of the runtime folder when it exists and is private (never
/// created: readers make no folders).
pub fn existing_runtime_subdir(name: &str) -> Option<PathBuf> {
    let dir = runtime_dir().ok()?.join(name);
    (dir.exists() && safefs::private_dir(&dir, RUNTIME_VAR).is_ok()).then_some(dir)
}

fn private_subdir(parent: &Path, name: &str, var: &'static str) -> Result<PathBuf> {
    let dir = parent.join(name);
    safefs::private_dir(&dir, var)?;
    Ok(dir)
}
