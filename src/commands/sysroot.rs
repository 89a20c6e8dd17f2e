//! `sysroot TARGET`: export the target's headers and libraries from its
//! image to the cache folder and print where.

use anyhow::Result;
use clap::Parser;

use crate::context::Ctx;
use crate::target::plugin::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "qemu-cross-cc sysroot",
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
