//! The registry of targets: built-in manifests (compiled into the binary),
//! then those of `~/.config/qemu-cross-cc/plugins/` and each folder of
//! `QEMU_CROSS_CC_PLUGIN_PATH`; a later manifest for the same target
//! replaces an earlier one, and `extends` chains are resolved on demand.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::embedded;
use crate::target::manifest::{Invalid, MANIFEST_CAP, RUNNER, check_target, shown};
use crate::target::plugin::{Entry, Plugin, bad};

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
    use crate::image::dockerfile::Library;
    use crate::target::manifest::DEBIAN_MAIN_ARCHS;
    use crate::target::manifest::tests::{GOOD, accepts, refuses, strs, with};

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
    fn glibc_floors_are_checked_and_inherited() {
        let (_d, reg) = with_files(&[(
            "s390x-old-linux-gnu.json",
            serde_json::json!({"target": "s390x-old-linux-gnu", "extends": "s390x-linux-gnu",
                "glibc_floors": {"2.28": {"image": "me/s390x-buster", "dockerfile": "buster.docker"}}}),
        )]);
        let reg = reg.unwrap();
        let p = reg.get("s390x-old-linux-gnu").unwrap();
        let floors: Vec<&str> = p.glibc_floors.keys().map(String::as_str).collect();
        assert_eq!(floors, ["2.28", "2.31"]);
        assert_eq!(p.glibc.as_deref(), Some("2.36"));
        // A user floor's dockerfile is looked for next to its manifest; a
        // built-in floor's among the built-ins.
        std::fs::write(_d.path().join("buster.docker"), "FROM scratch\n").unwrap();
        let lib = Library::of_dirs(Vec::new());
        let mut user = p.clone();
        user.set_glibc("2.28").unwrap();
        assert_eq!(user.dockerfile(&lib).unwrap().text, "FROM scratch\n");
        let mut builtin = p.clone();
        builtin.set_glibc("2.31").unwrap();
        assert!(
            builtin
                .builtin_dockerfile_checksum(&Library::standard(&[]))
                .is_some()
        );
        // A manifest with its own image has its own C library: no floors.
        let (_e, reg) = with_files(&[(
            "s390x-mine-linux-gnu.json",
            serde_json::json!({"target": "s390x-mine-linux-gnu", "extends": "s390x-linux-gnu",
                "image": "me/s390x", "dockerfile": "mine.docker"}),
        )]);
        let reg = reg.unwrap();
        let mine = reg.get("s390x-mine-linux-gnu").unwrap();
        assert!(mine.glibc_floors.is_empty() && mine.glibc.is_none());
        for (field, value) in [
            ("glibc", serde_json::json!("2.x")),
            (
                "glibc_floors",
                serde_json::json!({"2.31": {"image": "Bad Image", "dockerfile": "x.docker"}}),
            ),
            (
                "glibc_floors",
                serde_json::json!({"2.31": {"image": "i", "dockerfile": "../x.docker"}}),
            ),
            (
                "glibc_floors",
                serde_json::json!({"new": {"image": "i", "dockerfile": "x.docker"}}),
            ),
            (
                "board",
                serde_json::json!({"system": "qemu-system-arm", "machine": "virt", "load": "kernel"}),
            ),
            ("flags", serde_json::json!({"link": ["-Wl,a b"]})),
        ] {
            let mut v = serde_json::json!({"target": "f-linux-gnu", "extends": "s390x-linux-gnu"});
            v[field] = value;
            let (_d, reg) = with_files(&[("f-linux-gnu.json", v)]);
            let e = one_line(reg.unwrap_err());
            assert!(e.contains(&format!("field `{field}`")), "{e}");
        }
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
            .filter(|p| {
                p.debian_arch
                    .as_deref()
                    .is_some_and(|a| DEBIAN_MAIN_ARCHS.contains(&a))
            })
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
                "s390x-linux-gnu",
                "x86_64-linux-gnu"
            ]
        );
        assert!(
            reg.iter()
                .all(|p| p.packages.is_empty() && p.image == p.base_image())
        );
        // Every built-in says its C library; the floors' dockerfiles exist.
        let lib = Library::standard(&[]);
        for p in reg.iter() {
            let linux = p.target.contains("-linux-gnu");
            assert_eq!(p.glibc.is_some(), linux, "{}", p.target);
            assert_eq!(p.debian_arch.is_some(), linux, "{}", p.target);
            for (v, floor) in &p.glibc_floors {
                let mut q = p.clone();
                q.set_glibc(v).unwrap();
                assert_eq!(q.base_image(), floor.image);
                q.dockerfile(&lib).unwrap();
                assert!(
                    q.builtin_dockerfile_checksum(&lib).is_some(),
                    "{}",
                    floor.dockerfile
                );
            }
        }
        let floors: Vec<&str> = reg
            .iter()
            .filter(|p| p.glibc_floors.contains_key("2.31"))
            .map(|p| p.target.as_str())
            .collect();
        let linux: Vec<&str> = reg
            .iter()
            .filter(|p| p.target.contains("-linux-gnu"))
            .map(|p| p.target.as_str())
            .collect();
        assert_eq!(floors, linux, "every Linux target has the 2.31 floor");
        assert_eq!(linux.len(), 17);
    }

    /// Built-in plugins use the checksum build.rs computed; a user
    /// manifest's own dockerfile is hashed at run time.
    #[test]
    fn only_builtin_dockerfiles_use_the_precomputed_checksum() {
        use crate::target::ensure::wanted_checksum;
        let lib = Library::standard(&[]);
        let reg = Registry::load_dirs(&[], |_| true).unwrap();
        for p in reg.iter() {
            let pre = p.builtin_dockerfile_checksum(&lib).unwrap();
            let found = p.dockerfile(&lib).unwrap();
            let runtime = crate::image::dockerfile::checksum(&found.text, &lib).unwrap();
            assert_eq!(
                (pre, wanted_checksum(p, &lib).unwrap()),
                (runtime.as_str(), runtime.clone())
            );
        }
        // A user manifest with a dockerfile of the built-in's name beside it.
        let (dir, reg) = with_files(&[(
            "aarch64-linux-gnu.json",
            serde_json::json!({"target": "aarch64-linux-gnu", "image": "mine",
                "dockerfile": "cross-aarch64-linux-gnu.docker", "qemu": "aarch64",
                "sysroot": "/usr/aarch64-linux-gnu", "tools": {"cc": "gcc"}}),
        )]);
        let text = "FROM debian:12\nRUN true\n";
        std::fs::write(dir.path().join("cross-aarch64-linux-gnu.docker"), text).unwrap();
        let p = reg.unwrap().get("aarch64-linux-gnu").unwrap().clone();
        assert_eq!(p.builtin_dockerfile_checksum(&lib), None);
        let want = crate::image::dockerfile::checksum(text, &lib).unwrap();
        assert_eq!(wanted_checksum(&p, &lib).unwrap(), want);
        // Edited, the next computation sees the new text.
        std::fs::write(
            dir.path().join("cross-aarch64-linux-gnu.docker"),
            "FROM x\n",
        )
        .unwrap();
        assert_ne!(wanted_checksum(&p, &lib).unwrap(), want);
        // A user manifest that extends a built-in one keeps its dockerfile.
        let (_d, reg) = with_files(&[(
            "s390x-zlib-linux-gnu.json",
            serde_json::json!({"target": "s390x-zlib-linux-gnu", "extends": "s390x-linux-gnu"}),
        )]);
        let reg = reg.unwrap();
        let (p, base) = (
            reg.get("s390x-zlib-linux-gnu").unwrap(),
            reg.get("s390x-linux-gnu").unwrap(),
        );
        assert_eq!(
            p.builtin_dockerfile_checksum(&lib),
            base.builtin_dockerfile_checksum(&lib)
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
