//! glibc floors: one program built against the target's own C library
//! (Debian 12, glibc 2.36) and, with `glibc = "2.31"` in the project file,
//! against its floor (the same toolchain in a Debian 11 image). The floor's
//! build needs no symbol version above GLIBC_2.31 and runs on Debian 11;
//! the default build needs 2.34. On x86_64 (the compiler in an image) and
//! s390x (foreign, big-endian).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    ("glibc::floor_x86_64", floor_x86_64, Mode::Shared),
    ("glibc::floor_s390x", floor_s390x, Mode::Shared),
];

const PROGRAM: &str = r#"#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    printf("floor test, %d args, %zu\n", argc - 1, strlen(argc > 1 ? argv[1] : ""));
    return argc > 2 ? 7 : 0;
}
"#;

/// The highest `GLIBC_x.y` a program needs, from the host's `readelf`
/// (which reads any architecture's ELF files).
fn highest_glibc(program: &Path) -> (u32, u32) {
    let o = ok(Command::new("readelf").arg("--version-info").arg(program));
    stdout(&o)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let (a, b) = v.split_once('.')?;
            let b: String = b.chars().take_while(char::is_ascii_digit).collect();
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .max()
        .unwrap_or_else(|| panic!("no GLIBC_ version in {}", program.display()))
}

/// `dir/prog` built from PROGRAM by `<target>-gcc` in `dir`.
fn build(t: &T, path: &str, target: &str, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("prog.c"), PROGRAM).unwrap();
    ok(
        t.program(format!("{target}-gcc"), ["-O2", "-o", "prog", "prog.c"])
            .current_dir(dir)
            .env("PATH", path),
    );
    dir.join("prog")
}

/// The two builds of PROGRAM for `target` checked; returns the test and
/// the default and the floor's programs.
fn floor(eng: Eng, target: &str) -> (T, PathBuf, PathBuf) {
    let t = T::new(eng, &format!("glibc-{target}"), false);
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let plain = build(&t, &path, target, &t.dir.join("plain"));
    let floor_dir = t.dir.join("floor");
    std::fs::create_dir_all(&floor_dir).unwrap();
    std::fs::write(
        floor_dir.join("qemu-cross-cc.toml"),
        format!("[target.{target}]\nglibc = \"2.31\"\n"),
    )
    .unwrap();
    let floored = build(&t, &path, target, &floor_dir);

    let (plain_v, floor_v) = (highest_glibc(&plain), highest_glibc(&floored));
    assert!(plain_v >= (2, 34), "the default build needs {plain_v:?}");
    assert!(floor_v <= (2, 31), "the floor's build needs {floor_v:?}");

    // The floor's program runs through the runner, in the floor's image
    // (Debian 11): arguments and the exit status pass through.
    let o = t
        .program(format!("{target}-run"), ["./prog", "abc", "x"])
        .current_dir(&floor_dir)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "floor test, 2 args, 3\n");
    let images = stdout(&ok(t.engine(["images", "--format", "{{.Repository}}"])));
    assert!(
        images.contains(&format!("qcc-test-{}-{target}-glibc2.31", run().id)),
        "{images}"
    );

    // An unknown floor is one line listing those there are.
    std::fs::write(
        floor_dir.join("qemu-cross-cc.toml"),
        format!("[target.{target}]\nglibc = \"2.28\"\n"),
    )
    .unwrap();
    let o = fails(
        t.program(format!("{target}-gcc"), ["-c", "prog.c"])
            .current_dir(&floor_dir)
            .env("PATH", &path),
    );
    let line = one_error_line(&o);
    assert!(
        line.contains("`glibc` is 2.28") && line.contains("2.31, 2.36 (its image's, the default)"),
        "{line}"
    );
    (t, plain, floored)
}

/// x86_64: both programs in a plain Debian 11 container (the engine's
/// `debian:11-slim`, which tests/setup-engines.sh imports): the floor's
/// runs, the default one needs a newer glibc.
fn floor_x86_64(eng: Eng) {
    let (t, plain, floored) = floor(eng, "x86_64-linux-gnu");
    let debian11 = |program: &Path| {
        let p = program.display().to_string();
        t.qcc([
            "run",
            "--network",
            "none",
            "-v",
            &format!("{p}:{p}:ro"),
            "debian:11-slim",
            &p,
            "a",
        ])
        .output()
        .unwrap()
    };
    let o = debian11(&floored);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "floor test, 1 args, 1\n");
    let o = debian11(&plain);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("GLIBC_2.34' not found"),
        "{}",
        stderr(&o)
    );
}

fn floor_s390x(eng: Eng) {
    floor(eng, "s390x-linux-gnu");
}
