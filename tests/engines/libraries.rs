//! Target libraries: Debian packages for the target from a project's
//! `qemu-cross-cc.toml` or a manifest's `packages` (with `extends`),
//! installed into an image derived from the target's, and found by the
//! cross gcc and the target's pkg-config.

use std::process::Command;

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "libraries::project_packages_compile_link_and_pkg_config",
        project_packages_compile_link_and_pkg_config,
        Mode::Shared,
    ),
    (
        "libraries::extends_adds_packages",
        extends_adds_packages,
        Mode::Shared,
    ),
    (
        "libraries::packages_on_a_ports_target_is_one_error",
        packages_on_a_ports_target_is_one_error,
        Mode::Shared,
    ),
    (
        "libraries::bad_project_file_is_one_error_line",
        bad_project_file_is_one_error_line,
        Mode::Shared,
    ),
];

const TARGET: &str = "s390x-linux-gnu";

/// A zlib round trip; prints a line when it works.
const ZLIB_C: &str = r#"#include <stdio.h>
#include <string.h>
#include <zlib.h>

int main(void)
{
    const char *text = "target libraries, target libraries, target libraries";
    unsigned char packed[256], unpacked[256];
    uLongf plen = sizeof packed, ulen = sizeof unpacked;
    uLong len = strlen(text) + 1;
    if (compress(packed, &plen, (const Bytef *)text, len) != Z_OK)
        return 1;
    if (uncompress(unpacked, &ulen, packed, plen) != Z_OK || ulen != len)
        return 2;
    if (strcmp((const char *)unpacked, text) != 0)
        return 3;
    printf("zlib %s round trip ok: %lu -> %lu bytes\n", zlibVersion(), len, (unsigned long)plen);
    return 0;
}
"#;

/// Uses libbz2 (the package added to the project file later).
const BZIP2_C: &str = r#"#include <stdio.h>
#include <bzlib.h>

int main(void)
{
    printf("bzip2 %s\n", BZ2_bzlibVersion());
    return 0;
}
"#;

/// The derived images of this run's `base` image whose packages label is
/// `packages` (`NAME:ARCH,...`), recorded for removal.
fn derived_images(t: &T, base: &str, packages: &str) -> Vec<String> {
    let o = ok(t.engine(["images", "--format", "{{.Repository}}"]));
    let prefix = format!("{base}-lib-");
    let mut found: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.trim().trim_start_matches("localhost/").to_string())
        .filter(|r| r.starts_with(&prefix))
        .collect();
    found.sort();
    found.dedup();
    for tag in &found {
        t.record_image(tag);
    }
    found.retain(|tag| t.label(tag, "com.qemu-cross-cc.packages") == packages);
    found
}

/// How many times this engine built `image` (its build log is shared by
/// the run's tests and both engines).
fn builds_by(t: &T, image: &str) -> usize {
    let log = t.cache().join("logs").join(format!("{image}.log"));
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.starts_with(&format!("=== qemu-cross-cc: building image {image} for"))
                && l.ends_with(&format!(" with {} ===", t.eng))
        })
        .count()
}

/// Run the s390x program `prog` (in the work folder) under qemu-user.
fn run_s390x(t: &T, prog: &str) -> String {
    let o = ok(Command::new("qemu-s390x-static")
        .arg(t.work().join(prog))
        .current_dir(t.work()));
    stdout(&o)
}

/// `<tool> --cflags --libs zlib` of the shims.
fn pkg_config_zlib(t: &T, path: &str, target: &str) -> String {
    let o = ok(t
        .program(
            format!("{target}-pkg-config"),
            ["--cflags", "--libs", "zlib"],
        )
        .env("PATH", path));
    assert_eq!(stderr(&o), "");
    stdout(&o)
}

/// A project file asking for zlib1g-dev: four concurrent first calls build
/// the derived image once and print nothing; `#include <zlib.h>` and `-lz`
/// work; the target's pkg-config says only `-lz`; adding a package to the
/// file makes another derived image.
fn project_packages_compile_link_and_pkg_config(eng: Eng) {
    let t = T::new(eng, "lib-project", false);
    let m = t.builtin_plugin(TARGET);
    let base = m["image"].as_str().unwrap().to_string();
    let path = t.shims(&[TARGET]);
    let gcc = format!("{TARGET}-gcc");
    t.write(
        "work/qemu-cross-cc.toml",
        "# this project's target libraries\n[target.s390x-linux-gnu]\npackages = [\"zlib1g-dev\"]\n",
    );
    t.write("work/z.c", ZLIB_C);

    let calls: Vec<_> = (0..4)
        .map(|i| {
            let mut c = t.program(&gcc, ["-c", "z.c", "-o", &format!("z{i}.o")]);
            c.env("PATH", &path);
            std::thread::spawn(move || out(c))
        })
        .collect();
    for call in calls {
        let o = call.join().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o), "", "the compile path printed something");
    }
    let images = derived_images(&t, &base, "zlib1g-dev:s390x");
    assert_eq!(images.len(), 1, "{images:?}");
    let zlib_image = &images[0];
    assert_eq!(builds_by(&t, zlib_image), 1, "built more than once");
    assert_eq!(
        t.label(zlib_image, "com.qemu-cross-cc.base-checksum"),
        t.label(&base, "com.qemu.dockerfile-checksum")
    );

    // Linked with -lz (dynamic, and static to run it here).
    let o = ok(t
        .program(&gcc, ["z.c", "-o", "zd", "-lz"])
        .env("PATH", &path));
    assert_eq!(stderr(&o), "");
    let f = stdout(&ok(Command::new("file").arg(t.work().join("zd"))));
    assert!(
        f.contains("S/390") && f.contains("dynamically linked"),
        "{f}"
    );
    ok(t.program(&gcc, ["-static", "z.c", "-o", "z", "-lz"])
        .env("PATH", &path));
    let ran = run_s390x(&t, "z");
    assert!(ran.contains("round trip ok"), "{ran}");

    // pkg-config gives nothing of the host's or the image's system folders.
    assert_eq!(pkg_config_zlib(&t, &path, TARGET).trim(), "-lz");

    // One more package: another derived image, and the old one is kept.
    t.write(
        "work/qemu-cross-cc.toml",
        "[target.s390x-linux-gnu]\npackages = [\"zlib1g-dev\", \"libbz2-dev\"]\n",
    );
    t.write("work/b.c", BZIP2_C);
    ok(t.program(&gcc, ["-static", "b.c", "-o", "b", "-lbz2"])
        .env("PATH", &path));
    assert!(run_s390x(&t, "b").starts_with("bzip2 1."));
    let both = derived_images(&t, &base, "libbz2-dev:s390x,zlib1g-dev:s390x");
    assert_eq!(both.len(), 1, "{both:?}");
    assert_ne!(&both[0], zlib_image);
    assert!(t.image_exists(zlib_image));
    assert_eq!(builds_by(&t, &both[0]), 1);
    // The first image still serves the first package set.
    t.write(
        "work/qemu-cross-cc.toml",
        "[build]\npackages = [\"zlib1g-dev\"]\n",
    );
    ok(t.program(&gcc, ["-c", "z.c", "-o", "z5.o"])
        .env("PATH", &path));
    assert_eq!(builds_by(&t, zlib_image), 1);
}

/// A user plugin that states only what differs: it extends the built-in
/// s390x target with packages.
fn extends_adds_packages(eng: Eng) {
    let t = T::new(eng, "lib-extends", false);
    let m = t.builtin_plugin(TARGET);
    let base = m["image"].as_str().unwrap().to_string();
    let target = "s390x-zlib-linux-gnu";
    t.write(
        &format!("plugins/{target}.json"),
        serde_json::json!({
            "target": target,
            "extends": TARGET,
            "description": "IBM Z with zlib and lz4",
            "packages": ["zlib1g-dev", "liblz4-dev"],
        })
        .to_string(),
    );
    let o = ok(t.qcc(["targets", "--json", "--offline"]));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let entry = list
        .iter()
        .find(|p| p["target"] == target)
        .unwrap_or_else(|| panic!("{target} is not listed: {}", stdout(&o)));
    let image = entry["image"].as_str().unwrap().to_string();
    t.record_image(&image);
    assert!(image.starts_with(&format!("{base}-lib-")), "{image}");

    let path = t.shims(&[target]);
    t.write("work/z.c", ZLIB_C);
    let o = ok(t
        .program(
            format!("{target}-gcc"),
            ["-static", "z.c", "-o", "z", "-lz", "-llz4"],
        )
        .env("PATH", &path));
    assert_eq!(stderr(&o), "");
    assert!(run_s390x(&t, "z").contains("round trip ok"));
    assert_eq!(pkg_config_zlib(&t, &path, target).trim(), "-lz");
    assert_eq!(
        t.label(&image, "com.qemu-cross-cc.packages"),
        "liblz4-dev:s390x,zlib1g-dev:s390x"
    );
}

/// riscv64 (like alpha, hppa, m68k, powerpc, ppc64, sh4, sparc64) is a
/// ports architecture, not in bookworm's main archive: packages for it are
/// one error, from a project file or a manifest, before any engine call.
fn packages_on_a_ports_target_is_one_error(eng: Eng) {
    let t = T::new(eng, "lib-ports", false);
    let target = "riscv64-linux-gnu";
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let file = t.write(
        "work/qemu-cross-cc.toml",
        "[build]\npackages = [\"zlib1g-dev\"]\n",
    );
    let o = fails(
        t.program(format!("{target}-gcc"), ["--version"])
            .env("PATH", &path),
    );
    assert_eq!(o.status.code(), Some(1));
    let line = one_error_line(&o);
    for part in [
        file.display().to_string().as_str(),
        "[build] `packages`",
        "target riscv64-linux-gnu",
        "riscv64",
        "arm64, armel, armhf, i386, mips64el, mipsel, ppc64el, s390x",
    ] {
        assert!(line.contains(part), "{part:?} missing: {line}");
    }

    std::fs::remove_file(&file).unwrap();
    let manifest = t.write(
        "plugins/rv-zlib-linux-gnu.json",
        serde_json::json!({"target": "rv-zlib-linux-gnu", "extends": target,
            "packages": ["zlib1g-dev"]})
        .to_string(),
    );
    let o = fails(t.qcc(["targets", "--offline"]));
    let line = one_error_line(&o);
    assert!(
        line.contains(&manifest.display().to_string())
            && line.contains("field `packages`")
            && line.contains("riscv64"),
        "{line}"
    );
}

/// An unknown key (or a bad value) in `qemu-cross-cc.toml`, found from a
/// subfolder, is one error line naming the file; nothing runs.
fn bad_project_file_is_one_error_line(eng: Eng) {
    let t = T::new(eng, "lib-badtoml", false);
    t.builtin_plugin(TARGET);
    let path = t.shims(&[TARGET]);
    let file = t.write(
        "work/qemu-cross-cc.toml",
        "[build]\npaths = []\ncolour = \"red\"\n",
    );
    t.write("work/sub/keep", "");
    let gcc = format!("{TARGET}-gcc");
    let o = fails(
        t.program(&gcc, ["--version"])
            .env("PATH", &path)
            .current_dir(t.work().join("sub")),
    );
    assert_eq!(o.status.code(), Some(1));
    let line = one_error_line(&o);
    assert!(
        line.contains(&format!("bad project file {}", file.display()))
            && line.contains("line 3")
            && line.contains("`colour`"),
        "{line}"
    );
    t.write(
        "work/qemu-cross-cc.toml",
        "[target.s390x-linux-gnu]\npackages = [\"zlib1g-dev:s390x\"]\n",
    );
    let o = fails(t.program(&gcc, ["--version"]).env("PATH", &path));
    let line = one_error_line(&o);
    assert!(
        line.contains(&file.display().to_string())
            && line.contains("[target.s390x-linux-gnu] `packages`"),
        "{line}"
    );
}
