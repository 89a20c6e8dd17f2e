//! The context of one invocation: the engine choice, found on first use,
//! and the dockerfile search path.

use std::cell::OnceCell;

use anyhow::Result;

use crate::engine::{Choice, Engine};
use crate::image::dockerfile::Library;

/// What every subcommand and the compile path may need: the engine (found on first use) and the
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

    /// The engine, probed once (and remembered briefly across calls; see
    /// `Engine::detect_cached`, which also sweeps orphaned containers now
    /// and then).
    pub fn engine(&self) -> Result<&Engine> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let e = Engine::detect_cached(self.choice)?;
        Ok(self.engine.get_or_init(|| e))
    }

    /// The engine, for a command that bind-mounts this machine's folders
    /// (a compile, `cc`, `run`, the runner, `exec`): refused when it runs
    /// its containers on another machine (see `Engine::require_local`).
    pub fn local_engine(&self) -> Result<&Engine> {
        let e = self.engine()?;
        e.require_local()?;
        Ok(e)
    }
}
