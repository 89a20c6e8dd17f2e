//! `probe`: print which engine works (docker, sudo docker, podman or no).

use anyhow::Result;

use crate::commands::Command;
use crate::commands::argparse::{Matches, Pos, Spec};
use crate::context::Ctx;

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "print which engine works: docker, sudo docker, podman or no",
    run,
);

pub const SPEC: Spec = Spec {
    name: "probe",
    about: "Probe if we can run an engine automatically (prints docker, sudo docker, podman or no); \
            with a TARGET, also whether its image is up to date (exit 1 when not)",
    opts: &[],
    positionals: &[Pos {
        name: "TARGET",
        required: false,
        help: "A target (see 'qemu-cross-cc targets') whose image to check",
    }],
    epilog: "examples:\n  qemu-cross-cc probe\n  qemu-cross-cc probe aarch64-linux-gnu",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    // Always a fresh probe: this is what it is for.
    let engine = match crate::engine::Engine::detect(ctx.choice) {
        Ok(e) => e,
        Err(_) => {
            println!("no");
            return Ok(if m.positional(0).is_some() { 1 } else { 0 });
        }
    };
    println!("{}", engine.probe_name());
    let Some(target) = m.positional(0) else {
        return Ok(0);
    };
    let plugins = crate::target::plugin::Registry::load()?;
    let plugin = plugins.get(target)?;
    let state = crate::target::ensure::image_state(&engine, plugin, &ctx.library)?;
    println!("{target}: {} {state}", plugin.image);
    Ok(if state == crate::target::ensure::ImageState::UpToDate {
        0
    } else {
        1
    })
}
