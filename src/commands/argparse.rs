//! Argument parsing for the docker.py-compatible subcommands.
//!
//! docker.py parses its subcommands with Python's `argparse.parse_known_args`:
//! options it knows are recognised anywhere on the line (also by an unambiguous
//! prefix of a long name, or as `--name=value` / `-tVALUE`), and everything it
//! does not know is collected, in order, and handed to the container engine
//! (`build ... --no-cache`, `run ... IMAGE CMD`). clap has no equivalent of
//! that, so this module implements exactly those rules for the compatible
//! subcommands; the subcommands that are new in qemu-cross-cc use clap.

pub use crate::error::UsageError;
use std::collections::HashMap;
use std::fmt::Write as _;

/// How many values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--keep`
    Flag,
    /// `-t TAG`
    One,
    /// `--extra-files A B C` (argparse `nargs='*'`)
    Many,
}

/// One option of a subcommand.
#[derive(Debug)]
pub struct Opt {
    pub names: &'static [&'static str],
    pub dest: &'static str,
    pub arity: Arity,
    pub metavar: &'static str,
    pub help: &'static str,
    pub required: bool,
}

/// One positional argument of a subcommand.
#[derive(Debug)]
pub struct Pos {
    pub name: &'static str,
    pub required: bool,
    pub help: &'static str,
}

/// A subcommand's whole grammar.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub about: &'static str,
    pub opts: &'static [Opt],
    pub positionals: &'static [Pos],
    /// Text after the option list (examples, notes).
    pub epilog: &'static str,
}

/// Every subcommand takes `--quiet`, as in docker.py.
pub const QUIET: Opt = Opt {
    names: &["--quiet"],
    dest: "quiet",
    arity: Arity::Flag,
    metavar: "",
    help: "Run quietly unless an error occurred",
    required: false,
};

/// The result of parsing one subcommand's arguments.
#[derive(Debug, Default)]
pub struct Matches {
    flags: Vec<&'static str>,
    values: HashMap<&'static str, String>,
    lists: HashMap<&'static str, Vec<String>>,
    pub positionals: Vec<String>,
    /// Arguments this subcommand does not know, in their original order.
    pub extra: Vec<String>,
    pub help: bool,
}

impl Matches {
    pub fn flag(&self, dest: &str) -> bool {
        self.flags.contains(&dest)
    }

    pub fn value(&self, dest: &str) -> Option<&str> {
        self.values.get(dest).map(String::as_str)
    }

    pub fn list(&self, dest: &str) -> Option<&[String]> {
        self.lists.get(dest).map(Vec::as_slice)
    }

    pub fn positional(&self, index: usize) -> Option<&str> {
        self.positionals.get(index).map(String::as_str)
    }
}

fn looks_like_option(arg: &str) -> bool {
    arg.starts_with('-') && arg.len() > 1 && arg.parse::<f64>().is_err()
}

enum Lookup<'s> {
    Found(&'s Opt, Option<String>),
    Unknown,
}

impl Spec {
    fn usage_error(&self, message: impl Into<String>) -> UsageError {
        UsageError {
            command: self.name.to_string(),
            message: message.into(),
        }
    }

    fn all_opts(&self) -> impl Iterator<Item = &Opt> {
        self.opts.iter().chain(std::iter::once(&QUIET))
    }

    fn lookup(&self, arg: &str) -> Result<Lookup<'_>, UsageError> {
        let (name, explicit) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg, None),
        };
        // Exact match of the whole argument, then of the part before '='.
        for opt in self.all_opts() {
            if opt.names.contains(&arg) {
                return Ok(Lookup::Found(opt, None));
            }
        }
        for opt in self.all_opts() {
            if explicit.is_some() && opt.names.contains(&name) {
                return Ok(Lookup::Found(opt, explicit));
            }
        }
        if let Some(long) = name.strip_prefix("--") {
            if long.is_empty() {
                return Ok(Lookup::Unknown);
            }
            // Unambiguous prefix of a long option.
            let hits: Vec<(&Opt, &str)> = self
                .all_opts()
                .flat_map(|o| o.names.iter().map(move |n| (o, *n)))
                .filter(|(_, n)| n.starts_with("--") && n.starts_with(name))
                .collect();
            return match hits.as_slice() {
                [] => Ok(Lookup::Unknown),
                [(opt, _)] => Ok(Lookup::Found(opt, explicit)),
                many => {
                    let names: Vec<&str> = many.iter().map(|(_, n)| *n).collect();
                    Err(self.usage_error(format!(
                        "ambiguous option: {name} could match {}",
                        names.join(", ")
                    )))
                }
            };
        }
        // `-tVALUE`: a short option with its value attached.
        if arg.len() > 2 {
            let short = &arg[..2];
            for opt in self.all_opts() {
                if opt.names.contains(&short) {
                    let rest = &arg[2..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    return Ok(Lookup::Found(opt, Some(rest.to_string())));
                }
            }
        }
        Ok(Lookup::Unknown)
    }

    /// Parse `args` (the words after the subcommand name).
    pub fn parse(&self, args: &[String]) -> Result<Matches, UsageError> {
        let mut m = Matches::default();
        let mut i = 0;
        let mut only_positionals = false;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if only_positionals || !looks_like_option(arg) {
                if m.positionals.len() < self.positionals.len() {
                    m.positionals.push(arg.clone());
                } else {
                    m.extra.push(arg.clone());
                }
                continue;
            }
            if arg == "--" {
                only_positionals = true;
                m.extra.push(arg.clone());
                continue;
            }
            if arg == "-h" || arg == "--help" {
                m.help = true;
                continue;
            }
            let (opt, explicit) = match self.lookup(arg)? {
                Lookup::Found(opt, explicit) => (opt, explicit),
                Lookup::Unknown => {
                    m.extra.push(arg.clone());
                    continue;
                }
            };
            let shown = opt.names.join("/");
            match opt.arity {
                Arity::Flag => {
                    if let Some(v) = explicit {
                        return Err(self.usage_error(format!(
                            "argument {shown}: ignored explicit argument '{v}'"
                        )));
                    }
                    if !m.flags.contains(&opt.dest) {
                        m.flags.push(opt.dest);
                    }
                }
                Arity::One => {
                    let value = match explicit {
                        Some(v) => v,
                        None => match args.get(i) {
                            Some(v) if !looks_like_option(v) => {
                                i += 1;
                                v.clone()
                            }
                            _ => {
                                return Err(self.usage_error(format!(
                                    "argument {shown}: expected one argument"
                                )));
                            }
                        },
                    };
                    m.values.insert(opt.dest, value);
                }
                Arity::Many => {
                    let mut values = Vec::new();
                    if let Some(v) = explicit {
                        values.push(v);
                    } else {
                        while let Some(v) = args.get(i) {
                            if looks_like_option(v) {
                                break;
                            }
                            values.push(v.clone());
                            i += 1;
                        }
                    }
                    m.lists.insert(opt.dest, values);
                }
            }
        }
        if m.help {
            return Ok(m);
        }
        let mut missing: Vec<String> = self
            .opts
            .iter()
            .filter(|o| o.required && !m.values.contains_key(o.dest))
            .map(|o| o.names.join("/"))
            .collect();
        missing.extend(
            self.positionals
                .iter()
                .skip(m.positionals.len())
                .filter(|p| p.required)
                .map(|p| p.name.to_string()),
        );
        if !missing.is_empty() {
            return Err(self.usage_error(format!(
                "the following arguments are required: {}",
                missing.join(", ")
            )));
        }
        Ok(m)
    }

    /// The text printed for `qemu-cross-cc <subcommand> --help`.
    pub fn help(&self) -> String {
        let mut usage = format!("usage: qemu-cross-cc {} [-h] [--quiet]", self.name);
        for opt in self.opts {
            let name = opt.names[0];
            let part = match opt.arity {
                Arity::Flag => name.to_string(),
                Arity::One => format!("{name} {}", opt.metavar),
                Arity::Many => format!("{name} [{} ...]", opt.metavar),
            };
            if opt.required {
                let _ = write!(usage, " {part}");
            } else {
                let _ = write!(usage, " [{part}]");
            }
        }
        for p in self.positionals {
            if p.required {
                let _ = write!(usage, " {}", p.name);
            } else {
                let _ = write!(usage, " [{}]", p.name);
            }
        }
        usage.push_str(" [ENGINE ARGS...]\n\n");
        usage.push_str(self.about);
        usage.push_str("\n\n");
        if !self.positionals.is_empty() {
            usage.push_str("positional arguments:\n");
            for p in self.positionals {
                let _ = writeln!(usage, "  {:<28} {}", p.name, p.help);
            }
            usage.push('\n');
        }
        usage.push_str("options:\n");
        let _ = writeln!(usage, "  {:<28} show this help and exit", "-h, --help");
        for opt in self.all_opts() {
            let names = opt.names.join(", ");
            let left = match opt.arity {
                Arity::Flag => names,
                Arity::One => format!("{names} {}", opt.metavar),
                Arity::Many => format!("{names} [{} ...]", opt.metavar),
            };
            let _ = writeln!(usage, "  {left:<28} {}", opt.help);
        }
        if !self.epilog.is_empty() {
            usage.push('\n');
            usage.push_str(self.epilog);
            usage.push('\n');
        }
        usage
    }
}

impl Spec {
    /// The grammar as a clap definition, for completions and the man page
    /// only: clap cannot parse it (see the top of this module). Every
    /// option keeps its names, value, help and whether it is required; the
    /// arguments left over, which go to the engine, are `[ENGINE ARGS]...`.
    pub fn clap_command(&self) -> clap::Command {
        let mut cmd = clap::Command::new(self.name).about(self.about);
        if !self.epilog.is_empty() {
            cmd = cmd.after_help(self.epilog);
        }
        for opt in self.all_opts() {
            cmd = cmd.arg(opt.clap_arg());
        }
        for p in self.positionals {
            cmd = cmd.arg(
                clap::Arg::new(p.name)
                    .value_name(p.name)
                    .required(p.required)
                    .help(p.help),
            );
        }
        cmd.arg(
            clap::Arg::new("ENGINE ARGS")
                .value_name("ENGINE ARGS")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help("Everything else goes to the engine's command"),
        )
    }
}

impl Opt {
    fn clap_arg(&self) -> clap::Arg {
        let id = self.names[0].trim_start_matches('-');
        let mut arg = clap::Arg::new(id).help(self.help).required(self.required);
        let mut longs = self.names.iter().filter_map(|n| n.strip_prefix("--"));
        if let Some(long) = longs.next() {
            arg = arg.long(long).visible_aliases(longs.collect::<Vec<_>>());
        }
        let shorts = self
            .names
            .iter()
            .filter(|n| !n.starts_with("--"))
            .filter_map(|n| n.strip_prefix('-'))
            .filter_map(|n| n.chars().next());
        for (i, c) in shorts.enumerate() {
            arg = if i == 0 {
                arg.short(c)
            } else {
                arg.visible_short_alias(c)
            };
        }
        match self.arity {
            Arity::Flag => arg.action(clap::ArgAction::SetTrue),
            Arity::One => arg
                .action(clap::ArgAction::Set)
                .num_args(1)
                .value_name(self.metavar),
            Arity::Many => arg
                .action(clap::ArgAction::Append)
                .num_args(0..)
                .value_name(self.metavar),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: Spec = Spec {
        name: "build",
        about: "",
        epilog: "",
        opts: &[
            Opt {
                names: &["--include-executable", "-e"],
                dest: "exe",
                arity: Arity::One,
                metavar: "E",
                help: "",
                required: false,
            },
            Opt {
                names: &["--extra-files"],
                dest: "extra",
                arity: Arity::Many,
                metavar: "F",
                help: "",
                required: false,
            },
            Opt {
                names: &["--add-current-user", "-u"],
                dest: "user",
                arity: Arity::Flag,
                metavar: "",
                help: "",
                required: false,
            },
            Opt {
                names: &["--extra-args"],
                dest: "extra_args",
                arity: Arity::Flag,
                metavar: "",
                help: "",
                required: false,
            },
            Opt {
                names: &["-t"],
                dest: "tag",
                arity: Arity::One,
                metavar: "T",
                help: "",
                required: false,
            },
        ],
        positionals: &[],
    };

    const CHECK: Spec = Spec {
        name: "check",
        about: "",
        epilog: "",
        opts: &[],
        positionals: &[
            Pos {
                name: "tag",
                required: true,
                help: "",
            },
            Pos {
                name: "dockerfile",
                required: false,
                help: "",
            },
        ],
    };

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn unknown_arguments_keep_their_order() {
        let m = BUILD
            .parse(&v("-t tag --no-cache --build-arg A=B -u --quiet"))
            .unwrap();
        assert_eq!(m.value("tag"), Some("tag"));
        assert!(m.flag("user") && m.flag("quiet"));
        assert_eq!(m.extra, v("--no-cache --build-arg A=B"));
    }

    #[test]
    fn attached_values_and_prefixes() {
        let m = BUILD
            .parse(&v("-tfoo --include=/bin/x --add-cur --extra-files a b --q"))
            .unwrap();
        assert_eq!(m.value("tag"), Some("foo"));
        assert_eq!(m.value("exe"), Some("/bin/x"));
        assert!(m.flag("user") && m.flag("quiet"));
        assert_eq!(m.list("extra").unwrap(), &v("a b")[..]);
        let m = BUILD.parse(&v("-t=bar -e/x")).unwrap();
        assert_eq!(m.value("tag"), Some("bar"));
        assert_eq!(m.value("exe"), Some("/x"));
    }

    #[test]
    fn many_stops_at_next_option() {
        let m = BUILD.parse(&v("--extra-files a b -t x c")).unwrap();
        assert_eq!(m.list("extra").unwrap(), &v("a b")[..]);
        assert_eq!(m.extra, v("c"));
    }

    #[test]
    fn double_dash_is_kept_and_ends_options() {
        let m = BUILD.parse(&v("-t x -- -u --quiet")).unwrap();
        assert!(!m.flag("user") && !m.flag("quiet"));
        assert_eq!(m.extra, v("-- -u --quiet"));
    }

    #[test]
    fn missing_value_is_an_error() {
        let e = BUILD.parse(&v("-t --quiet")).unwrap_err();
        assert!(e.to_string().contains("argument -t: expected one argument"));
        assert!(BUILD.parse(&v("-t")).is_err());
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let e = BUILD.parse(&v("--extra x")).unwrap_err();
        assert!(e.to_string().contains("ambiguous option"), "{e}");
    }

    #[test]
    fn positionals_fill_in_order() {
        let m = CHECK.parse(&v("tag file more")).unwrap();
        assert_eq!(m.positional(0), Some("tag"));
        assert_eq!(m.positional(1), Some("file"));
        assert_eq!(m.extra, v("more"));
        let e = CHECK.parse(&[]).unwrap_err();
        assert!(e.to_string().contains("required: tag"));
    }

    #[test]
    fn negative_numbers_are_values() {
        let m = BUILD.parse(&v("-t -1")).unwrap();
        assert_eq!(m.value("tag"), Some("-1"));
    }

    #[test]
    fn help_lists_every_option() {
        let h = BUILD.help();
        for n in ["--include-executable", "--extra-files", "-t", "--quiet"] {
            assert!(h.contains(n), "{n} missing in {h}");
        }
    }

    #[test]
    fn the_clap_definition_keeps_every_option() {
        let cmd = BUILD.clap_command();
        cmd.clone().debug_assert();
        for opt in BUILD.opts.iter().chain([&QUIET]) {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == opt.names[0].trim_start_matches('-'))
                .unwrap_or_else(|| panic!("{} missing", opt.names[0]));
            for n in opt.names {
                let found = match n.strip_prefix("--") {
                    Some(long) => arg.get_long() == Some(long),
                    None => arg.get_short() == n.chars().nth(1),
                };
                assert!(found, "{n}");
            }
            assert_eq!(
                arg.get_action().takes_values(),
                opt.arity != Arity::Flag,
                "{n:?}",
                n = opt.names
            );
            assert_eq!(arg.is_required_set(), opt.required);
        }
        let exe = cmd
            .get_arguments()
            .find(|a| a.get_id() == "include-executable")
            .unwrap();
        assert_eq!(exe.get_value_names().unwrap()[0], "E");
        let check = CHECK.clap_command();
        let pos: Vec<(&str, bool)> = check
            .get_positionals()
            .map(|a| (a.get_id().as_str(), a.is_required_set()))
            .collect();
        assert_eq!(
            pos,
            [("tag", true), ("dockerfile", false), ("ENGINE ARGS", false)]
        );
    }

    #[test]
    fn every_subcommand_grammar_converts() {
        for c in crate::commands::ALL {
            if let crate::commands::Syntax::DockerPy { spec, .. } = c.syntax {
                let cmd = spec.clap_command();
                cmd.clone().debug_assert();
                let longs = cmd
                    .get_arguments()
                    .filter(|a| a.get_long().is_some())
                    .count();
                let names = spec
                    .all_opts()
                    .filter(|o| o.names.iter().any(|n| n.starts_with("--")))
                    .count();
                assert_eq!(longs, names, "{}", spec.name);
            }
        }
    }
}
