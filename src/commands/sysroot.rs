//! `sysroot TARGET`: export the target's headers and libraries from its
//! image to the cache folder and print where.

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};
use crate::context::Ctx;
use crate::target::plugin::Registry;

pub const COMMAND: Command = Command::clap(
    "sysroot",
    "export a target's headers and libraries to the cache, print the folder",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(
    about = "Export a target's headers and libraries from its image to the cache and print the folder"
)]
pub struct Args {
    /// The target (see 'qemu-cross-cc targets').
    target: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let reg = Registry::load()?;
    let plugin = crate::target::project::apply(reg.get(&args.target)?)?;
    let dir = crate::target::sysroot::ensure_exported(ctx, &plugin)?;
    println!("{}", dir.display());
    Ok(0)
}
