//! Bind mounts: a deduplicated set of host paths mounted at the same path in
//! the container, and the rules for which paths may be mounted at all.

use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};

/// One bind mount: the host folder `source` (symlinks resolved) at `path`
/// in the container. They are the same path except for an alias, which
/// makes a path given through a symlink work under the name it was given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mount {
    pub path: PathBuf,
    pub source: PathBuf,
    pub writable: bool,
}

impl Mount {
    pub fn is_alias(&self) -> bool {
        self.path != self.source
    }
}

/// Mounts keyed by path: adding a path twice keeps one mount, writable if
/// either was (docker refuses duplicate mount points). Nested paths are kept:
/// the engines mount parents first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MountSet {
    mounts: Vec<Mount>,
}

/// Paths that are never bind-mounted: they would hide the image's own system
/// or hand the container the host's devices or engine.
const NEVER_MOUNT: &[&str] = &[
    "/", "/usr", "/etc", "/proc", "/dev", "/sys", "/var/run", "/run",
];

/// Paths whose contents are never mounted either.
const NEVER_BELOW: &[&str] = &["/proc", "/dev", "/sys", "/var/run", "/run"];

/// Paths that must never be relabelled with `:z` (SELinux): relabelling them
/// breaks the host.
const NEVER_RELABEL: &[&str] = &["/", "/usr", "/etc", "/home"];

/// Engine sockets: mounting one (or a folder holding one) gives the container
/// the engine.
fn engine_sockets() -> Vec<PathBuf> {
    let mut v = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/docker.sock"),
        PathBuf::from("/run/podman/podman.sock"),
    ];
    if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR") {
        let rt = PathBuf::from(rt);
        v.push(rt.join("docker.sock"));
        v.push(rt.join("podman/podman.sock"));
    }
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if let Some(p) = host.strip_prefix("unix://") {
            v.push(PathBuf::from(p));
        }
    }
    v
}

/// Make `path` absolute (relative to `cwd`) and drop `.` and `..` lexically
/// (in one allocation: every path of a command line goes through here).
pub fn normalize(path: &Path, cwd: &Path) -> PathBuf {
    let base = (!path.is_absolute()).then_some(cwd);
    let len = base.map_or(0, |b| b.as_os_str().len()) + path.as_os_str().len() + 1;
    let mut out = PathBuf::with_capacity(len);
    out.push("/");
    for c in base
        .into_iter()
        .flat_map(Path::components)
        .chain(path.components())
    {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Why `path` may not be mounted, if it may not.
pub fn refusal(path: &Path) -> Option<String> {
    if NEVER_MOUNT.iter().any(|p| path == Path::new(p)) {
        return Some(format!(
            "refusing to mount {} into the container",
            path.display()
        ));
    }
    if NEVER_BELOW.iter().any(|p| path.starts_with(p)) {
        return Some(format!(
            "refusing to mount {}: it is inside a system directory",
            path.display()
        ));
    }
    if let Some(s) = engine_sockets().iter().find(|s| s.starts_with(path)) {
        return Some(format!(
            "refusing to mount {}: it holds the engine socket {}",
            path.display(),
            s.display()
        ));
    }
    if path.to_string_lossy().contains(':') {
        return Some(format!(
            "cannot mount {}: the engine's volume syntax does not allow ':' in a path",
            path.display()
        ));
    }
    None
}

/// Whether `:z` relabelling is needed: SELinux is enabled on the host.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn relabel_refusal(path: &Path, home: Option<&Path>) -> Option<String> {
    if NEVER_RELABEL.iter().any(|p| path == Path::new(p)) || Some(path) == home {
        return Some(format!(
            "refusing to relabel {} for SELinux (':z' would relabel the whole tree); \
             mount a project directory below it instead",
            path.display()
        ));
    }
    None
}

impl MountSet {
    pub fn new() -> MountSet {
        MountSet::default()
    }

    /// Add a mount of `path` at the same path (the caller resolved its
    /// symlinks); the same path twice keeps one, writable if either is.
    pub fn add(&mut self, path: PathBuf, writable: bool) {
        self.add_alias(path.clone(), path, writable);
    }

    /// Mount the host folder `source` (resolved) at `path` in the
    /// container. A later mount at the same path keeps the first source.
    pub fn add_alias(&mut self, path: PathBuf, source: PathBuf, writable: bool) {
        match self.mounts.binary_search_by(|m| m.path.cmp(&path)) {
            Ok(i) => self.mounts[i].writable |= writable,
            Err(i) => self.mounts.insert(
                i,
                Mount {
                    path,
                    source,
                    writable,
                },
            ),
        }
    }

    /// Add a folder given by the user (`-s`, `QEMU_CROSS_CC_SOURCE_PATHS`,
    /// a plugin's `paths`): its symlinks are resolved and the refusal rules
    /// apply to where it really is; a symlinked name is mounted as an alias
    /// too, so that it works under the name it was given.
    pub fn add_checked(&mut self, path: PathBuf, writable: bool) -> Result<()> {
        let real = std::fs::canonicalize(&path)
            .map_err(|e| anyhow::anyhow!("cannot resolve {}: {e}", path.display()))?;
        if let Some(why) = refusal(&real) {
            if real == path {
                bail!("{why}; pass a project directory instead");
            }
            bail!(
                "{} leads to {}: {why}; pass a project directory instead",
                path.display(),
                real.display()
            );
        }
        if real != path && refusal(&path).is_none() {
            self.add_alias(path, real.clone(), writable);
        }
        self.add(real, writable);
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.iter()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The deepest mount containing `path`.
    pub fn covering(&self, path: &Path) -> Option<&Mount> {
        self.mounts
            .iter()
            .filter(|m| path.starts_with(&m.path))
            .max_by_key(|m| m.path.components().count())
    }

    /// Whether `path` is visible in the container (writable if asked).
    pub fn covers(&self, path: &Path, writable: bool) -> bool {
        self.covering(path).is_some_and(|m| m.writable || !writable)
    }

    /// Whether every mount of `other` is visible, with at least its access,
    /// through this set (an alias only through the same alias).
    pub fn covers_set(&self, other: &MountSet) -> bool {
        other.iter().all(|m| {
            if m.is_alias() {
                self.mounts.iter().any(|s| {
                    s.path == m.path && s.source == m.source && (s.writable || !m.writable)
                })
            } else {
                self.covers(&m.path, m.writable)
            }
        })
    }

    /// `-v PATH:PATH:rw|ro[,z]` for each mount.
    pub fn volume_args(&self, selinux: bool) -> Result<Vec<String>> {
        let home = crate::host::user::home();
        let mut args = Vec::with_capacity(self.mounts.len() * 2);
        let utf8 = |p: &Path| -> Result<String> {
            p.to_str().map(String::from).ok_or_else(|| {
                anyhow::anyhow!("cannot mount {}: the path is not valid UTF-8", p.display())
            })
        };
        for m in &self.mounts {
            let (p, src) = (utf8(&m.path)?, utf8(&m.source)?);
            let mut opts = if m.writable { "rw" } else { "ro" }.to_string();
            if selinux {
                if let Some(why) = relabel_refusal(&m.source, home.as_deref()) {
                    bail!(why);
                }
                opts.push_str(",z");
            }
            args.push("-v".to_string());
            args.push(format!("{src}:{p}:{opts}"));
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn duplicate_paths_become_one_mount_rw_wins() {
        let mut s = MountSet::new();
        s.add(p("/src"), false);
        s.add(p("/build"), true);
        s.add(p("/build"), false);
        s.add(p("/src"), true);
        s.add(p("/src/sub"), false);
        let v = s.volume_args(false).unwrap();
        assert_eq!(
            v,
            vec![
                "-v",
                "/build:/build:rw",
                "-v",
                "/src:/src:rw",
                "-v",
                "/src/sub:/src/sub:ro"
            ]
        );
    }

    #[test]
    fn selinux_adds_z_and_refuses_system_paths() {
        let mut s = MountSet::new();
        s.add(p("/work/x"), false);
        assert_eq!(s.volume_args(true).unwrap()[1], "/work/x:/work/x:ro,z");
        for bad in ["/", "/usr", "/etc", "/home"] {
            let mut s = MountSet::new();
            s.add(p(bad), false);
            let e = s.volume_args(true).unwrap_err().to_string();
            assert!(e.contains("refusing to relabel"), "{e}");
            assert!(s.volume_args(false).is_ok());
        }
        if let Some(home) = crate::host::user::home() {
            let mut s = MountSet::new();
            s.add(home, true);
            assert!(s.volume_args(true).is_err());
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "/",
            "/usr",
            "/etc",
            "/proc",
            "/proc/1",
            "/dev",
            "/sys/fs",
            "/var/run",
            "/run/user/0",
        ] {
            assert!(refusal(&p(bad)).is_some(), "{bad}");
        }
        assert!(refusal(&p("/var")).is_some(), "holds /var/run/docker.sock");
        assert!(refusal(&p("/a:b")).is_some());
        assert!(refusal(&p("/usr/src/linux")).is_none());
        assert!(refusal(&p("/tmp/x")).is_none());
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize(&p("../src/./a.c"), &p("/w/build")),
            p("/w/src/a.c")
        );
        assert_eq!(normalize(&p("/a/../../b"), &p("/x")), p("/b"));
        assert_eq!(normalize(&p("."), &p("/x")), p("/x"));
    }

    #[test]
    fn covering_uses_deepest_mount() {
        let mut s = MountSet::new();
        s.add(p("/w"), false);
        s.add(p("/w/build"), true);
        assert!(s.covers(&p("/w/build/x.o"), true));
        assert!(!s.covers(&p("/w/src/x.c"), true));
        assert!(s.covers(&p("/w/src/x.c"), false));
        assert!(!s.covers(&p("/other"), false));
    }

    /// A session's mounts serve a call only when they show it everything it
    /// needs with the access it needs, and an alias only as the same alias.
    #[test]
    fn a_set_covers_another_only_with_its_access_and_aliases() {
        let mut session = MountSet::new();
        session.add(p("/w"), false);
        session.add(p("/w/build"), true);
        session.add_alias(p("/w/link"), p("/real/tree"), false);
        let mut call = MountSet::new();
        call.add(p("/w/build/sub"), true);
        call.add(p("/w/src"), false);
        assert!(session.covers_set(&call));
        call.add(p("/w/src"), true);
        assert!(
            !session.covers_set(&call),
            "a read-only mount cannot serve a write"
        );
        let mut aliased = MountSet::new();
        aliased.add_alias(p("/w/link"), p("/real/tree"), false);
        assert!(session.covers_set(&aliased));
        let mut other = MountSet::new();
        other.add_alias(p("/w/link"), p("/elsewhere"), false);
        assert!(
            !session.covers_set(&other),
            "the same name leading elsewhere is another folder"
        );
    }

    /// A folder the user names is checked where it really leads: a link to
    /// a refused folder is refused by name, a link to a project folder is
    /// mounted there and under its own name.
    #[test]
    fn user_folders_are_checked_where_they_lead() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let to_etc = d.path().join("etc-link");
        std::os::unix::fs::symlink("/etc", &to_etc).unwrap();
        let e = MountSet::new()
            .add_checked(to_etc.clone(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("leads to /etc"), "{e}");
        let link = d.path().join("proj");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut s = MountSet::new();
        s.add_checked(link.clone(), false).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        let got: Vec<(PathBuf, PathBuf)> = s
            .iter()
            .map(|m| (m.path.clone(), m.source.clone()))
            .collect();
        assert!(got.contains(&(real.clone(), real.clone())), "{got:?}");
        assert!(got.contains(&(link, real)), "{got:?}");
        assert!(
            MountSet::new()
                .add_checked(d.path().join("missing"), false)
                .is_err()
        );
    }
}
