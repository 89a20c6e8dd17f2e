//! `images`: the engine's `images`, with any arguments passed on.

use anyhow::Result;

use crate::commands::Command;
use crate::commands::argparse::{Matches, Spec};
use crate::context::Ctx;

pub const COMMAND: Command = Command::docker_py(&SPEC, "the engine's images command", run);

pub const SPEC: Spec = Spec {
    name: "images",
    about: "Run the engine's \"images\" command",
    opts: &[],
    positionals: &[],
    epilog: "example: qemu-cross-cc images --format '{{.Repository}}:{{.Tag}}'",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut args = vec!["images".to_string()];
    args.extend(m.extra.iter().cloned());
    engine.run(&args, m.flag("quiet"))
}
