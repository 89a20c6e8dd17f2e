//! Per-user directories: configuration (user plugins and dockerfiles), cache
//! (build logs, locks) and runtime (session sockets).

use std::path::PathBuf;
use std::sync::OnceLock;

use directories::ProjectDirs;

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

/// `~/.cache/qemu-cross-cc` (XDG_CACHE_HOME honoured), or a per-user folder
/// in the temp dir when there is no home (`QEMU_CROSS_CC_CACHE_DIR` replaces
/// it).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = overridden("QEMU_CROSS_CC_CACHE_DIR") {
        return d;
    }
    match project() {
        Some(p) => p.cache_dir().to_path_buf(),
        None => std::env::temp_dir().join(format!("qemu-cross-cc-cache-{}", crate::user::uid())),
    }
}

/// `$XDG_RUNTIME_DIR/qemu-cross-cc`, else `/tmp/qemu-cross-cc-UID`
/// (`QEMU_CROSS_CC_RUNTIME_DIR` replaces it).
pub fn runtime_dir() -> PathBuf {
    if let Some(d) = overridden("QEMU_CROSS_CC_RUNTIME_DIR") {
        return d;
    }
    match project().and_then(|p| p.runtime_dir().map(|d| d.to_path_buf())) {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("qemu-cross-cc-{}", crate::user::uid())),
    }
}
