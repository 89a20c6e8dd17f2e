//! Ensure a target's image: build it when it is missing or its dockerfile
//! checksum changed, once, however many compilers start at the same time.
//!
//! Builds triggered from the compile path write to a log in the cache dir;
//! stderr gets a progress line only when it is a terminal.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::Job;
use crate::dockerfile::{self, Library};
use crate::engine::Engine;
use crate::plugin::Plugin;
use crate::safefs;

/// Whether an image matches its dockerfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    UpToDate,
    Stale,
    Missing,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::UpToDate => "up to date",
            State::Stale => "stale",
            State::Missing => "missing",
        })
    }
}

/// The build job for a plugin's image.
pub fn job_for(plugin: &Plugin, library: &Library) -> Result<Job> {
    let found = plugin.dockerfile(library)?;
    let library = library.with_fallback(found.dir.as_deref());
    Ok(Job::new(plugin.image.clone(), found.text, library))
}

/// The checksum the plugin's image must carry.
pub fn wanted_checksum(plugin: &Plugin, library: &Library) -> Result<String> {
    let job = job_for(plugin, library)?;
    dockerfile::checksum(&job.text, &job.library)
        .with_context(|| format!("target {}", plugin.target))
}

pub fn image_state(engine: &Engine, plugin: &Plugin, library: &Library) -> Result<State> {
    let want = wanted_checksum(plugin, library)?;
    Ok(match engine.image_checksum(&plugin.image)? {
        None => State::Missing,
        Some(have) if have == want => State::UpToDate,
        Some(_) => State::Stale,
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
    Ok(crate::paths::cache_subdir("logs")?.join(format!("{}.log", sanitize(tag))))
}

/// Take the per-image build lock (blocking until other builders finish).
fn lock(tag: &str) -> Result<Flock<File>> {
    let path = crate::paths::cache_subdir("locks")?.join(format!("{}.lock", sanitize(tag)));
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
    Ok(crate::paths::cache_subdir("locks")?.join(format!("{}.failed", sanitize(tag))))
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
        super::build(engine, job)?;
    }
    Ok(())
}

/// Make sure the plugin's image is up to date, building it if needed, and
/// return its id. The compile path calls this: it prints nothing unless
/// stderr is a terminal. `want` is the checksum from `wanted_checksum`,
/// computed before the engine is probed so that configuration errors come
/// first. A rebuilt image retires the sessions of the old one.
pub fn ensure(engine: &Engine, plugin: &Plugin, library: &Library, want: &str) -> Result<String> {
    if let Some((id, have)) = engine.image_id_and_checksum(&plugin.image)? {
        if have == want {
            return Ok(id);
        }
    }
    let marker = failure_path(&plugin.image)?;
    let before = last_failure(&marker);
    let _lock = lock(&plugin.image)?;
    // Someone else may have built it while we waited.
    match engine.image_id_and_checksum(&plugin.image)? {
        Some((id, have)) if have == want => return Ok(id),
        _ => {}
    }
    // Or failed to: the calls that waited for that build share its error
    // (a later call tries again).
    if let Some(f) = last_failure(&marker) {
        if f.checksum == want && before.as_ref() != Some(&f) {
            bail!("{}", f.message);
        }
    }
    if let Err(e) = build_logged(engine, plugin, library) {
        let f = Failure {
            id: uuid::Uuid::new_v4().simple().to_string(),
            checksum: want.to_string(),
            message: format!("{e:#}"),
        };
        if let Ok(b) = serde_json::to_vec(&f) {
            let _ = safefs::write_private(&marker, &b);
        }
        return Err(e);
    }
    let _ = std::fs::remove_file(&marker);
    crate::session::retire_image(&plugin.image);
    match engine.image_id_and_checksum(&plugin.image)? {
        Some((id, _)) => Ok(id),
        None => bail!("image {} is missing right after its build", plugin.image),
    }
}

fn build_logged(engine: &Engine, plugin: &Plugin, library: &Library) -> Result<()> {
    let log_file = log_path(&plugin.image)?;
    let mut log = safefs::open_private(
        &log_file,
        OpenOptions::new().create(true).append(true).read(true),
    )?;
    let log_err = |e| safefs::io_error(e, "write the build log", &log_file);
    let start_offset = log.seek(SeekFrom::End(0)).map_err(log_err)?;
    writeln!(
        log,
        "=== qemu-cross-cc: building image {} for target {} ===",
        plugin.image, plugin.target
    )
    .map_err(log_err)?;
    let tty = std::io::stderr().is_terminal();
    if tty {
        eprintln!(
            "qemu-cross-cc: building image {} for {} (log: {})...",
            plugin.image,
            plugin.target,
            log_file.display()
        );
    }
    let started = Instant::now();
    let attempt = || {
        ensure_bases(engine, plugin, library, Some(&log)).and_then(|()| {
            let mut job = job_for(plugin, library)?;
            job.quiet = true;
            job.log = Some(log.try_clone()?);
            super::build(engine, job)
        })
    };
    let mut result = attempt();
    // podman 4.3 can fail a build with "layer not known" while other builds
    // change its image store at the same time: that is worth one more try.
    if result.is_err()
        && engine.flavor() == crate::engine::Flavor::Podman
        && tail_since(&log_file, start_offset, 12)
            .iter()
            .any(|l| l.contains("layer not known"))
    {
        let _ = writeln!(&log, "=== transient podman store error; building again ===");
        result = attempt();
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
                    plugin.image,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Err(e) => {
            let _ = writeln!(log, "=== failed: {e:#} ===");
            let tail = tail_since(&log_file, start_offset, 12);
            bail!(BuildFailed {
                image: plugin.image.clone(),
                target: plugin.target.clone(),
                log: log_file,
                tail,
            })
        }
    }
}

/// An image build from the compile path failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "building image {image} for target {target} failed; full log: {} (fix the dockerfile or the network, then retry){}",
    log.display(),
    tail.iter().map(|l| format!("\n  | {l}")).collect::<String>()
)]
pub struct BuildFailed {
    pub image: String,
    pub target: String,
    pub log: PathBuf,
    pub tail: Vec<String>,
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
