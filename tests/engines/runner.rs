//! Running what the toolchains build: `<target>-run PROGRAM ARGS...` (the
//! host's qemu-user mounted into the target's image) and `exec TARGET --
//! COMMAND...` (the host's binfmt_misc handler), on s390x (big-endian, no
//! host toolchain), for a plain program, a libtool build tree with
//! `make check`, as the unprivileged user, and the known qemu-user limits.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "runner::hello_s390x_args_stdin_status",
        hello_s390x_args_stdin_status,
        Mode::Shared,
    ),
    (
        "runner::libtool_tree_make_check",
        libtool_tree_make_check,
        Mode::Shared,
    ),
    (
        "runner::as_unprivileged_user",
        as_unprivileged_user,
        Mode::Shared,
    ),
    (
        "runner::sh4_and_static_alpha_are_known_limits",
        sh4_and_static_alpha_are_known_limits,
        Mode::Shared,
    ),
];

const S390X: &str = "s390x-linux-gnu";

/// Prints the first byte of 0x01020304 in memory (01 on a big-endian CPU),
/// its first argument and how many bytes stdin had; exits 3.
const HELLO: &str = r#"#include <stdio.h>
#include <stdint.h>
#include <string.h>
int main(int argc, char **argv)
{
    uint32_t x = 0x01020304;
    unsigned char b[4];
    long n = 0;
    memcpy(b, &x, sizeof b);
    while (getchar() != EOF)
        n++;
    printf("first byte %02x, arg '%s', stdin %ld bytes\n", b[0], argc > 1 ? argv[1] : "", n);
    return 3;
}
"#;

/// A program of `t`'s work folder, run with the shims first on PATH.
fn tool(t: &T, path: &str, program: &str, args: &[&str]) -> Command {
    let mut c = t.program(program, args);
    c.env("PATH", path);
    c
}

/// `hello.c` built for `target` in the work folder (`extra` flags).
fn build_hello(t: &T, path: &str, target: &str, out: &str, extra: &[&str]) {
    t.write("work/hello.c", HELLO);
    let mut args = vec!["-o", out, "hello.c"];
    args.extend(extra);
    ok(tool(t, path, &format!("{target}-gcc"), &args));
}

/// The runner passes argv, stdin, stdout and the exit status; a bare name
/// is a file of the current folder; one-shot and sessions agree; `exec`
/// runs the program and a shell command through the binfmt handler.
fn hello_s390x_args_stdin_status(eng: Eng) {
    let t = T::new(eng, "run-hello", false);
    t.builtin_plugin(S390X);
    let path = t.shims(&[S390X]);
    build_hello(&t, &path, S390X, "hello", &[]);
    let want = "first byte 01, arg 'a b $HOME;`x`', stdin 5 bytes\n";
    for (program, session) in [("./hello", "1"), ("hello", "0"), ("./hello", "1")] {
        let mut c = tool(
            &t,
            &path,
            "s390x-linux-gnu-run",
            &[program, "a b $HOME;`x`"],
        );
        c.env("QEMU_CROSS_CC_SESSION", session);
        let o = with_stdin(c, b"abcd\n");
        assert_eq!(o.status.code(), Some(3), "{program}: {}", stderr(&o));
        assert_eq!(stdout(&o), want, "{program}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{program}");
    }
    let abs = t.work().join("hello").display().to_string();
    // From another folder: the program's folder is mounted too.
    let elsewhere = t.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut c = tool(&t, &path, "s390x-linux-gnu-run", &[&abs, "far"]);
    c.current_dir(&elsewhere);
    let o = with_stdin(c, b"");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "first byte 01, arg 'far', stdin 0 bytes\n");
    let o = with_stdin(exec_cmd(&t, &path, &[&abs, "x"]), b"12");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "first byte 01, arg 'x', stdin 2 bytes\n");
    let o = out(exec_cmd(
        &t,
        &path,
        &["sh", "-c", "./hello y </dev/null; exit $(($? + 4))"],
    ));
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "first byte 01, arg 'y', stdin 0 bytes\n");
    // A missing program is one line, before any engine call.
    let o = fails(tool(&t, &path, "s390x-linux-gnu-run", &["./missing"]));
    assert!(one_error_line(&o).contains("cannot run ./missing"));
}

/// `qemu-cross-cc exec TARGET -- ARGS...` as `t`'s user, shims on PATH.
fn exec_cmd(t: &T, path: &str, args: &[&str]) -> Command {
    let mut c = t.qcc(["exec", S390X, "--"]);
    c.args(args).env("PATH", path);
    c
}

/// tests/fixtures/libtool configured for s390x out of tree and built
/// through the shims; returns the build folder.
fn libtool_build(t: &T, path: &str) -> PathBuf {
    let src = t.dir.join("src");
    copy_tree(&run().repo.join("tests/fixtures/libtool"), &src);
    let build = t.dir.join("build");
    std::fs::create_dir_all(&build).unwrap();
    if t.tester {
        chown_r(&src, tester_uid(), tester_gid());
        chown_r(&build, tester_uid(), tester_gid());
    }
    ok(tool(t, path, "autoreconf", &["-fi"]).current_dir(&src));
    ok(tool(t, path, "../src/configure", &["--host=s390x-linux-gnu"]).current_dir(&build));
    ok(tool(t, path, "make", &[]).current_dir(&build));
    build
}

/// A libtool build tree: `./greet` is a wrapper script that sets
/// LD_LIBRARY_PATH to `.libs`; the runner runs it and its program, and
/// `make check` passes with the runner as LOG_COMPILER and under `exec`.
fn libtool_tree_make_check(eng: Eng) {
    let t = T::new(eng, "run-libtool", false);
    t.builtin_plugin(S390X);
    let path = t.shims(&[S390X]);
    let build = libtool_build(&t, &path);
    let head = std::fs::read_to_string(build.join("greet")).unwrap();
    assert!(
        head.contains("Generated by libtool"),
        "greet is not a wrapper"
    );

    // Sourced as `libtool --mode=execute` does: no noise, the real program
    // under qemu with the tree's `.libs` on LD_LIBRARY_PATH.
    for wrapper in ["./greet", "greet"] {
        let o = ok(tool(&t, &path, "s390x-linux-gnu-run", &[wrapper]).current_dir(&build));
        assert_eq!(stdout(&o), "hello from a big-endian libgreet\n");
        assert_eq!(stderr(&o), "", "{wrapper}");
    }
    // The real program, given LD_LIBRARY_PATH through the allow-list.
    let libs = build.join(".libs").display().to_string();
    let o = ok(tool(&t, &path, "s390x-linux-gnu-run", &[".libs/greet"])
        .current_dir(&build)
        .env("QEMU_CROSS_CC_PASSENV", "LD_LIBRARY_PATH")
        .env("LD_LIBRARY_PATH", &libs));
    assert_eq!(stdout(&o), "hello from a big-endian libgreet\n");

    let o = ok(tool(
        &t,
        &path,
        "make",
        &[
            "check",
            "LOG_COMPILER=s390x-linux-gnu-run",
            "SH_LOG_COMPILER=s390x-linux-gnu-run",
        ],
    )
    .current_dir(&build));
    assert!(stdout(&o).contains("PASS: greet-test"), "{}", stdout(&o));
    assert!(stdout(&o).contains("PASS: greet.sh"), "{}", stdout(&o));
    let o = ok(exec_cmd(&t, &path, &["make", "check"]).current_dir(&build));
    assert!(stdout(&o).contains("PASS: greet-test"), "{}", stdout(&o));
    let log = std::fs::read_to_string(build.join("greet-test.log")).unwrap();
    assert!(log.contains("PASS greet-test"), "{log}");
}

/// The unprivileged user (docker group; rootless podman): build and run.
fn as_unprivileged_user(eng: Eng) {
    let t = T::new(eng, "run-user", true);
    t.builtin_plugin(S390X);
    let path = t.shims(&[S390X]);
    build_hello(&t, &path, S390X, "hello", &[]);
    let o = with_stdin(
        tool(&t, &path, "s390x-linux-gnu-run", &["./hello", "u"]),
        b"xyz",
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "first byte 01, arg 'u', stdin 3 bytes\n");
    let meta = std::fs::metadata(t.work().join("hello")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), tester_uid(), "the program belongs to the user");
}

/// The host's qemu-user version (major, minor).
fn qemu_version(qemu: &str) -> (u32, u32) {
    let o = ok(Command::new(format!("/usr/bin/qemu-{qemu}-static")).arg("--version"));
    let v = stdout(&o);
    let mut parts = v
        .split("version ")
        .nth(1)
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit());
    let major = parts.next().unwrap_or_default().parse().unwrap_or(0);
    let minor = parts.next().unwrap_or_default().parse().unwrap_or(0);
    (major, minor)
}

/// qemu-user 7.2 cannot run sh4 programs, nor static alpha ones: said in
/// one line, not a crash or a hang; dynamic alpha programs run.
fn sh4_and_static_alpha_are_known_limits(eng: Eng) {
    let t = T::new(eng, "run-limits", false);
    t.builtin_plugin("sh4-linux-gnu");
    t.builtin_plugin("alpha-linux-gnu");
    let path = t.shims(&["sh4-linux-gnu", "alpha-linux-gnu"]);
    if qemu_version("sh4") <= (7, 2) {
        build_hello(&t, &path, "sh4-linux-gnu", "hello-sh4", &[]);
        let o = fails(tool(&t, &path, "sh4-linux-gnu-run", &["./hello-sh4"]));
        let line = one_error_line(&o);
        assert!(
            line.contains("cannot run sh4 programs") && line.contains("known"),
            "{line}"
        );
        let o = fails(t.qcc(["exec", "sh4-linux-gnu", "--", "./hello-sh4"]));
        assert!(one_error_line(&o).contains("cannot run sh4 programs"));
    } else {
        eprintln!("{eng}::runner: qemu-sh4 is newer than 7.2; the sh4 limit is not checked");
    }
    build_hello(&t, &path, "alpha-linux-gnu", "hello-alpha", &[]);
    let o = with_stdin(
        tool(&t, &path, "alpha-linux-gnu-run", &["./hello-alpha", "d"]),
        b"",
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "first byte 04, arg 'd', stdin 0 bytes\n");
    if qemu_version("alpha") <= (7, 2) {
        build_hello(&t, &path, "alpha-linux-gnu", "static-alpha", &["-static"]);
        let o = fails(tool(&t, &path, "alpha-linux-gnu-run", &["./static-alpha"]));
        let line = one_error_line(&o);
        assert!(
            line.contains("static alpha programs") && line.contains("known"),
            "{line}"
        );
    }
}
