//! Bare-metal targets (`runs_with: semihosting`): semihosting programs
//! whose `printf` reaches stdout and whose `exit(n)` is the status, under
//! the host's qemu-user (arm-none-eabi with newlib's rdimon) and on a board
//! under qemu-system in the image (arm-none-eabi's mps2-an385 with
//! picolibc, riscv64-unknown-elf's virt); a program that never ends is
//! stopped by the runner's time limit with one line saying so; a small
//! library built and tested with CMake and `ctest` through the runner.

use std::path::Path;

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    ("baremetal::arm_none_eabi", arm_none_eabi, Mode::Shared),
    (
        "baremetal::riscv64_unknown_elf",
        riscv64_unknown_elf,
        Mode::Shared,
    ),
];

/// picolibc with semihosting for a board whose flash and RAM are at
/// `flash` and `ram` (4 MiB and 2 MiB).
fn picolibc_board(flash: &str, ram: &str) -> Vec<String> {
    [
        "--specs=picolibc.specs".to_string(),
        "--oslib=semihost".into(),
        "--crt0=semihost".into(),
        format!("-Wl,--defsym=__flash={flash}"),
        "-Wl,--defsym=__flash_size=0x400000".into(),
        format!("-Wl,--defsym=__ram={ram}"),
        "-Wl,--defsym=__ram_size=0x200000".into(),
    ]
    .to_vec()
}

struct Bare<'a> {
    t: T,
    target: &'a str,
    path: String,
    src: std::path::PathBuf,
}

impl Bare<'_> {
    fn new(eng: Eng, target: &str) -> Bare<'_> {
        let t = T::new(eng, &format!("bare-{target}"), false);
        t.builtin_plugin(target);
        let path = t.shims(&[target]);
        let src = t.dir.join("src");
        copy_tree(&run().repo.join("tests/fixtures/baremetal"), &src);
        Bare {
            t,
            target,
            path,
            src,
        }
    }

    fn tool(&self, name: &str, args: &[String]) -> std::process::Command {
        let mut c = self.t.program(format!("{}-{name}", self.target), args);
        c.current_dir(&self.src).env("PATH", &self.path);
        c
    }

    fn build(&self, out: &str, source: &str, flags: &[String]) {
        let mut args: Vec<String> = flags.to_vec();
        args.extend(["-O2".into(), "-o".into(), out.into(), source.into()]);
        ok(self.tool("gcc", &args));
    }

    /// `RUN ARGS`: its status, stdout and stderr.
    fn run(&self, args: &[&str], timeout: Option<&str>) -> (Option<i32>, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut c = self.tool("run", &args);
        if let Some(s) = timeout {
            c.env("QEMU_CROSS_CC_RUN_TIMEOUT", s);
        }
        let o = c.output().unwrap();
        (o.status.code(), stdout(&o), stderr(&o))
    }

    /// The fixture's library and test with CMake and the generated
    /// toolchain file (`CMAKE_SYSTEM_NAME Generic` and the target's flags):
    /// `ctest` runs the test through the runner.
    fn cmake_ctest(&self) {
        let t = &self.t;
        let file = t.dir.join("bare.cmake");
        ok(t.qcc(["toolchain", self.target, "--cmake", "-o"])
            .arg(&file)
            .env("PATH", &self.path));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("set(CMAKE_SYSTEM_NAME Generic)"), "{text}");
        let build = t.dir.join("build");
        std::fs::create_dir_all(&build).unwrap();
        let sh = |script: &str| {
            let mut c = t.program("sh", ["-c", script]);
            c.current_dir(&build).env("PATH", &self.path);
            c
        };
        ok(sh(&format!(
            "cmake -G Ninja -DCMAKE_TOOLCHAIN_FILE={} {} && ninja",
            file.display(),
            self.src.display()
        )));
        let o = ok(sh("ctest --output-on-failure -V"));
        assert!(
            stdout(&o).contains("100% tests passed") && stdout(&o).contains("sum 15"),
            "{}",
            stdout(&o)
        );
    }
}

/// The time limit: one line, status 124, well before a minute.
fn spins_until_the_limit(b: &Bare, program: &str, board: bool) {
    let start = std::time::Instant::now();
    let mut args = vec![];
    if board {
        args.push("--board");
    }
    args.push(program);
    let (code, _, err) = b.run(&args, Some("3"));
    assert_eq!(code, Some(124), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("did not end within 3 s")
            && lines[0].contains("QEMU_CROSS_CC_RUN_TIMEOUT"),
        "{err}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(40));
}

fn arm_none_eabi(eng: Eng) {
    let b = Bare::new(eng, "arm-none-eabi");
    // qemu-user's semihosting (newlib's rdimon).
    b.build(
        "hello-user.elf",
        "hello.c",
        &["--specs=rdimon.specs".into()],
    );
    let (code, out, err) = b.run(&["./hello-user.elf", "fail"], None);
    assert_eq!(
        (code, out.as_str()),
        (Some(3), "hello from bare metal, last argument 'fail'\n"),
        "{err}"
    );
    let (code, out, _) = b.run(&["./hello-user.elf", "a b"], None);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "hello from bare metal, last argument 'b'\n")
    );
    // The board: a Cortex-M3 program for mps2-an385 under qemu-system-arm.
    let mut board = picolibc_board("0x0", "0x20000000");
    board.extend(["-mcpu=cortex-m3".into(), "-mthumb".into()]);
    b.build("hello-mps2.elf", "hello.c", &board);
    let (code, out, err) = b.run(&["--board", "./hello-mps2.elf", "a", "fail"], None);
    assert_eq!(
        (code, out.as_str()),
        (Some(3), "hello from bare metal, last argument 'fail'\n"),
        "{err}"
    );
    assert_eq!(err, "");
    let (code, out, err) = b.run(&["--board", "./hello-mps2.elf", "b,c"], None);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "hello from bare metal, last argument 'b,c'\n")
    );
    assert_eq!(err, "");
    b.build("spin.elf", "spin.c", &board);
    spins_until_the_limit(&b, "./spin.elf", true);
    let (code, _, err) = b.run(&["--board"], None);
    assert_eq!(code, Some(2), "{err}");
    b.cmake_ctest();
    assert!(Path::new(&b.t.dir.join("build/test_sum")).exists());
}

fn riscv64_unknown_elf(eng: Eng) {
    let b = Bare::new(eng, "riscv64-unknown-elf");
    // The virt board is the default: qemu-user cannot run these.
    let mut board = picolibc_board("0x80000000", "0x80400000");
    board.push("-mcmodel=medany".into());
    b.build("hello.elf", "hello.c", &board);
    let (code, out, err) = b.run(&["./hello.elf", "fail"], None);
    assert_eq!(
        (code, out.as_str()),
        (Some(3), "hello from bare metal, last argument 'fail'\n"),
        "{err}"
    );
    assert_eq!(err, "");
    let (code, out, _) = b.run(&["hello.elf", "ok"], None);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "hello from bare metal, last argument 'ok'\n")
    );
    b.build("spin.elf", "spin.c", &board);
    spins_until_the_limit(&b, "./spin.elf", false);
    b.cmake_ctest();
}
