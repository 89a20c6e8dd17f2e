//! Real projects through the shims, on a target the host has no toolchain
//! for (s390x, big-endian) and on aarch64 with the host's own cross
//! toolchain hidden: libtool shared libraries, no-op rebuilds (depfiles),
//! gcc's path queries, the exported sysroot and the toolchain files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "projects::libtool_shared_library_s390x",
        libtool_shared_library_s390x,
        Mode::Shared,
    ),
    (
        "projects::libtool_aarch64_host_toolchain_hidden",
        libtool_aarch64_host_toolchain_hidden,
        Mode::Shared,
    ),
    (
        "projects::path_queries_answer_host_paths",
        path_queries_answer_host_paths,
        Mode::Shared,
    ),
    ("projects::toolchain_files", toolchain_files, Mode::Shared),
    ("projects::cmake_s390x", cmake_s390x, Mode::Shared),
    (
        "projects::cmake_aarch64_host_toolchain_hidden",
        cmake_aarch64_host_toolchain_hidden,
        Mode::Shared,
    ),
    ("projects::meson_s390x", meson_s390x, Mode::Shared),
    (
        "projects::meson_aarch64_host_toolchain_hidden",
        meson_aarch64_host_toolchain_hidden,
        Mode::Shared,
    ),
    ("projects::one_libc_s390x", one_libc_s390x, Mode::Shared),
    (
        "projects::one_libc_aarch64_host_toolchain_hidden",
        one_libc_aarch64_host_toolchain_hidden,
        Mode::Shared,
    ),
    (
        "projects::ccache_hits_and_a_rebuilt_image_misses",
        ccache_hits_and_a_rebuilt_image_misses,
        Mode::Shared,
    ),
    (
        "projects::ccache_mode_hits_directly_s390x",
        ccache_mode_hits_directly_s390x,
        Mode::Shared,
    ),
];

/// The ccache folders of `target` in the cache folder `cache` (ccache
/// mode). The ccache-mode calls of a test use a cache folder of its own:
/// the run's shared one would mix the counters of tests run at once.
fn ccache_folders(cache: &Path, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache.join("ccache")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{target}-")))
        })
        .collect();
    v.sort();
    v
}

/// One counter of `ccache --print-stats` for the cache `dir`.
fn ccache_count(dir: &Path, key: &str) -> u64 {
    let o = ok(Command::new("ccache")
        .arg("--print-stats")
        .env("CCACHE_DIR", dir));
    stdout(&o)
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == key).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// A fixture copied to `t.dir/src`, with an empty `t.dir/build`. The CMake
/// and Meson fixtures are build files only, over the one project they
/// build (`squeeze`: sources, header, project file).
pub fn fixture(t: &T, name: &str) -> (PathBuf, PathBuf) {
    let src = t.dir.join("src");
    let fixtures = run().repo.join("tests/fixtures");
    if matches!(name, "cmake" | "meson") {
        copy_tree(&fixtures.join("squeeze"), &src);
    }
    copy_tree(&fixtures.join(name), &src);
    let build = t.dir.join("build");
    std::fs::create_dir_all(&build).unwrap();
    (src, build)
}

/// `sh -c SCRIPT` in `dir` with the shims first on PATH; with `hide`, in a
/// private mount namespace where the host's own cross toolchain of that
/// target (`/usr/<target>` and its gcc) is covered by empty folders.
fn sh(t: &T, dir: &Path, path: &str, hide: Option<&str>, script: &str) -> std::process::Output {
    let mut c = match hide {
        None => t.program("sh", ["-c", script]),
        Some(target) => {
            let mut covers = String::new();
            for d in [
                format!("/usr/{target}"),
                format!("/usr/lib/gcc-cross/{target}"),
            ] {
                if Path::new(&d).is_dir() {
                    covers.push_str(&format!("mount -t tmpfs tmpfs {d} && "));
                }
            }
            t.program(
                "unshare",
                [
                    "-m",
                    "sh",
                    "-c",
                    &format!("{covers}test ! -e /usr/{target}/include/stdio.h && {script}"),
                ],
            )
        }
    };
    c.current_dir(dir).env("PATH", path);
    out(c)
}

fn must(o: std::process::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o) + &stderr(&o)
}

/// The shell words that source the target's env script
/// (`toolchain TARGET --env`) where they run.
fn env_script(target: &str) -> String {
    format!(
        "eval \"$({} toolchain {target} --env)\"",
        run().bin.display()
    )
}

/// The libtool fixture: configure finds GNU ld through
/// `-print-prog-name=ld`, builds the shared library, and a second `make`
/// does nothing (the depfiles name only host files).
fn libtool_project(t: &T, target: &str, hide: bool, machine: &str) {
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let (src, build) = fixture(t, "libtool");
    let hide = hide.then_some(target);
    must(
        sh(t, &src, &path, None, "autoreconf -fi >/dev/null 2>&1"),
        "autoreconf",
    );
    let conf = must(
        sh(
            t,
            &build,
            &path,
            hide,
            &format!("../src/configure --host={target}"),
        ),
        "configure",
    );
    assert!(
        conf.contains("is GNU ld... yes"),
        "libtool did not find GNU ld:\n{conf}"
    );
    assert!(
        conf.contains("whether to build shared libraries... yes"),
        "{conf}"
    );
    must(sh(t, &build, &path, hide, "make -j4"), "make");
    let lib = build.join(".libs/libgreet.so.1.0.0");
    let o = ok(Command::new("file").arg(&lib));
    assert!(
        stdout(&o).contains("shared object") && stdout(&o).contains(machine),
        "{}",
        stdout(&o)
    );
    for dep in ["src/.deps/greet.Plo", "src/.deps/main.Po"] {
        let text = std::fs::read_to_string(build.join(dep)).unwrap();
        assert!(!text.contains("/usr/"), "{dep} names image files:\n{text}");
        assert!(
            text.contains("greet.h"),
            "{dep} lost the project header:\n{text}"
        );
    }
    // Its tests run through the runner: the program (a libtool wrapper
    // script) and the script starting it (in the image).
    let check = must(
        sh(
            t,
            &build,
            &path,
            hide,
            &format!("make check LOG_COMPILER={target}-run SH_LOG_COMPILER={target}-run"),
        ),
        "make check",
    );
    assert!(check.contains("# PASS:  2"), "{check}");
    // Plain `make check` (no LOG_COMPILER) after sourcing the env script:
    // the test and the script's program run through the host's binfmt_misc
    // handler, qemu-user told where the target's libraries are.
    let plain = must(
        sh(
            t,
            &build,
            &path,
            hide,
            &format!("{} && make check", env_script(target)),
        ),
        "plain make check",
    );
    assert!(
        plain.contains("PASS: greet.sh") && plain.contains("# PASS:  2"),
        "{plain}"
    );
    let host = must(
        sh(
            t,
            &build,
            &path,
            hide,
            &format!("{} exec --host {target} -- make check", run().bin.display()),
        ),
        "exec --host make check",
    );
    assert!(host.contains("# PASS:  2"), "{host}");
    // A no-op rebuild compiles nothing.
    let again = must(sh(t, &build, &path, hide, "make"), "make again");
    assert!(
        !again.contains(&format!("{target}-gcc")),
        "a no-op make compiled again:\n{again}"
    );
    // A changed project header still rebuilds what includes it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let h = src.join("src/greet.h");
    let body = std::fs::read_to_string(&h).unwrap();
    std::fs::write(&h, body + "\n").unwrap();
    let rebuilt = must(sh(t, &build, &path, hide, "make"), "make after a change");
    assert!(rebuilt.contains("greet.c"), "{rebuilt}");
}

fn libtool_shared_library_s390x(eng: Eng) {
    let t = T::new(eng, "lt-s390x", false);
    libtool_project(&t, "s390x-linux-gnu", false, "S/390");
}

fn libtool_aarch64_host_toolchain_hidden(eng: Eng) {
    let t = T::new(eng, "lt-a64", false);
    libtool_project(&t, "aarch64-linux-gnu", true, "ARM aarch64");
}

/// `-print-prog-name=ld` is the host link; the answers that are image paths
/// point into the exported sysroot, which exists on the host.
fn path_queries_answer_host_paths(eng: Eng) {
    let t = T::new(eng, "queries", false);
    let target = "s390x-linux-gnu";
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let gcc = format!("{target}-gcc");
    let ask = |q: &str| -> String {
        let o = ok(t.program(&gcc, [q]).env("PATH", &path));
        assert_eq!(stderr(&o), "", "{q}");
        stdout(&o).trim().to_string()
    };
    assert_eq!(
        ask("-print-prog-name=ld"),
        t.dir.join(format!("bin/{target}-ld")).display().to_string()
    );
    let libgcc = ask("-print-libgcc-file-name");
    assert!(
        libgcc.ends_with("libgcc.a") && Path::new(&libgcc).is_file(),
        "{libgcc}"
    );
    let libc = ask("-print-file-name=libc.so");
    assert!(Path::new(&libc).exists(), "{libc}");
    let sysroot = ask("-print-sysroot");
    assert!(Path::new(&sysroot).is_dir(), "{sysroot}");
    let dirs = ask("-print-search-dirs");
    let libraries = dirs
        .lines()
        .find_map(|l| l.strip_prefix("libraries: ="))
        .unwrap();
    assert!(
        libraries.split(':').any(|d| Path::new(d).is_dir()),
        "{libraries}"
    );
    // `sysroot` prints the same export.
    let o = ok(t.qcc(["sysroot", target]));
    let export = PathBuf::from(stdout(&o).trim());
    assert!(libgcc.starts_with(&*export.to_string_lossy()));
    assert!(
        export
            .join(format!("usr/{target}/include/stdio.h"))
            .is_file()
    );
}

/// `toolchain --cmake/--meson/--env` and `shims --toolchain-files`.
fn toolchain_files(eng: Eng) {
    let t = T::new(eng, "toolchain", false);
    let target = "s390x-linux-gnu";
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let bin = t.dir.join("bin");
    let cmake_file = t.dir.join("s390x.cmake");
    ok(t.qcc(["toolchain", target, "--cmake", "-o"])
        .arg(&cmake_file)
        .env("PATH", &path));
    let cmake = std::fs::read_to_string(&cmake_file).unwrap();
    assert!(cmake.contains(&format!(
        "set(CMAKE_C_COMPILER \"{}/{target}-gcc\")",
        bin.display()
    )));
    assert!(cmake.contains("CMAKE_CROSSCOMPILING_EMULATOR"));
    assert!(cmake.contains("CMAKE_FIND_ROOT_PATH"));
    let o = ok(t.qcc(["toolchain", target, "--meson"]).env("PATH", &path));
    assert!(stdout(&o).contains("endian = 'big'"), "{}", stdout(&o));
    assert!(stdout(&o).contains("exe_wrapper"), "{}", stdout(&o));
    let o = ok(t.qcc(["toolchain", target, "--env"]).env("PATH", &path));
    let env = stdout(&o);
    let o =
        ok(Command::new("sh").args(["-c", &format!("{env}\nprintf '%s|%s' \"$CC\" \"$HOST\"")]));
    assert_eq!(
        stdout(&o),
        format!("{}/{target}-gcc|{target}", bin.display())
    );
    // Beside the links.
    ok(t.qcc(["shims", "--quiet", "--toolchain-files", "--dir"])
        .arg(&bin)
        .arg(target));
    for ext in ["cmake", "meson", "env"] {
        assert!(bin.join(format!("{target}.{ext}")).is_file(), "{ext}");
    }
    // Without links there is nothing to name: one clear line.
    let o = fails(t.qcc(["toolchain", target, "--cmake", "--links", "/nonexistent"]));
    let line = one_error_line(&o);
    assert!(line.contains("shims --dir"), "{line}");
}

/// `toolchain TARGET --KIND -o FILE` run in the project `src` (its
/// qemu-cross-cc.toml asks for zlib1g-dev, so this builds the derived
/// image); returns the file.
fn toolchain_file(t: &T, target: &str, path: &str, src: &Path, kind: &str) -> PathBuf {
    let file = t.dir.join(format!("toolchain.{kind}"));
    must(
        sh(
            t,
            src,
            path,
            None,
            &format!(
                "{} toolchain {target} --{kind} -o {}",
                run().bin.display(),
                file.display()
            ),
        ),
        &format!("toolchain --{kind}"),
    );
    record_derived(t, target);
    file
}

/// The images derived from this run's image of `target` (target packages),
/// recorded for removal at the end of the run.
fn record_derived(t: &T, target: &str) {
    let base = format!("qcc-test-{}-{target}-lib-", run().id);
    let o = ok(t.engine(["images", "--format", "{{.Repository}}"]));
    for tag in stdout(&o)
        .lines()
        .map(|l| l.trim().trim_start_matches("localhost/"))
        .filter(|r| r.starts_with(&base))
    {
        t.record_image(tag);
    }
}

/// The CMake fixture (find_package(ZLIB), pkg_check_modules, try_run,
/// ctest) with the toolchain file `toolchain --cmake` writes, in a build
/// folder beside the sources: configure, build, a no-op rebuild that does
/// nothing, and the tests run through the runner.
fn cmake_project(t: &T, target: &str, hide: bool, order: &str) {
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let (src, build) = fixture(t, "cmake");
    let file = toolchain_file(t, target, &path, &src, "cmake");
    let hide = hide.then_some(target);
    let conf = must(
        sh(
            t,
            &build,
            &path,
            hide,
            &format!(
                "cmake -G Ninja -DCMAKE_TOOLCHAIN_FILE={} {}",
                file.display(),
                src.display()
            ),
        ),
        "cmake",
    );
    assert!(conf.contains("Found ZLIB"), "{conf}");
    assert!(
        conf.contains(&format!("target byte order: {order}")),
        "{conf}"
    );
    must(sh(t, &build, &path, hide, "ninja"), "ninja");
    let again = must(
        sh(t, &build, &path, hide, "ninja -d explain"),
        "ninja again",
    );
    assert!(
        again.contains("no work to do"),
        "a no-op ninja rebuilt:\n{again}"
    );
    let tests = must(
        sh(t, &build, &path, hide, "ctest --output-on-failure"),
        "ctest",
    );
    // Plain ctest; its script test starts the programs itself.
    assert!(
        tests.contains("100% tests passed, 0 tests failed out of 3"),
        "{tests}"
    );
    let o = ok(t
        .program(format!("{target}-run"), ["./squeeze-cli"])
        .current_dir(&build)
        .env("PATH", &path)
        .env("QEMU_CROSS_CC_PROJECT", src.join("qemu-cross-cc.toml")));
    assert!(
        stdout(&o).contains(&format!("{order}-endian")) && stdout(&o).contains("round trip ok"),
        "{}",
        stdout(&o)
    );
}

fn cmake_s390x(eng: Eng) {
    let t = T::new(eng, "cmake-s390x", false);
    cmake_project(&t, "s390x-linux-gnu", false, "big");
}

fn cmake_aarch64_host_toolchain_hidden(eng: Eng) {
    let t = T::new(eng, "cmake-a64", false);
    cmake_project(&t, "aarch64-linux-gnu", true, "little");
}

/// The Meson fixture (dependency('zlib'), cc.run, test()) with the cross
/// file `toolchain --meson` writes: setup, build, a no-op rebuild, tests.
fn meson_project(t: &T, target: &str, hide: bool) {
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let (src, _) = fixture(t, "meson");
    let file = toolchain_file(t, target, &path, &src, "meson");
    let hide = hide.then_some(target);
    let setup = must(
        sh(
            t,
            &src,
            &path,
            hide,
            &format!("meson setup --cross-file {} builddir", file.display()),
        ),
        "meson setup",
    );
    assert!(
        setup.contains("Run-time dependency zlib found: YES"),
        "{setup}"
    );
    assert!(setup.contains("long is 64 bits"), "{setup}");
    let builddir = src.join("builddir");
    must(sh(t, &builddir, &path, hide, "ninja"), "ninja");
    let again = must(sh(t, &builddir, &path, hide, "ninja"), "ninja again");
    assert!(
        again.contains("no work to do"),
        "a no-op ninja rebuilt:\n{again}"
    );
    // The script test starts the program itself: with the env script's
    // environment, as a user's shell has it.
    let tests = must(
        sh(
            t,
            &builddir,
            &path,
            hide,
            &format!("{} && meson test", env_script(target)),
        ),
        "meson test",
    );
    assert!(tests.contains("Ok:                 2"), "{tests}");
}

fn meson_s390x(eng: Eng) {
    let t = T::new(eng, "meson-s390x", false);
    meson_project(&t, "s390x-linux-gnu", false);
}

fn meson_aarch64_host_toolchain_hidden(eng: Eng) {
    let t = T::new(eng, "meson-a64", false);
    meson_project(&t, "aarch64-linux-gnu", true);
}

/// The interpreter and the `libc.so.6` that `LD_TRACE_LOADED_OBJECTS=1`
/// output names (`libc.so.6 => /lib/T/libc.so.6 (0x...)`, `/lib/ld.so (0x...)`).
fn traced(trace: &str) -> (String, String) {
    let libc = trace
        .lines()
        .find_map(|l| l.trim().strip_prefix("libc.so.6 => "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no libc in:\n{trace}"));
    let interp = trace
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('/'))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no interpreter in:\n{trace}"));
    (libc.to_string(), interp.to_string())
}

/// A program linked against a target package (zlib, so the image is the
/// derived one with Debian's libc6 for the target) runs under every route:
/// the runner, `exec` in the image (binfmt_misc there), and on the host
/// (binfmt_misc, `exec --host` and the env script). The dynamic linker and
/// libc it loads are one: in the image the cross compiler's copy is the
/// multiarch file, and on the host both resolve into the export.
fn one_libc(t: &T, target: &str, hide: bool) {
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let (src, _) = fixture(t, "cmake");
    let hide = hide.then_some(target);
    let bin = run().bin.display().to_string();
    must(
        sh(
            t,
            &src,
            &path,
            hide,
            &format!(
                "{target}-gcc -Iinclude -DBYTE_ORDER_NAME='\"any\"' -o prog src/main.c \
                 src/squeeze.c -lz"
            ),
        ),
        "build",
    );
    record_derived(t, target);
    for (route, script) in [
        ("runner", format!("{target}-run ./prog")),
        ("exec", format!("{bin} exec {target} -- ./prog")),
        // A program's own LD_LIBRARY_PATH (a test's environment) does not
        // change which libc it loads. [old: stack smashing detected]
        (
            "exec, own LD_LIBRARY_PATH",
            format!("{bin} exec {target} -- env LD_LIBRARY_PATH=/nonexistent ./prog"),
        ),
        (
            "exec --host",
            format!("{bin} exec --host {target} -- ./prog"),
        ),
        ("env script", format!("{} && ./prog", env_script(target))),
    ] {
        let o = must(sh(t, &src, &path, hide, &script), route);
        assert!(o.contains("round trip ok"), "{route}: {o}");
    }
    // In the image: the libc and dynamic linker the program loads are the
    // files the cross compiler links against.
    let trace = must(
        sh(
            t,
            &src,
            &path,
            hide,
            &format!("{bin} exec {target} -- sh -c 'LD_TRACE_LOADED_OBJECTS=1 ./prog'"),
        ),
        "trace in the image",
    );
    let (libc, interp) = traced(&trace);
    let sysroot = format!("/usr/{target}");
    let name = Path::new(&interp)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let real = must(
        sh(
            t,
            &src,
            &path,
            hide,
            &format!(
                "{bin} exec {target} -- readlink -f {libc} {sysroot}/lib/libc.so.6 {interp} \
                 {sysroot}/lib/{name}"
            ),
        ),
        "readlink in the image",
    );
    let real: Vec<&str> = real.lines().collect();
    assert_eq!(real.len(), 4, "{real:?}");
    assert_eq!(real[0], real[1], "two libcs in the image: {real:?}");
    assert_eq!(
        real[2], real[3],
        "two dynamic linkers in the image: {real:?}"
    );
    // On the host: what qemu-user loads from the export.
    let export = PathBuf::from(
        must(
            sh(t, &src, &path, None, &format!("{bin} sysroot {target}")),
            "sysroot",
        )
        .trim()
        .to_string(),
    );
    let trace = must(
        sh(
            t,
            &src,
            &path,
            hide,
            &format!("{bin} exec --host {target} -- env LD_TRACE_LOADED_OBJECTS=1 ./prog"),
        ),
        "trace on the host",
    );
    let (libc, interp) = traced(&trace);
    let at = |p: &str| std::fs::canonicalize(export.join(p.trim_start_matches('/'))).unwrap();
    assert_eq!(
        at(&libc),
        at(&format!("{sysroot}/lib/libc.so.6")),
        "{trace}"
    );
    assert_eq!(at(&interp), at(&format!("{sysroot}/lib/{name}")), "{trace}");
    let multiarch = export.join("usr/lib").join(target);
    assert!(
        at(&libc).starts_with(std::fs::canonicalize(&multiarch).unwrap()),
        "{trace}"
    );
}

fn one_libc_s390x(eng: Eng) {
    let t = T::new(eng, "libc-s390x", false);
    one_libc(&t, "s390x-linux-gnu", false);
}

fn one_libc_aarch64_host_toolchain_hidden(eng: Eng) {
    let t = T::new(eng, "libc-a64", false);
    one_libc(&t, "aarch64-linux-gnu", true);
}

/// `CC="ccache TARGET-gcc"`: a second build in a fresh folder is served
/// from the cache; after the image changes (a header of the image differs)
/// the same build is compiled again, never served stale.
fn ccache_hits_and_a_rebuilt_image_misses(eng: Eng) {
    let t = T::new(eng, "ccache", false);
    let target = "qcctest-linux-gnu";
    let image = t.tag("ccache");
    let plugin = |value: &str| {
        let df = format!(
            "FROM {}\nRUN echo '#define QCC_IMAGE_VALUE {value}' > /usr/include/qcc-image.h\n",
            t.gcc_image()
        );
        t.plugin(target, &image, &df, &[("cc", "gcc"), ("gcc", "gcc")]);
    };
    plugin("1");
    let path = t.shims(&[target]);
    t.write(
        "src/v.c",
        "#include <qcc-image.h>\nint image_value(void) { return QCC_IMAGE_VALUE; }\n",
    );
    let cache = t.dir.join("ccache");
    let build = |name: &str| -> String {
        let dir = t.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let o = ok(t
            .program(
                "ccache",
                [&format!("{target}-gcc"), "-c", "../src/v.c", "-o", "v.o"],
            )
            .current_dir(&dir)
            .env("PATH", &path)
            .env("CCACHE_DIR", &cache)
            .env("CCACHE_COMPILERCHECK", "%compiler% -v"));
        assert_eq!(stderr(&o), "");
        let o = ok(Command::new("ccache")
            .args(["--print-stats"])
            .env("CCACHE_DIR", &cache));
        stdout(&o)
    };
    let hits = |stats: &str| -> u64 {
        stats
            .lines()
            .filter(|l| {
                l.starts_with("direct_cache_hit") || l.starts_with("preprocessed_cache_hit")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    let first = build("b1");
    assert_eq!(hits(&first), 0, "{first}");
    let second = build("b2");
    assert_eq!(hits(&second), 1, "a fresh folder was not served:\n{second}");
    let o1 = std::fs::read(t.dir.join("b1/v.o")).unwrap();
    // The image changes: its header now says 2. The next build compiles.
    plugin("2");
    let third = build("b3");
    assert_eq!(hits(&third), 1, "served from the old image:\n{third}");
    let o3 = std::fs::read(t.dir.join("b3/v.o")).unwrap();
    assert_ne!(o1, o3, "the object of the old image came back");

    // ccache mode: the cache is per image checksum. The same tree hits in
    // the image it was cached in; a changed image starts a cache of its own
    // and compiles, never serving the old image's object.
    let own_cache = t.dir.join("cache");
    let in_image = |name: &str| -> Vec<u8> {
        let dir = t.dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let o = ok(t
            .program(format!("{target}-gcc"), ["-c", "../src/v.c", "-o", "v.o"])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_CACHE_DIR", &own_cache)
            .env("QEMU_CROSS_CC_CCACHE", "1"));
        assert_eq!(stderr(&o), "");
        std::fs::read(dir.join("v.o")).unwrap()
    };
    assert_eq!(in_image("m"), o3);
    assert_eq!(in_image("m"), o3);
    let first = ccache_folders(&own_cache, target);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(ccache_count(&first[0], "direct_cache_hit"), 1);
    plugin("3");
    let o4 = in_image("m");
    assert!(
        o4 != o3 && o4 != o1,
        "an object of an older image came back"
    );
    let both = ccache_folders(&own_cache, target);
    assert_eq!(both.len(), 2, "{both:?}");
    let new = both.iter().find(|f| **f != first[0]).unwrap();
    assert_eq!(ccache_count(new, "cache_miss"), 1);
    assert_eq!(ccache_count(new, "direct_cache_hit"), 0);
    assert_eq!(ccache_count(&first[0], "direct_cache_hit"), 1);
}

/// ccache mode, turned on by the project file (`ccache = true`): compiles
/// run through the image's ccache with the cache in the caller's cache
/// folder. A second build of the same tree (fresh build folder, same path)
/// is served by direct hits although the headers it includes are the
/// image's, which the host lacks; its objects and depfiles are those of a
/// build without ccache. `QEMU_CROSS_CC_CCACHE=0` turns the mode off.
fn ccache_mode_hits_directly_s390x(eng: Eng) {
    let t = T::new(eng, "ccache-mode", false);
    let target = "s390x-linux-gnu";
    t.builtin_plugin(target);
    let path = t.shims(&[target]);
    let names = ["a", "b", "c"];
    t.write("src/common.h", "#define COMMON 42\n");
    for (i, name) in names.iter().enumerate() {
        t.write(
            &format!("src/{name}.c"),
            format!(
                "#include <stdio.h>\n#include <stdlib.h>\n#include \"common.h\"\n\
                 int {name}(void) {{ printf(\"%d\\n\", COMMON + {i}); return abs(-{i}); }}\n"
            ),
        );
    }
    // The first build ensures the image under the run's shared cache (its
    // build lock); the later ones use the test's own cache folder.
    let own_cache = t.dir.join("cache");
    let build = |ccache: Option<&str>, cache: Option<&Path>| -> Vec<(String, Vec<u8>)> {
        let dir = t.dir.join("build");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        for name in names {
            let src = format!("../src/{name}.c");
            let obj = format!("{name}.o");
            let mut c = t.program(
                format!("{target}-gcc"),
                ["-O2", "-MD", "-c", &src, "-o", &obj],
            );
            c.current_dir(&dir).env("PATH", &path);
            if let Some(v) = ccache {
                c.env("QEMU_CROSS_CC_CCACHE", v);
            }
            if let Some(d) = cache {
                c.env("QEMU_CROSS_CC_CACHE_DIR", d);
            }
            let o = ok(c);
            assert_eq!(stderr(&o), "", "the compile printed something");
            for f in [obj, format!("{name}.d")] {
                files.push((f.clone(), std::fs::read(dir.join(&f)).unwrap()));
            }
        }
        files
    };
    let reference = build(None, None);
    let depfile = String::from_utf8_lossy(&reference[1].1).to_string();
    assert!(
        depfile.contains("common.h") && !depfile.contains("/usr/s390x-linux-gnu"),
        "{depfile}"
    );

    t.write("qemu-cross-cc.toml", "[build]\nccache = true\n");
    // The variable comes before the project file.
    let off = build(Some("0"), Some(&own_cache));
    assert!(
        ccache_folders(&own_cache, target).is_empty(),
        "ccache ran while off"
    );
    assert_eq!(off, reference);
    let cold = build(None, Some(&own_cache));
    let folders = ccache_folders(&own_cache, target);
    assert_eq!(folders.len(), 1, "{folders:?}");
    let folder = &folders[0];
    assert_eq!(ccache_count(folder, "cache_miss"), 3);
    assert_eq!(ccache_count(folder, "direct_cache_hit"), 0);
    assert_eq!(cold, reference, "a compile through ccache differs");

    let warm = build(None, Some(&own_cache));
    assert_eq!(
        ccache_count(folder, "direct_cache_hit"),
        3,
        "the warm build missed"
    );
    assert_eq!(ccache_count(folder, "cache_miss"), 3);
    assert_eq!(warm, reference, "an object served by ccache differs");

    let o = fails({
        let mut c = t.program(format!("{target}-gcc"), ["-c", "../src/a.c"]);
        c.current_dir(t.dir.join("build"))
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_CCACHE", "maybe");
        c
    });
    let e = stderr(&o);
    assert!(
        e.contains("QEMU_CROSS_CC_CCACHE") && e.lines().count() == 1,
        "{e}"
    );
}
