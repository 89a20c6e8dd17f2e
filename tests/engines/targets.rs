//! Targets: plugins, shims, ensure-image, and real foreign-architecture
//! builds of a small autoconf-style C/C++ project for every built-in target.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "shim_arguments_survive_verbatim",
        shim_arguments_survive_verbatim,
        Mode::Shared,
    ),
    (
        "shim_stdin_and_exit_status",
        shim_stdin_and_exit_status,
        Mode::Shared,
    ),
    ("shim_env_allow_list", shim_env_allow_list, Mode::Shared),
    (
        "concurrent_first_calls_build_once",
        concurrent_first_calls_build_once,
        Mode::Shared,
    ),
    (
        "stale_dockerfile_rebuilds",
        stale_dockerfile_rebuilds,
        Mode::Shared,
    ),
    (
        "image_build_failure_is_reported",
        image_build_failure_is_reported,
        Mode::Shared,
    ),
    ("invocation_styles", invocation_styles, Mode::Shared),
    (
        "target_names_for_build_check_probe_targets",
        target_names_for_build_check_probe_targets,
        Mode::Shared,
    ),
    (
        "out_of_tree_paths_are_mounted",
        out_of_tree_paths_are_mounted,
        Mode::Shared,
    ),
    (
        "shims_as_unprivileged_user",
        shims_as_unprivileged_user,
        Mode::Shared,
    ),
];

/// A built-in target and what its binaries must look like.
pub struct Target {
    pub name: &'static str,
    pub qemu: &'static str,
    pub long: u32,
    pub big: bool,
    /// Part of `file`'s description of its executables.
    pub machine: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "aarch64-linux-gnu",
        qemu: "aarch64",
        long: 8,
        big: false,
        machine: "ARM aarch64",
    },
    Target {
        name: "arm-linux-gnueabihf",
        qemu: "arm",
        long: 4,
        big: false,
        machine: "ARM, EABI5",
    },
    Target {
        name: "i686-linux-gnu",
        qemu: "i386",
        long: 4,
        big: false,
        machine: "Intel 80386",
    },
    Target {
        name: "powerpc-linux-gnu",
        qemu: "ppc",
        long: 4,
        big: true,
        machine: "PowerPC",
    },
    Target {
        name: "powerpc64-linux-gnu",
        qemu: "ppc64",
        long: 8,
        big: true,
        machine: "64-bit PowerPC",
    },
    Target {
        name: "powerpc64le-linux-gnu",
        qemu: "ppc64le",
        long: 8,
        big: false,
        machine: "64-bit PowerPC",
    },
    Target {
        name: "s390x-linux-gnu",
        qemu: "s390x",
        long: 8,
        big: true,
        machine: "IBM S/390",
    },
    Target {
        name: "riscv64-linux-gnu",
        qemu: "riscv64",
        long: 8,
        big: false,
        machine: "RISC-V",
    },
    Target {
        name: "mips-linux-gnu",
        qemu: "mips",
        long: 4,
        big: true,
        machine: "MIPS",
    },
    Target {
        name: "mipsel-linux-gnu",
        qemu: "mipsel",
        long: 4,
        big: false,
        machine: "MIPS",
    },
    Target {
        name: "mips64el-linux-gnuabi64",
        qemu: "mips64el",
        long: 8,
        big: false,
        machine: "MIPS64",
    },
    Target {
        name: "alpha-linux-gnu",
        qemu: "alpha",
        long: 8,
        big: false,
        machine: "Alpha",
    },
    Target {
        name: "hppa-linux-gnu",
        qemu: "hppa",
        long: 4,
        big: true,
        machine: "PA-RISC",
    },
    Target {
        name: "m68k-linux-gnu",
        qemu: "m68k",
        long: 4,
        big: true,
        machine: "68020",
    },
    Target {
        name: "sh4-linux-gnu",
        qemu: "sh4",
        long: 4,
        big: false,
        machine: "Renesas SH",
    },
    Target {
        name: "sparc64-linux-gnu",
        qemu: "sparc64",
        long: 8,
        big: true,
        machine: "SPARC V9",
    },
    Target {
        name: "x86_64-linux-gnu",
        qemu: "x86_64",
        long: 8,
        big: false,
        machine: "x86-64",
    },
];

/// Copy the test project to `t.dir/src` and configure + make it in
/// `t.dir/build` through the shims on `path`; returns the build folder.
pub fn build_project(t: &T, target: &str, path: &str) -> PathBuf {
    let src = t.dir.join("src");
    copy_tree(&run().repo.join("tests/fixtures/project"), &src);
    let build = t.dir.join("build");
    std::fs::create_dir_all(&build).unwrap();
    if t.tester {
        chown_r(&src, tester_uid(), tester_gid());
        chown_r(&build, tester_uid(), tester_gid());
    }
    let o = ok(t
        .program("../src/configure", [format!("--host={target}")])
        .current_dir(&build)
        .env("PATH", path));
    assert!(stdout(&o).contains("wrote config.h"), "{}", stdout(&o));
    ok(t.program("make", ["-s", "-j4"])
        .current_dir(&build)
        .env("PATH", path));
    build
}

fn expected_hello(target: &Target) -> String {
    format!(
        "hello from {}: long={}/{} big-endian={}/{} answer=42\n",
        target.name, target.long, target.long, target.big as u8, target.big as u8
    )
}

/// Every built-in target: image built on first use, the project configured
/// and built out of tree through the shims, the binaries checked with
/// `file` and run under qemu-user (static on the host, dynamic inside the
/// image with the target's sysroot).
pub fn target_builds_and_runs(eng: Eng, target: &Target) {
    let t = T::new(eng, &format!("tgt-{}", target.name), false);
    let m = t.builtin_plugin(target.name);
    let image = m["image"].as_str().unwrap().to_string();
    let sysroot = m["sysroot"].as_str().unwrap().to_string();
    let path = t.shims(&[target.name]);
    let build = build_project(&t, target.name, &path);

    let o = ok(Command::new("file")
        .args(["-b", "hello", "hello-static", "hello++"])
        .current_dir(&build));
    let bits = if target.long == 8 { "64-bit" } else { "32-bit" };
    let order = if target.big { "MSB" } else { "LSB" };
    for line in stdout(&o).lines() {
        assert!(
            line.starts_with(&format!("ELF {bits} {order}")) && line.contains(target.machine),
            "file says: {line}"
        );
    }
    if target.name == "sh4-linux-gnu" && qemu_version().starts_with("7.") {
        // qemu-sh4 7.2 (Debian bookworm) loops forever in glibc's start-up
        // code of any sh4 program (a QEMU bug, fixed in later versions):
        // the build and `file` checks above are all that can run here.
        eprintln!(
            "{eng}::target::sh4-linux-gnu: not run: qemu-sh4 {} cannot run sh4 programs",
            qemu_version()
        );
        return;
    }
    let qemu = format!("/usr/bin/qemu-{}-static", target.qemu);
    if target.name == "alpha-linux-gnu" && qemu_version().starts_with("7.") {
        // qemu-alpha 7.2 crashes in the start-up of static glibc programs
        // (set_robust_list is not implemented); dynamic ones run below.
        eprintln!(
            "{eng}::target::alpha-linux-gnu: static program not run under qemu-alpha {}",
            qemu_version()
        );
    } else {
        let o = ok(Command::new("timeout")
            .arg("120")
            .arg(&qemu)
            .arg(build.join("hello-static")));
        assert_eq!(stdout(&o), expected_hello(target));
    }

    // Dynamic binaries need the target's libraries: run them in the image.
    let b = build.display().to_string();
    let inner = format!("/usr/local/bin/qemu-{}-static", target.qemu);
    let run_in_image = |program: &str| {
        ok(t.qcc([
            "run",
            "--network",
            "none",
            "-v",
            &format!("{b}:{b}:ro"),
            "-v",
            &format!("{qemu}:{inner}:ro"),
            &image,
            "timeout",
            "120",
            &inner,
            "-L",
            &sysroot,
            &format!("{b}/{program}"),
        ]))
    };
    assert_eq!(stdout(&run_in_image("hello")), expected_hello(target));
    assert_eq!(
        stdout(&run_in_image("hello++")),
        format!("hello++ from {}: 3 words\n", target.name)
    );

    if target.name == "aarch64-linux-gnu" {
        same_diagnostics_as_native_cross_gcc(&t, &path);
    }
}

/// The host's qemu-user version (`8.2.2`).
fn qemu_version() -> String {
    let o = ok(Command::new("/usr/bin/qemu-aarch64-static").arg("--version"));
    stdout(&o)
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

/// A failing compile: exit status and stderr byte for byte those of the
/// host's own aarch64-linux-gnu-gcc (Debian's, the same version).
fn same_diagnostics_as_native_cross_gcc(t: &T, path: &str) {
    let native = "/usr/bin/aarch64-linux-gnu-gcc";
    assert!(
        Path::new(native).exists(),
        "{native} missing: run tests/setup-engines.sh"
    );
    t.write(
        "work/bad.c",
        "#include <stdio.h>\nint main(void) {\n  int x = \"s\";\n  printf(\"%d\\n\", y);\n  return 0\n}\n",
    );
    for args in [
        &["-c", "bad.c"][..],
        &["-Wall", "-Wextra", "-c", "bad.c", "-o", "bad.o"],
        &["-fsyntax-only", "bad.c"],
    ] {
        let ours = out(t
            .program("aarch64-linux-gnu-gcc", args)
            .env("PATH", path)
            .env("LC_ALL", "C.UTF-8"));
        let theirs = out(Command::new(native)
            .args(args)
            .current_dir(t.work())
            .env("LC_ALL", "C.UTF-8"));
        assert_eq!(ours.status.code(), theirs.status.code());
        assert_eq!(ours.status.code(), Some(1));
        assert_eq!(
            stderr(&ours),
            stderr(&theirs),
            "stderr differs for {args:?}"
        );
        assert_eq!(ours.stdout, theirs.stdout);
    }
}

const CHEAP: &str = "qcctest-linux-gnu";

fn shim_arguments_survive_verbatim(eng: Eng) {
    let t = T::new(eng, "verbatim", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let weird = "dir with spaces $HOME;'q\"`x`ü";
    t.write(
        &format!("work/{weird}/wëird ; $(x).c"),
        "#include <stdio.h>\nint main(void) { puts(MSG); return 0; }\n",
    );
    let msg = "a b  $c; `d` 'e' \"f\" \\g ü *";
    let define = format!(
        "-DMSG=\"{}\"",
        msg.replace('\\', "\\\\").replace('"', "\\\"")
    );
    ok(t.program(
        format!("{CHEAP}-gcc"),
        [
            define.as_str(),
            &format!("{weird}/wëird ; $(x).c"),
            "-o",
            &format!("{weird}/out put"),
        ],
    )
    .env("PATH", &path));
    let o = ok(&mut Command::new(t.work().join(weird).join("out put")));
    assert_eq!(stdout(&o), format!("{msg}\n"));
}

fn shim_stdin_and_exit_status(eng: Eng) {
    let t = T::new(eng, "stdin", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let gcc = format!("{CHEAP}-gcc");
    // A program read from stdin.
    let mut child = t
        .program(&gcc, ["-x", "c", "-", "-o", "from-stdin"])
        .env("PATH", &path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"int main(void) { return 3; }\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let st = Command::new(t.work().join("from-stdin")).status().unwrap();
    assert_eq!(st.code(), Some(3));
    // `echo | cc -dM -E -`
    let mut child = t
        .program(&gcc, ["-dM", "-E", "-"])
        .env("PATH", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("#define __x86_64__ 1"));
    // Exit status and messages of a failing compile pass through; nothing
    // of our own is added.
    t.write("work/bad.c", "int main(void) { return nope; }\n");
    let o = fails(t.program(&gcc, ["-c", "bad.c"]).env("PATH", &path));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("bad.c: In function"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("qemu-cross-cc"));
    let o = out(t
        .program(format!("{CHEAP}-sh"), ["-c", "echo o; echo e >&2; exit 42"])
        .env("PATH", &path));
    assert_eq!(o.status.code(), Some(42));
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("o\n", "e\n"));
    // A signal death is reported as 128+N.
    let o = out(t
        .program(format!("{CHEAP}-sh"), ["-c", "kill -SEGV $$"])
        .env("PATH", &path));
    assert_eq!(o.status.code(), Some(139));
}

fn shim_env_allow_list(eng: Eng) {
    let t = T::new(eng, "env", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    std::fs::create_dir_all(t.work().join("tmp")).unwrap();
    let o = ok(t
        .program(format!("{CHEAP}-env"), Vec::<String>::new())
        .env("PATH", &path)
        .env("LANG", "C.UTF-8")
        .env("LC_MESSAGES", "C")
        .env("SOURCE_DATE_EPOCH", "1")
        .env("PKG_CONFIG_PATH", "/x")
        .env("SECRET_TOKEN", "hunter2")
        .env("MY_VAR", "mine")
        .env("QEMU_CROSS_CC_PASSENV", "MY_VAR OTHER_*")
        .env("OTHER_ONE", "1")
        .env("HOME", "/nonexistent/qcc-home")
        .env("TMPDIR", t.work().join("tmp")));
    let env = stdout(&o);
    for want in [
        "LANG=C.UTF-8",
        "LC_MESSAGES=C",
        "SOURCE_DATE_EPOCH=1",
        "PKG_CONFIG_PATH=/x",
        "MY_VAR=mine",
        "OTHER_ONE=1",
        &format!("TMPDIR={}", t.work().join("tmp").display()),
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want} missing from:\n{env}"
        );
    }
    let host_path = t.dir.join("bin").display().to_string();
    for never in [
        "SECRET_TOKEN",
        "QEMU_CROSS_CC_PASSENV",
        "qcc-home",
        host_path.as_str(),
    ] {
        assert!(!env.contains(never), "{never} leaked:\n{env}");
    }
    // TMPDIR outside the mounts is not passed (the call gets a private
    // temporary folder of the container's instead).
    let o = ok(t
        .program(format!("{CHEAP}-env"), Vec::<String>::new())
        .env("PATH", &path)
        .env("TMPDIR", "/var/tmp"));
    assert!(!stdout(&o).contains("TMPDIR=/var/tmp"), "{}", stdout(&o));
}

fn concurrent_first_calls_build_once(eng: Eng) {
    let t = T::new(eng, "concurrent", false);
    let image = t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    assert!(!t.image_exists(&image));
    let mut children = Vec::new();
    for i in 0..8 {
        t.write(
            &format!("work/c{i}.c"),
            format!("int f{i}(void) {{ return {i}; }}\n"),
        );
        children.push(
            t.program(
                format!("{CHEAP}-gcc"),
                ["-c".to_string(), format!("c{i}.c")],
            )
            .env("PATH", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        );
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o), "", "the compile path prints nothing of its own");
        assert_eq!(stdout(&o), "");
    }
    for i in 0..8 {
        assert!(t.work().join(format!("c{i}.o")).exists());
    }
    assert_eq!(t.build_count(&image), 1, "exactly one image build");
}

fn stale_dockerfile_rebuilds(eng: Eng) {
    let t = T::new(eng, "stale", false);
    let image = t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    ok(t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    let first = t.label(&image, "com.qemu.dockerfile-checksum");
    ok(t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    assert_eq!(t.build_count(&image), 1);
    let old_session = t.sessions()[0]["container"].as_str().unwrap().to_string();
    let df = t.plugins().join(format!("{CHEAP}.docker"));
    let mut text = std::fs::read_to_string(&df).unwrap();
    text.push_str("RUN echo changed\n");
    std::fs::write(&df, text).unwrap();
    let o = fails(t.qcc(["check", CHEAP]));
    assert_eq!(stdout(&o), "Image needs updating\n");
    ok(t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    assert_eq!(t.build_count(&image), 2, "rebuilt once");
    assert_ne!(t.label(&image, "com.qemu.dockerfile-checksum"), first);
    ok(t.qcc(["check", CHEAP]));
    // The rebuilt image retired the old image's session.
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_ne!(s[0]["container"].as_str().unwrap(), old_session);
    let o = out(t.engine(["ps", "-q", "--filter", &format!("name={old_session}")]));
    assert_eq!(
        stdout(&o).trim(),
        "",
        "the old session's container still runs"
    );
    // The session the call first started from the stale image while it
    // was checked (`session::Image::Checking`) is gone too: the one left
    // runs the rebuilt image.
    let runtime = t.dir.join("runtime");
    let left = t.containers_with(&format!("com.qemu-cross-cc.runtime={}", runtime.display()));
    assert_eq!(left.len(), 1, "{left:?}");
    let o = ok(t.engine(["inspect", "--format", "{{.Image}}", &left[0]]));
    assert_eq!(stdout(&o).trim(), t.image_id(&image));
}

fn image_build_failure_is_reported(eng: Eng) {
    let t = T::new(eng, "build-fail", false);
    t.tag("broken");
    t.plugin(
        CHEAP,
        &format!("{}-broken", t.name),
        "FROM debian:12-slim\nRUN echo 'something went wrong here' && false\n",
        &[("cc", "gcc")],
    );
    t.write("work/a.c", "int a;\n");
    let o = fails(t.qcc(["--target", CHEAP, "-c", "a.c"]));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    let first = e.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("qemu-cross-cc: error: building image"),
        "{e}"
    );
    assert!(
        first.contains(&t.cache().join("logs").display().to_string()),
        "names the log: {e}"
    );
    assert!(
        e.contains("something went wrong here"),
        "shows the log's last lines: {e}"
    );
}

fn invocation_styles(eng: Eng) {
    let t = T::new(eng, "styles", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a(void) { return 1; }\n");
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            vec![
                format!("--target={CHEAP}"),
                "-c".into(),
                "a.c".into(),
                "-o".into(),
                "1.o".into(),
            ],
            vec![],
        ),
        (
            vec![
                "--target".into(),
                CHEAP.into(),
                "-c".into(),
                "a.c".into(),
                "-o".into(),
                "2.o".into(),
            ],
            vec![],
        ),
        (
            vec!["-c".into(), "a.c".into(), "-o".into(), "3.o".into()],
            vec![("QEMU_CROSS_CC_TARGET", CHEAP)],
        ),
    ];
    for (args, env) in cases {
        let mut c = t.qcc_plain(&args);
        c.env("QEMU_CROSS_CC_ENGINE", eng.name());
        for (k, v) in env {
            c.env(k, v);
        }
        ok(&mut c);
    }
    // `make CC=qemu-cross-cc` with the target from the environment, and
    // CC="qemu-cross-cc --target=T" as configure would use it.
    t.write(
        "work/Makefile",
        "all: 4.o 5.o\n4.o: a.c\n\t$(CC) -c a.c -o $@\n5.o: a.c\n\t$(CC2) -c a.c -o $@\n",
    );
    ok(t.program(
        "make",
        [
            "-s",
            &format!("CC={}", run().bin.display()),
            &format!("CC2={} --target={CHEAP}", run().bin.display()),
        ],
    )
    .env("PATH", &path)
    .env("QEMU_CROSS_CC_TARGET", CHEAP));
    for i in 1..=5 {
        assert!(t.work().join(format!("{i}.o")).exists(), "{i}.o");
    }
    // `--version` reaches the compiler once a target is known.
    let o = ok(t
        .qcc_plain([format!("--target={CHEAP}"), "--version".into()])
        .env("QEMU_CROSS_CC_ENGINE", eng.name()));
    assert!(stdout(&o).starts_with("gcc"), "{}", stdout(&o));
}

fn target_names_for_build_check_probe_targets(eng: Eng) {
    let t = T::new(eng, "names", false);
    let image = t.cheap_plugin(CHEAP);
    let o = ok(t.qcc(["targets"]));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with(CHEAP))
        .unwrap()
        .to_string();
    assert!(
        line.contains(&image) && line.contains("missing") && line.contains("gcc"),
        "{line}"
    );
    let o = fails(t.qcc(["probe", CHEAP]));
    assert_eq!(stdout(&o), format!("{eng}\n{CHEAP}: {image} missing\n"));
    ok(t.qcc(["build", "--quiet", CHEAP]));
    let o = ok(t.qcc(["check", CHEAP]));
    assert_eq!(stdout(&o), "Image is up to date\n");
    let o = ok(t.qcc(["probe", CHEAP]));
    assert_eq!(stdout(&o), format!("{eng}\n{CHEAP}: {image} up to date\n"));
    let o = ok(t.qcc(["targets"]));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with(CHEAP) && l.contains("up to date"))
    );
    let o = ok(t.qcc(["build", CHEAP]));
    assert_eq!(stdout(&o), "Image is up to date.\n");
}

/// Out-of-tree paths: sources, include folders, outputs and dependency files
/// outside the current directory, and a response file.
fn out_of_tree_paths_are_mounted(eng: Eng) {
    let t = T::new(eng, "paths", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write(
        "tree/src/lib/a.c",
        "#include \"b.h\"\n#include \"../inc/c.h\"\nint a(void) { return B + C; }\n",
    );
    t.write("tree/src/lib/b.h", "#define B 1\n");
    t.write("tree/src/inc/c.h", "#define C 2\n");
    t.write("tree/inc2/d.h", "#define D 3\n");
    t.write(
        "tree/src/main.c",
        "#include \"d.h\"\nint a(void);\nint main(void) { return a() + D; }\n",
    );
    std::fs::create_dir_all(t.dir.join("tree/obj")).unwrap();
    let build = t.dir.join("tree/build");
    std::fs::create_dir_all(&build).unwrap();
    let gcc = format!("{CHEAP}-gcc");
    ok(t.program(
        &gcc,
        [
            "-c",
            "../src/lib/a.c",
            "-o",
            "../obj/a.o",
            "-MD",
            "-MF",
            "../obj/a.d",
        ],
    )
    .current_dir(&build)
    .env("PATH", &path));
    assert!(t.dir.join("tree/obj/a.o").exists() && t.dir.join("tree/obj/a.d").exists());
    std::fs::write(
        build.join("args.rsp"),
        "-I../inc2 ../src/main.c ../obj/a.o -o ../obj/prog\n",
    )
    .unwrap();
    ok(t.program(&gcc, ["@args.rsp"])
        .current_dir(&build)
        .env("PATH", &path));
    let st = Command::new(t.dir.join("tree/obj/prog")).status().unwrap();
    assert_eq!(st.code(), Some(6));
    // Inputs stay read-only.
    let o = fails(
        t.program(format!("{CHEAP}-sh"), ["-c", "touch ../src/new"])
            .current_dir(&build)
            .env("PATH", &path),
    );
    assert_ne!(o.status.code(), Some(0));
}

/// The shims as an unprivileged user: docker through the docker group,
/// podman rootless (the image is built rootless too). Files belong to the
/// user.
fn shims_as_unprivileged_user(eng: Eng) {
    let t = T::new(eng, "shim-user", true);
    let target = &TARGETS[0];
    t.builtin_plugin(target.name);
    let path = t.shims(&[target.name]);
    t.write(
        "work/hello.c",
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
    );
    ok(t.program(
        "aarch64-linux-gnu-gcc",
        ["-static", "hello.c", "-o", "hello"],
    )
    .env("PATH", &path));
    let meta = std::fs::metadata(t.work().join("hello")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (tester_uid(), tester_gid()));
    let o = ok(Command::new("/usr/bin/qemu-aarch64-static").arg(t.work().join("hello")));
    assert_eq!(stdout(&o), "hi\n");
    // It ran in a session (for rootless podman: socket and descriptors
    // across the user namespace).
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0]["calls"].as_u64().unwrap() >= 1);
}
