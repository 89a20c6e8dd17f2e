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

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::Result;

use crate::call::cmdline::{Asks, CmdLine};
use crate::call::request::Request;
use crate::context::Ctx;
use crate::target::plugin::Plugin;

/// The answer to a lone `-print-prog-name=TOOL` or `-print-file-name=TOOL`
/// (other options may come with it, but no input file, no other question
/// and nothing that changes where gcc looks: `-B`, `-specs`, `--sysroot`)
/// when TOOL is a tool of the target and its link is found on the host.
/// `argv0` is how this program was called (its folder is looked at first).
/// Cheap for every other command line: it reads nothing before it sees a
/// query.
pub fn answer(plugin: &Plugin, cmd: &CmdLine, argv0: &OsStr) -> Option<PathBuf> {
    if !cmd.only_asks() || cmd.changes_search() {
        return None;
    }
    let [q] = cmd.queries()[..] else {
        return None;
    };
    if !matches!(q.asks, Asks::ProgName | Asks::FileName) {
        return None;
    }
    let tool = q.name.as_deref()?.to_str()?;
    if !plugin.tools.contains_key(tool) || tool == "cc" || tool.contains('/') {
        return None;
    }
    link_of(&format!("{}-{tool}", plugin.target), argv0, &cmd.cwd)
}

/// Whether the command line only asks the compiler questions (no input
/// files), one of which has image paths for its answer.
pub fn asks_image_paths(cmd: &CmdLine) -> bool {
    cmd.only_asks()
        && cmd.queries().iter().any(|q| {
            matches!(
                q.asks,
                Asks::SearchDirs | Asks::LibgccFileName | Asks::Sysroot | Asks::FileName
            )
        })
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

    fn cmd(v: &[&str]) -> CmdLine {
        let args: Vec<std::ffi::OsString> = v.iter().map(Into::into).collect();
        crate::call::argpaths::command_line(&args, Path::new("/w"))
    }

    #[test]
    fn tool_queries_get_the_host_link() {
        let reg = Registry::load().unwrap();
        let p = reg.get("s390x-linux-gnu").unwrap();
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("s390x-linux-gnu-ld");
        std::os::unix::fs::symlink("/bin/true", &link).unwrap();
        let argv0 = d.path().join("s390x-linux-gnu-gcc");
        let argv0 = argv0.as_os_str();
        for args in [
            &["-print-prog-name=ld"][..],
            &["-m64", "-print-file-name=ld"],
            &["--print-prog-name=ld"],
            &["--print-prog-name", "ld"],
            // A folder to search for headers changes nothing asked here.
            &["-I", "inc", "-print-prog-name=ld"],
        ] {
            assert_eq!(answer(p, &cmd(args), argv0), Some(link.clone()), "{args:?}");
        }
        // Not a tool of ours, an input file, no link, another question, or
        // an option that changes where gcc finds its programs: the compiler
        // answers.
        for args in [
            &["-print-prog-name=cc1"][..],
            &["-print-prog-name=ld", "x.c"],
            &["-print-file-name=libgcc.a"],
            &["-print-prog-name=as"],
            &["-print-prog-name=ld", "-dumpmachine"],
            &["-print-prog-name=ld", "-print-file-name=ld"],
            &["-B/x", "-print-prog-name=ld"],
            &["-B", "/x", "-print-prog-name=ld"],
            &["-specs=x.specs", "-print-prog-name=ld"],
            &["--sysroot=/sr", "-print-prog-name=ld"],
            &["@args", "-print-prog-name=ld"],
        ] {
            assert_eq!(answer(p, &cmd(args), argv0), None, "{args:?}");
        }
    }

    #[test]
    fn path_queries_are_told_apart() {
        for yes in [
            &["-print-search-dirs"][..],
            &["-m64", "-print-libgcc-file-name"],
            &["-print-file-name=libc.so"],
            &["-print-sysroot"],
            &["-dumpmachine", "-print-search-dirs"],
            &["-o", "x", "-print-search-dirs"],
            &["--sysroot", "/sr", "-print-sysroot"],
        ] {
            assert!(asks_image_paths(&cmd(yes)), "{yes:?}");
        }
        for no in [
            &["-dumpmachine"][..],
            &["-print-prog-name=ld"],
            &["-print-search-dirs", "x.c"],
            &["-c", "x.c"],
            &["@args", "-print-search-dirs"],
        ] {
            assert!(!asks_image_paths(&cmd(no)), "{no:?}");
        }
    }
}
