//! The docker.py-compatible subcommands, one module each.
//!
//! Each module has a `SPEC` (its grammar, see `argparse`) and a `run`
//! returning the process exit code.

use std::cell::OnceCell;

use anyhow::Result;

use crate::argparse::{Matches, Spec};
use crate::dockerfile::Library;
use crate::engine::{Choice, Engine};

pub mod build;
pub mod cc;
pub mod check;
pub mod clean;
pub mod fetch;
pub mod images;
pub mod probe;
pub mod run;
pub mod sessions;
pub mod shims;
pub mod targets;
pub mod update;

/// What every subcommand may need: the engine (found on first use) and the
/// dockerfile search path.
pub struct Ctx {
    pub choice: Choice,
    pub library: Library,
    engine: OnceCell<Engine>,
}

impl Ctx {
    pub fn new(choice: Choice, library: Library) -> Ctx {
        Ctx {
            choice,
            library,
            engine: OnceCell::new(),
        }
    }

    /// The engine, probed once (and remembered briefly across calls). The
    /// first call in a while also removes containers that killed callers
    /// left in state Created.
    pub fn engine(&self) -> Result<&Engine> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let e = Engine::detect_cached(self.choice)?;
        if e.sweep_due() {
            if let Err(err) = crate::orphans::sweep_created(&e) {
                crate::compile::debug(format!("sweeping orphaned containers: {err:#}"));
            }
        }
        Ok(self.engine.get_or_init(|| e))
    }
}

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
