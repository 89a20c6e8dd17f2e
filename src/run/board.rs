//! Bare-metal programs on a board (`runs_with: semihosting`, the manifest's
//! `board`): `<target>-run --board PROG ARGS...` starts the board's
//! qemu-system in the target's image with semihosting on, so that the
//! program's `printf` reaches stdout and its `exit(n)` is the status, like
//! any tool call (mounts, user, `--network none`, sessions). The semihosting
//! command line is the program's path and its arguments (picolibc's
//! semihosting start-up puts `program-name` before it as `argv[0]`).
//!
//! A program that never ends is stopped after a time limit
//! (`QEMU_CROSS_CC_RUN_TIMEOUT` seconds, 60 by default), with one line
//! saying so and status 124.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::call::mounts;
use crate::compile;
use crate::context::Ctx;
use crate::target::manifest::{Board, BoardLoad};
use crate::target::plugin::Plugin;

/// The variable with the time limit, in seconds.
pub const TIMEOUT_VAR: &str = "QEMU_CROSS_CC_RUN_TIMEOUT";

/// The limit when the variable is not set.
const DEFAULT_TIMEOUT: u64 = 60;

/// The image's shell, given `LIMIT QEMU-SYSTEM ARGS...`: the board under
/// `timeout`, and a line when the limit ended it.
const UNDER_LIMIT: &str = r#"limit=$1; shift
start=$(date +%s)
timeout --foreground -s KILL "$limit" "$@"
s=$?
if [ "$s" = 137 ] && [ $(( $(date +%s) - start )) -ge "$limit" ]; then
    echo "qemu-cross-cc: the program did not end within $limit s on the board and was stopped; it must end by exit() (semihosting), or set QEMU_CROSS_CC_RUN_TIMEOUT to more seconds" >&2
    exit 124
fi
exit $s"#;

/// The time limit: the variable's seconds, else the default.
fn limit() -> Result<u64> {
    match std::env::var_os(TIMEOUT_VAR).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_TIMEOUT),
        Some(v) => match v.to_str().and_then(|s| s.parse::<u64>().ok()) {
            Some(n) if n > 0 => Ok(n),
            _ => bail!(
                "{TIMEOUT_VAR} is '{}'; set it to a number of seconds, such as 60",
                v.to_string_lossy()
            ),
        },
    }
}

/// `value` after `key` in a qemu option list: commas doubled, as qemu's
/// option syntax wants.
fn option_value(key: &str, value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(key.len() + value.len() + 4);
    out.extend_from_slice(key.as_bytes());
    for b in value.as_bytes() {
        out.push(*b);
        if *b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// The qemu-system command line for `program` (its path as the container
/// sees it) with `args`.
fn command(board: &Board, program: &OsStr, args: &[OsString]) -> Vec<OsString> {
    let mut c: Vec<OsString> = vec![
        board.system.clone().into(),
        "-M".into(),
        board.machine.clone().into(),
    ];
    if let Some(cpu) = &board.cpu {
        c.extend(["-cpu".into(), cpu.into()]);
    }
    // The semihosting console is the program's stdin and stdout (qemu's
    // default for it is stderr); no display, serial port or monitor.
    c.extend(
        [
            "-display",
            "none",
            "-serial",
            "none",
            "-monitor",
            "none",
            "-chardev",
            "stdio,id=semihosting",
        ]
        .map(OsString::from),
    );
    c.extend(board.args.iter().map(OsString::from));
    let mut config = OsString::from("enable=on,target=native,chardev=semihosting");
    config.push(option_value(",arg=", program));
    for a in args {
        config.push(option_value(",arg=", a));
    }
    c.extend(["-semihosting-config".into(), config]);
    match board.load {
        BoardLoad::Kernel => c.extend(["-kernel".into(), program.to_os_string()]),
        BoardLoad::Loader => {
            c.extend(["-device".into(), option_value("loader,file=", program)]);
        }
    }
    c
}

/// `<target>-run --board PROGRAM ARGS...`
pub fn run(
    ctx: &Ctx,
    plugin: &Plugin,
    board: &Board,
    given: &OsStr,
    args: &[OsString],
) -> Result<i32> {
    let limit = limit()?;
    let cwd =
        std::env::current_dir().context("cannot read the current directory (was it removed?)")?;
    let path = mounts::normalize(Path::new(given), &cwd);
    super::regular_file(given, &path)?;
    let program = path.into_os_string();
    let mut sh_args: Vec<OsString> = vec![
        "-c".into(),
        UNDER_LIMIT.into(),
        format!("{}-run", plugin.target).into(),
        limit.to_string().into(),
    ];
    sh_args.extend(command(board, &program, args));
    let scanned: Vec<OsString> = std::iter::once(program.clone())
        .chain(args.iter().cloned())
        .collect();
    let req = super::image_request(plugin, "/bin/sh".into(), sh_args, &scanned)?;
    compile::run_plugin_tool(ctx, plugin, &req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().to_string()).collect()
    }

    #[test]
    fn board_command_lines() {
        let board = Board {
            system: "qemu-system-arm".into(),
            machine: "mps2-an385".into(),
            cpu: Some("cortex-m3".into()),
            load: BoardLoad::Kernel,
            args: vec![],
            default: false,
        };
        let c = command(&board, OsStr::new("/w/a.elf"), &["x,y".into(), "z".into()]);
        assert_eq!(
            strs(&c),
            [
                "qemu-system-arm",
                "-M",
                "mps2-an385",
                "-cpu",
                "cortex-m3",
                "-display",
                "none",
                "-serial",
                "none",
                "-monitor",
                "none",
                "-chardev",
                "stdio,id=semihosting",
                "-semihosting-config",
                "enable=on,target=native,chardev=semihosting,arg=/w/a.elf,arg=x,,y,arg=z",
                "-kernel",
                "/w/a.elf"
            ]
        );
        let rv = Board {
            system: "qemu-system-riscv64".into(),
            machine: "virt".into(),
            cpu: None,
            load: BoardLoad::Loader,
            args: vec!["-bios".into(), "none".into()],
            default: true,
        };
        let c = command(&rv, OsStr::new("/w/b,c"), &[]);
        assert_eq!(
            strs(&c)[11..],
            [
                "-bios",
                "none",
                "-semihosting-config",
                "enable=on,target=native,chardev=semihosting,arg=/w/b,,c",
                "-device",
                "loader,file=/w/b,,c"
            ]
        );
    }

    #[test]
    fn the_limit_script_is_valid_shell() {
        let o = std::process::Command::new("sh")
            .args(["-n", "-c", UNDER_LIMIT])
            .output()
            .unwrap();
        assert!(o.status.success());
    }
}
