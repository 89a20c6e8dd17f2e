//! `exec TARGET -- COMMAND...`: a whole command (`make check`) in the
//! target's image, from the current directory, its argument paths mounted as
//! for a compile, as the caller; the target programs it starts run under
//! qemu-user (see `runner`).

use std::ffi::OsString;

use anyhow::Result;

use crate::commands::Command;
use crate::context::Ctx;
use crate::error::UsageError;
use crate::target::plugin::Registry;

pub const COMMAND: Command = Command::words(
    "exec",
    "run a command in a target's image, its programs under qemu-user",
    command,
    run,
);

const USAGE: &str = "qemu-cross-cc exec TARGET -- COMMAND [ARGS...]\n       \
                     qemu-cross-cc exec --host [--links DIR] TARGET -- COMMAND [ARGS...]";

const DESCRIPTION: &str = "\
Run COMMAND in TARGET's image (built first if missing or stale), in the
current directory (mounted read-write), with the paths in its arguments
mounted as for a compile, as the calling user, without network. The target's
programs that COMMAND starts run under qemu-user through the host's
binfmt_misc handler (registered by qemu-user-static) and find the target's
libraries (QEMU_LD_PREFIX is the target's sysroot). stdin, stdout, stderr and
the exit status pass through.

With --host, COMMAND runs on the host instead: with the target's variables
(those of 'qemu-cross-cc toolchain TARGET --env': CC, CXX, HOST...), the
folder of its links first on PATH (found on PATH, or --links DIR), and
QEMU_LD_PREFIX the target's exported sysroot, so that the target programs it
starts (tests, scripts' programs) run through the host's binfmt_misc handler
with their libraries. It replaces this process.";

const EXAMPLE: &str = "examples: qemu-cross-cc exec s390x-linux-gnu -- make check\n          \
                       qemu-cross-cc exec --host s390x-linux-gnu -- ctest";

/// The words after `exec`, described for completions and the man page;
/// `run` reads them itself (everything after `--` is the container's).
fn command() -> clap::Command {
    clap::Command::new("exec")
        .about("Run a command in a target's image, its programs under qemu-user")
        .long_about(DESCRIPTION)
        .override_usage(USAGE)
        .after_help(EXAMPLE)
        .arg(
            clap::Arg::new("host")
                .long("host")
                .action(clap::ArgAction::SetTrue)
                .help("Run COMMAND on the host, its target programs through binfmt_misc"),
        )
        .arg(
            clap::Arg::new("links")
                .long("links")
                .value_name("DIR")
                .requires("host")
                .help("With --host: the folder of the target's links (default: found on PATH)"),
        )
        .arg(
            clap::Arg::new("TARGET")
                .required(true)
                .help("The target (see 'qemu-cross-cc targets')"),
        )
        .arg(
            clap::Arg::new("COMMAND")
                .required(true)
                .num_args(1..)
                .last(true)
                .help("The command and its arguments, after --"),
        )
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError {
        command: "exec".into(),
        message: message.into(),
    }
    .into()
}

/// `args` are the words after `exec`.
fn run(ctx: &Ctx, args: &[OsString]) -> Result<i32> {
    let mut host = false;
    let mut links: Option<std::path::PathBuf> = None;
    let mut rest = args;
    loop {
        match rest.first().and_then(|a| a.to_str()) {
            Some("-h" | "--help") => {
                println!("usage: {USAGE}\n\n{DESCRIPTION}\n\n{EXAMPLE}");
                return Ok(0);
            }
            Some("--host") => {
                host = true;
                rest = &rest[1..];
            }
            Some(a) if a.starts_with("--links=") => {
                links = Some(a["--links=".len()..].into());
                rest = &rest[1..];
            }
            Some("--links") => {
                let Some(dir) = rest.get(1) else {
                    return Err(usage(
                        "--links needs a folder: exec --host --links DIR TARGET -- COMMAND...",
                    ));
                };
                links = Some(dir.into());
                rest = &rest[2..];
            }
            _ => break,
        }
    }
    if links.is_some() && !host {
        return Err(usage(
            "--links goes with --host: exec --host --links DIR TARGET -- COMMAND...",
        ));
    }
    let Some(first) = rest.first() else {
        return Err(usage("a target is required: exec TARGET -- COMMAND..."));
    };
    let target = first
        .to_str()
        .filter(|t| !t.starts_with('-'))
        .ok_or_else(|| usage(format!("expected a target, got {first:?}")))?;
    if rest.get(1).is_none_or(|a| a != "--") {
        return Err(usage(
            "`--` must come between the target and the command: exec TARGET -- COMMAND...",
        ));
    }
    let command = rest[2..].to_vec();
    if command.is_empty() {
        return Err(usage("no command after `--`: exec TARGET -- COMMAND..."));
    }
    let reg = Registry::load_matching(|t| t == target)?;
    let Some(plugin) = reg.find(target) else {
        return Err(Registry::load()?.unknown(target));
    };
    // The project file of the current directory may add paths, variables
    // and packages, as for the target's tools.
    let plugin = crate::target::project::apply(plugin)?;
    if host {
        return crate::run::host_exec(ctx, &plugin, links.as_deref(), command);
    }
    crate::run::exec(ctx, &plugin, command)
}
