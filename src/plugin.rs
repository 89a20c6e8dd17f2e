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

use crate::dockerfile::{self, Library};
use crate::embedded;

/// The manifest file format (`plugins/<target>.json`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The GNU target triplet, also the prefix of the shim names.
    pub target: String,
    /// One line for `targets`.
    #[serde(default)]
    pub description: String,
    /// The image tag the tools run in.
    pub image: String,
    /// The dockerfile (file name) the image is built from.
    pub dockerfile: String,
    /// The qemu-user name that runs the target's binaries (`qemu-<name>`).
    pub qemu: String,
    /// Where the target's libraries and headers live inside the image.
    pub sysroot: String,
    /// Tool name (the shim is `<target>-<name>`) to executable in the image.
    /// `cc` is required: it is what `qemu-cross-cc` alone runs.
    pub tools: BTreeMap<String, String>,
    /// Environment set for every tool (the caller's allowed variables win).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Extra host folders mounted read-only for every tool.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// The largest manifest read; a bigger one is refused, never truncated.
const MANIFEST_CAP: u64 = 1 << 20;

/// The longest target triplet and tool name: a link name must stay well
/// within a file name's 255 bytes.
const NAME_MAX: usize = 100;

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
fn shown(value: &str) -> String {
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
        check_image(&self.image).map_err(|w| Invalid("image", w))?;
        check_dockerfile(&self.dockerfile).map_err(|w| Invalid("dockerfile", w))?;
        check_qemu(&self.qemu).map_err(|w| Invalid("qemu", w))?;
        check_tools(&self.tools).map_err(|w| Invalid("tools", w))?;
        check_env(&self.env).map_err(|w| Invalid("env", w))?;
        self.paths
            .iter()
            .try_for_each(|p| check_path(p))
            .map_err(|w| Invalid("paths", w))
    }
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
    pub image: String,
}

impl std::ops::Deref for Plugin {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

impl Plugin {
    /// Parse and check a manifest. `origin` names it in errors; `file_stem`,
    /// when given, is its file name without `.json`, which the target must
    /// equal.
    pub(crate) fn parse(text: &str, origin: &str, file_stem: Option<&str>) -> Result<Plugin> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("bad plugin manifest {origin}: {e}"))?;
        let bad = |Invalid(field, why): Invalid| -> anyhow::Error {
            anyhow::anyhow!("bad plugin manifest {origin}: field `{field}` {why}")
        };
        manifest.validate().map_err(bad)?;
        if let Some(stem) = file_stem {
            if stem != manifest.target {
                return Err(bad(Invalid(
                    "target",
                    format!(
                        "is '{}' but the file is named {}.json; they must match",
                        manifest.target,
                        shown(stem)
                    ),
                )));
            }
        }
        Ok(Plugin {
            image: manifest.image.clone(),
            manifest,
            file: None,
        })
    }

    /// `builtin` or the manifest's path, for messages.
    pub fn origin(&self) -> String {
        match &self.file {
            Some(f) => f.display().to_string(),
            None => "built-in".to_string(),
        }
    }

    /// The dockerfile: next to a user manifest (or in `../dockerfiles/`)
    /// first, then the standard search path.
    pub fn dockerfile(&self, library: &Library) -> Result<dockerfile::Found> {
        let name = self.manifest.dockerfile.trim_end_matches(".docker");
        let mut dirs = Vec::new();
        if let Some(dir) = self.file.as_deref().and_then(Path::parent) {
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
    pub fn shim_names(&self) -> impl Iterator<Item = String> + '_ {
        self.tools
            .keys()
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
    if let Some(c) = crate::paths::config_dir() {
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
    /// compile path parses the one it needs, not every manifest.
    pub fn load_matching(wanted: impl Fn(&str) -> bool) -> Result<Registry> {
        let mut reg = Registry::default();
        for (name, text) in embedded::PLUGINS {
            let stem = name.trim_end_matches(".json");
            if !wanted(stem) {
                continue;
            }
            let p = Plugin::parse(text, &format!("built-in {name}"), Some(stem))?;
            reg.plugins.insert(p.target.clone(), p);
        }
        for dir in user_dirs() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| p.file_stem().and_then(|s| s.to_str()).is_some_and(&wanted))
                .collect();
            files.sort();
            for f in files {
                let text = crate::safefs::read_config(&f, MANIFEST_CAP)
                    .with_context(|| format!("bad plugin manifest {}", f.display()))?;
                let stem = f.file_stem().map(|s| s.to_string_lossy().to_string());
                let mut p = Plugin::parse(&text, &f.display().to_string(), stem.as_deref())?;
                p.file = Some(f.clone());
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
            p.tools.contains_key(tool).then(|| (p, tool.to_string()))
        })
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
        assert_eq!(names, vec!["t-linux-gnu-ar", "t-linux-gnu-cc"]);
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
