//! One tool invocation, fully resolved: the image, the program and its
//! arguments, the current directory, the mounts the arguments need (see
//! `argpaths`), the allowed environment (see `passenv`) and the depfiles
//! the call writes (see `depfiles`), all from one reading of the command
//! line (see `cmdline`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::call::argpaths;
use crate::call::cmdline::CmdLine;
use crate::call::depfiles;
use crate::call::mounts::{self, MountSet};
use crate::call::passenv;

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
    /// Send the tool's stdout here instead (an answer to be read back).
    pub stdout_to: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// The dependency files the call writes, rewritten after it.
    pub depfiles: Vec<PathBuf>,
}

/// The command line `args` of a call from the current directory, read
/// once (see `argpaths::command_line`).
pub fn command_line(args: &[OsString]) -> Result<CmdLine> {
    let cwd =
        std::env::current_dir().context("cannot read the current directory (was it removed?)")?;
    Ok(argpaths::command_line(args, &cwd))
}

impl Request {
    /// Where the tool's stdout goes in a one-shot run: None to inherit.
    pub fn stdout_stdio(&self) -> Result<Option<std::process::Stdio>> {
        Ok(match (&self.stdout_to, self.quiet) {
            (Some(fd), _) => Some(fd.try_clone()?.into()),
            (None, true) => Some(std::process::Stdio::null()),
            (None, false) => None,
        })
    }
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
    /// Resolve mounts, environment and depfiles for running `program args`
    /// in `image` from the current directory. `cmd` is the reading of `args`
    /// (`command_line`), or of `program args` when the program's own path
    /// must be mounted too (the runner, `exec`). `sources` are extra
    /// read-only folders (`cc -s`, a plugin's `paths`).
    pub fn new(
        image: &str,
        program: OsString,
        args: Vec<OsString>,
        cmd: &CmdLine,
        sources: &[PathBuf],
        plugin_env: &BTreeMap<String, String>,
        quiet: bool,
    ) -> Result<Request> {
        let cwd = cmd.cwd.clone();
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
        argpaths::add_mounts(&mut set, cmd)?;
        let env_deps = passenv::dependency_outputs();
        let deps = argpaths::Paths {
            inputs: Vec::new(),
            outputs: env_deps
                .iter()
                .map(|d| mounts::normalize(Path::new(d), &cwd))
                .collect(),
        };
        argpaths::add_path_mounts(&mut set, &deps, &cwd)?;
        let depfiles = depfiles::wanted(cmd, &env_deps);
        let env = passenv::compiler_env(plugin_env, &set);
        Ok(Request {
            image: image.to_string(),
            program,
            args,
            cwd,
            mounts: set,
            env,
            quiet,
            stdout_to: None,
            depfiles,
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
            stdout_to: None,
            depfiles: Vec::new(),
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
