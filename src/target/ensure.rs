//! Ensure a target's image: build it when it is missing or its dockerfile
//! checksum changed, once, however many compilers start at the same time.
//!
//! Builds triggered from the compile path write to a log in the cache dir;
//! stderr gets a progress line only when it is a terminal.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::image::dockerfile::{self, Library};
use crate::image::{Job, derive};
use crate::state::safefs;
use crate::target::plugin::Plugin;

/// Whether an image matches its dockerfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageState {
    UpToDate,
    Stale,
    Missing,
}

impl std::fmt::Display for ImageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageState::UpToDate => "up to date",
            ImageState::Stale => "stale",
            ImageState::Missing => "missing",
        })
    }
}

/// The build job for a plugin's own image (from its dockerfile; the tools
/// run in the image derived from it when the plugin has packages).
pub fn job_for(plugin: &Plugin, library: &Library) -> Result<Job> {
    let found = plugin.dockerfile(library)?;
    let library = library.with_fallback(found.dir.as_deref());
    Ok(Job::new(
        plugin.base_image().to_string(),
        found.text,
        library,
    ))
}

/// The checksums and texts a plugin's images must match.
struct Plan {
    base_checksum: String,
    derived: Option<Derived>,
}

/// The image derived from the plugin's own with its packages.
struct Derived {
    text: String,
    library: Library,
    checksum: String,
}

impl Plan {
    fn of(plugin: &Plugin, library: &Library) -> Result<Plan> {
        // A built-in dockerfile's checksum was computed at build time.
        let (base_checksum, base_library) = match plugin.builtin_dockerfile_checksum(library) {
            Some(sum) => (sum.to_string(), Cow::Borrowed(library)),
            None => {
                let base = job_for(plugin, library)?;
                let sum = dockerfile::checksum(&base.text, &base.library)
                    .with_context(|| format!("target {}", plugin.target))?;
                (sum, Cow::Owned(base.library))
            }
        };
        let derived = match plugin.debian_arch.as_deref() {
            Some(arch) if !plugin.packages.is_empty() => {
                let text = derive::dockerfile(
                    &plugin.target,
                    plugin.base_image(),
                    &base_checksum,
                    arch,
                    &plugin.sysroot,
                    &crate::target::sysroot::multiarch(plugin),
                    &plugin.packages,
                );
                let checksum = dockerfile::checksum(&text, &base_library)
                    .with_context(|| format!("target {}", plugin.target))?;
                Some(Derived {
                    text,
                    library: base_library.into_owned(),
                    checksum,
                })
            }
            _ => None,
        };
        Ok(Plan {
            base_checksum,
            derived,
        })
    }

    /// The checksum of the image the tools run in.
    fn want(self) -> String {
        self.derived.map_or(self.base_checksum, |d| d.checksum)
    }
}

/// The checksum the image the plugin's tools run in (`plugin.image`) must
/// carry: its dockerfile's, or the derived image's.
pub fn wanted_checksum(plugin: &Plugin, library: &Library) -> Result<String> {
    Ok(Plan::of(plugin, library)?.want())
}

/// The state of the image the plugin's tools run in.
pub fn image_state(engine: &Engine, plugin: &Plugin, library: &Library) -> Result<ImageState> {
    let want = wanted_checksum(plugin, library)?;
    Ok(match engine.image_checksum(&plugin.image)? {
        None => ImageState::Missing,
        Some(have) if have == want => ImageState::UpToDate,
        Some(_) => ImageState::Stale,
    })
}

fn sanitize(tag: &str) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The build log of an image.
pub fn log_path(tag: &str) -> Result<PathBuf> {
    Ok(crate::state::paths::cache_subdir("logs")?.join(format!("{}.log", sanitize(tag))))
}

/// Take the per-image build lock (blocking until other builders finish).
fn lock(tag: &str) -> Result<Flock<File>> {
    let path = crate::state::paths::cache_subdir("locks")?.join(format!("{}.lock", sanitize(tag)));
    let file = safefs::open_private(
        &path,
        OpenOptions::new().create(true).truncate(false).write(true),
    )?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", path.display()))
}

/// The last failed build of an image, kept beside its lock: calls that
/// waited for that build fail with its error instead of building again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Failure {
    /// Tells one failed build from the next.
    id: String,
    checksum: String,
    message: String,
}

fn failure_path(tag: &str) -> Result<PathBuf> {
    Ok(crate::state::paths::cache_subdir("locks")?.join(format!("{}.failed", sanitize(tag))))
}

fn last_failure(path: &Path) -> Option<Failure> {
    safefs::read_state(path, 1 << 20).and_then(|b| serde_json::from_slice(&b).ok())
}

/// Build the `qemu/NAME` images a plugin's dockerfile builds on.
pub fn ensure_bases(
    engine: &Engine,
    plugin: &Plugin,
    library: &Library,
    log: Option<&File>,
) -> Result<()> {
    let job = job_for(plugin, library)?;
    ensure_sources(engine, &job.text, &job.library, log, &mut Vec::new())
}

fn ensure_sources(
    engine: &Engine,
    text: &str,
    library: &Library,
    log: Option<&File>,
    seen: &mut Vec<String>,
) -> Result<()> {
    for source in dockerfile::qemu_sources(text) {
        let image = source
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if seen.contains(&image) {
            continue;
        }
        seen.push(image.clone());
        let found = library.find(dockerfile::inlined_name(&image))?;
        let lib = library.with_fallback(found.dir.as_deref());
        ensure_sources(engine, &found.text, &lib, log, seen)?;
        let mut job = Job::new(format!("qemu/{image}"), found.text, lib);
        job.quiet = true;
        job.log = log.map(File::try_clone).transpose()?;
        crate::image::build(engine, job)?;
    }
    Ok(())
}

/// Make sure the image the plugin's tools run in is up to date, building it
/// if needed (and, for a derived image, its base first), and return its id.
/// The compile path calls this: it prints nothing unless stderr is a
/// terminal. `want` is the checksum from `wanted_checksum`, computed before
/// the engine is probed so that configuration errors come first. (The
/// sessions of the old image end at the next call for it: see
/// `session::run_in_live`.)
pub fn ensure(engine: &Engine, plugin: &Plugin, library: &Library, want: &str) -> Result<String> {
    // An up-to-date derived image implies its base was (its checksum holds
    // the base's): one engine call either way.
    if let Some((id, have)) = engine.image_id_and_checksum(&plugin.image)? {
        if have == want {
            return Ok(id);
        }
    }
    let plan = Plan::of(plugin, library)?;
    let base_build = |log: &File| {
        ensure_bases(engine, plugin, library, Some(log))?;
        let mut job = job_for(plugin, library)?;
        job.quiet = true;
        job.log = Some(log.try_clone()?);
        crate::image::build(engine, job)
    };
    let Some(derived) = plan.derived else {
        let own = Wanted::own(plugin, plugin.base_image(), want);
        return build_once(engine, &own, base_build);
    };
    let base = Wanted::own(plugin, plugin.base_image(), &plan.base_checksum);
    if !matches!(engine.image_checksum(base.tag)?, Some(have) if have == base.checksum) {
        build_once(engine, &base, base_build)?;
    }
    let image = Wanted {
        tag: &plugin.image,
        target: &plugin.target,
        checksum: want,
        fix: "fix the packages or the network, then retry",
    };
    build_generated(engine, &image, &derived.text, &derived.library)
}

/// Build an image from a generated dockerfile `text`, once (see
/// `build_once`).
fn build_generated(
    engine: &Engine,
    image: &Wanted,
    text: &str,
    library: &Library,
) -> Result<String> {
    build_once(engine, image, |log| {
        let mut job = Job::new(image.tag.to_string(), text.to_string(), library.clone());
        job.quiet = true;
        job.log = Some(log.try_clone()?);
        crate::image::build(engine, job)
    })
}

/// Make sure the image `tag`, built from the generated dockerfile `text`,
/// is up to date (the checksum of `text`), building it once if not;
/// returns its id. `fix` completes a failed build's message.
pub fn ensure_generated(
    engine: &Engine,
    tag: &str,
    target: &str,
    text: &str,
    library: &Library,
    fix: &'static str,
) -> Result<String> {
    let checksum = dockerfile::checksum(text, library)?;
    if let Some((id, have)) = engine.image_id_and_checksum(tag)? {
        if have == checksum {
            return Ok(id);
        }
    }
    let image = Wanted {
        tag,
        target,
        checksum: &checksum,
        fix,
    };
    build_generated(engine, &image, text, library)
}

/// An image to have: its tag, the target it serves and the checksum it
/// must carry.
struct Wanted<'a> {
    tag: &'a str,
    target: &'a str,
    checksum: &'a str,
    /// The fix a failed build's message suggests.
    fix: &'static str,
}

impl<'a> Wanted<'a> {
    /// An image built from the plugin's dockerfile.
    fn own(plugin: &'a Plugin, tag: &'a str, checksum: &'a str) -> Wanted<'a> {
        Wanted {
            tag,
            target: &plugin.target,
            checksum,
            fix: "fix the dockerfile or the network, then retry",
        }
    }
}

/// Build the image under its lock unless someone else did while we waited;
/// the calls that waited for a failed build share its error (a later call
/// tries again). Returns the image id.
fn build_once(
    engine: &Engine,
    image: &Wanted,
    build: impl Fn(&File) -> Result<i32>,
) -> Result<String> {
    let marker = failure_path(image.tag)?;
    let before = last_failure(&marker);
    let _lock = lock(image.tag)?;
    // Someone else may have built it while we waited.
    match engine.image_id_and_checksum(image.tag)? {
        Some((id, have)) if have == image.checksum => return Ok(id),
        _ => {}
    }
    // Or failed to: the calls that waited for that build share its error
    // (a later call tries again).
    if let Some(f) = last_failure(&marker) {
        if f.checksum == image.checksum && before.as_ref() != Some(&f) {
            bail!("{}", f.message);
        }
    }
    if let Err(e) = build_logged(engine, image, build) {
        let f = Failure {
            id: uuid::Uuid::new_v4().simple().to_string(),
            checksum: image.checksum.to_string(),
            message: format!("{e:#}"),
        };
        if let Ok(b) = serde_json::to_vec(&f) {
            let _ = safefs::write_private(&marker, &b);
        }
        return Err(e);
    }
    let _ = std::fs::remove_file(&marker);
    match engine.image_id_and_checksum(image.tag)? {
        Some((id, _)) => Ok(id),
        None => bail!("image {} is missing right after its build", image.tag),
    }
}

fn build_logged(
    engine: &Engine,
    image: &Wanted,
    build: impl Fn(&File) -> Result<i32>,
) -> Result<()> {
    let log_file = log_path(image.tag)?;
    let mut log = safefs::open_private(
        &log_file,
        OpenOptions::new().create(true).append(true).read(true),
    )?;
    let log_err = |e| safefs::io_error(e, "write the build log", &log_file);
    let start_offset = log.seek(SeekFrom::End(0)).map_err(log_err)?;
    writeln!(
        log,
        "=== qemu-cross-cc: building image {} for target {} with {} ===",
        image.tag,
        image.target,
        engine.probe_name()
    )
    .map_err(log_err)?;
    let tty = std::io::stderr().is_terminal();
    if tty {
        eprintln!(
            "qemu-cross-cc: building image {} for {} (log: {})...",
            image.tag,
            image.target,
            log_file.display()
        );
    }
    let started = Instant::now();
    let mut result = build(&log);
    // podman 4.3 can fail a build with "layer not known" while other builds
    // change its image store at the same time: that is worth one more try.
    if result.is_err()
        && engine.flavor() == crate::engine::Flavor::Podman
        && tail_since(&log_file, start_offset, 12)
            .iter()
            .any(|l| l.contains("layer not known"))
    {
        let _ = writeln!(&log, "=== transient podman store error; building again ===");
        result = build(&log);
    }
    match result {
        Ok(_) => {
            writeln!(
                log,
                "=== done in {:.1}s ===",
                started.elapsed().as_secs_f64()
            )
            .map_err(log_err)?;
            if tty {
                eprintln!(
                    "qemu-cross-cc: image {} ready ({:.0}s)",
                    image.tag,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Err(e) => {
            let _ = writeln!(log, "=== failed: {e:#} ===");
            let tail = tail_since(&log_file, start_offset, 12);
            bail!(BuildFailed {
                image: image.tag.to_string(),
                target: image.target.to_string(),
                log: log_file,
                tail,
                fix: image.fix,
            })
        }
    }
}

/// An image build from the compile path failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "building image {image} for target {target} failed; full log: {} ({fix}){}",
    log.display(),
    tail.iter().map(|l| format!("\n  | {l}")).collect::<String>()
)]
pub struct BuildFailed {
    pub image: String,
    pub target: String,
    pub log: PathBuf,
    pub tail: Vec<String>,
    /// What to fix (the dockerfile, the packages...).
    pub fix: &'static str,
}

fn tail_since(path: &PathBuf, offset: u64, n: usize) -> Vec<String> {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<String> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}
