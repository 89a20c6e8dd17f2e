//! Running what the toolchains build: the target's programs, under
//! qemu-user, inside the target's image (where its libraries are).
//!
//! Two entry points:
//!
//! - the runner, `<target>-run PROGRAM ARGS...` (a tool of every target):
//!   the host's static qemu-user (`/usr/bin/qemu-<qemu>-static`, checked
//!   to be a root-owned regular file) is bind-mounted read-only at
//!   `/.qemu-cross-cc/qemu-<qemu>-static` and runs the program with
//!   `-L <sysroot>`. Without it, a binfmt_misc handler of the host runs it.
//!   A libtool wrapper script is sourced by the image's `/bin/sh` the way
//!   `libtool --mode=execute` does (it sets `LD_LIBRARY_PATH` to the build
//!   tree's `.libs` and relinks when needed), then its real program runs
//!   under qemu; any other script runs as it is.
//! - `exec TARGET -- COMMAND...`: a whole command (`make check`) in the
//!   image. The programs it starts are the kernel's business, so it needs
//!   the host's binfmt_misc handler; with the F (fix-binary) flag that works
//!   in any container. A handler without F is given the host's static qemu
//!   at its interpreter path.
//!
//! Both set `QEMU_LD_PREFIX` to the sysroot, so that every dynamic program
//! finds the target's dynamic linker and libraries (Debian's multiarch
//! folders `/usr/lib/<triplet>` are searched by that linker too). Both go
//! through the compile path (`Request`, sessions, one-shot): same mounts,
//! user, environment allow-list and `--network none`.

mod board;
mod wine;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::call::mounts;
use crate::call::request::{self, Request};
use crate::compile;
use crate::context::Ctx;
use crate::error::UsageError;
use crate::host::binfmt::{self, Handler};
use crate::host::elf::{dynamic as elf_dynamic, is_dynamic as elf_is_dynamic};
use crate::target::manifest::RunsWith;
use crate::target::plugin::{Plugin, RUNNER};
use crate::target::toolchain::LD_PREFIX;

/// Where the host's qemu-user appears inside the container.
const QEMU_DIR: &str = "/.qemu-cross-cc";

/// What `libtool --mode=execute` sets to source a wrapper script without
/// running it: the wrapper then only sets `progdir`, `program` and
/// `LD_LIBRARY_PATH` (and relinks the program when it must).
const LIBTOOL_MAGIC: &str = "%%%MAGIC variable%%%";

/// The image's shell, given `QEMU SYSROOT SCRIPT MAGIC ARGS...` as `$1...`:
/// sources the libtool wrapper SCRIPT as `libtool --mode=execute` does, then
/// runs its real program (under QEMU when one is given, else directly).
const LIBTOOL_EXEC: &str = r#"q=$1 s=$2 file=$3 libtool_execute_magic=$4
shift 4
ECHO='printf %s\n'
. "$file" || exit 1
if test -n "$q"; then exec "$q" -L "$s" "$progdir/$program" "$@"; fi
exec "$progdir/$program" "$@""#;

/// How this host runs the target's programs.
#[derive(Debug, Default)]
struct Emulation {
    /// The host's static qemu-user for the target (resolved).
    host_qemu: Option<PathBuf>,
    /// The binfmt_misc handler for the target's programs, when enabled.
    handler: Option<Handler>,
    /// The host's CPU runs them itself (i686 on x86-64).
    native: bool,
}

impl Emulation {
    fn find(qemu: &str) -> Emulation {
        let handler = binfmt::handler(qemu);
        let interp = handler.as_ref().and_then(|h| h.interpreter.clone());
        Emulation {
            host_qemu: host_qemu(qemu, interp.as_deref()),
            handler,
            native: runs_natively(qemu),
        }
    }

    /// The error when nothing can run the target's programs.
    fn missing(plugin: &Plugin) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot run {} programs: this host has no /usr/bin/qemu-{q}-static and no binfmt_misc \
             handler for qemu-{q}; install qemu-user-static (apt-get install qemu-user-static)",
            plugin.target,
            q = plugin.qemu
        )
    }
}

/// The host's static qemu-user for `qemu`: `/usr/bin/qemu-<qemu>-static`,
/// else the binfmt handler's interpreter; each resolved and used only when
/// it is a regular, statically linked file owned by root that nobody else
/// can write. None on SELinux hosts, where its mount would be relabelled.
fn host_qemu(qemu: &str, interpreter: Option<&Path>) -> Option<PathBuf> {
    if mounts::selinux_enabled() {
        return None;
    }
    let standard = PathBuf::from(format!("/usr/bin/qemu-{qemu}-static"));
    [Some(standard.as_path()), interpreter]
        .into_iter()
        .flatten()
        .find_map(trusted_static)
}

fn trusted_static(path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    let trusted = meta.is_file() && meta.uid() == 0 && meta.mode() & 0o022 == 0;
    (trusted && elf_is_dynamic(&real) == Some(false)).then_some(real)
}

/// Whether the host's CPU runs the target's programs without qemu.
fn runs_natively(qemu: &str) -> bool {
    match std::env::consts::ARCH {
        "x86_64" => matches!(qemu, "x86_64" | "i386"),
        arch => arch == qemu,
    }
}

/// The qemu-user version of `qemu` (`7.2.22`), major and minor.
fn qemu_version(qemu: &Path) -> Option<(u32, u32)> {
    let out = std::process::Command::new(qemu)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split("version ").nth(1)?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A known limit of qemu-user up to 7.2 (Debian 12's) for this target and
/// program (None: any program of the target), as the error to give.
fn known_limit(plugin: &Plugin, emu: &Emulation, program: Option<&Program>) -> Option<String> {
    let static_elf = matches!(program, Some(Program::Elf { dynamic: false }));
    let (what, why) = match plugin.qemu.as_str() {
        "sh4" => (
            "sh4 programs",
            "it loops or crashes in glibc's start-up code; run them on sh4 hardware or under \
             qemu-system-sh4",
        ),
        "alpha" if static_elf => (
            "static alpha programs",
            "it crashes in their start-up; link the program dynamically (dynamic alpha programs run)",
        ),
        _ => return None,
    };
    // Newer versions may have fixed it; an unknown one is taken as 7.2.
    let version = emu.host_qemu.as_deref().and_then(qemu_version);
    if version.is_some_and(|v| v > (7, 2)) {
        return None;
    }
    let shown = version.map_or("7.2".to_string(), |(a, b)| format!("{a}.{b}"));
    Some(format!(
        "qemu-user {shown} cannot run {what} (a known qemu-user limit, not a build problem): {why}"
    ))
}

/// What the runner was given, as far as the host can tell.
#[derive(Debug, PartialEq, Eq)]
enum Program {
    /// An ELF program; `dynamic` when it has an interpreter.
    Elf { dynamic: bool },
    /// A libtool wrapper script (`greet` for `.libs/greet`).
    LibtoolWrapper,
    /// Another script (`#!`).
    Script,
    /// An absolute path the host does not have: the image's own program.
    InImage,
}

/// Whether a script's first lines say libtool generated it (libtool's own
/// test reads the first four).
fn is_libtool_wrapper(head: &[u8]) -> bool {
    head.split(|b| *b == b'\n').take(6).any(|line| {
        let line = String::from_utf8_lossy(line);
        line.starts_with("# Generated by ") && line.contains("libtool")
    })
}

/// Classify the program at `path` (`given` names it in messages).
fn classify(given: &OsStr, path: &Path) -> Result<Program> {
    let shown = Path::new(given).display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && Path::new(given).is_absolute() => {
            return Ok(Program::InImage);
        }
        Err(e) => bail!("cannot run {shown}: {e}; build it first or give its path"),
    };
    if !meta.is_file() {
        bail!("cannot run {shown}: it is not a regular file");
    }
    let mut f = File::open(path).with_context(|| format!("cannot run {shown}"))?;
    let mut head = Vec::with_capacity(4096);
    (&mut f)
        .take(4096)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {shown}"))?;
    if head.starts_with(b"\x7fELF") {
        let dynamic = elf_dynamic(&f, &head[..head.len().min(64)])
            .with_context(|| format!("cannot run {shown}: its ELF header is damaged"))?;
        return Ok(Program::Elf { dynamic });
    }
    if head.starts_with(b"#!") {
        return Ok(if is_libtool_wrapper(&head) {
            Program::LibtoolWrapper
        } else {
            Program::Script
        });
    }
    bail!("cannot run {shown}: it is neither an ELF program nor a script")
}

/// The program as the container's exec sees it: a bare name is a file of
/// the current directory, never one found on PATH.
fn as_path(given: &OsStr) -> OsString {
    if given.as_bytes().contains(&b'/') {
        return given.to_os_string();
    }
    let mut p = OsString::from("./");
    p.push(given);
    p
}

const RUN_USAGE: &str = "PROGRAM [ARGS...]: run a program of the target under qemu-user in its \
                         image (e.g. as CMAKE_CROSSCOMPILING_EMULATOR or LOG_COMPILER)";

/// The request's environment with `QEMU_LD_PREFIX` set to the sysroot. An
/// image with target packages has one C library (see `image::derive`), so
/// the sysroot's dynamic linker and the libraries found in the multiarch
/// folders match.
fn set_ld_prefix(req: &mut Request, plugin: &Plugin) {
    req.env.retain(|(k, _)| k != LD_PREFIX);
    req.env
        .push((LD_PREFIX.to_string(), OsString::from(&plugin.sysroot)));
}

/// A request for `program args` in the target's image, from the current
/// directory, the paths of `scanned` (the program and its arguments as the
/// caller gave them) mounted as for a compile (a program of `../bin` or of
/// another tree is visible).
fn image_request(
    plugin: &Plugin,
    program: OsString,
    args: Vec<OsString>,
    scanned: &[OsString],
) -> Result<Request> {
    let cmd = request::command_line(scanned)?;
    compile::plugin_request(plugin, program, args, &cmd)
}

/// `program args` in the target's image (see `image_request`), with
/// `QEMU_LD_PREFIX` set.
fn request(plugin: &Plugin, program: OsString, args: Vec<OsString>) -> Result<Request> {
    let scanned: Vec<OsString> = std::iter::once(program.clone())
        .chain(args.iter().cloned())
        .collect();
    let mut req = image_request(plugin, program, args, &scanned)?;
    set_ld_prefix(&mut req, plugin);
    Ok(req)
}

/// The program the caller named, which must be a regular file (`given` names
/// it in messages).
fn regular_file(given: &OsStr, path: &Path) -> Result<()> {
    let shown = Path::new(given).display();
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot run {shown}: {e}; build it first or give its path"))?;
    if !meta.is_file() {
        bail!("cannot run {shown}: it is not a regular file");
    }
    Ok(())
}

/// Mount the host's qemu at its fixed place; returns that path.
fn mount_qemu(req: &mut Request, plugin: &Plugin, host: &Path) -> OsString {
    let inside = PathBuf::from(format!("{QEMU_DIR}/qemu-{}-static", plugin.qemu));
    req.mounts
        .add_alias(inside.clone(), host.to_path_buf(), false);
    inside.into_os_string()
}

/// A binfmt_misc handler without the F flag looks for its interpreter in
/// the container: mount the host's static qemu there. Whether it did.
fn give_interpreter(req: &mut Request, emu: &Emulation) -> bool {
    let at = emu.handler.as_ref().and_then(|h| h.interpreter.as_ref());
    match (at, &emu.host_qemu) {
        (Some(at), Some(host)) if at.is_absolute() && !at.starts_with(QEMU_DIR) => {
            req.mounts.add_alias(at.clone(), host.clone(), false);
            true
        }
        _ => false,
    }
}

/// `<target>-run PROGRAM ARGS...`
pub fn run(ctx: &Ctx, plugin: &Plugin, args: Vec<OsString>) -> Result<i32> {
    let usage = |message: String| -> anyhow::Error {
        UsageError {
            command: "qemu-cross-cc".into(),
            message,
        }
        .into()
    };
    let name = format!("{}-{RUNNER}", plugin.target);
    let Some(given) = args.first().cloned() else {
        return Err(usage(format!("{name} needs a program: {name} {RUN_USAGE}")));
    };
    if given == "--help" || given == "-h" {
        println!("usage: {name} {RUN_USAGE}");
        return Ok(0);
    }
    if plugin.runs_with == RunsWith::Wine {
        return wine::run(ctx, plugin, &given, &args[1..]);
    }
    let mut args = args;
    if plugin.runs_with == RunsWith::Semihosting {
        let asked = given == "--board";
        let board = match &plugin.board {
            Some(b) if asked || b.default => b,
            None if asked => {
                return Err(usage(format!(
                    "target {} has no board; its programs run under qemu-user: drop --board",
                    plugin.target
                )));
            }
            // qemu-user's own semihosting.
            _ => return run_under_qemu(ctx, plugin, args),
        };
        if asked {
            args.remove(0);
        }
        let Some(program) = args.first().cloned() else {
            return Err(usage(format!(
                "{name} --board needs a program: {name} --board PROGRAM [ARGS...]"
            )));
        };
        return board::run(ctx, plugin, board, &program, &args[1..]);
    }
    run_under_qemu(ctx, plugin, args)
}

/// The runner for a Linux target's program, or a bare-metal one under
/// qemu-user's semihosting; `args` has the program first.
fn run_under_qemu(ctx: &Ctx, plugin: &Plugin, args: Vec<OsString>) -> Result<i32> {
    let name = format!("{}-{RUNNER}", plugin.target);
    let given = args[0].clone();
    let cwd =
        std::env::current_dir().context("cannot read the current directory (was it removed?)")?;
    let program = classify(&given, &mounts::normalize(Path::new(&given), &cwd))?;
    let emu = Emulation::find(&plugin.qemu);
    if let Some(why) = known_limit(plugin, &emu, Some(&program)) {
        bail!(why);
    }
    let mut req = request(plugin, as_path(&given), args[1..].to_vec())?;
    if emu.handler.as_ref().is_some_and(|h| !h.fixed) {
        // Scripts and the programs they start go through the handler.
        give_interpreter(&mut req, &emu);
    }
    // The host's own architecture (x86_64-linux-gnu on x86-64): the image's
    // own C library is the target's, so its programs run as they are.
    let own_arch = plugin.runs_with == RunsWith::Qemu && std::env::consts::ARCH == plugin.qemu;
    let qemu = match &emu.host_qemu {
        Some(host) if !own_arch => Some(mount_qemu(&mut req, plugin, host)),
        _ if own_arch || emu.handler.is_some() || emu.native => None,
        _ => return Err(Emulation::missing(plugin)),
    };
    match (program, qemu) {
        (Program::Elf { .. } | Program::InImage, Some(q)) => {
            let mut a: Vec<OsString> = vec!["-L".into(), plugin.sysroot.clone().into()];
            a.push(req.program.clone());
            a.append(&mut req.args);
            req.program = q;
            req.args = a;
        }
        (Program::LibtoolWrapper, q) => {
            let script = mounts::normalize(Path::new(&given), &cwd);
            let mut a: Vec<OsString> = vec![
                "-c".into(),
                LIBTOOL_EXEC.into(),
                name.into(),
                q.unwrap_or_default(),
                plugin.sysroot.clone().into(),
                script.into_os_string(),
                LIBTOOL_MAGIC.into(),
            ];
            a.append(&mut req.args);
            req.program = "/bin/sh".into();
            req.args = a;
        }
        // Scripts, and programs the kernel's handler runs: as they are.
        _ => {}
    }
    compile::run_plugin_tool(ctx, plugin, &req)
}

/// `exec TARGET -- COMMAND...`: the command in the target's image, the
/// programs it starts run by the host's binfmt_misc handler.
pub fn exec(ctx: &Ctx, plugin: &Plugin, command: Vec<OsString>) -> Result<i32> {
    let emu = Emulation::find(&plugin.qemu);
    if let Some(why) = known_limit(plugin, &emu, None) {
        bail!(why);
    }
    let Some((program, args)) = command.split_first() else {
        bail!("exec needs a command");
    };
    let mut req = request(plugin, program.clone(), args.to_vec())?;
    match &emu.handler {
        Some(h) if h.fixed => {}
        _ if emu.native => {}
        Some(_) if give_interpreter(&mut req, &emu) => {}
        Some(_) => bail!(
            "cannot run {} programs in the container: the binfmt_misc handler for qemu-{q} has \
             no F (fix-binary) flag and no static /usr/bin/qemu-{q}-static can stand in for its \
             interpreter; install qemu-user-static (apt-get install qemu-user-static)",
            plugin.target,
            q = plugin.qemu
        ),
        None => bail!(
            "cannot run {} programs from a command: this host has no binfmt_misc handler for \
             qemu-{q}; install qemu-user-static (apt-get install qemu-user-static), which \
             registers it, or run single programs with {}-{RUNNER}",
            plugin.target,
            plugin.target,
            q = plugin.qemu
        ),
    }
    compile::run_plugin_tool(ctx, plugin, &req)
}

/// `exec --host TARGET -- COMMAND...`: the command on the host, with the
/// target's variables (those of `toolchain TARGET --env`: `CC`, `HOST`...,
/// `QEMU_LD_PREFIX` the exported sysroot) and its links first on `PATH`.
/// The target programs it starts run through the host's binfmt_misc
/// handler and find their libraries in the export. Replaces this process.
pub fn host_exec(
    ctx: &Ctx,
    plugin: &Plugin,
    links: Option<&Path>,
    command: Vec<OsString>,
) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let emu = Emulation::find(&plugin.qemu);
    if let Some(why) = known_limit(plugin, &emu, None) {
        bail!(why);
    }
    if emu.native && std::env::consts::ARCH != plugin.qemu {
        bail!(
            "{t} programs run natively on this host, without qemu-user, so they cannot use \
             the exported sysroot as their root; run single programs with {t}-{RUNNER} or the \
             command in the image with qemu-cross-cc exec {t} -- ...",
            t = plugin.target
        );
    }
    if emu.handler.is_none() && !emu.native {
        bail!(
            "cannot run {} programs from a host command: this host has no binfmt_misc handler \
             for qemu-{q}; install qemu-user-static (apt-get install qemu-user-static), or run \
             the command in the image: qemu-cross-cc exec {} -- ...",
            plugin.target,
            plugin.target,
            q = plugin.qemu
        );
    }
    let Some((program, args)) = command.split_first() else {
        bail!("exec needs a command");
    };
    let paths = crate::target::toolchain::Paths::of(ctx, plugin, links)?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for (var, value) in crate::target::toolchain::vars(plugin, &paths) {
        cmd.env(var, value);
    }
    let mut dirs = vec![paths.links.clone()];
    dirs.extend(crate::host::path_dirs());
    let path = std::env::join_paths(dirs).context("a folder on PATH holds a ':'")?;
    cmd.env("PATH", path);
    let err = cmd.exec();
    let shown = Path::new(program).display();
    if err.kind() == std::io::ErrorKind::NotFound {
        bail!(
            "cannot run {shown}: not found on PATH (the links folder {} first); install it or \
             give its path",
            paths.links.display()
        );
    }
    bail!("cannot run {shown}: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// A minimal ELF header and program header table.
    fn elf(class64: bool, big: bool, types: &[u32]) -> Vec<u8> {
        let (ehsize, phentsize) = if class64 { (64, 56) } else { (52, 32) };
        let mut h = vec![0u8; ehsize + phentsize * types.len()];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if class64 { 2 } else { 1 };
        h[5] = if big { 2 } else { 1 };
        let put = |h: &mut Vec<u8>, o: usize, v: u64, len: usize| {
            let bytes = v.to_be_bytes();
            let mut b = bytes[8 - len..].to_vec();
            if !big {
                b.reverse();
            }
            h[o..o + len].copy_from_slice(&b);
        };
        if class64 {
            put(&mut h, 0x20, ehsize as u64, 8);
            put(&mut h, 0x36, phentsize as u64, 2);
            put(&mut h, 0x38, types.len() as u64, 2);
        } else {
            put(&mut h, 0x1c, ehsize as u64, 4);
            put(&mut h, 0x2a, phentsize as u64, 2);
            put(&mut h, 0x2c, types.len() as u64, 2);
        }
        for (i, t) in types.iter().enumerate() {
            put(&mut h, ehsize + i * phentsize, u64::from(*t), 4);
        }
        h
    }

    #[test]
    fn elf_interpreter_is_found_in_every_class_and_byte_order() {
        let d = tempfile::tempdir().unwrap();
        for class64 in [false, true] {
            for big in [false, true] {
                let dynamic = write(d.path(), "d", &elf(class64, big, &[6, 3, 1]));
                assert_eq!(elf_is_dynamic(&dynamic), Some(true), "{class64} {big}");
                let st = write(d.path(), "s", &elf(class64, big, &[1, 1, 4]));
                assert_eq!(elf_is_dynamic(&st), Some(false), "{class64} {big}");
            }
        }
        assert_eq!(elf_is_dynamic(Path::new("/bin/sh")), Some(true));
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        assert_eq!(elf_is_dynamic(&exe), Some(false), "static-pie build");
        assert_eq!(elf_is_dynamic(&write(d.path(), "t", b"#!/bin/sh\n")), None);
    }

    #[test]
    fn programs_are_classified() {
        let d = tempfile::tempdir().unwrap();
        let c = |name: &str, body: &[u8]| {
            let p = write(d.path(), name, body);
            classify(OsStr::new(name), &p)
        };
        assert_eq!(
            c("e", &elf(true, true, &[3])).unwrap(),
            Program::Elf { dynamic: true }
        );
        let wrapper = b"#! /bin/bash\n\n# greet - temporary wrapper script for .libs/greet\n\
                        # Generated by libtool (GNU libtool) 2.4.7\n";
        assert_eq!(c("w", wrapper).unwrap(), Program::LibtoolWrapper);
        assert_eq!(c("s", b"#!/bin/sh\necho\n").unwrap(), Program::Script);
        let e = format!("{:#}", c("x", b"plain text").unwrap_err());
        assert!(e.contains("neither an ELF program nor a script"), "{e}");
        let e = format!(
            "{:#}",
            classify(OsStr::new("missing"), &d.path().join("missing")).unwrap_err()
        );
        assert!(e.starts_with("cannot run missing:"), "{e}");
        let e = format!("{:#}", classify(OsStr::new("d"), d.path()).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
        assert_eq!(
            classify(OsStr::new("/nonexistent/x"), Path::new("/nonexistent/x")).unwrap(),
            Program::InImage
        );
    }

    #[test]
    fn bare_names_stay_in_the_current_directory() {
        assert_eq!(as_path(OsStr::new("hello")), OsString::from("./hello"));
        assert_eq!(as_path(OsStr::new("./a/b")), OsString::from("./a/b"));
        assert_eq!(as_path(OsStr::new("/x/y")), OsString::from("/x/y"));
    }

    #[test]
    fn libtool_wrappers_are_recognised() {
        assert!(is_libtool_wrapper(
            b"#! /bin/sh\n\n# x - temporary wrapper\n# Generated by libtool (GNU libtool) 2.4.6\n"
        ));
        assert!(!is_libtool_wrapper(b"#!/bin/sh\n# Generated by hand\n"));
    }
}
