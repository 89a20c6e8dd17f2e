//! Clients: a compile through a shim goes to distcc when distcc servers are
//! configured (`QEMU_CROSS_CC_DISTCC_HOSTS`, or `distcc` in the project
//! file) and the command line is a plain compile (`-c` of one C or C++
//! source, see `CmdLine::plain_compile`). distcc preprocesses locally by calling this program back under
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

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::fingerprint;
use crate::call::cmdline::CmdLine;
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

/// The arguments distcc gets: `args` (of which `cmd` is the reading) and
/// what a compile whose preprocessing runs apart from it needs (see
/// `CmdLine::apart_args`: the depfile made explicit and, with debug
/// information, `-fdirectives-only`, so that every object of a build is
/// the same wherever it was compiled).
pub fn distcc_args(args: &[OsString], cmd: &CmdLine) -> Vec<OsString> {
    let mut out = args.to_vec();
    out.extend(cmd.apart_args());
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

/// Hand the compile `args` (read as `cmd`) to distcc when that is
/// configured and possible, and return its exit status. None (having done
/// nothing) when the compile stays local, with the reason under
/// `QEMU_CROSS_CC_DEBUG`.
pub fn route(
    ctx: &Ctx,
    plugin: &Plugin,
    tool: &str,
    args: &[OsString],
    cmd: &CmdLine,
    passed: impl FnOnce() -> Passed,
) -> Option<i32> {
    if std::env::var_os(SAFEGUARD_VAR).is_some() {
        return None;
    }
    let hosts = hosts_for(plugin)?;
    if let Err(why) = cmd.plain_compile() {
        debug(format!("distcc: compiling locally: {why}"));
        return None;
    }
    match try_route(ctx, plugin, tool, args, cmd, &hosts, &passed()) {
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
    cmd: &CmdLine,
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
    let distcc_args = distcc_args(args, cmd);
    let mut cmd = Command::new(&distcc);
    cmd.arg(&name)
        .args(distcc_args)
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

    fn cmd(args: &[OsString]) -> CmdLine {
        crate::call::argpaths::command_line(args, Path::new("/w"))
    }

    fn distributable(args: &[&str]) -> Result<(), String> {
        cmd(&os(args)).plain_compile()
    }

    fn distcc_args_of(args: &[&str]) -> Vec<OsString> {
        let args = os(args);
        distcc_args(&args, &cmd(&args))
    }

    #[test]
    fn only_plain_compiles_are_distributed() {
        for ok in [
            &["-c", "a.c"][..],
            &["-O2", "-g", "-c", "src/a.c", "-o", "out/a.o"],
            &["-c", "-I", "inc", "-DX=1", "a.cpp", "-MD", "-MF", "a.d"],
            &["-c", "-include", "cfg.h", "a.c"],
            &["-Wp,-MMD,a.d", "-fPIC", "-c", "a.c"],
            // What the old reading kept local without a reason.
            &["-c", "--sysroot", "/sr", "a.c"],
            &["-c", "-A", "pred=ans", "a.c"],
            &["-c", "-e", "start", "a.c"],
            &["-c", "-g3", "-g0", "a.c"],
        ] {
            assert_eq!(distributable(ok), Ok(()), "{ok:?}");
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
            // Files written beside the object, which a server would not
            // send back.
            (&["-c", "-fstack-usage", "a.c"], "-fstack-usage"),
            (&["-c", "-gsplit-dwarf", "a.c"], "-gsplit-dwarf"),
            (&["-c", "-aux-info", "a.p", "a.c"], "-aux-info"),
            (&["-c", "-Wa,-adhln=a.lst", "a.c"], "-Wa,-adhln=a.lst"),
        ] {
            let e = distributable(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn debug_compiles_preprocess_directives_only() {
        assert_eq!(
            distcc_args_of(&["-g", "-O2", "-c", "a.c"]),
            os(&["-g", "-O2", "-c", "a.c", "-fdirectives-only"])
        );
        assert_eq!(
            distcc_args_of(&["-ggdb3", "-c", "a.c"]),
            os(&["-ggdb3", "-c", "a.c", "-fdirectives-only"])
        );
        for same in [
            &["-O2", "-c", "a.c"][..],
            &["-g", "-g0", "-c", "a.c"],
            &["-gno-column-info", "-c", "a.c"],
            &["-g0", "-gz", "-c", "a.c"],
            &["-g", "-fdirectives-only", "-c", "a.c"],
        ] {
            assert_eq!(distcc_args_of(same), os(same), "{same:?}");
        }
    }

    #[test]
    fn dependency_output_is_made_explicit() {
        assert_eq!(
            distcc_args_of(&["-MD", "-c", "a.c", "-o", "out/x.o"]),
            os(&[
                "-MD", "-c", "a.c", "-o", "out/x.o", "-MF", "out/x.d", "-MQ", "out/x.o"
            ])
        );
        assert_eq!(
            distcc_args_of(&["-MMD", "-MF", "d", "-c", "a.c", "-oy.o"]),
            os(&["-MMD", "-MF", "d", "-c", "a.c", "-oy.o", "-MQ", "y.o"])
        );
        for same in [
            &["-c", "a.c", "-o", "x.o"][..],
            &["-MD", "-c", "a.c"],
            &["-MD", "-MT", "t", "-MF", "d", "-c", "a.c", "-o", "x.o"],
            &["-Wp,-MMD,d", "-c", "a.c", "-o", "x.o"],
            // gcc names the file from the preprocessor's -MD itself.
            &["-MD", "-Wp,-MD,d", "-MT", "t", "-c", "a.c", "-o", "x.o"],
        ] {
            assert_eq!(distcc_args_of(same), os(same), "{same:?}");
        }
    }
}
