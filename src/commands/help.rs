//! `help [SUBCOMMAND]`: the top-level help, made from the registry, or a
//! subcommand's (what `SUBCOMMAND --help` prints).

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::{self, ALL, Command, GLOBAL_OPTIONS, Group, USAGE};
use crate::context::Ctx;
use crate::error::UsageError;

pub const COMMAND: Command = Command::clap(
    "help",
    "this text, or 'help SUBCOMMAND'",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(about = "Print the help, or a subcommand's (as SUBCOMMAND --help)")]
pub struct Args {
    /// The subcommand whose help to print.
    #[arg(value_parser = commands::SubcommandName)]
    subcommand: Option<String>,
}

/// The help of `qemu-cross-cc` (alone, `--help`, `help`).
pub fn text() -> String {
    let width = ALL.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let list = |group: Group| {
        let mut s = String::new();
        for c in ALL.iter().filter(|c| c.group == group) {
            s.push_str(&format!("  {:<width$} {}\n", c.name, c.about));
        }
        s
    };
    format!(
        "qemu-cross-cc: {}\n\n{USAGE}\n\n{GLOBAL_OPTIONS}\n\n\
         subcommands (docker.py compatible):\n{}\n\
         subcommands (qemu-cross-cc):\n{}\n\
         Run 'qemu-cross-cc SUBCOMMAND --help' for a subcommand's options.",
        commands::ABOUT,
        list(Group::DockerPy),
        list(Group::QemuCrossCc),
    )
}

fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let Some(sub) = args.subcommand else {
        println!("{}", text());
        return Ok(0);
    };
    match commands::find(&sub) {
        Some(cmd) => cmd.dispatch(ctx, &["--help".into()]),
        None => Err(UsageError {
            command: "qemu-cross-cc".into(),
            message: format!("no help for unknown subcommand '{sub}'"),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_lists_every_subcommand_once_under_its_group() {
        let t = text();
        let (compatible, own) = t
            .split_once("subcommands (qemu-cross-cc):")
            .expect("two groups");
        let (_, compatible) = compatible
            .split_once("subcommands (docker.py compatible):")
            .expect("two groups");
        let listed = |part: &str| -> Vec<String> {
            part.lines()
                .filter(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next().map(String::from))
                .collect()
        };
        let names = |g: Group| -> Vec<String> {
            ALL.iter()
                .filter(|c| c.group == g)
                .map(|c| c.name.to_string())
                .collect()
        };
        assert_eq!(listed(compatible), names(Group::DockerPy));
        assert_eq!(listed(own), names(Group::QemuCrossCc));
        assert!(t.contains("global options:") && t.contains("usage:"));
    }
}
