//! The calling user: uid, gid, name and home.
//!
//! The name comes from /etc/passwd (the binary is linked statically, where
//! glibc's NSS lookups are unreliable), then `id -un`, then `$USER`.

use std::path::PathBuf;

use nix::unistd::{getgid, getuid};

pub fn uid() -> u32 {
    getuid().as_raw()
}

pub fn gid() -> u32 {
    getgid().as_raw()
}

/// `uid:gid`, the form every container user option here takes.
pub fn uid_gid() -> String {
    format!("{}:{}", uid(), gid())
}

fn passwd_entry(uid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid))
}

/// The login name of the calling user.
pub fn name() -> Option<String> {
    if let Some(f) = passwd_entry(uid()) {
        return Some(f[0].clone());
    }
    if let Ok(out) = std::process::Command::new("id").arg("-un").output() {
        let n = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !n.is_empty() {
            return Some(n);
        }
    }
    std::env::var("USER").ok().filter(|u| !u.is_empty())
}

/// The calling user's home directory.
pub fn home() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    passwd_entry(uid()).map(|f| PathBuf::from(&f[5]))
}
