//! Hostile and unlucky conditions: a runtime folder planted by another
//! user, symlinks towards host system folders, outputs the container cannot
//! give back, an engine that fails once, a full cache, a broken dockerfile
//! with many waiting callers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "hardening::planted_runtime_dir_is_refused",
        planted_runtime_dir_is_refused,
        Mode::Shared,
    ),
    (
        "hardening::symlinks_do_not_reach_host_system_folders",
        symlinks_do_not_reach_host_system_folders,
        Mode::Shared,
    ),
    (
        "hardening::symlinked_project_folder_works",
        symlinked_project_folder_works,
        Mode::Shared,
    ),
    (
        "hardening::output_into_system_folder_is_an_error",
        output_into_system_folder_is_an_error,
        Mode::Shared,
    ),
    (
        "hardening::environment_values_stay_off_the_command_line",
        environment_values_stay_off_the_command_line,
        Mode::Shared,
    ),
    (
        "hardening::auto_engine_survives_a_failed_probe",
        auto_engine_survives_a_failed_probe,
        Mode::Shared,
    ),
    (
        "hardening::full_cache_error_names_the_path",
        full_cache_error_names_the_path,
        Mode::Shared,
    ),
    (
        "hardening::waiters_share_a_failed_build",
        waiters_share_a_failed_build,
        Mode::Shared,
    ),
    (
        "hardening::planted_ccache_folder_is_refused",
        planted_ccache_folder_is_refused,
        Mode::Shared,
    ),
];

const CHEAP: &str = "qcctest-linux-gnu";

/// Run a shell command as the test user.
fn as_tester(script: &str) {
    ok(Command::new("runuser").args(["-u", TESTER, "--", "sh", "-c", script]));
}

/// Root's compile finds `$TMPDIR/qemu-cross-cc-0` made by another user
/// (with an engine.json naming a command, as state files once could): it
/// refuses the folder with one line and runs nothing from it.
fn planted_runtime_dir_is_refused(eng: Eng) {
    let t = T::new(eng, "planted", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let tmp = t.dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let evil = t.dir.join("evil-ran");
    let planted = tmp.join("qemu-cross-cc-0");
    let script = planted.join("evil.sh");
    // The entry an older qemu-cross-cc would have used for this very call
    // (keyed by the caller's PATH), naming a command.
    let planted_facts = serde_json::json!({
        "detected": { format!("Auto|{path}"): [[script.display().to_string()], 99_999_999_999u64] },
        "rootless": {},
    });
    let facts_file = t.dir.join("facts.json");
    std::fs::write(&facts_file, planted_facts.to_string()).unwrap();
    std::fs::set_permissions(&facts_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    as_tester(&format!(
        "mkdir -m 777 {p} && printf '#!/bin/sh\\ntouch {e}\\n' > {s} && chmod 755 {s} && \
         cp {f} {p}/engine.json",
        p = planted.display(),
        e = evil.display(),
        s = script.display(),
        f = facts_file.display(),
    ));
    t.write("work/a.c", "int a;\n");
    let o = out(t
        .program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path)
        .env("TMPDIR", &tmp)
        .env("QEMU_CROSS_CC_ENGINE", "auto")
        .env_remove("QEMU_CROSS_CC_RUNTIME_DIR")
        .env_remove("XDG_RUNTIME_DIR"));
    assert!(!evil.exists(), "the planted command ran as root");
    assert!(!o.status.success(), "the planted folder was used");
    let line = one_error_line(&o);
    assert!(
        line.contains(&planted.display().to_string()) && line.contains("not by you"),
        "{line}"
    );
    assert!(
        line.contains("QEMU_CROSS_CC_RUNTIME_DIR"),
        "names the fix: {line}"
    );
    assert!(!evil.exists(), "the planted command ran");
    assert!(!t.work().join("a.o").exists());
}

/// As the unprivileged user: `-I` through a symlink to `/` mounts nothing
/// of the host's, and `-o` through a symlink to `/etc` is an error.
fn symlinks_do_not_reach_host_system_folders(eng: Eng) {
    let t = T::new(eng, "symlink-sys", true);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let root_link = t.dir.join("x");
    let etc_link = t.dir.join("y");
    as_tester(&format!(
        "ln -s / {} && ln -s /etc {}",
        root_link.display(),
        etc_link.display()
    ));
    // A file only the host has (tests/setup-engines.sh writes it; the
    // images have no /etc/containers) is not visible under the symlinked
    // name. (Inside the container the symlink leads to its own root.)
    let probe = format!("{}/etc/containers/containers.conf", root_link.display());
    assert!(Path::new("/etc/containers/containers.conf").exists());
    let o = ok(t
        .program(
            format!("{CHEAP}-sh"),
            [
                "-c",
                "if test -e \"$1\"; then echo LEAK; else echo sealed; fi",
                "sh",
                &probe,
            ],
        )
        .env("PATH", &path));
    assert_eq!(stdout(&o), "sealed\n");
    t.write("work/a.c", "int a;\n");
    let o = ok(t
        .program(
            format!("{CHEAP}-gcc"),
            [
                "-c".to_string(),
                "a.c".to_string(),
                format!("-I{}/etc", root_link.display()),
            ],
        )
        .env("PATH", &path));
    assert_eq!(stderr(&o), "");
    // Writing into /etc through a symlink is refused, not lost.
    let target = format!("{}/qcc-{}.o", etc_link.display(), t.name);
    let o = fails(
        t.program(format!("{CHEAP}-gcc"), ["-c", "a.c", "-o", &target])
            .env("PATH", &path),
    );
    let line = one_error_line(&o);
    assert!(
        line.contains("/etc") && line.contains("cannot write"),
        "{line}"
    );
    assert!(!Path::new(&format!("/etc/qcc-{}.o", t.name)).exists());
    // No live session holds a mount of the host's root or /etc.
    for s in t.sessions() {
        let root = s["root"].as_str().unwrap_or_else(|| panic!("{s}"));
        assert!(root.starts_with(&*t.dir.to_string_lossy()), "{s}");
    }
}

/// A project reached through a symlink keeps working under the name it was
/// given: sources, includes and outputs.
fn symlinked_project_folder_works(eng: Eng) {
    let t = T::new(eng, "symlink-ok", true);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("real/proj/inc/v.h", "#define V 42\n");
    t.write(
        "real/proj/src/m.c",
        "#include \"../inc/v.h\"\nint v(void) { return V; }\n",
    );
    t.write("real/proj/out/.keep", "");
    let link = t.dir.join("links/p");
    as_tester(&format!(
        "mkdir -p {} && ln -s {} {}",
        link.parent().unwrap().display(),
        t.dir.join("real/proj").display(),
        link.display()
    ));
    let o = ok(t
        .program(
            format!("{CHEAP}-gcc"),
            [
                "-c".to_string(),
                format!("{}/src/m.c", link.display()),
                format!("-I{}/inc", link.display()),
                "-o".to_string(),
                format!("{}/out/m.o", link.display()),
            ],
        )
        .env("PATH", &path));
    assert_eq!(stderr(&o), "");
    assert!(t.dir.join("real/proj/out/m.o").exists());
}

/// `-o`, `-MF` into a system folder: exit 1 and one line naming the path,
/// never a silent success. `/dev/null` keeps working.
fn output_into_system_folder_is_an_error(eng: Eng) {
    let t = T::new(eng, "sysout", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    let name = t.name.clone();
    for args in [
        vec!["-c", "a.c", "-o", &*format!("/etc/{name}.o")],
        vec!["-c", "a.c", "-o", &*format!("/usr/local/lib/{name}.o")],
        vec!["-c", "a.c", "-MD", "-MF", &*format!("/etc/{name}.d")],
    ] {
        let o = fails(t.program(format!("{CHEAP}-gcc"), &args).env("PATH", &path));
        assert_eq!(o.status.code(), Some(1));
        let line = one_error_line(&o);
        assert!(
            line.contains("cannot write") && line.contains(&name),
            "{line}"
        );
    }
    assert!(!Path::new(&format!("/etc/{name}.o")).exists());
    ok(
        t.program(format!("{CHEAP}-gcc"), ["-c", "a.c", "-o", "/dev/null"])
            .env("PATH", &path),
    );
}

/// The values of passed variables do not appear in the engine's command
/// line (which `ps` shows to every user), in one-shot mode and sessions.
fn environment_values_stay_off_the_command_line(eng: Eng) {
    let mut t = T::new(eng, "envps", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let secret = format!("s3cr3t-{}", t.name);
    t.env
        .push(("QEMU_CROSS_CC_PASSENV".into(), "QCC_SECRET".into()));
    t.env.push(("QCC_SECRET".into(), secret.clone()));
    // The image first, so that the calls below start at once.
    ok(t.program(format!("{CHEAP}-sh"), ["-c", "true"])
        .env("PATH", &path));
    for session in ["0", "1"] {
        let mut child = t
            .program(
                format!("{CHEAP}-sh"),
                ["-c", "echo \"$QCC_SECRET\"; sleep 2"],
            )
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_SESSION", session)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Every command line on the machine, sampled until the call ends.
        let mut seen = Vec::new();
        while child.try_wait().unwrap().is_none() {
            let ps = ok(Command::new("ps").args(["-eo", "args"]));
            seen.extend(
                stdout(&ps)
                    .lines()
                    .filter(|l| l.contains(&secret))
                    .map(String::from),
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(stdout(&o), format!("{secret}\n"), "the value still arrives");
        assert!(
            seen.is_empty(),
            "visible in ps (session={session}): {seen:?}"
        );
    }
}

/// With `auto`, a remembered podman whose `version` fails once stays the
/// engine (no rebuild in docker); one that keeps failing is replaced, and
/// the change is shown by `sessions`, `probe` and QEMU_CROSS_CC_DEBUG.
fn auto_engine_survives_a_failed_probe(eng: Eng) {
    if eng != Eng::Podman {
        return; // auto prefers podman: the scenario is podman's
    }
    let mut t = T::new(eng, "auto-stick", false);
    let image = t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let flag = t.dir.join("fail-version");
    let fail = format!(
        "if [ \"$1\" = version ] && [ -e {f} ]; then\n  \
         [ \"$(cat {f})\" = once ] && rm -f {f}\n  echo 'Error: cannot lock' >&2; exit 125\nfi",
        f = flag.display()
    );
    let path = t.wrapped_engine("podman", &fail, &path);
    t.env.push(("QEMU_CROSS_CC_ENGINE".into(), "auto".into()));
    t.env.push(("QEMU_CROSS_CC_ENGINE_TTL".into(), "0".into()));
    t.env.push(("QEMU_CROSS_CC_SESSION".into(), "0".into()));
    t.write("work/a.c", "int a;\n");
    let gcc = || {
        let mut c = t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"]);
        c.env("PATH", &path);
        c
    };
    ok(gcc());
    assert!(t.image_exists(&image), "built in podman");
    std::fs::write(&flag, "once").unwrap();
    let o = ok(gcc());
    assert_eq!(stderr(&o), "");
    assert!(!flag.exists(), "podman version was asked and failed once");
    let docker = T::new(Eng::Docker, "auto-stick", false);
    assert!(
        !docker.image_exists(&image),
        "the build moved to docker after one failed probe"
    );
    // Keeps failing: the build moves, visibly. (Docker gets the base image
    // under podman's name; the run's clean-up removes it by its label.)
    ok(docker.engine(["tag", &docker.gcc_image(), &t.gcc_image()]));
    std::fs::write(&flag, "always").unwrap();
    let o = ok(gcc().env("QEMU_CROSS_CC_DEBUG", "1"));
    assert!(
        stderr(&o).contains("engine changed from podman to docker"),
        "{}",
        stderr(&o)
    );
    let o = ok(t.qcc_plain(["sessions", "list"]).env("PATH", &path));
    assert!(
        stderr(&o).contains("changed from podman to docker"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_file(&flag);
    // The image docker built for it is this test's to remove.
    docker.tag("cheap");
    let _ = out(docker.engine(["rmi", "-f", &image]));
}

/// Mount a tiny tmpfs and fill it; unmounted when dropped.
struct FullTmpfs(std::path::PathBuf);

impl FullTmpfs {
    fn new(dir: &Path, uid: u32, gid: u32) -> FullTmpfs {
        std::fs::create_dir_all(dir).unwrap();
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir));
        chown(dir, uid, gid);
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}/fill", dir.display()))
            .stderr(Stdio::null())
            .status();
        FullTmpfs(dir.to_path_buf())
    }
}

impl Drop for FullTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A build from the compile path into a full cache: one line naming the
/// file and the way out, no panic.
fn full_cache_error_names_the_path(eng: Eng) {
    let t = T::new(eng, "fullcache", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let cache = t.dir.join("fullcache");
    let _full = FullTmpfs::new(&cache, 0, 0);
    // The folders exist, but the log cannot be written.
    std::fs::create_dir_all(cache.join("logs")).unwrap();
    std::fs::create_dir_all(cache.join("locks")).unwrap();
    t.write("work/a.c", "int a;\n");
    let o = fails(
        t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_CACHE_DIR", &cache),
    );
    let e = stderr(&o);
    let first = e.lines().next().unwrap_or_default();
    assert!(
        first.contains(&cache.display().to_string()) && first.contains("No space left"),
        "{e}"
    );
    assert!(first.contains("free some space"), "names the fix: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

/// Eight first calls on a broken dockerfile: one build; the seven that
/// waited fail with its error instead of building again. A later call
/// tries again.
fn waiters_share_a_failed_build(eng: Eng) {
    let t = T::new(eng, "sharefail", false);
    let image = t.tag("broken");
    t.plugin(
        CHEAP,
        &image,
        "FROM debian:12-slim\nRUN sleep 2; echo 'broken on purpose' && false\n",
        &[("cc", "gcc")],
    );
    let path = t.shims(&[CHEAP]);
    let mut children = Vec::new();
    for i in 0..8 {
        t.write(&format!("work/c{i}.c"), "int x;\n");
        children.push(
            t.program(format!("{CHEAP}-cc"), ["-c".to_string(), format!("c{i}.c")])
                .env("PATH", &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("broken on purpose"), "{}", stderr(&o));
    }
    assert_eq!(t.build_count(&image), 1, "one build for eight callers");
    let o = fails(
        t.program(format!("{CHEAP}-cc"), ["-c", "c0.c"])
            .env("PATH", &path),
    );
    assert!(stderr(&o).contains("broken on purpose"));
    assert_eq!(t.build_count(&image), 2, "a later call tries again");
}

/// ccache mode, as the unprivileged user: a link planted where the ccache
/// folders go (towards another folder) is refused with one line naming it
/// and the fix, never followed or mounted; nothing is compiled.
fn planted_ccache_folder_is_refused(eng: Eng) {
    let mut t = T::new(eng, "ccache-planted", true);
    let cache = t.dir.join("own-cache");
    let elsewhere = t.dir.join("elsewhere");
    as_tester(&format!(
        "mkdir -m 700 {c} {e} && ln -s {e} {c}/ccache",
        c = cache.display(),
        e = elsewhere.display()
    ));
    t.env.push((
        "QEMU_CROSS_CC_CACHE_DIR".into(),
        cache.display().to_string(),
    ));
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    let o = fails(
        t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_CCACHE", "1"),
    );
    let line = one_error_line(&o);
    assert!(
        line.contains(&cache.join("ccache").display().to_string())
            && line.contains("QEMU_CROSS_CC_CACHE_DIR"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "something was written through the planted link"
    );
    assert!(!t.work().join("a.o").exists());
}
