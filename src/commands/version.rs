//! `version`: print the program's version.

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::Command;

pub const COMMAND: Command =
    Command::clap("version", "print the version", Args::command, |_, _| {
        print()
    });

#[derive(Debug, Parser)]
#[command(about = "Print the version")]
pub struct Args {}

/// `--version` and `-V` say the same.
pub fn print() -> Result<i32> {
    println!("qemu-cross-cc {}", env!("CARGO_PKG_VERSION"));
    Ok(0)
}
