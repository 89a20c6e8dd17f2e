//! Targets come from plugins: JSON manifests naming the target triplet, its
//! image and dockerfile, the tools it provides and how to run its binaries.
//!
//! Built-in manifests are compiled into the binary. User manifests come from
//! `~/.config/qemu-cross-cc/plugins/` and then from each folder of
//! `QEMU_CROSS_CC_PLUGIN_PATH` (colon-separated); a later manifest for the
//! same target replaces an earlier one.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::image::dockerfile::{self, Library};
use crate::embedded;

/// A target's manifest, resolved: an `extends` merged in, every field
/// checked.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// The GNU target triplet, also the prefix of the shim names.
    pub target: String,
    /// The target this one was made from (see `Written::extends`).
    pub extends: Option<String>,
    /// One line for `targets`.
    pub description: String,
    /// The image tag the tools run in (before packages: see `Plugin::image`).
    pub image: String,
    /// The dockerfile (file name) the image is built from.
    pub dockerfile: String,
    /// The qemu-user name that runs the target's binaries (`qemu-<name>`).
    pub qemu: String,
    /// Where the target's libraries and headers live inside the image.
    pub sysroot: String,
    /// The target's Debian architecture (`arm64`, `armhf`, `s390x`...), for
    /// `packages`.
    pub debian_arch: Option<String>,
    /// Debian packages for the target (`zlib1g-dev`), installed as
    /// `NAME:ARCH` into an image derived from `image` (see `image::derive`).
    pub packages: Vec<String>,
    /// Tool name (the shim is `<target>-<name>`) to executable in the image.
    /// `cc` is required: it is what `qemu-cross-cc` alone runs.
    pub tools: BTreeMap<String, String>,
    /// Environment set for every tool (the caller's allowed variables win).
    pub env: BTreeMap<String, String>,
    /// Extra host folders mounted read-only for every tool.
    pub paths: Vec<String>,
}

/// The manifest file format (`plugins/<target>.json`) as written. With
/// `extends`, only `target` is required: every other field is the base's,
/// and those given replace it (`tools` and `env` entries are added to the
/// base's, `paths` and `packages` appended).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    target: String,
    extends: Option<String>,
    description: Option<String>,
    image: Option<String>,
    dockerfile: Option<String>,
    qemu: Option<String>,
    sysroot: Option<String>,
    debian_arch: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    tools: BTreeMap<String, String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    paths: Vec<String>,
}

/// The largest manifest read; a bigger one is refused, never truncated.
const MANIFEST_CAP: u64 = 1 << 20;

/// The longest target triplet and tool name: a link name must stay well
/// within a file name's 255 bytes.
const NAME_MAX: usize = 100;

/// The tool name of the runner every target has (`<target>-run`, see
/// `runner`); no manifest may define a tool of that name.
pub const RUNNER: &str = "run";

/// The longest image name (without tag and digest), as in the distribution
/// reference grammar.
const IMAGE_NAME_MAX: usize = 255;

/// An image reference, by the distribution reference grammar:
/// `[registry[:port]/]path[:tag][@sha256:digest]`. The first component is a
/// registry only when it has a `.` or a port or is `localhost` (as docker
/// reads it); path components are lowercase.
static IMAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?P<name>(?:(?:(?:",
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
        r"|localhost|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?",
        r"|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?:[0-9]+)/)?",
        r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*",
        r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)",
        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",
        r"(?:@sha256:[0-9a-f]{64})?$",
    ))
    .expect("valid regex")
});

/// A target triplet (the prefix of every link name).
static TARGET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$").expect("valid regex"));

/// A tool name (the suffix of a link name): `gcc`, `g++`, `pkg-config`...
static TOOL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$").expect("valid regex"));

/// A qemu-user name (`qemu-<name>`).
static QEMU: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9_]+$").expect("valid regex"));

/// An environment variable name.
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"));

/// A refused manifest field: its name and why (completing "field `X` ...").
struct Invalid(&'static str, String);

/// A value for a message: escaped (one line, control characters visible)
/// and cut short.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let head: String = value.chars().take(MAX).collect();
    let mut out = head.escape_debug().to_string();
    if value.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

impl Manifest {
    /// Every field checked for what the tool will do with it: image names go
    /// to the engine, targets and tool names become link names, paths
    /// become mounts.
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check_target(&self.target).map_err(|w| Invalid("target", w))?;
        if let Some(base) = &self.extends {
            check_target(base).map_err(|w| Invalid("extends", w))?;
        }
        check_image(&self.image).map_err(|w| Invalid("image", w))?;
        check_dockerfile(&self.dockerfile).map_err(|w| Invalid("dockerfile", w))?;
        check_qemu(&self.qemu).map_err(|w| Invalid("qemu", w))?;
        check_tools(&self.tools).map_err(|w| Invalid("tools", w))?;
        check_env(&self.env).map_err(|w| Invalid("env", w))?;
        self.paths
            .iter()
            .try_for_each(|p| check_path(p))
            .map_err(|w| Invalid("paths", w))?;
        if let Some(arch) = &self.debian_arch {
            check_debian_arch(arch).map_err(|w| Invalid("debian_arch", w))?;
        }
        check_packages(&self.packages).map_err(|w| Invalid("packages", w))
    }

    /// The image the tools run in: `image`, or with packages the image
    /// derived from it (see `image::derive`).
    fn run_image(&self) -> std::result::Result<String, String> {
        if self.packages.is_empty() {
            return Ok(self.image.clone());
        }
        let arch = self.debian_arch.as_deref().ok_or_else(|| {
            format!(
                "needs the target's Debian architecture to install packages for {}: set \
                 `debian_arch` in its manifest (such as arm64, armhf or s390x)",
                self.target
            )
        })?;
        if !DEBIAN_MAIN_ARCHS.contains(&arch) {
            let why = if DEBIAN_PORTS_ARCHS.contains(&arch) {
                format!(" ({arch} is a debian-ports architecture)")
            } else if arch == "mips" {
                " (big-endian mips left Debian with bookworm)".to_string()
            } else {
                String::new()
            };
            return Err(format!(
                "cannot be installed for target {}: its Debian architecture {arch} is not in \
                 Debian bookworm's main archive, which has packages only for {}{why}; remove \
                 the packages for this target",
                self.target,
                DEBIAN_MAIN_ARCHS.join(", ")
            ));
        }
        let name = IMAGE
            .captures(&self.image)
            .and_then(|c| c.name("name"))
            .map_or(self.image.as_str(), |n| n.as_str());
        crate::image::derive::tag(name, &self.image, arch, &self.packages)
    }
}

/// The Debian architectures whose packages Debian bookworm's main archive
/// has (the others, riscv64 among them, are in debian-ports).
pub const DEBIAN_MAIN_ARCHS: &[&str] = &[
    "amd64", "arm64", "armel", "armhf", "i386", "mips64el", "mipsel", "ppc64el", "s390x",
];

/// The debian-ports architectures (not reachable from the images).
const DEBIAN_PORTS_ARCHS: &[&str] = &[
    "alpha",
    "hppa",
    "hurd-amd64",
    "hurd-i386",
    "ia64",
    "loong64",
    "m68k",
    "powerpc",
    "ppc64",
    "riscv64",
    "sh4",
    "sparc64",
    "x32",
];

/// A Debian package name (Debian policy 5.6.1); it goes into a shell
/// command line of the derived image's dockerfile.
static PACKAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9+.-]+$").expect("valid regex"));

/// A Debian architecture name (`arm64`, `ppc64el`, `musl-linux-arm64`).
static DEBIAN_ARCH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:-[a-z0-9]+)*$").expect("valid regex"));

/// Debian package names, without an architecture (it is added).
pub(crate) fn check_packages(packages: &[String]) -> std::result::Result<(), String> {
    for p in packages {
        if !PACKAGE.is_match(p) || p.len() > NAME_MAX {
            return Err(format!(
                "has '{}'; a Debian package name is lowercase letters, digits and `+.-`, at \
                 least two characters, starting with a letter or digit, without `:ARCH` (it is \
                 added), such as zlib1g-dev",
                shown(p)
            ));
        }
    }
    Ok(())
}

fn check_debian_arch(arch: &str) -> std::result::Result<(), String> {
    if arch.len() <= NAME_MAX && DEBIAN_ARCH.is_match(arch) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a Debian architecture name such as arm64, armhf or ppc64el",
        shown(arch)
    ))
}

fn check_target(target: &str) -> std::result::Result<(), String> {
    if target.len() <= NAME_MAX && target.contains('-') && TARGET.is_match(target) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a target triplet such as aarch64-linux-gnu: letters, digits \
         and `_.+-`, at least one `-`, not starting with `.` or `-`, at most {NAME_MAX} characters",
        shown(target)
    ))
}

fn check_image(image: &str) -> std::result::Result<(), String> {
    let name_len = IMAGE
        .captures(image)
        .and_then(|c| c.name("name"))
        .map(|n| n.len());
    if name_len.is_some_and(|n| n <= IMAGE_NAME_MAX) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be an image reference [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] \
         with a lowercase NAME, such as qemu-cross-cc/aarch64-linux-gnu",
        shown(image)
    ))
}

fn check_dockerfile(file: &str) -> std::result::Result<(), String> {
    let plain =
        !file.starts_with('.') && !file.contains('/') && !file.chars().any(char::is_control);
    if plain && file.len() > ".docker".len() && file.ends_with(".docker") {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a plain file name ending in .docker (no `/`, not starting with `.`)",
        shown(file)
    ))
}

fn check_qemu(qemu: &str) -> std::result::Result<(), String> {
    if QEMU.is_match(qemu) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a qemu-user name of lowercase letters, digits and `_`, such as aarch64",
        shown(qemu)
    ))
}

fn check_tools(tools: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    if !tools.contains_key("cc") {
        return Err("must map \"cc\" to the C compiler in the image".into());
    }
    if tools.contains_key(RUNNER) {
        return Err(format!(
            "may not define the tool \"{RUNNER}\": every target's <target>-{RUNNER} is the \
             runner of its programs (qemu-user in its image); rename that tool"
        ));
    }
    for (name, program) in tools {
        check_tool_name(name)?;
        check_program(name, program)?;
    }
    Ok(())
}

fn check_tool_name(name: &str) -> std::result::Result<(), String> {
    if name.len() <= NAME_MAX && TOOL.is_match(name) {
        return Ok(());
    }
    Err(format!(
        "has the tool name '{}'; a tool name is letters, digits and `_.+-`, not starting with \
         `.` or `-`, at most {NAME_MAX} characters (such as gcc, g++, pkg-config)",
        shown(name)
    ))
}

fn check_program(name: &str, program: &str) -> std::result::Result<(), String> {
    if !program.is_empty() && !program.starts_with('-') && !program.chars().any(char::is_control) {
        return Ok(());
    }
    Err(format!(
        "maps '{}' to '{}'; it must name an executable in the image (not empty, no control \
         characters, not starting with `-`)",
        shown(name),
        shown(program)
    ))
}

fn check_env(env: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    for (name, value) in env {
        if !ENV_NAME.is_match(name) {
            return Err(format!(
                "has the variable name '{}'; a name is letters, digits and `_`, not starting \
                 with a digit",
                shown(name)
            ));
        }
        if value.contains('\0') {
            return Err(format!(
                "sets {name} to a value with a NUL character, which no environment can hold"
            ));
        }
    }
    Ok(())
}

fn check_path(path: &str) -> std::result::Result<(), String> {
    let parent = Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir);
    if path.starts_with('/') && !parent && !path.contains([':', '\0']) {
        return Ok(());
    }
    Err(format!(
        "entry '{}' must be an absolute path without `..` components, `:` or NUL characters",
        shown(path)
    ))
}

/// A loaded plugin: its manifest and where it came from.
#[derive(Clone, Debug)]
pub struct Plugin {
    pub manifest: Manifest,
    /// The manifest file; None for built-in plugins.
    pub file: Option<PathBuf>,
    /// The image the tools run in: the manifest's `image`, or, when the
    /// target has packages, the image derived from it (see `image::derive`).
    pub image: String,
    /// distcc servers for this target's compiles, from the project file
    /// (`distcc`); `QEMU_CROSS_CC_DISTCC_HOSTS` comes first.
    pub distcc_hosts: Option<String>,
    /// The manifest file that named the dockerfile (an extending manifest
    /// inherits its base's); None for a built-in one.
    dockerfile_from: Option<PathBuf>,
}

impl std::ops::Deref for Plugin {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

/// The error for a refused field of the manifest `origin`.
fn bad(origin: &str, Invalid(field, why): Invalid) -> anyhow::Error {
    anyhow::anyhow!("bad plugin manifest {origin}: field `{field}` {why}")
}

/// Append the values not there yet.
fn append_new(to: &mut Vec<String>, values: impl IntoIterator<Item = String>) {
    for v in values {
        if !to.contains(&v) {
            to.push(v);
        }
    }
}

/// A manifest as read, before its `extends` is resolved.
#[derive(Clone, Debug)]
struct Entry {
    written: Written,
    /// Names it in messages: `built-in x.json` or the file's path.
    origin: String,
    file: Option<PathBuf>,
}

impl Entry {
    /// Parse a manifest. `file_stem`, when given, is its file name without
    /// `.json`, which the target must equal.
    fn parse(
        text: &str,
        origin: String,
        file: Option<PathBuf>,
        file_stem: Option<&str>,
    ) -> Result<Entry> {
        let written: Written = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("bad plugin manifest {origin}: {e}"))?;
        if let Some(stem) = file_stem.filter(|s| *s != written.target) {
            let why = format!(
                "is '{}' but the file is named {}.json; they must match",
                shown(&written.target),
                shown(stem)
            );
            return Err(bad(&origin, Invalid("target", why)));
        }
        Ok(Entry {
            written,
            origin,
            file,
        })
    }
}

impl Plugin {
    /// Parse and check a manifest that extends no other. `origin` names it
    /// in errors; `file_stem`, when given, is its file name without
    /// `.json`, which the target must equal.
    #[cfg(test)]
    pub(crate) fn parse(text: &str, origin: &str, file_stem: Option<&str>) -> Result<Plugin> {
        let entry = Entry::parse(text, origin.to_string(), None, file_stem)?;
        if let Some(base) = &entry.written.extends {
            let why = format!("is '{}', which no plugin provides", shown(base));
            return Err(bad(origin, Invalid("extends", why)));
        }
        Plugin::resolve(entry, None)
    }

    /// A manifest merged onto the plugin it extends (`base`), then checked.
    fn resolve(entry: Entry, base: Option<&Plugin>) -> Result<Plugin> {
        let Entry {
            written: w,
            origin,
            file,
        } = entry;
        let b = base.map(|p| &p.manifest);
        let pick = |own: Option<String>, inherited: Option<&String>, field: &str| {
            own.or_else(|| inherited.cloned()).ok_or_else(|| {
                anyhow::anyhow!(
                    "bad plugin manifest {origin}: missing field `{field}` (every manifest \
                     needs it unless it `extends` another target)"
                )
            })
        };
        let dockerfile_from = match (&w.dockerfile, base) {
            (Some(_), _) => file.clone(),
            (None, Some(p)) => p.dockerfile_from.clone(),
            (None, None) => None,
        };
        let mut tools = b.map(|m| m.tools.clone()).unwrap_or_default();
        tools.extend(w.tools);
        let mut env = b.map(|m| m.env.clone()).unwrap_or_default();
        env.extend(w.env);
        let mut paths = b.map(|m| m.paths.clone()).unwrap_or_default();
        append_new(&mut paths, w.paths);
        let mut packages = b.map(|m| m.packages.clone()).unwrap_or_default();
        append_new(&mut packages, w.packages);
        let manifest = Manifest {
            image: pick(w.image, b.map(|m| &m.image), "image")?,
            dockerfile: pick(w.dockerfile, b.map(|m| &m.dockerfile), "dockerfile")?,
            qemu: pick(w.qemu, b.map(|m| &m.qemu), "qemu")?,
            sysroot: pick(w.sysroot, b.map(|m| &m.sysroot), "sysroot")?,
            description: w
                .description
                .or_else(|| b.map(|m| m.description.clone()))
                .unwrap_or_default(),
            debian_arch: w
                .debian_arch
                .or_else(|| b.and_then(|m| m.debian_arch.clone())),
            target: w.target,
            extends: w.extends,
            tools,
            env,
            paths,
            packages,
        };
        manifest.validate().map_err(|i| bad(&origin, i))?;
        let image = manifest
            .run_image()
            .map_err(|why| bad(&origin, Invalid("packages", why)))?;
        Ok(Plugin {
            manifest,
            file,
            image,
            dockerfile_from,
            distcc_hosts: None,
        })
    }

    /// The image the tools run in, without its tag or digest.
    pub fn image_name(&self) -> &str {
        IMAGE
            .captures(&self.image)
            .and_then(|c| c.name("name"))
            .map_or(self.image.as_str(), |n| n.as_str())
    }

    /// The target's own image, built from its dockerfile (the tools run in
    /// `image`, derived from it when there are packages).
    pub fn base_image(&self) -> &str {
        &self.manifest.image
    }

    /// Add Debian packages (a project's): the tools then run in the image
    /// derived with them. The error completes "`packages` ...".
    pub fn add_packages(&mut self, packages: &[String]) -> std::result::Result<(), String> {
        check_packages(packages)?;
        append_new(&mut self.manifest.packages, packages.iter().cloned());
        self.image = self.manifest.run_image()?;
        Ok(())
    }

    /// `builtin` or the manifest's path, for messages.
    pub fn origin(&self) -> String {
        match &self.file {
            Some(f) => f.display().to_string(),
            None => "built-in".to_string(),
        }
    }

    /// The dockerfile: next to the user manifest that named it (or in
    /// `../dockerfiles/`) first, then the standard search path.
    pub fn dockerfile(&self, library: &Library) -> Result<dockerfile::Found> {
        let name = self.manifest.dockerfile.trim_end_matches(".docker");
        let mut dirs = Vec::new();
        if let Some(dir) = self.dockerfile_from.as_deref().and_then(Path::parent) {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("../dockerfiles"));
        }
        for d in &dirs {
            let path = d.join(&self.manifest.dockerfile);
            // Anything there is read (a FIFO or device is refused by name).
            if path.exists() {
                return Ok(dockerfile::Found {
                    text: dockerfile::read(&path)?,
                    dir: Some(d.clone()),
                });
            }
        }
        library
            .find(name)
            .with_context(|| format!("target {}", self.target))
    }

    /// The shim names this plugin provides.
    /// Every tool of the manifest, and the runner `<target>-run`.
    pub fn shim_names(&self) -> impl Iterator<Item = String> + '_ {
        self.tools
            .keys()
            .map(String::as_str)
            .chain(std::iter::once(RUNNER))
            .map(move |t| format!("{}-{t}", self.target))
    }
}

/// All known targets.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: BTreeMap<String, Plugin>,
}

/// The user plugin folders, in increasing precedence.
pub fn user_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(c) = crate::state::paths::config_dir() {
        dirs.push(c.join("plugins"));
    }
    if let Some(p) = std::env::var_os("QEMU_CROSS_CC_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&p).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

impl Registry {
    /// Built-in plugins, then the user's.
    pub fn load() -> Result<Registry> {
        Registry::load_matching(|_| true)
    }

    /// Only the plugins whose target (file name) `wanted` accepts: the
    /// compile path parses the one it needs (and those it extends), not
    /// every manifest. Every manifest of a wanted target is checked; the
    /// last one wins.
    pub fn load_matching(wanted: impl Fn(&str) -> bool) -> Result<Registry> {
        Registry::load_dirs(&user_dirs(), wanted)
    }

    /// The built-in plugins and those of `dirs` that `wanted` accepts.
    fn load_dirs(dirs: &[PathBuf], wanted: impl Fn(&str) -> bool) -> Result<Registry> {
        let mut loader = Loader::new(dirs);
        let targets: Vec<String> = loader
            .sources
            .keys()
            .filter(|t| wanted(t))
            .cloned()
            .collect();
        let mut reg = Registry::default();
        for target in targets {
            for level in 0..loader.entries(&target)?.len() {
                let p = loader.resolve(&target, level, &mut Vec::new())?;
                reg.plugins.insert(p.target.clone(), p);
            }
        }
        Ok(reg)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.plugins.keys().map(String::as_str).collect()
    }

    pub fn find(&self, target: &str) -> Option<&Plugin> {
        self.plugins.get(target)
    }

    /// The plugin for `target`, or an error listing the known targets.
    pub fn get(&self, target: &str) -> Result<&Plugin> {
        self.plugins.get(target).ok_or_else(|| self.unknown(target))
    }

    /// The error for a target no plugin provides, listing the known ones.
    pub fn unknown(&self, target: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "unknown target '{target}'; known targets: {} (add a plugin to {} for others)",
            self.names().join(", "),
            user_dirs()
                .first()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "QEMU_CROSS_CC_PLUGIN_PATH".into())
        )
    }

    /// The plugin and tool a shim name (`aarch64-linux-gnu-gcc`) stands for.
    pub fn by_shim_name(&self, name: &str) -> Option<(&Plugin, String)> {
        self.plugins.values().find_map(|p| {
            let tool = name.strip_prefix(p.target.as_str())?.strip_prefix('-')?;
            (p.tools.contains_key(tool) || tool == RUNNER).then(|| (p, tool.to_string()))
        })
    }
}

/// Where a manifest comes from, before it is read.
enum Source {
    /// A built-in manifest: its file name and text.
    Builtin(&'static str, &'static str),
    File(PathBuf),
}

impl Source {
    fn read(&self, stem: &str) -> Result<Entry> {
        match self {
            Source::Builtin(name, text) => {
                Entry::parse(text, format!("built-in {name}"), None, Some(stem))
            }
            Source::File(f) => {
                let text = crate::state::safefs::read_config(f, MANIFEST_CAP)
                    .with_context(|| format!("bad plugin manifest {}", f.display()))?;
                Entry::parse(&text, f.display().to_string(), Some(f.clone()), Some(stem))
            }
        }
    }
}

/// A manifest of the chain being resolved: its target and its place among
/// that target's manifests.
type Level = (String, usize);

/// Every manifest there is, by target (file name) in increasing precedence,
/// read and resolved only when needed.
struct Loader {
    sources: BTreeMap<String, Vec<Source>>,
    read: BTreeMap<String, Vec<Entry>>,
    resolved: BTreeMap<Level, Plugin>,
}

impl Loader {
    /// The built-in manifests, then those of `dirs` (file names only).
    fn new(dirs: &[PathBuf]) -> Loader {
        let mut sources: BTreeMap<String, Vec<Source>> = BTreeMap::new();
        for (name, text) in embedded::PLUGINS {
            let stem = name.trim_end_matches(".json").to_string();
            sources
                .entry(stem)
                .or_default()
                .push(Source::Builtin(name, text));
        }
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                if let Some(stem) = f.file_stem().and_then(|s| s.to_str()) {
                    let stem = stem.to_string();
                    sources.entry(stem).or_default().push(Source::File(f));
                }
            }
        }
        Loader {
            sources,
            read: BTreeMap::new(),
            resolved: BTreeMap::new(),
        }
    }

    /// The manifests of `target` (none for an unknown one), read once.
    fn entries(&mut self, target: &str) -> Result<&[Entry]> {
        if !self.read.contains_key(target) {
            let mut out = Vec::new();
            for source in self.sources.get(target).into_iter().flatten() {
                out.push(source.read(target)?);
            }
            self.read.insert(target.to_string(), out);
        }
        Ok(self.read.get(target).map_or(&[], Vec::as_slice))
    }

    /// The plugin of the `level`th manifest of `target`, merged onto the
    /// one it extends: another target's winning manifest, or, when it
    /// extends its own target, the manifest it replaces. `chain` holds the
    /// manifests being resolved above it.
    fn resolve(&mut self, target: &str, level: usize, chain: &mut Vec<Level>) -> Result<Plugin> {
        let here = (target.to_string(), level);
        if let Some(p) = self.resolved.get(&here) {
            return Ok(p.clone());
        }
        let entry = self.entries(target)?[level].clone();
        let base = match entry.written.extends.clone() {
            None => None,
            Some(name) => {
                check_target(&name).map_err(|w| bad(&entry.origin, Invalid("extends", w)))?;
                let below = if name == target {
                    level.checked_sub(1)
                } else {
                    self.entries(&name)?.len().checked_sub(1)
                };
                let Some(below) = below else {
                    return Err(self.unknown_base(&entry, &name));
                };
                chain.push(here.clone());
                let next = (name.clone(), below);
                if chain.contains(&next) {
                    let names: Vec<&str> = chain.iter().map(|(t, _)| t.as_str()).collect();
                    let why = format!("loops: {} -> {name}; break the cycle", names.join(" -> "));
                    return Err(bad(&entry.origin, Invalid("extends", why)));
                }
                let p = self.resolve(&name, below, chain)?;
                chain.pop();
                Some(p)
            }
        };
        let p = Plugin::resolve(entry, base.as_ref())?;
        self.resolved.insert(here, p.clone());
        Ok(p)
    }

    fn unknown_base(&self, entry: &Entry, name: &str) -> anyhow::Error {
        let why = if name == entry.written.target {
            format!(
                "is its own target '{name}', but no earlier manifest of {name} exists for it to \
                 extend (a user manifest may extend the built-in or earlier one it replaces)"
            )
        } else {
            let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            format!(
                "is '{}', which no plugin provides (known targets: {}); fix the name or add \
                 that plugin",
                shown(name),
                known.join(", ")
            )
        };
        bad(&entry.origin, Invalid("extends", why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"target":"t-linux-gnu","image":"img","dockerfile":"x.docker",
        "qemu":"t","sysroot":"/usr/t","tools":{"cc":"t-gcc","ar":"t-ar"}}"#;

    #[test]
    fn good_manifest() {
        let p = Plugin::parse(GOOD, "x", Some("t-linux-gnu")).unwrap();
        assert_eq!(p.image, "img");
        let names: Vec<String> = p.shim_names().collect();
        assert_eq!(
            names,
            vec!["t-linux-gnu-ar", "t-linux-gnu-cc", "t-linux-gnu-run"]
        );
    }

    #[test]
    fn run_is_the_runner_of_every_target() {
        refuses(
            "tools",
            &[serde_json::json!({"cc": "t-gcc", "run": "t-run"})],
        );
        let reg = Registry::load().unwrap();
        for p in reg.iter() {
            let (q, tool) = reg.by_shim_name(&format!("{}-run", p.target)).unwrap();
            assert_eq!(
                (q.target.as_str(), tool.as_str()),
                (p.target.as_str(), RUNNER)
            );
        }
    }

    #[test]
    fn unknown_field_is_named() {
        let bad = GOOD.replace("\"qemu\"", "\"qemuu\"");
        let e = Plugin::parse(&bad, "/p/t.json", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/p/t.json") && e.contains("qemuu"), "{e}");
    }

    #[test]
    fn missing_cc_is_named() {
        let bad = GOOD.replace("\"cc\"", "\"c\"");
        let e = Plugin::parse(&bad, "f", None).unwrap_err().to_string();
        assert!(e.contains("`tools`"), "{e}");
    }

    #[test]
    fn file_name_must_match_target() {
        let e = Plugin::parse(GOOD, "f", Some("other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`target`"), "{e}");
    }

    /// GOOD with `field` set to `value`, parsed.
    fn with(field: &str, value: serde_json::Value) -> Result<Plugin> {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v[field] = value;
        Plugin::parse(&v.to_string(), "/p/m.json", None)
    }

    /// Every value accepted for `field`.
    fn accepts(field: &str, values: &[serde_json::Value]) {
        for value in values {
            if let Err(e) = with(field, value.clone()) {
                panic!("{field} = {value}: {e}");
            }
        }
    }

    /// Every value refused for `field`, with one line naming file and field.
    fn refuses(field: &str, values: &[serde_json::Value]) {
        for value in values {
            let e = match with(field, value.clone()) {
                Ok(_) => panic!("{field} = {value} was accepted"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                e.starts_with("bad plugin manifest /p/m.json: field `")
                    && e.contains(&format!("`{field}`")),
                "{field} = {value}: {e}"
            );
            assert!(!e.contains('\n') && e.len() < 400, "{e}");
        }
    }

    fn strs(values: &[&str]) -> Vec<serde_json::Value> {
        values.iter().map(|v| serde_json::json!(v)).collect()
    }

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_must_be_a_reference() {
        accepts(
            "image",
            &strs(&[
                "img",
                "qemu-cross-cc/aarch64-linux-gnu",
                "debian:12-slim",
                "docker.io/library/debian:12-slim",
                "localhost/x",
                "localhost:5000/a/b:v1.0",
                "127.0.0.1:5000/x",
                "my-reg:5000/x",
                "[::1]:5000/x",
                "Registry.Example.com/a__b/c-d--e/f.g:Tag_1",
                &format!("x@sha256:{DIGEST}"),
                &format!("a/b:t@sha256:{DIGEST}"),
                &format!("x:{}", "t".repeat(128)),
            ]),
        );
        refuses(
            "image",
            &strs(&[
                "",
                "rel sp --privileged",
                "--privileged",
                "Upper",
                "MyOrg/x",
                "x:",
                ":t",
                "x:-t",
                "/x",
                "x/",
                "x//y",
                "-x",
                "x_-y",
                "x..y",
                "x___y",
                "a\nb",
                "x@sha256:abc",
                &format!("x@sha512:{DIGEST}"),
                &format!("x:{}", "t".repeat(129)),
                &"a".repeat(256),
                &"a".repeat(1000),
            ]),
        );
    }

    #[test]
    fn target_must_be_a_triplet() {
        let json = |t: &str| GOOD.replace("t-linux-gnu", t);
        for good in [
            "aarch64-linux-gnu",
            "x86_64-w64-mingw32",
            "arm-none-eabi",
            "a-b.c+d_e",
        ] {
            Plugin::parse(&json(good), "/p/m.json", Some(good)).unwrap();
        }
        for bad in [
            "..",
            ".",
            "",
            "-x",
            ".x-y",
            "a/b-c",
            "a b-c",
            "nodash",
            "a-\\nb",
            &format!("a-{}", "b".repeat(99)),
        ] {
            let e = Plugin::parse(&json(bad), "/p/m.json", None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("field `target`"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn tool_names_become_link_names() {
        let tools = |name: &str| serde_json::json!({"cc": "t-gcc", name: "t-tool"});
        let good = [
            "g++",
            "c++",
            "c++filt",
            "gcc-ar",
            "pkg-config",
            "addr2line",
            "_x",
            "+x",
            "x.y",
        ];
        accepts("tools", &good.map(tools));
        let long = "x".repeat(101);
        let bad = [
            "a/b", "/", ".", "..", ".x", "-x", "", "a b", "a\tb", "é", &long,
        ];
        refuses("tools", &bad.map(tools));
    }

    #[test]
    fn tool_programs_are_executables() {
        let tools = |program: &str| serde_json::json!({"cc": program});
        let good = ["t-gcc", "/usr/bin/t-gcc", "gcc-12", "with space"];
        accepts("tools", &good.map(tools));
        let bad = ["", "-rf", "--help", "a\nb", "a\0b", "\t", "a\u{85}b"];
        refuses("tools", &bad.map(tools));
        refuses("tools", &[serde_json::json!({"gcc": "t-gcc"})]);
    }

    #[test]
    fn qemu_is_a_qemu_user_name() {
        accepts(
            "qemu",
            &strs(&["aarch64", "ppc64le", "i386", "x86_64", "sparc64"]),
        );
        refuses(
            "qemu",
            &strs(&["", "Arm", "qemu-arm", "../x", "a b", "a/b", "arm\n"]),
        );
    }

    #[test]
    fn dockerfile_is_a_plain_file_name() {
        accepts(
            "dockerfile",
            &strs(&["x.docker", "cross-aarch64-linux-gnu.docker", "a b.docker"]),
        );
        refuses(
            "dockerfile",
            &strs(&[
                "",
                "x",
                ".docker",
                ".x.docker",
                "../x.docker",
                "a/x.docker",
                "/x.docker",
                "x.dockerfile",
                "a\nb.docker",
            ]),
        );
    }

    #[test]
    fn env_names_and_values() {
        accepts(
            "env",
            &[serde_json::json!({"PKG_CONFIG_LIBDIR": "/x", "_A1": "", "b": "x y\nz"})],
        );
        let bad = ["1A", "A-B", "", "A=B", "A B", "Ä"];
        refuses("env", &bad.map(|k| serde_json::json!({ k: "v" })));
        refuses("env", &[serde_json::json!({"A": "a\u{0}b"})]);
    }

    #[test]
    fn paths_are_absolute_mountable_folders() {
        accepts(
            "paths",
            &[serde_json::json!([
                "/opt/x", "/opt/x y", "/opt/./x", "/a..b"
            ])],
        );
        for bad in [
            "rel", "", "..", "/a/../b", "/a/..", "/a:ro", "/a\u{0}", "./a",
        ] {
            refuses("paths", &[serde_json::json!(["/ok", bad])]);
        }
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let e = with("qemu", serde_json::json!("X".repeat(1 << 16)))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400 && e.contains("XXX..."), "{e}");
    }

    /// The registry of the built-ins and `files` (name, JSON) written to a
    /// plugin folder; the folder is returned too.
    fn with_files(files: &[(&str, serde_json::Value)]) -> (tempfile::TempDir, Result<Registry>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, json) in files {
            std::fs::write(dir.path().join(name), json.to_string()).unwrap();
        }
        let reg = Registry::load_dirs(&[dir.path().to_path_buf()], |_| true);
        (dir, reg)
    }

    fn one_line(e: anyhow::Error) -> String {
        let e = format!("{e:#}");
        assert!(!e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn extends_inherits_every_field_and_adds_packages() {
        let (_d, reg) = with_files(&[(
            "s390x-zlib-linux-gnu.json",
            serde_json::json!({"target": "s390x-zlib-linux-gnu", "extends": "s390x-linux-gnu",
                "packages": ["zlib1g-dev"]}),
        )]);
        let reg = reg.unwrap();
        let base = reg.get("s390x-linux-gnu").unwrap();
        let p = reg.get("s390x-zlib-linux-gnu").unwrap();
        assert_eq!(p.extends.as_deref(), Some("s390x-linux-gnu"));
        assert_eq!(p.tools, base.tools);
        assert_eq!(
            (&p.qemu, &p.sysroot, &p.dockerfile, &p.description),
            (
                &base.qemu,
                &base.sysroot,
                &base.dockerfile,
                &base.description
            )
        );
        assert_eq!(p.debian_arch.as_deref(), Some("s390x"));
        assert_eq!(p.base_image(), base.image);
        assert_eq!(p.packages, ["zlib1g-dev"]);
        assert!(
            p.image.starts_with("qemu-cross-cc/s390x-linux-gnu-lib-"),
            "{}",
            p.image
        );
        assert!(base.packages.is_empty() && base.image == base.base_image());
        // Its dockerfile is the built-in one.
        let lib = Library::standard(&[]);
        assert_eq!(
            p.dockerfile(&lib).unwrap().text,
            base.dockerfile(&lib).unwrap().text
        );
        let (q, tool) = reg.by_shim_name("s390x-zlib-linux-gnu-gcc").unwrap();
        assert_eq!(
            (q.target.as_str(), tool.as_str()),
            ("s390x-zlib-linux-gnu", "gcc")
        );
    }

    #[test]
    fn extends_overrides_and_adds() {
        let (dir, reg) = with_files(&[
            (
                "base-linux-gnu.json",
                serde_json::json!({"target": "base-linux-gnu", "image": "b", "dockerfile": "b.docker",
                    "qemu": "b", "sysroot": "/b", "debian_arch": "arm64", "packages": ["libx-dev"],
                    "tools": {"cc": "b-gcc", "ar": "b-ar"}, "env": {"A": "1", "B": "2"},
                    "paths": ["/opt/b"], "description": "base"}),
            ),
            (
                "top-linux-gnu.json",
                serde_json::json!({"target": "top-linux-gnu", "extends": "base-linux-gnu",
                    "image": "t", "tools": {"ar": "t-ar", "nm": "t-nm"}, "env": {"B": "3"},
                    "paths": ["/opt/t", "/opt/b"], "packages": ["liby-dev", "libx-dev"]}),
            ),
        ]);
        let reg = reg.unwrap();
        let p = reg.get("top-linux-gnu").unwrap();
        assert_eq!((p.qemu.as_str(), p.sysroot.as_str()), ("b", "/b"));
        assert_eq!((p.description.as_str(), p.base_image()), ("base", "t"));
        let tools: Vec<(&str, &str)> = p
            .tools
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(tools, [("ar", "t-ar"), ("cc", "b-gcc"), ("nm", "t-nm")]);
        let env: Vec<(&str, &str)> = p
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env, [("A", "1"), ("B", "3")]);
        assert_eq!(p.paths, ["/opt/b", "/opt/t"]);
        assert_eq!(p.packages, ["libx-dev", "liby-dev"]);
        assert!(p.image.starts_with("t-lib-"), "{}", p.image);
        // The base's dockerfile is found next to the base's manifest.
        std::fs::write(dir.path().join("b.docker"), "FROM scratch\n").unwrap();
        let found = p.dockerfile(&Library::of_dirs(Vec::new())).unwrap();
        assert_eq!(found.text, "FROM scratch\n");
    }

    #[test]
    fn extends_its_own_target_means_the_manifest_it_replaces() {
        let (_d, reg) = with_files(&[(
            "s390x-linux-gnu.json",
            serde_json::json!({"target": "s390x-linux-gnu", "extends": "s390x-linux-gnu",
                "packages": ["zlib1g-dev"]}),
        )]);
        let reg = reg.unwrap();
        let p = reg.get("s390x-linux-gnu").unwrap();
        assert_eq!(p.base_image(), "qemu-cross-cc/s390x-linux-gnu");
        assert_eq!(p.packages, ["zlib1g-dev"]);
        let (_d, reg) = with_files(&[(
            "new-linux-gnu.json",
            serde_json::json!({"target": "new-linux-gnu", "extends": "new-linux-gnu"}),
        )]);
        let e = one_line(reg.unwrap_err());
        assert!(
            e.contains("field `extends`") && e.contains("no earlier manifest"),
            "{e}"
        );
    }

    #[test]
    fn extends_of_an_unknown_target_or_a_cycle_is_one_error() {
        let (d, reg) = with_files(&[(
            "x-linux-gnu.json",
            serde_json::json!({"target": "x-linux-gnu", "extends": "vax-linux-gnu"}),
        )]);
        let e = one_line(reg.unwrap_err());
        let file = d.path().join("x-linux-gnu.json");
        assert!(
            e.starts_with(&format!(
                "bad plugin manifest {}: field `extends`",
                file.display()
            )) && e.contains("'vax-linux-gnu', which no plugin provides")
                && e.contains("s390x-linux-gnu"),
            "{e}"
        );
        let (_d, reg) = with_files(&[
            (
                "a-x.json",
                serde_json::json!({"target": "a-x", "extends": "b-x"}),
            ),
            (
                "b-x.json",
                serde_json::json!({"target": "b-x", "extends": "c-x"}),
            ),
            (
                "c-x.json",
                serde_json::json!({"target": "c-x", "extends": "a-x"}),
            ),
        ]);
        let e = one_line(reg.unwrap_err());
        assert!(
            e.contains("field `extends` loops: a-x -> b-x -> c-x -> a-x"),
            "{e}"
        );
        let (_d, reg) = with_files(&[(
            "a-x.json",
            serde_json::json!({"target": "a-x", "extends": "../etc"}),
        )]);
        assert!(one_line(reg.unwrap_err()).contains("field `extends` is '../etc'"));
    }

    #[test]
    fn without_extends_the_fields_are_required() {
        for field in ["image", "dockerfile", "qemu", "sysroot"] {
            let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            v.as_object_mut().unwrap().remove(field);
            let e = one_line(Plugin::parse(&v.to_string(), "/p/m.json", None).unwrap_err());
            assert!(
                e.starts_with("bad plugin manifest /p/m.json: missing field")
                    && e.contains(&format!("`{field}`")),
                "{e}"
            );
        }
    }

    #[test]
    fn packages_need_a_main_archive_debian_arch() {
        accepts("packages", &[serde_json::json!([])]);
        let arm = |pkgs: serde_json::Value| {
            let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            v["debian_arch"] = serde_json::json!("arm64");
            v["packages"] = pkgs;
            Plugin::parse(&v.to_string(), "/p/m.json", None)
        };
        let p = arm(serde_json::json!(["zlib1g-dev", "libstdc++-12-dev", "g++"])).unwrap();
        assert!(p.image.starts_with("img-lib-"), "{}", p.image);
        for bad in [
            "",
            "Z",
            "a",
            "zlib1g-dev:arm64",
            "-x",
            "a b",
            "a;b",
            "$(x)",
            "é-dev",
        ] {
            let e = one_line(arm(serde_json::json!([bad])).unwrap_err());
            assert!(e.contains("field `packages`"), "{bad}: {e}");
        }
        // No architecture: the packages cannot be installed.
        let e = one_line(with("packages", serde_json::json!(["zlib1g-dev"])).unwrap_err());
        assert!(
            e.contains("field `packages`") && e.contains("debian_arch"),
            "{e}"
        );
        // Ports architectures are not in bookworm's main archive.
        let (_d, reg) = with_files(&[(
            "rv-linux-gnu.json",
            serde_json::json!({"target": "rv-linux-gnu", "extends": "riscv64-linux-gnu",
                "packages": ["zlib1g-dev"]}),
        )]);
        let e = one_line(reg.unwrap_err());
        assert!(
            e.contains("field `packages` cannot be installed for target rv-linux-gnu")
                && e.contains("riscv64")
                && e.contains(
                    "only for amd64, arm64, armel, armhf, i386, mips64el, mipsel, ppc64el, s390x"
                ),
            "{e}"
        );
        accepts(
            "debian_arch",
            &strs(&["arm64", "ppc64el", "musl-linux-arm64"]),
        );
        refuses("debian_arch", &strs(&["", "Arm64", "arm64 x", "-a", "a;b"]));
    }

    #[test]
    fn builtins_name_their_debian_arch() {
        let reg = Registry::load_dirs(&[], |_| true).unwrap();
        let main: Vec<&str> = reg
            .iter()
            .filter(|p| DEBIAN_MAIN_ARCHS.contains(&p.debian_arch.as_deref().unwrap()))
            .map(|p| p.target.as_str())
            .collect();
        assert_eq!(
            main,
            [
                "aarch64-linux-gnu",
                "arm-linux-gnueabihf",
                "i686-linux-gnu",
                "mips64el-linux-gnuabi64",
                "mipsel-linux-gnu",
                "powerpc64le-linux-gnu",
                "s390x-linux-gnu"
            ]
        );
        assert!(
            reg.iter()
                .all(|p| p.packages.is_empty() && p.image == p.base_image())
        );
    }

    #[test]
    fn builtins_parse_and_resolve_shims() {
        let reg = Registry::load().unwrap();
        for p in reg.iter() {
            assert!(p.tools.contains_key("cc"));
            let (q, tool) = reg.by_shim_name(&format!("{}-cc", p.target)).unwrap();
            assert_eq!(
                (q.target.as_str(), tool.as_str()),
                (p.target.as_str(), "cc")
            );
        }
        assert!(reg.by_shim_name("nonsense-gcc").is_none());
    }
}
