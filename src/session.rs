//! Warm toolchain sessions (not yet implemented: every call is one-shot).

use anyhow::Result;

use crate::compile::Request;
use crate::engine::Engine;

/// Run `req` in a live session; None when no session can serve it.
pub fn try_execute(_engine: &Engine, _req: &Request) -> Result<Option<i32>> {
    Ok(None)
}

/// Forget every session of this engine (their containers are gone).
pub fn forget_all(_engine: &Engine) {}

/// The hidden subcommand the session container runs.
pub const AGENT_COMMAND: &str = "__agent";

/// The agent inside a session container.
pub fn agent_main(_args: &[std::ffi::OsString]) -> Result<i32> {
    anyhow::bail!("sessions are not implemented yet")
}
