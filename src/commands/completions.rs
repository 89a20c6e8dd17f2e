//! `completions SHELL`: the shell's completion script for the whole
//! program, generated from the same definitions as the help.

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};

pub const COMMAND: Command = Command::clap(
    "completions",
    "print the shell completion script (bash, zsh, fish, elvish, powershell)",
    Args::command,
    |_, m| run(commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(
    about = "Print the completion script for a shell",
    after_help = "examples:\n  \
                  qemu-cross-cc completions bash > ~/.local/share/bash-completion/completions/qemu-cross-cc\n  \
                  qemu-cross-cc completions zsh > ~/.zfunc/_qemu-cross-cc   # a folder on $fpath\n  \
                  qemu-cross-cc completions fish > ~/.config/fish/completions/qemu-cross-cc.fish"
)]
pub struct Args {
    /// The shell.
    shell: clap_complete::Shell,
}

fn run(args: Args) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut commands::program(),
        "qemu-cross-cc",
        &mut script,
    );
    if args.shell == clap_complete::Shell::Bash {
        script = fix_bash_states(&script);
    }
    commands::print_bytes(&script)
}

/// clap_complete's bash script (up to 4.6.12 at least) names the state of
/// a subcommand in two ways when the program's name has a hyphen
/// (clap-rs/clap#6421): the loop over the words reaches
/// `qemu__cross__cc__subcmd__build`, the `case` that completes its options
/// is labelled `qemu__subcmd__cross__subcmd__cc__subcmd__build`, so nothing
/// after a subcommand would complete. The labels are spelled as the loop
/// spells them; once clap fixes it, the wrong spelling no longer occurs.
fn fix_bash_states(script: &[u8]) -> Vec<u8> {
    const WRONG: &str = "qemu__subcmd__cross__subcmd__cc__subcmd__";
    const RIGHT: &str = "qemu__cross__cc__subcmd__";
    String::from_utf8_lossy(script)
        .replace(WRONG, RIGHT)
        .into_bytes()
}
