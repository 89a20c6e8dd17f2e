//! Clients: a compile through a shim goes to distcc when distcc servers are
//! configured (`QEMU_CROSS_CC_DISTCC_HOSTS`, or `distcc` in the project
//! file) and the command line is a plain compile (`-c` of one C or C++
//! source). distcc preprocesses locally by calling this program back under
//! the fingerprinted compiler name (with `_DISTCC_SAFEGUARD` set, so the
//! call runs here, in the warm session), sends the result to a server
//! whose image has the same toolchain, and compiles locally whenever no
//! server takes the job. Everything else (links, `-E`, configure probes)
//! stays local, and sessions keep `--network none`: only the host's distcc
//! talks to the network.
//!
//! Nothing is printed on the way: distcc's own messages go to a log in the
//! runtime folder (stderr under `QEMU_CROSS_CC_DEBUG`) unless distcc itself
//! fails the compile (`DISTCC_FALLBACK=0`), and every reason for compiling
//! locally is a `QEMU_CROSS_CC_DEBUG` line.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::fingerprint;
use crate::context::Ctx;
use crate::diag::debug;
use crate::target::ensure;
use crate::target::plugin::Plugin;

/// The distcc hosts for every target (distcc's `DISTCC_HOSTS` syntax).
pub const HOSTS_VAR: &str = "QEMU_CROSS_CC_DISTCC_HOSTS";

/// Set by distcc in the environment of the compilers it runs.
pub const SAFEGUARD_VAR: &str = "_DISTCC_SAFEGUARD";

/// The largest client log kept; a bigger one is started again.
const LOG_CAP: u64 = 1 << 20;

/// The hosts for `plugin`'s compiles: the variable, else the project file.
/// An empty variable turns distcc off.
pub fn hosts_for(plugin: &Plugin) -> Option<String> {
    match std::env::var(HOSTS_VAR) {
        Ok(v) if v.trim().is_empty() => None,
        Ok(v) => Some(v),
        Err(_) => plugin.distcc_hosts.clone(),
    }
}

/// Options whose value is the next word.
const TAKES_VALUE: &[&str] = &[
    "-o",
    "-I",
    "-D",
    "-U",
    "-include",
    "-imacros",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isysroot",
    "-imultilib",
    "-MF",
    "-MT",
    "-MQ",
    "-Xpreprocessor",
    "-Xassembler",
    "-Xlinker",
    "-L",
    "-l",
    "-T",
    "-u",
    "--param",
    "-aux-info",
    "-dumpbase",
    "-dumpdir",
    "-G",
];

/// Source files distcc compiles remotely.
const SOURCES: &[&str] = &["c", "cc", "cpp", "cxx", "cp", "c++", "C", "i", "ii"];

/// Options that keep a compile local: they preprocess only, read input
/// from elsewhere than the source, or write files beside the object that
/// a remote compile would not.
fn keeps_local(arg: &str) -> bool {
    // -g3: macro information, which preprocessing on another machine
    // cannot keep.
    matches!(
        arg,
        "-E" | "-S" | "-M" | "-MM" | "-" | "--coverage" | "-g3" | "-ggdb3"
    ) || arg.starts_with("-x")
        || arg.starts_with('@')
        || arg.starts_with("-save-temps")
        || arg.starts_with("-fprofile-")
        || arg.starts_with("-ftest-coverage")
        || arg.starts_with("-fplugin")
        || arg.starts_with("-specs")
        || arg.starts_with("-B")
        || arg.starts_with("-fdump-")
        || arg == "-fauto-profile"
        || arg.starts_with("-fauto-profile=")
}

/// Whether `args` are a plain compile of one source; the error is why not.
pub fn distributable(args: &[OsString]) -> Result<(), String> {
    let mut compile = false;
    let mut sources = 0;
    let mut i = 0;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            return Err("an argument is not valid UTF-8".into());
        };
        i += 1;
        if arg == "-c" {
            compile = true;
        } else if keeps_local(arg) {
            return Err(format!("{arg} keeps it local"));
        } else if TAKES_VALUE.contains(&arg) {
            i += 1;
        } else if !arg.starts_with('-') {
            let ext = Path::new(arg).extension().and_then(OsStr::to_str);
            if !ext.is_some_and(|e| SOURCES.contains(&e)) {
                return Err(format!("{arg} is not a C or C++ source"));
            }
            sources += 1;
        }
    }
    match (compile, sources) {
        (false, _) => Err("not a compile (-c)".into()),
        (true, 1) => Ok(()),
        (true, n) => Err(format!("{n} sources")),
    }
}

/// Whether the compile makes debug information (the last `-g...` is not
/// `-g0`).
fn debug_info(args: &[OsString]) -> bool {
    args.iter()
        .filter_map(|a| a.to_str())
        .rfind(|a| a.starts_with("-g") && !a.starts_with("-gno-") && !a.starts_with("-gsplit"))
        .is_some_and(|a| a != "-g0")
}

/// The arguments distcc gets.
///
/// - With debug information, `-fdirectives-only`: the local preprocessing
///   then expands no macros and the server's compiler does, from the
///   original text, so the columns in the debug information are the
///   source's. Fully preprocessed text moves every token after a macro
///   on its line (`typedef __SIZE_TYPE__ size_t;`), and an object would
///   depend on whether a server or the fallback compiled it. The option
///   also reaches the fallback, so every object of the build is the same
///   wherever it was compiled; against a build without distcc, only the
///   recorded options (`DW_AT_producer`) differ.
/// - The dependency file and its target made explicit: distcc preprocesses
///   without `-o`, so `-MD` alone would write `x.d` naming `x.o` where the
///   compiler, given `-o out/y.o`, writes `out/y.d` naming `out/y.o`.
pub fn distcc_args(args: &[OsString]) -> Vec<OsString> {
    let mut out = explicit_depfile(args);
    if debug_info(args) && !args.iter().any(|a| a == "-fdirectives-only") {
        out.push("-fdirectives-only".into());
    }
    out
}

fn explicit_depfile(args: &[OsString]) -> Vec<OsString> {
    let mut out = args.to_vec();
    let has = |names: &[&str]| args.iter().any(|a| names.iter().any(|n| a == *n));
    if !has(&["-MD", "-MMD"]) {
        return out;
    }
    let mut output: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else { continue };
        if s == "-o" {
            output = it.next().and_then(|o| o.to_str()).map(String::from);
        } else if let Some(o) = s.strip_prefix("-o") {
            output = Some(o.to_string());
        }
    }
    let Some(output) = output else {
        return out;
    };
    if !has(&["-MF"])
        && !args.iter().any(|a| {
            a.to_str()
                .is_some_and(|s| s.starts_with("-MF") && s.len() > 3)
        })
    {
        let p = Path::new(&output);
        let d = match p.extension() {
            Some(_) => p.with_extension("d"),
            None => PathBuf::from(format!("{output}.d")),
        };
        out.push("-MF".into());
        out.push(d.into_os_string());
    }
    let has_target = args.iter().any(|a| {
        a.to_str()
            .is_some_and(|s| s.starts_with("-MT") || s.starts_with("-MQ"))
    });
    if !has_target {
        out.push("-MQ".into());
        out.push(output.into());
    }
    out
}

/// A program on `PATH`, not in `skip`.
fn on_path(name: &str, skip: &Path) -> Option<PathBuf> {
    crate::host::path_dirs()
        .into_iter()
        .filter(|d| d != skip)
        .map(|d| d.join(name))
        .find(|p| crate::host::is_executable(p))
}

/// The folder of fingerprinted links back to this program, which distcc
/// finds on `PATH` for its local preprocessing and fallbacks.
pub fn link_dir() -> Result<PathBuf> {
    let dir = crate::state::paths::runtime_subdir("distcc")?;
    let bin = dir.join("bin");
    crate::state::safefs::private_dir(&bin, "QEMU_CROSS_CC_RUNTIME_DIR")?;
    Ok(bin)
}

/// Make `dir/name` a link to this program (atomically, when missing or
/// pointing elsewhere).
pub fn link(dir: &Path, name: &str) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let at = dir.join(name);
    if std::fs::read_link(&at).is_ok_and(|t| t == exe) {
        return Ok(());
    }
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&exe, &tmp)
        .map_err(|e| crate::state::safefs::io_error(e, "create a link in", dir))?;
    std::fs::rename(&tmp, &at).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        crate::state::safefs::io_error(e, "create a link in", dir)
    })
}

/// `PATH` with the link folder first: where distcc finds the
/// fingerprinted names.
pub fn path_with(links: &Path) -> OsString {
    let mut path = OsString::from(links);
    if let Some(p) = std::env::var_os("PATH") {
        path.push(":");
        path.push(p);
    }
    path
}

/// The log distcc writes to instead of stderr; started again when large.
fn log_file() -> Result<PathBuf> {
    let log = crate::state::paths::runtime_subdir("distcc")?.join("client.log");
    if std::fs::symlink_metadata(&log).is_ok_and(|m| m.len() > LOG_CAP) {
        let _ = std::fs::rename(&log, log.with_extension("log.old"));
    }
    Ok(log)
}

/// The image id and fingerprint of `plugin`'s toolchain: from an earlier
/// session's record when there is one (no engine call), else ensured. A
/// remote engine is refused: distcc's local preprocessing and fallbacks
/// could not run through it, so the compile is left to the compile path.
pub fn fingerprint_for(ctx: &Ctx, plugin: &Plugin) -> Result<String> {
    let want = ensure::wanted_checksum(plugin, &ctx.library)?;
    let (engine, id) = match crate::session::known_image(&plugin.image, &want, ctx.choice) {
        Some((engine, id)) => {
            engine.require_local()?;
            (engine, id)
        }
        None => {
            let engine = ctx.local_engine()?;
            let id = ensure::ensure(engine, plugin, &ctx.library, &want)?;
            (engine.clone(), id)
        }
    };
    fingerprint::of_image(&engine, &id, &plugin.target)
}

/// Everything `route` needs from the caller's global options, passed on to
/// the calls distcc makes back.
pub struct Passed {
    pub env: Vec<(String, OsString)>,
}

/// Hand the compile to distcc when that is configured and possible, and
/// return its exit status. None (having done nothing) when the compile
/// stays local, with the reason under `QEMU_CROSS_CC_DEBUG`.
pub fn route(
    ctx: &Ctx,
    plugin: &Plugin,
    tool: &str,
    args: &[OsString],
    passed: impl FnOnce() -> Passed,
) -> Option<i32> {
    if std::env::var_os(SAFEGUARD_VAR).is_some() {
        return None;
    }
    let hosts = hosts_for(plugin)?;
    if let Err(why) = distributable(args) {
        debug(format!("distcc: compiling locally: {why}"));
        return None;
    }
    match try_route(ctx, plugin, tool, args, &hosts, &passed()) {
        Ok(code) => Some(code),
        Err(e) => {
            debug(format!("distcc: compiling locally: {e:#}"));
            None
        }
    }
}

/// distcc's own exit codes (`exitcode.h`): it failed, not the compiler.
const DISTCC_ERRORS: std::ops::RangeInclusive<i32> = 100..=118;

fn try_route(
    ctx: &Ctx,
    plugin: &Plugin,
    tool: &str,
    args: &[OsString],
    hosts: &str,
    passed: &Passed,
) -> Result<i32> {
    crate::target::distcc_hosts::parse(hosts)
        .map_err(|why| anyhow::anyhow!("{HOSTS_VAR} {why}"))?;
    let dir = link_dir()?;
    let Some(distcc) = on_path("distcc", &dir) else {
        anyhow::bail!("no distcc on PATH (install distcc)");
    };
    let fp = fingerprint_for(ctx, plugin)?;
    let name = fingerprint::compiler_name(&plugin.target, tool, &fp, fingerprint::utf8_locale());
    link(&dir, &name)?;
    let mut cmd = Command::new(&distcc);
    cmd.arg(&name)
        .args(distcc_args(args))
        .env("DISTCC_HOSTS", hosts)
        .env("PATH", path_with(&dir))
        .envs(passed.env.iter().map(|(k, v)| (k, v)));
    let debugging = std::env::var_os("QEMU_CROSS_CC_DEBUG").is_some_and(|v| !v.is_empty());
    let log = (std::env::var_os("DISTCC_LOG").is_none() && !debugging)
        .then(log_file)
        .transpose()?;
    if let Some(l) = &log {
        cmd.env("DISTCC_LOG", l);
    }
    debug(format!(
        "distcc: {} {name} ... (hosts {hosts})",
        distcc.display()
    ));
    // stderr is read here: a failed local preprocessing makes distcc
    // compile again locally, and the compiler says the same thing twice.
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", distcc.display()))?;
    // distcc cleans up its temporary files on these signals.
    let pid = child.id();
    let _forward = crate::signals::ForwardGuard::new(move |sig| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
    });
    let mut err = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_end(&mut err);
    }
    let status = child.wait();
    {
        use std::io::Write;
        let _ = std::io::stderr().write_all(once(&err));
    }
    let code = crate::host::exit_code(status.context("waiting for distcc")?);
    if DISTCC_ERRORS.contains(&code) {
        // distcc failed (with DISTCC_FALLBACK=0, or with no way to compile
        // at all): its reason is in the log, not on stderr.
        if let Some(l) = &log {
            let tag = format!("distcc[{pid}]");
            let text = std::fs::read_to_string(l).unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| l.starts_with(&tag) && l.contains("ERROR"))
            {
                eprintln!("{line}");
            }
        }
    }
    Ok(code)
}

/// The compiler's messages once: the whole text when it is not one text
/// twice over (distcc's local retry after a failed preprocessing).
fn once(err: &[u8]) -> &[u8] {
    let half = err.len() / 2;
    if !err.is_empty() && err.len() % 2 == 0 && err[..half] == err[half..] {
        &err[..half]
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_diagnostics_are_shown_once() {
        let e = b"a.c:1:10: fatal error: x.h: No such file\ncompilation terminated.\n";
        let twice = [&e[..], &e[..]].concat();
        assert_eq!(once(&twice), &e[..]);
        assert_eq!(once(e), &e[..]);
        assert_eq!(once(b""), b"");
        assert_eq!(once(b"ab"), b"ab");
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_plain_compiles_are_distributed() {
        for ok in [
            &["-c", "a.c"][..],
            &["-O2", "-g", "-c", "src/a.c", "-o", "out/a.o"],
            &["-c", "-I", "inc", "-DX=1", "a.cpp", "-MD", "-MF", "a.d"],
            &["-c", "-include", "cfg.h", "a.c"],
            &["-Wp,-MMD,a.d", "-fPIC", "-c", "a.c"],
        ] {
            assert_eq!(distributable(&os(ok)), Ok(()), "{ok:?}");
        }
        for (bad, why) in [
            (&["a.c", "-o", "a"][..], "not a compile"),
            (&["-E", "a.c"], "-E"),
            (&["-c", "-M", "a.c"], "-M"),
            (&["-c", "-x", "c", "-"], "-x"),
            (&["-c", "-xc", "a.c"], "-xc"),
            (&["-c", "a.c", "b.c"], "2 sources"),
            (&["-c", "a.s"], "not a C"),
            (&["-c", "@args"], "@args"),
            (&["-c", "-save-temps", "a.c"], "-save-temps"),
            (&["-c", "-fprofile-use", "a.c"], "-fprofile-use"),
            (&["-c", "-S", "a.c"], "-S"),
            (&["-c", "-g3", "a.c"], "-g3"),
        ] {
            let e = distributable(&os(bad)).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn debug_compiles_preprocess_directives_only() {
        assert_eq!(
            distcc_args(&os(&["-g", "-O2", "-c", "a.c"])),
            os(&["-g", "-O2", "-c", "a.c", "-fdirectives-only"])
        );
        assert_eq!(
            distcc_args(&os(&["-ggdb3", "-c", "a.c"])),
            os(&["-ggdb3", "-c", "a.c", "-fdirectives-only"])
        );
        for same in [
            &["-O2", "-c", "a.c"][..],
            &["-g", "-g0", "-c", "a.c"],
            &["-gno-column-info", "-c", "a.c"],
        ] {
            assert_eq!(distcc_args(&os(same)), os(same), "{same:?}");
        }
    }

    #[test]
    fn dependency_output_is_made_explicit() {
        assert_eq!(
            explicit_depfile(&os(&["-MD", "-c", "a.c", "-o", "out/x.o"])),
            os(&[
                "-MD", "-c", "a.c", "-o", "out/x.o", "-MF", "out/x.d", "-MQ", "out/x.o"
            ])
        );
        assert_eq!(
            explicit_depfile(&os(&["-MMD", "-MF", "d", "-c", "a.c", "-oy.o"])),
            os(&["-MMD", "-MF", "d", "-c", "a.c", "-oy.o", "-MQ", "y.o"])
        );
        for same in [
            &["-c", "a.c", "-o", "x.o"][..],
            &["-MD", "-c", "a.c"],
            &["-MD", "-MT", "t", "-MF", "d", "-c", "a.c", "-o", "x.o"],
            &["-Wp,-MMD,d", "-c", "a.c", "-o", "x.o"],
        ] {
            assert_eq!(explicit_depfile(&os(same)), os(same), "{same:?}");
        }
    }
}
