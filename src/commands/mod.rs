//! The docker.py-compatible subcommands, one module each.
//!
//! Each module has a `SPEC` (its grammar, see `argparse`) and a `run`
//! returning the process exit code.

use anyhow::Result;

use crate::commands::argparse::{Arity, Matches, Opt, Spec};
use crate::context::Ctx;

pub mod argparse;
pub mod build;
pub mod cc;
pub mod check;
pub mod clean;
pub mod dist;
pub mod exec;
pub mod fetch;
pub mod images;
pub mod probe;
pub mod run;
pub mod serve;
pub mod sessions;
pub mod shims;
pub mod sysroot;
pub mod targets;
pub mod toolchain;
pub mod update;

/// `--add-current-user/-u`, shared by `build` and `update`.
pub const ADD_CURRENT_USER: Opt = Opt {
    names: &["--add-current-user", "-u"],
    dest: "user",
    arity: Arity::Flag,
    metavar: "",
    help: "Add the current user to image's passwd",
    required: false,
};

/// A compatible subcommand: its grammar and its implementation.
pub struct Command {
    pub spec: &'static Spec,
    pub run: fn(&Ctx, &Matches) -> Result<i32>,
}

/// All compatible subcommands, in docker.py's order.
pub const ALL: &[Command] = &[
    Command {
        spec: &run::SPEC,
        run: run::run,
    },
    Command {
        spec: &build::SPEC,
        run: build::run,
    },
    Command {
        spec: &fetch::SPEC,
        run: fetch::run,
    },
    Command {
        spec: &update::SPEC,
        run: update::run,
    },
    Command {
        spec: &clean::SPEC,
        run: clean::run,
    },
    Command {
        spec: &images::SPEC,
        run: images::run,
    },
    Command {
        spec: &probe::SPEC,
        run: probe::run,
    },
    Command {
        spec: &cc::SPEC,
        run: cc::run,
    },
    Command {
        spec: &check::SPEC,
        run: check::run,
    },
];

pub fn find(name: &str) -> Option<&'static Command> {
    ALL.iter().find(|c| c.spec.name == name)
}
