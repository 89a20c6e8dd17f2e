//! Windows programs (the mingw targets, `runs_with: wine`): the runner
//! starts them under wine in the target's image, like any tool call (same
//! mounts, user, environment rules, sessions).
//!
//! The wine prefix (wine's `C:` drive and registry) is the caller's own:
//! `<cache>/wine/<target>-<12 hex digits of the image's checksum>`, private
//! (created 0700, or checked by lstat), mounted read-write, made once under
//! a lock by `wineboot --init` with its output discarded, so that no
//! program's first run prints wine's set-up messages. An image built from
//! another dockerfile gets a prefix of its own. No display is needed: the
//! programs are console programs, and `WINEDLLOVERRIDES` keeps wine from
//! offering to install Mono and Gecko.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::call::mounts;
use crate::call::request::Request;
use crate::compile;
use crate::context::Ctx;
use crate::state::{paths, safefs};
use crate::target::plugin::Plugin;

/// Written in the prefix once `wineboot --init` finished there.
const READY: &str = ".qemu-cross-cc-ready";

/// The variables every wine run gets (the caller's own `WINEDEBUG` wins).
fn wine_env(prefix: &Path, env: &mut Vec<(String, OsString)>) {
    env.retain(|(k, _)| k != "WINEPREFIX" && k != "WINEDLLOVERRIDES");
    env.push(("WINEPREFIX".into(), prefix.as_os_str().to_os_string()));
    env.push(("WINEDLLOVERRIDES".into(), "mscoree,mshtml=".into()));
    if !env.iter().any(|(k, _)| k == "WINEDEBUG") {
        env.push(("WINEDEBUG".into(), "-all".into()));
    }
    env.sort_by(|a, b| a.0.cmp(&b.0));
}

/// Whether the file at `path` is a Windows program (an `MZ` header).
fn is_windows_program(given: &OsStr, path: &Path) -> Result<()> {
    super::regular_file(given, path)?;
    let shown = Path::new(given).display();
    let mut head = Vec::with_capacity(2);
    File::open(path)
        .and_then(|f| f.take(2).read_to_end(&mut head))
        .with_context(|| format!("cannot read {shown}"))?;
    if head != b"MZ" {
        bail!("cannot run {shown}: it is not a Windows program (no MZ header)");
    }
    Ok(())
}

/// A request for `program args` in the target's image, mounted as for a
/// compile, with the prefix.
fn request(
    plugin: &Plugin,
    prefix: &Path,
    program: OsString,
    args: Vec<OsString>,
) -> Result<Request> {
    let scanned: Vec<OsString> = std::iter::once(program.clone())
        .chain(args.iter().cloned())
        .collect();
    let mut req = super::image_request(plugin, program, args, &scanned)?;
    wine_env(prefix, &mut req.env);
    req.mounts.add(prefix.to_path_buf(), true);
    Ok(req)
}

/// The caller's wine prefix for `plugin`'s image, made once.
fn prefix(ctx: &Ctx, plugin: &Plugin, checksum: &str) -> Result<PathBuf> {
    let short = checksum.get(..12).unwrap_or(checksum);
    let name = format!("{}-{short}", plugin.target);
    let dir = paths::mounted_cache_folder(&paths::cache_dir()?, "wine", &name)?;
    if dir.join(READY).exists() {
        return Ok(dir);
    }
    let _held = paths::cache_lock(&format!("wine-{name}"))?;
    if dir.join(READY).exists() {
        return Ok(dir);
    }
    // wineserver -w: the registry is written before the container ends.
    let script = "wineboot --init >/dev/null 2>&1; s=$?; wineserver -w; exit $s";
    let mut req = request(
        plugin,
        &dir,
        "/bin/sh".into(),
        vec!["-c".into(), script.into()],
    )?;
    req.quiet = true;
    let code = compile::run_plugin_tool(ctx, plugin, &req)?;
    if code != 0 || !dir.join("system.reg").exists() {
        bail!(
            "wine could not make its prefix {} in {} (wineboot ended with status {code}); \
             remove the folder and run again",
            dir.display(),
            plugin.image
        );
    }
    File::create(dir.join(READY)).map_err(|e| safefs::io_error(e, "write", &dir.join(READY)))?;
    Ok(dir)
}

/// `<target>-run PROGRAM ARGS...` for a Windows target: `wine PROGRAM
/// ARGS...` in the image; stdin, stdout, stderr and the exit status pass
/// through.
pub fn run(ctx: &Ctx, plugin: &Plugin, given: &OsStr, args: &[OsString]) -> Result<i32> {
    let cwd =
        std::env::current_dir().context("cannot read the current directory (was it removed?)")?;
    is_windows_program(given, &mounts::normalize(Path::new(given), &cwd))?;
    let checksum = crate::target::ensure::wanted_checksum(plugin, &ctx.library)?;
    let prefix = prefix(ctx, plugin, &checksum)?;
    let mut wine_args = vec![super::as_path(given)];
    wine_args.extend(args.iter().cloned());
    let req = request(plugin, &prefix, "wine".into(), wine_args)?;
    compile::run_plugin_tool(ctx, plugin, &req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wine_gets_its_prefix_and_stays_quiet() {
        let mut env = vec![
            ("WINEPREFIX".to_string(), OsString::from("/elsewhere")),
            ("LANG".to_string(), OsString::from("C")),
        ];
        wine_env(Path::new("/c/wine/t-abc"), &mut env);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["LANG", "WINEDEBUG", "WINEDLLOVERRIDES", "WINEPREFIX"]
        );
        assert!(env.contains(&("WINEPREFIX".into(), "/c/wine/t-abc".into())));
        let mut own = vec![("WINEDEBUG".to_string(), OsString::from("+loaddll"))];
        wine_env(Path::new("/p"), &mut own);
        assert!(own.contains(&("WINEDEBUG".into(), "+loaddll".into())));
    }

    #[test]
    fn only_windows_programs_run() {
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("a.exe");
        std::fs::write(&exe, b"MZ\x90\0").unwrap();
        is_windows_program(OsStr::new("a.exe"), &exe).unwrap();
        let elf = d.path().join("a.out");
        std::fs::write(&elf, b"\x7fELF").unwrap();
        let e = format!(
            "{:#}",
            is_windows_program(OsStr::new("a.out"), &elf).unwrap_err()
        );
        assert!(e.contains("not a Windows program"), "{e}");
        let e = format!(
            "{:#}",
            is_windows_program(OsStr::new("gone.exe"), &d.path().join("gone.exe")).unwrap_err()
        );
        assert!(e.starts_with("cannot run gone.exe:"), "{e}");
    }
}
