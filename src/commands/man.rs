//! `man [SUBCOMMAND...]`: the man page (roff) of the program, or of one
//! subcommand (`qemu-cross-cc-SUBCOMMAND(1)`, `man sessions stop` for
//! `qemu-cross-cc-sessions-stop(1)`), generated from the same definitions
//! as the help.

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};
use crate::error::UsageError;

pub const COMMAND: Command = Command::clap(
    "man",
    "print the man page (roff), the program's or a subcommand's",
    Args::command,
    |_, m| run(commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(
    about = "Print the man page (roff) of qemu-cross-cc, or of a subcommand",
    after_help = "examples:\n  \
                  qemu-cross-cc man | man -l -\n  \
                  qemu-cross-cc man build > qemu-cross-cc-build.1\n  \
                  qemu-cross-cc man sessions stop > qemu-cross-cc-sessions-stop.1"
)]
pub struct Args {
    /// The subcommand whose page to print (qemu-cross-cc-SUBCOMMAND(1)),
    /// and its own subcommand if it has some.
    #[arg(value_parser = commands::SubcommandName)]
    subcommand: Vec<String>,
}

fn run(args: Args) -> Result<i32> {
    let mut cmd = commands::program();
    cmd.build();
    for (i, sub) in args.subcommand.iter().enumerate() {
        cmd = cmd
            .find_subcommand(sub)
            .cloned()
            .ok_or_else(|| UsageError {
                command: "man".into(),
                message: match i {
                    0 => format!("unknown subcommand '{sub}'"),
                    _ => format!(
                        "'{}' has no subcommand '{sub}'",
                        args.subcommand[..i].join(" ")
                    ),
                },
            })?;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .source(format!("qemu-cross-cc {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)
        .context("cannot render the man page")?;
    commands::print_bytes(&page)
}
