//! A loaded plugin: a target's manifest with where it came from, the image
//! its tools run in, and what the project file added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::image::dockerfile::{self, Library};
pub use crate::target::manifest::{COMPILERS, Manifest, RUNNER, shown};
use crate::target::manifest::{Invalid, Written, check_packages};
use crate::target::names;
pub use crate::target::registry::Registry;

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
    /// Whether compiles go through ccache in the image, from the project
    /// file (`ccache`); `QEMU_CROSS_CC_CCACHE` comes first.
    pub ccache: bool,
    /// The manifest file that named the dockerfile (an extending manifest
    /// inherits its base's); None for a built-in one.
    dockerfile_from: Option<PathBuf>,
    /// For each glibc floor, the manifest file that named it (None: a
    /// built-in), where its dockerfile is looked for first.
    floors_from: BTreeMap<String, Option<PathBuf>>,
}

impl std::ops::Deref for Plugin {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

/// The error for a refused field of the manifest `origin`.
pub(super) fn bad(origin: &str, Invalid(field, why): Invalid) -> anyhow::Error {
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
pub(super) struct Entry {
    pub(super) written: Written,
    /// Names it in messages: `built-in x.json` or the file's path.
    pub(super) origin: String,
    pub(super) file: Option<PathBuf>,
}

impl Entry {
    /// Parse a manifest. `file_stem`, when given, is its file name without
    /// `.json`, which the target must equal.
    pub(super) fn parse(
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
    pub(super) fn resolve(entry: Entry, base: Option<&Plugin>) -> Result<Plugin> {
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
        // A manifest with an image or dockerfile of its own has its own C
        // library: the base's floors and version are not its.
        let own_image = w.image.is_some() || w.dockerfile.is_some();
        let inherited = base.filter(|_| !own_image);
        let mut glibc_floors = inherited
            .map(|p| p.manifest.glibc_floors.clone())
            .unwrap_or_default();
        let mut floors_from = inherited.map(|p| p.floors_from.clone()).unwrap_or_default();
        for v in w.glibc_floors.keys() {
            floors_from.insert(v.clone(), file.clone());
        }
        glibc_floors.extend(w.glibc_floors);
        let glibc = w
            .glibc
            .or_else(|| inherited.and_then(|p| p.manifest.glibc.clone()));
        let manifest = Manifest {
            image: pick(w.image, b.map(|m| &m.image), "image")?,
            dockerfile: pick(w.dockerfile, b.map(|m| &m.dockerfile), "dockerfile")?,
            qemu: pick(w.qemu, b.map(|m| &m.qemu), "qemu")?,
            runs_with: w
                .runs_with
                .or_else(|| b.map(|m| m.runs_with))
                .unwrap_or_default(),
            board: w.board.or_else(|| b.and_then(|m| m.board.clone())),
            flags: w
                .flags
                .or_else(|| b.map(|m| m.flags.clone()))
                .unwrap_or_default(),
            sysroot: pick(w.sysroot, b.map(|m| &m.sysroot), "sysroot")?,
            description: w
                .description
                .or_else(|| b.map(|m| m.description.clone()))
                .unwrap_or_default(),
            debian_arch: w
                .debian_arch
                .or_else(|| b.and_then(|m| m.debian_arch.clone())),
            glibc,
            glibc_floors,
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
            floors_from,
            distcc_hosts: None,
            ccache: false,
        })
    }

    /// The image the tools run in, without its tag or digest.
    pub fn image_name(&self) -> &str {
        names::image_name(&self.image).unwrap_or(&self.image)
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

    /// Build against glibc `version` (a project's `glibc`): the manifest's
    /// own C library, or one of its `glibc_floors`, whose image then
    /// replaces the target's (packages are derived from it). The error
    /// completes "`glibc` ...".
    pub fn set_glibc(&mut self, version: &str) -> std::result::Result<(), String> {
        if self.manifest.glibc.as_deref() == Some(version) {
            return Ok(());
        }
        let Some(floor) = self.manifest.glibc_floors.get(version).cloned() else {
            let mut have: Vec<String> = self.manifest.glibc_floors.keys().cloned().collect();
            if let Some(own) = &self.manifest.glibc {
                have.push(format!("{own} (its image's, the default)"));
            }
            let shown = shown(version);
            return Err(if have.is_empty() {
                format!(
                    "is {shown}, but target {} has only its image's C library; remove `glibc`",
                    self.target
                )
            } else {
                format!(
                    "is {shown}, which target {} does not have; it has glibc {}: set `glibc` \
                     to one of them",
                    self.target,
                    have.join(", ")
                )
            });
        };
        self.manifest.image = floor.image;
        self.manifest.dockerfile = floor.dockerfile;
        self.dockerfile_from = self.floors_from.get(version).cloned().flatten();
        self.manifest.glibc = Some(version.to_string());
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

    /// The checksum of the dockerfile, precomputed at build time, when it is
    /// the built-in one `dockerfile` would find: a built-in manifest named
    /// it (user manifests that extend one inherit that) and `library`
    /// searches the built-in dockerfiles first. None otherwise: a user's
    /// dockerfile is read and hashed on each call.
    pub fn builtin_dockerfile_checksum(&self, library: &Library) -> Option<&'static str> {
        if self.dockerfile_from.is_some() {
            return None;
        }
        library.builtin_checksum(self.manifest.dockerfile.trim_end_matches(".docker"))
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
