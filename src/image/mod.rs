//! Images: building one from a dockerfile (docker.py's `build`: skipped
//! when the checksum label is current, a temporary context, `.pre` scripts,
//! `--include-executable`, `--extra-files`, registry caches); in `ensure`,
//! making sure a target's image is up to date; in `derive`, the image
//! derived from it with Debian packages for the target.

pub mod derive;
pub mod dockerfile;
pub mod pyrules;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::engine::labels;
use crate::engine::{Engine, Flavor};
use crate::host::binfmt;
use dockerfile::Library;

/// docker.py passes these through from the environment as build args.
const PROXY_VARS: &[&str] = &["ftp_proxy", "http_proxy", "https_proxy"];

/// One image build, as `build` does it.
pub struct Job {
    pub tag: String,
    /// The dockerfile text as read (universal newlines).
    pub text: String,
    /// Where `FROM qemu/...` is looked up.
    pub library: Library,
    /// The dockerfile's path, for its `.pre` script.
    pub path: Option<PathBuf>,
    pub quiet: bool,
    pub user: bool,
    pub registry: Option<String>,
    pub include_executable: Option<String>,
    pub skip_binfmt: bool,
    pub extra_files: Vec<String>,
    /// Arguments passed on to the engine's build.
    pub engine_args: Vec<String>,
    /// Where the engine's output goes (the terminal when None).
    pub log: Option<File>,
    /// Variables for the engine client (values of `--build-arg=NAME`).
    pub build_env: Vec<(String, String)>,
}

impl Job {
    pub fn new(tag: String, text: String, library: Library) -> Job {
        Job {
            tag,
            text,
            library,
            path: None,
            quiet: false,
            user: false,
            registry: None,
            include_executable: None,
            skip_binfmt: false,
            extra_files: Vec::new(),
            engine_args: Vec::new(),
            log: None,
            build_env: Vec::new(),
        }
    }
}

/// `build` after argument parsing: skip when up to date, else prepare a
/// temporary context and build. Returns the exit code.
pub fn build(engine: &Engine, mut job: Job) -> Result<i32> {
    let checksum = dockerfile::checksum(&job.text, &job.library)?;
    let no_cache = job.engine_args.iter().any(|a| a == "--no-cache");
    if !no_cache && engine.image_checksum(&job.tag)?.as_deref() == Some(checksum.as_str()) {
        if !job.quiet {
            println!("Image is up to date.");
        }
        return Ok(0);
    }

    // The context folder is removed when this function returns, whatever
    // happens.
    let context = tempfile::Builder::new()
        .prefix("docker_build")
        .tempdir()
        .context("cannot create a temporary build context")?;
    let _removed_on_signal = crate::signals::TempDirGuard::new(context.path());

    let qpath = match (&job.include_executable, job.skip_binfmt) {
        (Some(exe), true) => Some(exe.clone()),
        (Some(exe), false) => {
            let b = binfmt::check(exe);
            if !b.enabled {
                return Ok(1);
            }
            b.interpreter
        }
        (None, _) => None,
    };

    if let Some(path) = &job.path {
        let pre = path.with_extension("pre");
        if pre.exists() {
            match run_pre(&pre, context.path(), job.quiet)? {
                0 => {}
                3 => {
                    println!("Skip");
                    return Ok(0);
                }
                rc => bail!("{} exited with code {rc}", pre.display()),
            }
        }
    }

    if let Some(exe) = &job.include_executable {
        binfmt::copy_binary_with_libs(exe, qpath.as_deref(), context.path())?;
    }
    let mut extra_cksum = Vec::new();
    for f in &job.extra_files {
        let path = Path::new(f);
        if !path.is_file() {
            bail!("extra file {f} does not exist; check the --extra-files arguments");
        }
        binfmt::copy_with_mkdir(path, context.path(), ".", None)?;
        extra_cksum.push((f.clone(), dockerfile::file_checksum(path)?));
    }
    // The values (which may hold credentials) travel in the engine client's
    // environment, not on its command line; sudo drops the environment.
    for (k, v) in std::env::vars() {
        let lower = k.to_lowercase();
        if PROXY_VARS.contains(&lower.as_str()) {
            if engine.kind() == crate::engine::Kind::SudoDocker {
                job.engine_args.push(format!("--build-arg={lower}={v}"));
            } else {
                job.engine_args.push(format!("--build-arg={lower}"));
                job.build_env.push((lower, v));
            }
        }
    }
    build_image(engine, &job, context.path(), &checksum, &extra_cksum)
}

/// Run the dockerfile's `.pre` script in the build context.
fn run_pre(pre: &Path, context: &Path, quiet: bool) -> Result<i32> {
    let real =
        std::fs::canonicalize(pre).with_context(|| format!("cannot resolve {}", pre.display()))?;
    let mut cmd = std::process::Command::new(&real);
    cmd.current_dir(context);
    if quiet {
        cmd.stdout(Stdio::null());
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {} (is it executable?)", pre.display()))?;
    Ok(crate::host::exit_code(status))
}

/// The line that adds the calling user to the image, as docker.py writes it.
pub fn add_user_line() -> Result<String> {
    let name = crate::host::user::name()
        .context("cannot find the current user's name for --add-current-user; set USER")?;
    Ok(format!(
        "RUN id {name} 2>/dev/null || useradd -u {} -U {name}",
        crate::host::user::uid()
    ))
}

fn build_image(
    engine: &Engine,
    job: &Job,
    context: &Path,
    checksum: &str,
    extra_cksum: &[(String, String)],
) -> Result<i32> {
    let mut text = job.text.clone();
    let mut registry = job.registry.clone();
    if let Some(reg) = registry.clone() {
        // Fetch the cache layers we can; any failure disables the registry.
        for s in dockerfile::qemu_sources(&job.text) {
            if run_logged(engine, &["pull".into(), format!("{reg}/qemu/{s}")], job)? != 0 {
                registry = None;
                break;
            }
        }
        if registry.is_some() {
            text = text.replace("FROM qemu/", &format!("FROM {reg}/qemu/"));
        }
    }

    let mut df = tempfile::Builder::new()
        .suffix(".docker")
        .tempfile_in(context)
        .context("cannot write the temporary dockerfile")?;
    df.write_all(text.as_bytes())?;
    if job.user {
        write!(df, "\n{}", add_user_line()?)?;
    }
    writeln!(df)?;
    writeln!(df, "LABEL {}={checksum}", labels::DOCKERFILE_CHECKSUM)?;
    for (f, c) in extra_cksum {
        writeln!(df, "LABEL {}={c}", labels::extra_file_checksum(f))?;
    }
    df.flush()?;

    let mut args = vec![
        "-t".to_string(),
        job.tag.clone(),
        "-f".to_string(),
        df.path().to_string_lossy().to_string(),
    ];
    if engine.buildkit() {
        args.extend(["--build-arg".into(), "BUILDKIT_INLINE_CACHE=1".into()]);
    } else if engine.flavor() == Flavor::Docker {
        // The classic builder keeps the container of a failed step unless
        // told otherwise; a failed build leaves nothing behind.
        args.push("--force-rm".into());
    }
    if let Some(reg) = &registry {
        let cache = format!("{reg}/{}", job.tag);
        run_logged(engine, &["pull".into(), cache.clone()], job)?;
        args.extend(["--cache-from".into(), cache]);
    }
    args.extend(job.engine_args.iter().cloned());
    args.push(context.to_string_lossy().to_string());

    let mut cmd = engine.build_command(&args);
    cmd.envs(job.build_env.iter().map(|(k, v)| (k, v)));
    redirect(&mut cmd, job)?;
    let code = engine.run_command(cmd)?;
    if code != 0 {
        bail!(
            "building image {} failed: {} build exited with status {code}",
            job.tag,
            engine.prog().join(" ")
        );
    }
    Ok(0)
}

/// Send the engine's output to the job's log, or discard stdout when quiet.
fn redirect(cmd: &mut std::process::Command, job: &Job) -> Result<()> {
    if let Some(log) = &job.log {
        cmd.stdout(log.try_clone()?).stderr(log.try_clone()?);
    } else if job.quiet {
        cmd.stdout(Stdio::null());
    }
    Ok(())
}

fn run_logged(engine: &Engine, args: &[String], job: &Job) -> Result<i32> {
    let mut cmd = engine.command(args);
    redirect(&mut cmd, job)?;
    engine.run_command(cmd)
}
