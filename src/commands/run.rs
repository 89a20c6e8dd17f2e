//! `run`: `ENGINE run --rm` with the instance label, removed on signals.

use std::ffi::OsString;

use anyhow::Result;

use super::Ctx;
use crate::argparse::{Arity, Matches, Opt, Spec};
use crate::engine::Engine;
use crate::labels;
use crate::signals::InstanceGuard;

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
    let engine = ctx.engine()?;
    let args: Vec<OsString> = m.extra.iter().map(OsString::from).collect();
    run_container(
        engine,
        args,
        m.flag("keep"),
        m.flag("quiet"),
        m.flag("as_user"),
        &[],
    )
}

/// `ENGINE run --rm --label INSTANCE=UUID [user options] ARGS...`; returns
/// the container's exit status. Unless `keep`, a signal meanwhile removes the
/// container. The container also carries the caller's uid and identity, so
/// that one created by a caller killed before it started is found and
/// removed later (see `orphans`). `env` are variables that `ARGS` name with
/// `-e NAME` only: their values travel in the engine client's environment,
/// never on a command line that `ps` shows to every user.
pub fn run_container(
    engine: &Engine,
    args: Vec<OsString>,
    keep: bool,
    quiet: bool,
    as_user: bool,
    env: &[(String, OsString)],
) -> Result<i32> {
    let label = uuid::Uuid::new_v4().simple().to_string();
    let mut full: Vec<OsString> = vec![
        "run".into(),
        "--rm".into(),
        "--label".into(),
        format!("{}={label}", labels::INSTANCE).into(),
    ];
    full.extend(crate::orphans::label_args().into_iter().map(OsString::from));
    if as_user {
        full.extend(engine.user_args().into_iter().map(OsString::from));
    }
    full.extend(args);
    let guard = (!keep).then(|| InstanceGuard::new(engine, &label));
    let mut cmd = engine.command(&full);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if quiet {
        cmd.stdout(std::process::Stdio::null());
    }
    let code = engine.run_command(cmd)?;
    if code >= 125 && guard.is_some() {
        // The engine itself failed: a container may be left behind.
        engine.remove_instance(&label);
    }
    Ok(code)
}
