//! The subcommands, one module each, and their registry.
//!
//! Each module exports one `COMMAND`: its name, a one-line description for
//! the top-level help, its group and how its words are parsed (`Syntax`).
//! `ALL` lists them; the dispatch, `help`, the top-level help's list, the
//! shell completions and the man pages all come from it. Adding a
//! subcommand is its module plus one line in `ALL` (and a `pub mod`).

use std::ffi::OsString;
use std::io::Write as _;

use anyhow::{Context, Result};
use clap::{Arg, ArgAction};

use crate::commands::argparse::{Arity, Matches, Opt, Spec};
use crate::context::Ctx;
use crate::error::UsageError;

pub mod argparse;
pub mod build;
pub mod cc;
pub mod check;
pub mod clean;
pub mod completions;
pub mod dist;
pub mod exec;
pub mod fetch;
pub mod help;
pub mod images;
pub mod man;
pub mod probe;
pub mod run;
pub mod serve;
pub mod sessions;
pub mod shims;
pub mod sysroot;
pub mod targets;
pub mod toolchain;
pub mod update;
pub mod version;

/// `--add-current-user/-u`, shared by `build` and `update`.
pub const ADD_CURRENT_USER: Opt = Opt {
    names: &["--add-current-user", "-u"],
    dest: "user",
    arity: Arity::Flag,
    metavar: "",
    help: "Add the current user to image's passwd",
    required: false,
};

/// Where a subcommand comes from (the top-level help lists each group
/// under its own heading).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// docker.py's subcommands, with its grammar and behaviour.
    DockerPy,
    /// New in qemu-cross-cc.
    QemuCrossCc,
}

/// How a subcommand reads the words after its name.
pub enum Syntax {
    /// docker.py's grammar (see `argparse`): options it does not know go to
    /// the engine. Its clap definition (`Spec::clap_command`) only feeds
    /// completions and the man page.
    DockerPy {
        spec: &'static Spec,
        run: fn(&Ctx, &Matches) -> Result<i32>,
    },
    /// clap: `command` is the definition (`Args::command`), `run` gets what
    /// it matched (`commands::args` turns that into the `Args`).
    Clap {
        command: fn() -> clap::Command,
        run: fn(&Ctx, &clap::ArgMatches) -> Result<i32>,
    },
    /// The words as given (`exec TARGET -- COMMAND...`, whose command is
    /// the container's); `command` describes them for completions and the
    /// man page only.
    Words {
        command: fn() -> clap::Command,
        run: fn(&Ctx, &[OsString]) -> Result<i32>,
    },
}

/// One subcommand of the registry.
pub struct Command {
    pub name: &'static str,
    /// One line, for the top-level help's list.
    pub about: &'static str,
    pub group: Group,
    pub syntax: Syntax,
}

impl Command {
    /// A docker.py-compatible subcommand, named by its grammar.
    pub const fn docker_py(
        spec: &'static Spec,
        about: &'static str,
        run: fn(&Ctx, &Matches) -> Result<i32>,
    ) -> Command {
        Command {
            name: spec.name,
            about,
            group: Group::DockerPy,
            syntax: Syntax::DockerPy { spec, run },
        }
    }

    /// A qemu-cross-cc subcommand parsed with clap.
    pub const fn clap(
        name: &'static str,
        about: &'static str,
        command: fn() -> clap::Command,
        run: fn(&Ctx, &clap::ArgMatches) -> Result<i32>,
    ) -> Command {
        Command {
            name,
            about,
            group: Group::QemuCrossCc,
            syntax: Syntax::Clap { command, run },
        }
    }

    /// A qemu-cross-cc subcommand that reads its words itself.
    pub const fn words(
        name: &'static str,
        about: &'static str,
        command: fn() -> clap::Command,
        run: fn(&Ctx, &[OsString]) -> Result<i32>,
    ) -> Command {
        Command {
            name,
            about,
            group: Group::QemuCrossCc,
            syntax: Syntax::Words { command, run },
        }
    }

    /// The clap definition: what `Clap` subcommands are parsed with, and
    /// what describes every subcommand to completions and the man page.
    pub fn clap_command(&self) -> clap::Command {
        let cmd = match &self.syntax {
            Syntax::DockerPy { spec, .. } => spec.clap_command(),
            Syntax::Clap { command, .. } | Syntax::Words { command, .. } => command(),
        };
        let cmd = match cmd.get_about() {
            Some(_) => cmd,
            None => cmd.about(self.about),
        };
        cmd.name(self.name)
            .bin_name(format!("qemu-cross-cc {}", self.name))
    }

    /// Run the subcommand with `args`, the words after its name.
    pub fn dispatch(&self, ctx: &Ctx, args: &[OsString]) -> Result<i32> {
        match &self.syntax {
            Syntax::DockerPy { spec, run } => {
                let m = spec.parse(&utf8(args)?)?;
                if m.help {
                    print!("{}", spec.help());
                    return Ok(0);
                }
                run(ctx, &m)
            }
            Syntax::Clap { run, .. } => {
                let argv =
                    std::iter::once(format!("qemu-cross-cc {}", self.name)).chain(utf8(args)?);
                match self.clap_command().try_get_matches_from(argv) {
                    Ok(m) => run(ctx, &m),
                    Err(e) => self.clap_error(e),
                }
            }
            Syntax::Words { run, .. } => run(ctx, args),
        }
    }

    /// clap's help is printed (exit 0); its errors become one usage line.
    fn clap_error(&self, e: clap::Error) -> Result<i32> {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            e.print().context("cannot write the help")?;
            return Ok(0);
        }
        // clap's first paragraph, on one line.
        let msg = e.to_string();
        let line = msg
            .lines()
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Err(UsageError {
            command: self.name.to_string(),
            message: line.trim_start_matches("error: ").to_string(),
        }
        .into())
    }
}

/// Every subcommand, in the order the help lists them (docker.py's first,
/// in docker.py's order).
pub const ALL: &[Command] = &[
    run::COMMAND,
    build::COMMAND,
    fetch::COMMAND,
    update::COMMAND,
    clean::COMMAND,
    images::COMMAND,
    probe::COMMAND,
    cc::COMMAND,
    check::COMMAND,
    targets::COMMAND,
    shims::COMMAND,
    sessions::COMMAND,
    exec::COMMAND,
    sysroot::COMMAND,
    toolchain::COMMAND,
    serve::COMMAND,
    dist::COMMAND,
    completions::COMMAND,
    man::COMMAND,
    help::COMMAND,
    version::COMMAND,
];

pub fn find(name: &str) -> Option<&'static Command> {
    ALL.iter().find(|c| c.name == name)
}

/// The `Args` of a clap subcommand from what its definition matched.
pub fn args<A: clap::FromArgMatches>(m: &clap::ArgMatches) -> Result<A> {
    A::from_arg_matches(m).map_err(|e| anyhow::anyhow!("{e}"))
}

fn utf8(args: &[OsString]) -> Result<Vec<String>> {
    args.iter()
        .map(|a| {
            a.to_str().map(String::from).ok_or_else(|| {
                UsageError {
                    command: "qemu-cross-cc".into(),
                    message: format!("argument {a:?} is not valid UTF-8"),
                }
                .into()
            })
        })
        .collect()
}

/// The options read before the subcommand, as the top-level help shows
/// them (the command line reads them itself, see `cli`).
pub const GLOBAL_OPTIONS: &str = "\
global options:
  --engine auto|docker|podman   container engine (env QEMU_CROSS_CC_ENGINE; default auto:
                                podman, then docker, then sudo -n docker)
  --dockerfiles-dir DIR         also look for dockerfiles here (repeatable;
                                env QEMU_CROSS_CC_DOCKERFILES, colon-separated)
  --target TARGET               the target whose cc runs (env QEMU_CROSS_CC_TARGET)";

/// The ways to call the program, as the top-level help shows them.
pub const USAGE: &str = "\
usage:
  qemu-cross-cc [GLOBAL OPTIONS] <subcommand> ...
  qemu-cross-cc [GLOBAL OPTIONS] [--target=TARGET] COMPILER ARGS...   (the target's cc)
  TARGET-TOOL ARGS...                  (through a link made by 'shims', e.g. aarch64-linux-gnu-gcc)";

/// What the program is, in one line.
pub const ABOUT: &str = "run cross compilers inside container images as if they were installed";

/// What the program is, for its man page.
const DESCRIPTION: &str = "\
qemu-cross-cc runs cross compilers inside container images as if they were installed on the \
host; it is also a drop-in for QEMU's tests/docker/docker.py.

Called as qemu-cross-cc, it reads the global options, then the first word picks a subcommand; \
any other first word makes the whole line the C compiler command line of the target that \
--target (or QEMU_CROSS_CC_TARGET) names, so that CC=qemu-cross-cc works. Called through a link \
made by 'qemu-cross-cc shims' (aarch64-linux-gnu-gcc...), it is that tool of that target.

Run 'qemu-cross-cc SUBCOMMAND --help', or see qemu-cross-cc-SUBCOMMAND(1), for a subcommand's \
options.";

/// A subcommand's name as an argument (`help SUBCOMMAND`, `man
/// SUBCOMMAND`): any word is taken (the subcommand says what is wrong with
/// an unknown one); the registry's names are its possible values, for the
/// completions and the help.
#[derive(Clone, Copy, Debug)]
pub struct SubcommandName;

impl clap::builder::TypedValueParser for SubcommandName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ALL.iter()
                .map(|c| clap::builder::PossibleValue::new(c.name)),
        ))
    }
}

/// The whole program as one clap definition, for completions and the man
/// page: the global options and every subcommand of the registry.
pub fn program() -> clap::Command {
    let mut cmd = clap::Command::new("qemu-cross-cc")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(DESCRIPTION)
        .override_usage(
            "qemu-cross-cc [GLOBAL OPTIONS] SUBCOMMAND ...\n\
             qemu-cross-cc [GLOBAL OPTIONS] [--target=TARGET] COMPILER ARGS...\n\
             TARGET-TOOL ARGS...",
        )
        .disable_help_subcommand(true)
        .arg(
            Arg::new("engine")
                .long("engine")
                .value_name("ENGINE")
                .value_parser(["auto", "docker", "podman"])
                .help(
                    "Container engine (env QEMU_CROSS_CC_ENGINE; default auto: podman, then \
                     docker, then sudo -n docker)",
                ),
        )
        .arg(
            Arg::new("dockerfiles-dir")
                .long("dockerfiles-dir")
                .value_name("DIR")
                .action(ArgAction::Append)
                .value_hint(clap::ValueHint::DirPath)
                .help(
                    "Also look for dockerfiles here (repeatable; env QEMU_CROSS_CC_DOCKERFILES, \
                     colon-separated)",
                ),
        )
        .arg(
            Arg::new("target")
                .long("target")
                .value_name("TARGET")
                .help("The target whose cc runs (env QEMU_CROSS_CC_TARGET)"),
        );
    for c in ALL {
        cmd = cmd.subcommand(c.clap_command());
    }
    cmd
}

/// Write `bytes` to stdout (a generator's whole output, made in memory so
/// that a write error is an error line, not a panic).
pub fn print_bytes(bytes: &[u8]) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_definition_is_valid() {
        // clap's own consistency checks (ids, positionals, conflicts).
        program().debug_assert();
    }

    #[test]
    fn names_are_unique_and_match_their_definitions() {
        for (i, c) in ALL.iter().enumerate() {
            assert!(
                ALL[..i].iter().all(|o| o.name != c.name),
                "{} twice",
                c.name
            );
            assert_eq!(c.clap_command().get_name(), c.name);
            assert!(!c.about.is_empty() && !c.about.contains('\n'), "{}", c.name);
            if let Syntax::DockerPy { spec, .. } = c.syntax {
                assert_eq!(spec.name, c.name);
            }
        }
        let p = program();
        let subs: Vec<&str> = p.get_subcommands().map(|s| s.get_name()).collect();
        let names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        assert_eq!(subs, names);
    }

    #[test]
    fn the_help_paragraph_shows_every_global_option() {
        let p = program();
        let mut longs: Vec<&str> = p.get_arguments().filter_map(|a| a.get_long()).collect();
        let mut shown: Vec<&str> = GLOBAL_OPTIONS
            .lines()
            .filter_map(|l| l.strip_prefix("  --"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        longs.sort_unstable();
        shown.sort_unstable();
        assert_eq!(longs, shown);
        assert_eq!(longs.len(), 3);
    }
}
