//! The project file, `qemu-cross-cc.toml`: per-project settings, found by
//! walking up from the current directory (as cross-rs finds `Cross.toml`).
//!
//! ```toml
//! [build]                          # every target
//! paths = ["/opt/shared", "../x"]  # more read-only mounts (relative: to this file's folder)
//! passenv = ["MY_VAR", "X_*"]      # more variables passed to the tools
//! packages = ["zlib1g-dev"]        # Debian packages for the target
//! distcc = "10.0.0.2:3632 10.0.0.3:3632/8,lzo"   # distcc servers (see `distcc`)
//! ccache = true                    # compiles through ccache in the image (see `compile::ccache`)
//! glibc = "2.31"                   # build against an older C library (a manifest's `glibc_floors`)
//! [target.s390x-linux-gnu]         # one target: the same keys, added to [build]'s
//! packages = ["libssl-dev"]
//! distcc = "10.0.0.2:3633"         # a target's own servers replace [build]'s
//! ```
//!
//! The lookup is on the compile path: one `lstat` per folder up to the
//! root, and only the file found is read. A file in a folder every user can
//! write to (`/tmp`) is used only when the caller or root owns it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::target::plugin::{Plugin, shown};

/// The project file's name.
pub const FILE_NAME: &str = "qemu-cross-cc.toml";

/// The largest project file read; a bigger one is refused.
const CAP: u64 = 1 << 20;

/// What the keys are, for error messages.
const KEYS: &str = "tables [build] and [target.TARGET], each with paths, passenv, packages, distcc, ccache and glibc";

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    build: Section,
    #[serde(default)]
    target: BTreeMap<String, Section>,
}

/// `[build]` or `[target.TARGET]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Host folders mounted read-only for every tool (absolute once read).
    #[serde(default)]
    pub paths: Vec<String>,
    /// More variable names passed to the tools (`X_*` for a prefix).
    #[serde(default)]
    pub passenv: Vec<String>,
    /// Debian packages for the target (the tool adds `:ARCH`).
    #[serde(default)]
    pub packages: Vec<String>,
    /// distcc servers for compiles, in distcc's host syntax.
    #[serde(default)]
    pub distcc: Option<String>,
    /// Compiles run through ccache inside the image; a target's own value
    /// replaces [build]'s.
    #[serde(default)]
    pub ccache: Option<bool>,
    /// The glibc to build against (`2.31`: an image of an older Debian);
    /// a target's own value replaces [build]'s.
    #[serde(default)]
    pub glibc: Option<String>,
}

/// A project file, read and checked.
#[derive(Debug)]
pub struct Project {
    pub file: PathBuf,
    pub build: Section,
    pub targets: BTreeMap<String, Section>,
}

/// The project file for `dir`: `qemu-cross-cc.toml` in it or in the nearest
/// folder above that has one.
pub fn find(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|f| std::fs::symlink_metadata(f).is_ok())
}

/// The plugin as the project of the current directory has it: its paths,
/// variables and packages added (with packages, its tools run in the
/// derived image). Unchanged when there is no project file.
pub fn apply(plugin: &Plugin) -> Result<Cow<'_, Plugin>> {
    let Some(file) = current()? else {
        return Ok(Cow::Borrowed(plugin));
    };
    Ok(Cow::Owned(Project::load(&file)?.apply_to(plugin)?))
}

/// The variable naming the project file outright: build systems compile
/// their checks in folders outside the project (Meson in `/tmp`), where
/// walking up finds nothing; the toolchain files set it.
pub const PROJECT_VAR: &str = "QEMU_CROSS_CC_PROJECT";

/// The project file of this call: `QEMU_CROSS_CC_PROJECT` when set, else
/// the one found walking up from the current directory.
pub fn current() -> Result<Option<PathBuf>> {
    if let Some(f) = std::env::var_os(PROJECT_VAR).filter(|v| !v.is_empty()) {
        let f = PathBuf::from(f);
        if !f.is_absolute() {
            bail!(
                "{PROJECT_VAR} is {}; it must be the absolute path of a {FILE_NAME}",
                f.display()
            );
        }
        return Ok(Some(f));
    }
    let cwd =
        std::env::current_dir().context("cannot read the current directory (was it removed?)")?;
    Ok(find(&cwd))
}

/// A `[target.NAME]` header as TOML writes it.
fn target_key(target: &str) -> String {
    let bare = target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        format!("[target.{target}]")
    } else {
        format!("[target.\"{}\"]", shown(target))
    }
}

impl Project {
    /// Read and check the file.
    pub fn load(file: &Path) -> Result<Project> {
        let text =
            crate::state::safefs::read_config_checked(file, CAP, |opened| trusted(file, opened))?;
        Project::parse(&text, file)
    }

    /// Parse and check the text of `file`; relative paths are made
    /// absolute from the file's folder.
    pub fn parse(text: &str, file: &Path) -> Result<Project> {
        let written: Written = toml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
        let dir = file.parent().unwrap_or(Path::new("/"));
        let build = check_section(file, dir, "[build]", written.build)?;
        let mut targets = BTreeMap::new();
        for (target, section) in written.target {
            let section = check_section(file, dir, &target_key(&target), section)?;
            targets.insert(target, section);
        }
        Ok(Project {
            file: file.to_path_buf(),
            build,
            targets,
        })
    }

    /// The sections that apply to `target`, with their headers.
    fn sections(&self, target: &str) -> Vec<(String, &Section)> {
        let mut out = vec![("[build]".to_string(), &self.build)];
        if let Some(s) = self.targets.get(target) {
            out.push((target_key(target), s));
        }
        out
    }

    /// `plugin` with this project's settings for its target added.
    pub fn apply_to(&self, plugin: &Plugin) -> Result<Plugin> {
        let mut p = plugin.clone();
        let file = self.file.display();
        let mut glibc = None;
        for (key, section) in self.sections(&plugin.target) {
            // [build]'s glibc is for the targets that have a glibc (not the
            // Windows and bare-metal ones); a target's own is always read.
            let applies = key != "[build]" || plugin.glibc.is_some();
            if let Some(v) = section.glibc.as_ref().filter(|_| applies) {
                glibc = Some((key.clone(), v.clone()));
            }
            for path in &section.paths {
                if !Path::new(path).exists() {
                    bail!(
                        "bad project file {file}: {key} `paths` has {}, which does not exist; \
                         create it or remove it from the list",
                        shown(path)
                    );
                }
                if !p.manifest.paths.contains(path) {
                    p.manifest.paths.push(path.clone());
                }
            }
            p.manifest
                .env
                .extend(crate::call::passenv::caller_values(&section.passenv));
            if section.distcc.is_some() {
                p.distcc_hosts = section.distcc.clone();
            }
            if let Some(on) = section.ccache {
                p.ccache = on;
            }
            if !section.packages.is_empty() {
                p.add_packages(&section.packages).map_err(|why| {
                    anyhow::anyhow!("bad project file {file}: {key} `packages` {why}")
                })?;
            }
        }
        if let Some((key, version)) = glibc {
            p.set_glibc(&version)
                .map_err(|why| anyhow::anyhow!("bad project file {file}: {key} `glibc` {why}"))?;
        }
        Ok(p)
    }
}

/// A file in a folder every user can write to (`/tmp`) may have been put
/// there by anyone: it is used only when the caller or root owns it and
/// the name that leads to it. `opened` is the file as opened, the one that
/// is read: a file swapped in after a check by name cannot slip through.
fn trusted(file: &Path, opened: &std::fs::Metadata) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    let Ok(dir_meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if dir_meta.mode() & 0o002 == 0 {
        return Ok(());
    }
    let me = nix::unistd::geteuid().as_raw();
    let link = std::fs::symlink_metadata(file).ok();
    for uid in link.iter().map(|m| m.uid()).chain([opened.uid()]) {
        if uid != me && uid != 0 {
            bail!(
                "refusing to use {}: it is in {}, a folder every user can write to, and owned \
                 by uid {uid}, not by you (uid {me}) or root; remove it, or build in a folder \
                 of your own",
                file.display(),
                dir.display(),
            );
        }
    }
    Ok(())
}

/// A TOML or type error as one line: the file, the line and the parser's
/// message (which names an unknown key).
fn syntax_error(file: &Path, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let at = e
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| {
            let n = before.matches('\n').count();
            let line = text.lines().nth(n).unwrap_or("").trim();
            format!(" line {} (`{}`):", n + 1, excerpt(line))
        })
        .unwrap_or_default();
    anyhow::anyhow!(
        "bad project file {}:{at} {message}; fix it (the keys are {KEYS})",
        file.display()
    )
}

/// A line of the file for a message: control characters escaped, cut
/// short.
fn excerpt(line: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = line
        .chars()
        .take(MAX)
        .map(|c| match c.is_control() {
            true => c.escape_debug().to_string(),
            false => c.to_string(),
        })
        .collect();
    if line.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

/// Check a section's values; relative paths become absolute from `dir`.
fn check_section(file: &Path, dir: &Path, key: &str, mut s: Section) -> Result<Section> {
    let bad = |field: &str, why: String| {
        anyhow::anyhow!("bad project file {}: {key} `{field}` {why}", file.display())
    };
    for path in &mut s.paths {
        if path.is_empty() || path.contains([':', '\0']) {
            return Err(bad(
                "paths",
                format!(
                    "has '{}'; a path must not be empty or hold `:` or NUL characters",
                    shown(path)
                ),
            ));
        }
        *path = crate::call::mounts::normalize(Path::new(path), dir)
            .to_string_lossy()
            .to_string();
    }
    for name in &s.passenv {
        if !crate::target::names::env_name(name.strip_suffix('*').unwrap_or(name)) {
            return Err(bad(
                "passenv",
                format!(
                    "has '{}'; an entry is a variable name (letters, digits and `_`, not \
                     starting with a digit), or a prefix of one followed by `*`",
                    shown(name)
                ),
            ));
        }
    }
    crate::target::manifest::check_packages(&s.packages).map_err(|why| bad("packages", why))?;
    if let Some(hosts) = &s.distcc {
        crate::target::distcc_hosts::parse(hosts).map_err(|why| bad("distcc", why))?;
    }
    if let Some(v) = &s.glibc {
        crate::target::manifest::check_glibc(v).map_err(|why| bad("glibc", why))?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Project> {
        Project::parse(text, Path::new("/p/proj/qemu-cross-cc.toml"))
    }

    fn err(text: &str) -> String {
        let e = format!("{:#}", parse(text).unwrap_err());
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.starts_with("bad project file /p/proj/qemu-cross-cc.toml:"),
            "{e}"
        );
        e
    }

    #[test]
    fn all_keys_parse() {
        let p = parse(
            r#"
[build]
paths = ["/opt/shared", "../vendor", "inc"]
passenv = ["MY_VAR", "X_*"]
packages = ["zlib1g-dev"]
ccache = true

[target.s390x-linux-gnu]
packages = ["libbz2-dev"]
ccache = false

[target."a-b.c"]
paths = ["/x"]
"#,
        )
        .unwrap();
        assert_eq!(p.build.paths, ["/opt/shared", "/p/vendor", "/p/proj/inc"]);
        assert_eq!(p.build.passenv, ["MY_VAR", "X_*"]);
        assert_eq!(p.build.packages, ["zlib1g-dev"]);
        assert_eq!(p.targets["s390x-linux-gnu"].packages, ["libbz2-dev"]);
        assert_eq!(p.build.ccache, Some(true));
        assert_eq!(p.targets["s390x-linux-gnu"].ccache, Some(false));
        assert_eq!(p.targets["a-b.c"].paths, ["/x"]);
        let empty = parse("").unwrap();
        assert_eq!(empty.build, Section::default());
        assert!(empty.targets.is_empty());
    }

    #[test]
    fn unknown_keys_are_one_line_naming_file_line_and_key() {
        let e = err("[build]\npaths = []\ncolour = \"red\"\n");
        assert!(e.contains("line 3") && e.contains("`colour`"), "{e}");
        let e = err("[biuld]\n");
        assert!(e.contains("`biuld`"), "{e}");
        let e = err("[target.s390x-linux-gnu]\npackage = [\"x\"]\n");
        assert!(e.contains("`package`"), "{e}");
    }

    #[test]
    fn wrong_types_and_syntax_are_one_line() {
        let e = err("[build]\npaths = \"/opt\"\n");
        assert!(e.contains("line 2") && e.contains("paths"), "{e}");
        err("[build\n");
        err("[build]\npaths = [\"/a\",\n");
        err("build = 3\n");
    }

    #[test]
    fn glibc_values_are_versions() {
        for bad in ["2", "2.31.1", "two.31", "2.", "", " 2.31"] {
            let e = err(&format!("[build]\nglibc = \"{bad}\"\n"));
            assert!(
                e.contains("`glibc`") && e.contains("not a glibc version"),
                "{e}"
            );
        }
        assert_eq!(
            parse("[build]\nglibc = \"2.31\"\n")
                .unwrap()
                .build
                .glibc
                .as_deref(),
            Some("2.31")
        );
    }

    #[test]
    fn values_are_checked() {
        let e = err("[build]\npackages = [\"zlib1g-dev:s390x\"]\n");
        assert!(
            e.contains("[build] `packages`") && e.contains("zlib1g-dev:s390x"),
            "{e}"
        );
        let e = err("[target.x-y]\npackages = [\"a; rm -rf /\"]\n");
        assert!(e.contains("[target.x-y] `packages`"), "{e}");
        for bad in ["*", "1A", "A-B", "A*B", ""] {
            let e = err(&format!("[build]\npassenv = [\"{bad}\"]\n"));
            assert!(e.contains("`passenv`"), "{e}");
        }
        for bad in [r#""""#, r#""/a:/b""#, r#""/a\u0000""#] {
            let e = err(&format!("[build]\npaths = [{bad}]\n"));
            assert!(e.contains("[build] `paths`"), "{e}");
        }
    }

    #[test]
    fn found_by_walking_up_and_stops_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find(&deep), None);
        let top = dir.path().join("a").join(FILE_NAME);
        std::fs::write(&top, "").unwrap();
        assert_eq!(find(&deep), Some(top.clone()));
        let near = dir.path().join("a/b").join(FILE_NAME);
        std::fs::write(&near, "").unwrap();
        assert_eq!(find(&deep), Some(near));
        assert_eq!(find(&dir.path().join("a")), Some(top));
        assert_eq!(find(Path::new("/")), None);
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(FILE_NAME);
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = format!("{:#}", Project::load(&f).unwrap_err());
        assert!(e.contains(FILE_NAME) && e.contains("FIFO"), "{e}");
    }

    #[test]
    fn applies_build_then_target_sections() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::create_dir(dir.path().join("inc")).unwrap();
        let text = "[build]\npaths = [\"inc\"]\npackages = [\"zlib1g-dev\"]\n\
                    [target.s390x-linux-gnu]\npackages = [\"libbz2-dev\", \"zlib1g-dev\"]\n";
        let project = Project::parse(text, &file).unwrap();
        let reg = crate::target::plugin::Registry::load_matching(|t| {
            t == "s390x-linux-gnu" || t == "riscv64-linux-gnu"
        })
        .unwrap();
        let base = reg.get("s390x-linux-gnu").unwrap();
        let p = project.apply_to(base).unwrap();
        assert_eq!(p.packages, ["zlib1g-dev", "libbz2-dev"]);
        assert_eq!(p.paths, [dir.path().join("inc").display().to_string()]);
        assert_eq!(p.base_image(), base.image);
        assert!(
            p.image.starts_with(&format!("{}-lib-", base.image)),
            "{}",
            p.image
        );

        // ccache: [build]'s, then the target's own value.
        assert!(!base.ccache);
        let on = Project::parse("[build]\nccache = true\n", &file).unwrap();
        assert!(on.apply_to(base).unwrap().ccache);
        let off = "[build]\nccache = true\n[target.s390x-linux-gnu]\nccache = false\n";
        let off = Project::parse(off, &file).unwrap();
        assert!(!off.apply_to(base).unwrap().ccache);
        assert!(
            off.apply_to(reg.get("riscv64-linux-gnu").unwrap())
                .unwrap()
                .ccache
        );

        // The ports architectures have no packages in bookworm's main archive.
        let riscv = reg.get("riscv64-linux-gnu").unwrap();
        let e = format!("{:#}", project.apply_to(riscv).unwrap_err());
        assert!(
            e.contains("riscv64-linux-gnu")
                && e.contains("[build] `packages`")
                && e.contains("arm64, armel, armhf, i386, mips64el, mipsel, ppc64el, s390x")
                && !e.contains('\n'),
            "{e}"
        );

        // glibc: a floor's image replaces the target's, packages derive
        // from it; the target's own value replaces [build]'s.
        let floor = "[build]\nglibc = \"2.36\"\n[target.s390x-linux-gnu]\nglibc = \"2.31\"\n\
                     packages = [\"zlib1g-dev\"]\n";
        let p = Project::parse(floor, &file)
            .unwrap()
            .apply_to(base)
            .unwrap();
        assert_eq!(p.base_image(), "qemu-cross-cc/s390x-linux-gnu-glibc2.31");
        assert_eq!(p.dockerfile, "cross-s390x-linux-gnu-bullseye.docker");
        assert_eq!(p.glibc.as_deref(), Some("2.31"));
        assert!(
            p.image
                .starts_with("qemu-cross-cc/s390x-linux-gnu-glibc2.31-lib-"),
            "{}",
            p.image
        );
        let same = Project::parse("[build]\nglibc = \"2.36\"\n", &file).unwrap();
        let p = same.apply_to(base).unwrap();
        assert_eq!(p.base_image(), base.base_image());
        let e = format!(
            "{:#}",
            Project::parse("[build]\nglibc = \"2.28\"\n", &file)
                .unwrap()
                .apply_to(base)
                .unwrap_err()
        );
        assert!(
            e.contains("[build] `glibc` is 2.28")
                && e.contains("it has glibc 2.31, 2.36 (its image's, the default)")
                && !e.contains('\n'),
            "{e}"
        );
        // A ports target has the floor too.
        let p = Project::parse("[build]\nglibc = \"2.31\"\n", &file)
            .unwrap()
            .apply_to(riscv)
            .unwrap();
        assert_eq!(p.base_image(), "qemu-cross-cc/riscv64-linux-gnu-glibc2.31");

        // [build]'s glibc skips targets without a glibc; their own is read.
        let win =
            crate::target::plugin::Registry::load_matching(|t| t == "x86_64-w64-mingw32").unwrap();
        let win = win.get("x86_64-w64-mingw32").unwrap();
        let build = Project::parse("[build]\nglibc = \"2.31\"\n", &file).unwrap();
        assert_eq!(build.apply_to(win).unwrap().base_image(), win.base_image());
        let own = "[target.x86_64-w64-mingw32]\nglibc = \"2.31\"\n";
        let own = Project::parse(own, &file).unwrap();
        let e = format!("{:#}", own.apply_to(win).unwrap_err());
        assert!(e.contains("has only its image's C library"), "{e}");

        // A missing folder is named with its key.
        let gone = Project::parse("[build]\npaths = [\"gone\"]\n", &file).unwrap();
        let e = format!("{:#}", gone.apply_to(base).unwrap_err());
        assert!(e.contains("[build] `paths`") && e.contains("gone"), "{e}");
    }
}
