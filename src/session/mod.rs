//! Warm toolchain sessions: one long-lived container per (engine, image,
//! mount set, uid:gid) running an agent (this binary, statically linked and
//! bind-mounted read-only). A call connects to the agent's unix socket and
//! hands over argv, cwd, umask, the allowed environment and its stdin,
//! stdout and stderr; the compiler writes straight to them.
//!
//! The hot path makes no engine call: sessions are found through records in
//! the per-user runtime folder, and revalidated by the dockerfile checksum
//! recorded beside them. A record whose agent does not answer is removed and
//! a new session started; anything failing before the program starts falls
//! back to a one-shot `run --rm`.

mod agent;
mod client;
mod protocol;
mod record;
mod spawn;
mod start;

use std::ffi::OsString;

use anyhow::Result;

pub use protocol::Status;

/// The hidden subcommand the session container runs.
pub const AGENT_COMMAND: &str = "__agent";

/// Label marking session containers (besides the instance label).
pub const SESSION_LABEL: &str = "com.qemu-cross-cc.session";

/// The target a session container serves (when it has one).
pub const TARGET_LABEL: &str = "com.qemu-cross-cc.target";

/// The runtime folder whose records name a session container: a session
/// whose record is lost is found by it (a user may have several runtime
/// folders; each sees only its own sessions).
pub const RUNTIME_LABEL: &str = "com.qemu-cross-cc.runtime";

/// The value of `RUNTIME_LABEL` for this process.
pub fn runtime_label() -> String {
    crate::state::paths::runtime_location()
        .display()
        .to_string()
}

/// Where the agent binary appears inside the container.
const AGENT_PATH: &str = "/.qemu-cross-cc-agent";

/// The agent inside a session container.
pub fn agent_main(args: &[OsString]) -> Result<i32> {
    agent::main(args)
}

/// Sessions are on unless `QEMU_CROSS_CC_SESSION=0`.
pub fn enabled() -> bool {
    std::env::var("QEMU_CROSS_CC_SESSION")
        .ok()
        .and_then(|v| crate::host::switch(&v))
        != Some(false)
}

fn idle_seconds() -> u64 {
    std::env::var("QEMU_CROSS_CC_SESSION_IDLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(600)
}

pub use client::{Health, Live, forget_all, known_image, run_in_live, status, stop};
pub use record::{Record, forget, records};
pub use start::{Image, start_and_run};
