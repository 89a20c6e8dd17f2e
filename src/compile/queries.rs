//! gcc's questions about its own programs, answered for the host.
//!
//! libtool asks `CC -print-prog-name=ld` and runs the answer; inside the
//! image that is `/usr/s390x-linux-gnu/bin/ld`, which does not exist on the
//! host, so libtool decides the linker is not GNU ld and builds no shared
//! library. For a program the target provides as a tool (ld, as, ar, nm,
//! objdump, ranlib, strip...), `-print-prog-name=` and `-print-file-name=`
//! are answered with the host-side link of that tool (`.../s390x-linux-gnu-ld`)
//! without starting the compiler.
//!
//! The queries whose answers are image paths (`-print-search-dirs`,
//! `-print-libgcc-file-name`, `-print-file-name=libc.so`, `-print-sysroot`)
//! go to the compiler, and each path of its answer that the target's
//! exported sysroot holds (see `sysroot`, exported on first need) is given
//! as the host path of that copy.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::Result;

use crate::call::request::Request;
use crate::context::Ctx;
use crate::target::plugin::Plugin;

/// The answer to a lone `-print-prog-name=TOOL` or `-print-file-name=TOOL`
/// (other options may come with it; no input files) when TOOL is a tool of
/// the target and its link is found on the host. `argv0` is how this
/// program was called (its folder is looked at first). Cheap for every
/// other command line: it reads nothing before it sees a query.
pub fn answer(plugin: &Plugin, args: &[OsString], argv0: &OsStr) -> Option<PathBuf> {
    let mut asked = None;
    for a in args {
        let a = a.to_str()?;
        let q = a
            .strip_prefix("-print-prog-name=")
            .or_else(|| a.strip_prefix("-print-file-name="));
        match q {
            Some(name) if asked.is_none() => asked = Some(name),
            // Two queries, or an input file: the compiler answers.
            Some(_) => return None,
            None if !a.starts_with('-') || takes_value(a) => return None,
            None => {}
        }
    }
    let tool = asked?;
    if !plugin.tools.contains_key(tool) || tool == "cc" || tool.contains('/') {
        return None;
    }
    let cwd = std::env::current_dir().ok()?;
    link_of(&format!("{}-{tool}", plugin.target), argv0, &cwd)
}

/// Whether `args` only ask the compiler for image paths (no input files).
pub fn asks_image_paths(args: &[OsString]) -> bool {
    let mut asked = false;
    for a in args {
        let Some(a) = a.to_str() else { return false };
        if matches!(
            a,
            "-print-search-dirs" | "-print-libgcc-file-name" | "-print-sysroot"
        ) || a.starts_with("-print-file-name=")
        {
            asked = true;
        } else if !a.starts_with('-') || takes_value(a) {
            return false;
        }
    }
    asked
}

/// Run a path query and print its answer with the image paths the
/// exported sysroot holds mapped to the host copy.
pub fn run_path_query(ctx: &Ctx, plugin: &Plugin, mut req: Request) -> Result<i32> {
    // Close-on-exec: an engine started meanwhile (conmon outlives the
    // call) must not hold the write end, or the answer never ends.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    req.stdout_to = Some(Arc::new(write));
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::fs::File::from(read).read_to_string(&mut s);
        s
    });
    let code = crate::compile::run_plugin_tool(ctx, plugin, &req);
    drop(req);
    let answer = reader.join().unwrap_or_default();
    let code = code?;
    let mut out = std::io::stdout().lock();
    if code != 0 {
        out.write_all(answer.as_bytes())?;
        return Ok(code);
    }
    let want = crate::target::ensure::wanted_checksum(plugin, &ctx.library)?;
    let export = match crate::target::sysroot::existing(&plugin.image, &want) {
        Some(x) => x,
        None => crate::target::sysroot::export(ctx.engine()?, plugin, &plugin.image, &want)?,
    };
    out.write_all(crate::target::sysroot::map_answer(&answer, &export).as_bytes())?;
    Ok(0)
}

/// Options that take the next word as their value: with them the line is
/// not a plain query.
fn takes_value(a: &str) -> bool {
    matches!(a, "-o" | "-x" | "-I" | "-L" | "-B" | "-specs" | "--sysroot")
}

/// The host path of the link `name`: beside the program as it was called
/// (a link made by `shims`), else the first one on PATH.
fn link_of(name: &str, argv0: &OsStr, cwd: &Path) -> Option<PathBuf> {
    let called = Path::new(argv0);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if called.components().count() > 1 {
        if let Some(dir) = called.parent() {
            dirs.push(crate::call::mounts::normalize(dir, cwd));
        }
    }
    dirs.extend(
        crate::host::path_dirs()
            .iter()
            .map(|d| crate::call::mounts::normalize(d, cwd)),
    );
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| crate::host::is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::plugin::Registry;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn tool_queries_get_the_host_link() {
        let reg = Registry::load().unwrap();
        let p = reg.get("s390x-linux-gnu").unwrap();
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("s390x-linux-gnu-ld");
        std::os::unix::fs::symlink("/bin/true", &link).unwrap();
        let argv0 = d.path().join("s390x-linux-gnu-gcc");
        let got = answer(p, &os(&["-print-prog-name=ld"]), argv0.as_os_str());
        assert_eq!(got, Some(link.clone()));
        let got = answer(p, &os(&["-m64", "-print-file-name=ld"]), argv0.as_os_str());
        assert_eq!(got, Some(link));
        // Not a tool of ours, an input file, or no link: the compiler answers.
        for args in [
            vec!["-print-prog-name=cc1"],
            vec!["-print-prog-name=ld", "x.c"],
            vec!["-print-file-name=libgcc.a"],
            vec!["-print-prog-name=as"],
        ] {
            assert_eq!(answer(p, &os(&args), argv0.as_os_str()), None, "{args:?}");
        }
    }
}
