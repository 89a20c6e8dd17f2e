//! Command-line dispatch.
//!
//! Called through a shim (`aarch64-linux-gnu-gcc`), the program is that tool.
//! Called as `qemu-cross-cc`, leading global options are read, then the
//! first word picks a subcommand of the registry (`commands::ALL`); any
//! other first word makes the whole line the target's C compiler command
//! line (`CC=qemu-cross-cc`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::commands;
use crate::compile;
use crate::context::Ctx;
use crate::engine::Choice;
use crate::error::UsageError;
use crate::image::dockerfile::Library;
use crate::target::plugin::{Plugin, Registry};

/// Options that come before the subcommand (or the compiler arguments).
#[derive(Debug)]
pub struct Global {
    pub choice: Choice,
    pub dockerfile_dirs: Vec<PathBuf>,
    pub target: Option<String>,
}

impl Global {
    /// Defaults from the environment.
    fn from_env() -> Result<Global> {
        let choice = match std::env::var("QEMU_CROSS_CC_ENGINE") {
            Ok(s) if !s.is_empty() => s
                .parse::<Choice>()
                .map_err(|e| anyhow::anyhow!("QEMU_CROSS_CC_ENGINE: {e}"))?,
            _ => Choice::Auto,
        };
        let target = std::env::var("QEMU_CROSS_CC_TARGET")
            .ok()
            .filter(|s| !s.is_empty());
        Ok(Global {
            choice,
            dockerfile_dirs: Vec::new(),
            target,
        })
    }

    fn library(&self) -> Library {
        let mut dirs = self.dockerfile_dirs.clone();
        if let Some(p) = std::env::var_os("QEMU_CROSS_CC_DOCKERFILES") {
            dirs.extend(std::env::split_paths(&p).filter(|p| !p.as_os_str().is_empty()));
        }
        Library::standard(&dirs)
    }

    /// The global options as variables, for the calls distcc makes back
    /// to this program.
    fn passed(&self) -> crate::distcc::client::Passed {
        let mut env = Vec::new();
        if self.choice != Choice::Auto {
            env.push((
                "QEMU_CROSS_CC_ENGINE".to_string(),
                OsString::from(self.choice.name()),
            ));
        }
        if !self.dockerfile_dirs.is_empty() {
            let mut dirs = self.dockerfile_dirs.clone();
            if let Some(p) = std::env::var_os("QEMU_CROSS_CC_DOCKERFILES") {
                dirs.extend(std::env::split_paths(&p));
            }
            if let Ok(joined) = std::env::join_paths(dirs) {
                env.push(("QEMU_CROSS_CC_DOCKERFILES".to_string(), joined));
            }
        }
        crate::distcc::client::Passed { env }
    }

    fn ctx(&self) -> Ctx {
        Ctx::new(self.choice, self.library())
    }
}

fn usage_error(message: String) -> anyhow::Error {
    UsageError {
        command: "qemu-cross-cc".into(),
        message,
    }
    .into()
}

/// Take the value of a global option: `--name VALUE` or `--name=VALUE`.
fn option_value(args: &[OsString], i: &mut usize, name: &str) -> Result<Option<String>> {
    let Some(arg) = args[*i].to_str() else {
        return Ok(None);
    };
    if arg == name {
        let Some(v) = args.get(*i + 1) else {
            return Err(usage_error(format!("{name} needs a value")));
        };
        *i += 2;
        return v
            .to_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| usage_error(format!("{name}: value is not valid UTF-8")));
    }
    if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
        *i += 1;
        return Ok(Some(v.to_string()));
    }
    Ok(None)
}

/// Entry point after signal set-up: returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    match dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            eprintln!("qemu-cross-cc: error: {e:#}");
            code
        }
    }
}

fn program_name(argv0: &OsStr) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn dispatch(args: Vec<OsString>) -> Result<i32> {
    // Some supervisors start programs with an empty argv (Linux then makes
    // argv[0] an empty string): the name picks the tool, so there is none.
    let name = args.first().map(|a| program_name(a)).unwrap_or_default();
    if name.is_empty() {
        return Err(usage_error(
            "started without a program name (argv[0] is empty); run it as qemu-cross-cc, or \
             through a link named after the tool (qemu-cross-cc shims)"
                .into(),
        ));
    }
    let rest = args.get(1..).unwrap_or_default().to_vec();
    let args = &args;
    let mut global = Global::from_env()?;

    if !name.starts_with("qemu-cross-cc") {
        // distcc calls back under the fingerprinted name (`...-gcc-q<hex>`).
        let name = crate::distcc::fingerprint::split(&name).map_or(name.as_str(), |(n, _)| n);
        // Only the manifests whose target could prefix this name.
        let reg = Registry::load_matching(|t| name.starts_with(&format!("{t}-")))?;
        crate::diag::timing("plugin");
        if let Some((plugin, tool)) = reg.by_shim_name(name) {
            return run_tool(&global, plugin, &tool, &args[0], rest);
        }
    }

    // Global options.
    let mut i = 0;
    while i < rest.len() {
        if let Some(v) = option_value(&rest, &mut i, "--engine")? {
            global.choice = v.parse::<Choice>().map_err(usage_error)?;
        } else if let Some(v) = option_value(&rest, &mut i, "--dockerfiles-dir")? {
            global.dockerfile_dirs.push(PathBuf::from(v));
        } else if let Some(v) = option_value(&rest, &mut i, "--target")? {
            global.target = Some(v);
        } else {
            break;
        }
    }
    let rest = rest[i..].to_vec();
    let first = rest.first().and_then(|a| a.to_str()).unwrap_or("");
    if let Some(cmd) = commands::find(first) {
        return cmd.dispatch(&global.ctx(), &rest[1..]);
    }

    // Everything else is a compiler command line for the target's cc.
    let Some(target) = global.target.clone() else {
        if rest.is_empty() || matches!(first, "-h" | "--help") {
            println!("{}", commands::help::text());
            return Ok(if rest.is_empty() { 2 } else { 0 });
        }
        if matches!(first, "-V" | "--version") {
            return commands::version::print();
        }
        let reg = Registry::load()?;
        bail!(
            "no target given for the compiler command line; pass --target=TARGET or set \
             QEMU_CROSS_CC_TARGET (known targets: {})",
            reg.names().join(", ")
        );
    };
    let reg = Registry::load_matching(|t| t == target)?;
    let Some(plugin) = reg.find(&target) else {
        // The error lists every target.
        return Err(Registry::load()?.unknown(&target));
    };
    run_tool(&global, plugin, "cc", &args[0], rest)
}

/// Run `tool` of `plugin` with `args`. `argv0` is how this program was
/// called. The project file of the current directory adds paths,
/// variables, packages and distcc servers (with packages, the image is the
/// derived one). The runner runs a target program; every other tool is a
/// call of the compile path.
fn run_tool(
    global: &Global,
    plugin: &Plugin,
    tool: &str,
    argv0: &OsStr,
    args: Vec<OsString>,
) -> Result<i32> {
    let plugin = &*crate::target::project::apply(plugin)?;
    crate::diag::timing("project");
    if tool == crate::target::plugin::RUNNER {
        return crate::run::run(&global.ctx(), plugin, args);
    }
    compile::run_tool(&global.ctx(), plugin, tool, argv0, args, || global.passed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_program_name_is_a_usage_error() {
        for args in [Vec::new(), vec![OsString::new(), "-c".into(), "x.c".into()]] {
            let e = dispatch(args).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some(), "{e:#}");
            assert!(format!("{e:#}").contains("argv[0] is empty"), "{e:#}");
        }
    }
}
