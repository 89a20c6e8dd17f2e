//! `sessions`: list or stop warm toolchain sessions.

use anyhow::Result;
use clap::Parser;

use super::Ctx;

#[derive(Debug, Parser)]
#[command(name = "qemu-cross-cc sessions", about = "List or stop warm toolchain sessions")]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List live sessions (the default).
    List,
    /// Stop sessions.
    Stop {
        /// Stop every session of this user.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(_ctx: &Ctx, args: Args) -> Result<i32> {
    match args.action {
        None | Some(Action::List) => Ok(0),
        Some(Action::Stop { all: _ }) => Ok(0),
    }
}
