//! `toolchain TARGET --cmake|--meson|--env [-o FILE]`: a CMake toolchain
//! file, a Meson cross file or shell variables for the target.

use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};
use crate::context::Ctx;
use crate::target::plugin::{Plugin, Registry};
use crate::target::toolchain::{self, Paths};

pub const COMMAND: Command = Command::clap(
    "toolchain",
    "a CMake toolchain file, Meson cross file or shell variables for a target",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(
    about = "Print a CMake toolchain file, a Meson cross file or shell variables for a target"
)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["cmake", "meson", "env"])))]
pub struct Args {
    /// The target (see 'qemu-cross-cc targets').
    target: String,
    /// A CMake toolchain file (cmake -DCMAKE_TOOLCHAIN_FILE=FILE).
    #[arg(long)]
    cmake: bool,
    /// A Meson cross file (meson setup --cross-file FILE).
    #[arg(long)]
    meson: bool,
    /// Shell variables: CC, CXX, AR, PKG_CONFIG, HOST... (eval "$(...)").
    #[arg(long)]
    env: bool,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// The folder of the target's links (default: found on PATH).
    #[arg(long, value_name = "DIR")]
    links: Option<PathBuf>,
}

/// The text of one toolchain file.
pub fn text(
    ctx: &Ctx,
    plugin: &Plugin,
    kind: &str,
    links: Option<&std::path::Path>,
) -> Result<String> {
    let paths = Paths::of(ctx, plugin, links)?;
    match kind {
        "cmake" => toolchain::cmake(plugin, &paths),
        "meson" => toolchain::meson(plugin, &paths),
        _ => Ok(toolchain::env(plugin, &paths)),
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let reg = Registry::load()?;
    let plugin = crate::target::project::apply(reg.get(&args.target)?)?;
    let kind = if args.cmake {
        "cmake"
    } else if args.meson {
        "meson"
    } else {
        "env"
    };
    let text = text(ctx, &plugin, kind, args.links.as_deref())?;
    match &args.output {
        Some(f) => {
            std::fs::write(f, text).map_err(|e| crate::state::safefs::io_error(e, "write", f))?
        }
        None => print!("{text}"),
    }
    Ok(0)
}
