//! `fetch TAG REGISTRY`: pull REGISTRY/TAG and tag it TAG.

use anyhow::Result;

use crate::commands::Command;
use crate::commands::argparse::{Matches, Pos, Spec};
use crate::context::Ctx;

pub const COMMAND: Command = Command::docker_py(&SPEC, "pull REGISTRY/TAG and tag it TAG", run);

pub const SPEC: Spec = Spec {
    name: "fetch",
    about: "Fetch an image from a registry. Args: <tag> <registry>",
    opts: &[],
    positionals: &[
        Pos {
            name: "tag",
            required: true,
            help: "Local tag for image",
        },
        Pos {
            name: "registry",
            required: true,
            help: "Registry (host:port)",
        },
    ],
    epilog: "example: qemu-cross-cc fetch qemu/debian-aarch64-cross localhost:5000",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let engine = ctx.engine()?;
    let tag = m.positional(0).unwrap_or_default();
    let registry = m.positional(1).unwrap_or_default();
    let remote = format!("{registry}/{tag}");
    let quiet = m.flag("quiet");
    engine.run_reporting(
        ["pull", remote.as_str()],
        quiet,
        &format!("cannot pull {remote} (check the registry address and that it holds {tag})"),
    )?;
    engine.run_reporting(
        ["tag", remote.as_str(), tag],
        quiet,
        &format!("cannot tag {remote} as {tag}"),
    )?;
    Ok(0)
}
