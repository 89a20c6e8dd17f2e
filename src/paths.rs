//! Per-user directories: configuration (user plugins and dockerfiles), cache
//! (build logs, locks) and runtime (session sockets).

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "qemu-cross-cc")
}

/// `~/.config/qemu-cross-cc` (XDG_CONFIG_HOME honoured).
pub fn config_dir() -> Option<PathBuf> {
    project().map(|p| p.config_dir().to_path_buf())
}

/// `~/.cache/qemu-cross-cc` (XDG_CACHE_HOME honoured), or a per-user folder
/// in the temp dir when there is no home.
pub fn cache_dir() -> PathBuf {
    match project() {
        Some(p) => p.cache_dir().to_path_buf(),
        None => std::env::temp_dir().join(format!("qemu-cross-cc-cache-{}", crate::user::uid())),
    }
}

/// `$XDG_RUNTIME_DIR/qemu-cross-cc`, else `/tmp/qemu-cross-cc-UID`.
pub fn runtime_dir() -> PathBuf {
    match project().and_then(|p| p.runtime_dir().map(|d| d.to_path_buf())) {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("qemu-cross-cc-{}", crate::user::uid())),
    }
}
