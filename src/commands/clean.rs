//! `clean`: remove every container carrying the instance label (and so end
//! every session).

use anyhow::Result;

use crate::commands::Command;
use crate::commands::argparse::{Matches, Spec};
use crate::context::Ctx;
use crate::engine::labels;

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "remove containers carrying the instance label (ends sessions)",
    run,
);

pub const SPEC: Spec = Spec {
    name: "clean",
    about: "Clean up containers left by this tool (and docker.py), ending all sessions",
    opts: &[],
    positionals: &[],
    epilog: "example: qemu-cross-cc clean",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let engine = ctx.engine()?;
    if !m.flag("quiet") {
        println!("filter=--filter=label={}", labels::INSTANCE);
    }
    let ids = engine.instance_containers(None, true)?;
    if !ids.is_empty() {
        engine.run(engine.remove_args(&ids), true)?;
    }
    crate::session::forget_all(engine);
    // The Created containers of killed callers of this user (docker.py's
    // label above covers those of this tool too; this finds them also when
    // they carry only our own labels).
    crate::engine::orphans::sweep_created(engine)?;
    Ok(0)
}
