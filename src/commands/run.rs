//! `run`: `ENGINE run --rm` with the instance label, removed on signals.

use std::ffi::OsString;

use anyhow::Result;

use crate::commands::Command;
use crate::commands::argparse::{Arity, Matches, Opt, Spec};
use crate::context::Ctx;
use crate::engine::container;

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "run a container with the instance label, cleaned up on signals",
    run,
);

pub const SPEC: Spec = Spec {
    name: "run",
    about: "Invoke ENGINE run and take care of cleaning up",
    opts: &[
        Opt {
            names: &["--keep"],
            dest: "keep",
            arity: Arity::Flag,
            metavar: "",
            help: "Don't remove the container when a signal ends this command",
            required: false,
        },
        Opt {
            names: &["--run-as-current-user"],
            dest: "as_user",
            arity: Arity::Flag,
            metavar: "",
            help: "Run the container as the current uid:gid",
            required: false,
        },
    ],
    positionals: &[],
    epilog: "example: qemu-cross-cc run --run-as-current-user -v $PWD:$PWD -w $PWD debian:12-slim ls",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    // `-v` names this machine's folders (QEMU's `make docker-*` mounts).
    let engine = ctx.local_engine()?;
    let args: Vec<OsString> = m.extra.iter().map(OsString::from).collect();
    container::run(
        engine,
        args,
        m.flag("keep"),
        m.flag("quiet").then(std::process::Stdio::null),
        m.flag("as_user"),
        &[],
    )
}
