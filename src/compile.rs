//! The compile path: run one tool of a target (or `cc`'s compiler) inside
//! its image as if it were installed on the host.
//!
//! The current directory is mounted read-write at the same path, the paths
//! the arguments reach are mounted too (see `argpaths`), the tool runs as the
//! calling user with no network, and argv, stdin, stdout, stderr and the exit
//! status pass through untouched. Nothing of our own is printed on success.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::argpaths;
use crate::commands::Ctx;
use crate::commands::run::run_container;
use crate::engine::{Engine, Kind};
use crate::ensure;
use crate::mounts::{self, MountSet};
use crate::passenv;
use crate::plugin::Plugin;
use crate::session;

/// One tool invocation, fully resolved.
#[derive(Clone, Debug)]
pub struct Request {
    pub image: String,
    /// The executable inside the image.
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub mounts: MountSet,
    pub env: Vec<(String, OsString)>,
    /// Discard the tool's stdout (docker.py's `cc --quiet`).
    pub quiet: bool,
}

/// Paths named in `QEMU_CROSS_CC_SOURCE_PATHS` (a shell-words list).
fn env_source_paths() -> Result<Vec<PathBuf>> {
    match std::env::var("QEMU_CROSS_CC_SOURCE_PATHS") {
        Ok(s) if !s.trim().is_empty() => Ok(shell_words::split(&s)
            .map_err(|e| {
                anyhow::anyhow!("QEMU_CROSS_CC_SOURCE_PATHS is not a valid shell-words list: {e}")
            })?
            .into_iter()
            .map(PathBuf::from)
            .collect()),
        _ => Ok(Vec::new()),
    }
}

impl Request {
    /// Resolve mounts and environment for running `program args` in `image`
    /// from the current directory. `sources` are extra read-only folders
    /// (`cc -s`, a plugin's `paths`).
    pub fn new(
        image: &str,
        program: OsString,
        args: Vec<OsString>,
        sources: &[PathBuf],
        plugin_env: &BTreeMap<String, String>,
        quiet: bool,
    ) -> Result<Request> {
        let cwd = std::env::current_dir()
            .context("cannot read the current directory (was it removed?)")?;
        if let Some(why) = mounts::refusal(&cwd) {
            bail!("{why}; run the compiler from a project directory");
        }
        let mut set = MountSet::new();
        set.add(cwd.clone(), true);
        let mut explicit = sources.to_vec();
        explicit.extend(env_source_paths()?);
        for p in explicit {
            let p = mounts::normalize(&p, &cwd);
            if !p.exists() {
                bail!(
                    "source path {} does not exist; fix -s / QEMU_CROSS_CC_SOURCE_PATHS",
                    p.display()
                );
            }
            set.add_checked(p, false)?;
        }
        argpaths::add_mounts(&mut set, &args, &cwd)?;
        let deps = argpaths::Paths {
            inputs: Vec::new(),
            outputs: passenv::dependency_outputs()
                .iter()
                .map(|d| mounts::normalize(Path::new(d), &cwd))
                .collect(),
        };
        argpaths::add_path_mounts(&mut set, &deps, &cwd)?;
        let env = passenv::compiler_env(plugin_env, &set);
        Ok(Request {
            image: image.to_string(),
            program,
            args,
            cwd,
            mounts: set,
            env,
            quiet,
        })
    }

    /// The `run` options (after the user options) for a one-shot container.
    /// Variables are named, not given: `-e NAME` (the values come from the
    /// engine client's environment) or, where the client loses its
    /// environment (`sudo`), an `--env-file` in the private runtime folder.
    pub fn run_args(&self, env_file: Option<&Path>) -> Result<Vec<OsString>> {
        let mut a: Vec<OsString> = vec![
            "-i".into(),
            "--network".into(),
            "none".into(),
            "-w".into(),
            self.cwd.clone().into_os_string(),
        ];
        a.extend(
            self.mounts
                .volume_args(mounts::selinux_enabled())?
                .into_iter()
                .map(OsString::from),
        );
        match env_file {
            Some(f) => a.extend(["--env-file".into(), f.as_os_str().to_os_string()]),
            None => {
                for (k, _) in &self.env {
                    a.extend(["-e".into(), k.into()]);
                }
            }
        }
        a.push(self.image.clone().into());
        a.push(self.program.clone());
        a.extend(self.args.iter().cloned());
        Ok(a)
    }
}

/// Run the request in a fresh container (`run --rm`).
pub fn one_shot(engine: &Engine, req: &Request) -> Result<i32> {
    if engine.kind() != Kind::SudoDocker {
        return run_container(
            engine,
            req.run_args(None)?,
            false,
            req.quiet,
            true,
            &req.env,
        );
    }
    let file = env_file(&req.env)?;
    run_container(
        engine,
        req.run_args(Some(file.path()))?,
        false,
        req.quiet,
        true,
        &[],
    )
}

/// The variables as an engine env file (`NAME=VALUE` lines), private to the
/// user and removed when dropped.
fn env_file(env: &[(String, OsString)]) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let dir = crate::paths::runtime_dir()?;
    let mut f = tempfile::Builder::new()
        .prefix(".env")
        .tempfile_in(&dir)
        .map_err(|e| crate::safefs::io_error(e, "create a file in", &dir))?;
    for (k, v) in env {
        if v.as_bytes().contains(&b'\n') {
            bail!("cannot pass {k} to the container through sudo: its value holds a newline");
        }
        f.write_all(k.as_bytes())
            .and_then(|()| f.write_all(b"="))
            .and_then(|()| f.write_all(v.as_bytes()))
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|e| crate::safefs::io_error(e, "write", f.path()))?;
    }
    Ok(f)
}

/// Print a diagnostic when `QEMU_CROSS_CC_DEBUG` is set (the compile path
/// is otherwise silent).
pub fn debug(msg: impl std::fmt::Display) {
    if std::env::var_os("QEMU_CROSS_CC_DEBUG").is_some_and(|v| !v.is_empty()) {
        eprintln!("qemu-cross-cc: debug: {msg}");
    }
}

/// Run the request: in a live session when one serves it (no engine call at
/// all), else prepare the image, start a session and run there, else run
/// one-shot. `prepare` ensures the image and returns its id.
fn run_with_sessions(
    ctx: &Ctx,
    req: &Request,
    target: Option<&str>,
    checksum: &str,
    prepare: impl FnOnce(&Engine) -> Result<Option<String>>,
) -> Result<i32> {
    // The runtime folder decides what runs: refuse one that is not ours.
    crate::paths::runtime_dir()?;
    let sessions = session::enabled();
    if sessions {
        if let Some(code) = session::run_in_live(req, checksum, ctx.choice) {
            return Ok(code);
        }
        // An image an earlier session ran: start a new session straight away.
        if let Some((engine, id)) = session::known_image(&req.image, checksum, ctx.choice) {
            match session::start_and_run(&engine, req, checksum, &id, target, ctx.choice) {
                Ok(Some(code)) => return Ok(code),
                Ok(None) => {}
                Err(e) => debug(format!("no session from the known image ({e:#})")),
            }
        }
    }
    let engine = ctx.engine()?;
    let image_id = prepare(engine)?;
    if let (true, Some(id)) = (sessions, image_id) {
        match session::start_and_run(engine, req, checksum, &id, target, ctx.choice) {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => debug("sessions need a statically linked qemu-cross-cc; running one-shot"),
            Err(e) => debug(format!("no session ({e:#}); running one-shot")),
        }
    }
    one_shot(engine, req)
}

/// A plugin tool: ensure the target's image, then run.
pub fn run_plugin_tool(ctx: &Ctx, plugin: &Plugin, req: &Request) -> Result<i32> {
    // Configuration errors (a missing dockerfile) come before any engine call.
    let want = ensure::wanted_checksum(plugin, &ctx.library)?;
    run_with_sessions(ctx, req, Some(&plugin.target), &want, |engine| {
        ensure::ensure(engine, plugin, &ctx.library, &want).map(Some)
    })
}

/// A tool of a given image (`cc -i IMAGE`): no dockerfile to check, but
/// the image must exist (no registry is assumed).
pub fn run_image_tool(ctx: &Ctx, req: &Request) -> Result<i32> {
    run_with_sessions(ctx, req, None, "", |engine| {
        match engine.image_id(&req.image)? {
            Some(id) => Ok(Some(id)),
            None => bail!(
                "image {} does not exist; build it first (qemu-cross-cc build -t {} -f DOCKERFILE)",
                req.image,
                req.image
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_args_order_and_verbatim_arguments() {
        let mut mounts = MountSet::new();
        mounts.add(PathBuf::from("/w/build"), true);
        mounts.add(PathBuf::from("/w/src"), false);
        let req = Request {
            image: "img".into(),
            program: "aarch64-linux-gnu-gcc".into(),
            args: vec![
                "-DX=\"a b\"".into(),
                "$HOME;`x`".into(),
                "ünï cødé.c".into(),
            ],
            cwd: PathBuf::from("/w/build"),
            mounts,
            env: vec![("LANG".into(), "C.UTF-8".into())],
            quiet: false,
        };
        let got: Vec<String> = req
            .run_args(None)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let want = [
            "-i",
            "--network",
            "none",
            "-w",
            "/w/build",
            "-v",
            "/w/build:/w/build:rw",
            "-v",
            "/w/src:/w/src:ro",
            "-e",
            "LANG",
            "img",
            "aarch64-linux-gnu-gcc",
            "-DX=\"a b\"",
            "$HOME;`x`",
            "ünï cødé.c",
        ];
        assert_eq!(got, want);
    }
}
