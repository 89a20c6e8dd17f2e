//! Targets come from plugins: JSON manifests naming the target triplet, its
//! image and dockerfile, the tools it provides and how to run its binaries.
//!
//! Built-in manifests are compiled into the binary. User manifests come from
//! `~/.config/qemu-cross-cc/plugins/` and then from each folder of
//! `QEMU_CROSS_CC_PLUGIN_PATH` (colon-separated); a later manifest for the
//! same target replaces an earlier one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
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
    fn parse(text: &str, origin: &str, file_stem: Option<&str>) -> Result<Plugin> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("bad plugin manifest {origin}: {e}"))?;
        let bad = |field: &str, why: &str| -> anyhow::Error {
            anyhow::anyhow!("bad plugin manifest {origin}: field `{field}` {why}")
        };
        if manifest.target.is_empty() || manifest.target.contains(['/', ' ']) {
            return Err(bad(
                "target",
                "must be a target triplet such as aarch64-linux-gnu",
            ));
        }
        if let Some(stem) = file_stem {
            if stem != manifest.target {
                return Err(bad(
                    "target",
                    &format!(
                        "is '{}' but the file is named {stem}.json; they must match",
                        manifest.target
                    ),
                ));
            }
        }
        if manifest.image.is_empty() {
            return Err(bad("image", "must name an image tag"));
        }
        if !manifest.dockerfile.ends_with(".docker") {
            return Err(bad("dockerfile", "must name a file ending in .docker"));
        }
        if !manifest.tools.contains_key("cc") {
            return Err(bad(
                "tools",
                "must map \"cc\" to the C compiler in the image",
            ));
        }
        if let Some((k, _)) = manifest
            .tools
            .iter()
            .find(|(k, v)| k.is_empty() || k.contains('/') || v.is_empty())
        {
            return Err(bad("tools", &format!("has an invalid entry '{k}'")));
        }
        for p in &manifest.paths {
            if !p.starts_with('/') {
                return Err(bad(
                    "paths",
                    &format!("entry '{p}' must be an absolute path"),
                ));
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
            if path.is_file() {
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
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read plugin manifest {}", f.display()))?;
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
