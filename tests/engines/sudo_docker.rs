//! The third engine, `sudo -n docker`, as the user `SUDOER` of
//! tests/setup-engines.sh: outside the docker group (the socket is out of its
//! reach), allowed only the docker client through sudo without a password.
//!
//! Its tests (`sudo-docker::x`) are a subset: the core subcommands listed
//! here from `core` and `sessions`, and the tests below (detection, a session
//! compile and a one-shot compile with variables). The tool gets `--engine
//! docker` (docker, then `sudo -n docker`): that user's `podman version`
//! answers (its podman has no subuid range and no image, but `version` needs
//! neither), so `auto` would take podman first; true `auto` is shown where
//! podman and docker are off PATH.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::core::{logging_wrapper, which};
use crate::support::*;
use crate::{Mode, TestFn};

/// Tests of `core` that also run through sudo docker.
pub const FROM_CORE: &[&str] = &[
    "build_twice_then_up_to_date",
    "build_no_cache_rebuilds",
    "check_checksum_and_age",
    "run_as_current_user_owns_files",
    "run_passes_exit_status",
    "cc_compiles_in_user_owned_dir",
    "cc_source_paths_are_read_only",
    "probe_names_engine",
    "images_passes_arguments",
    "fetch_from_local_registry",
    "proxy_build_args",
    "add_current_user",
    "signals_remove_run_container",
    "signals_remove_cc_container",
];

/// Tests of `sessions` that also run through sudo docker.
pub const FROM_SESSIONS: &[&str] = &["session_matches_one_shot"];

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "detection_finds_sudo_docker",
        detection_finds_sudo_docker,
        Mode::Shared,
    ),
    (
        "session_compile_passes_variables",
        session_compile_passes_variables,
        Mode::Shared,
    ),
    (
        "one_shot_compile_passes_variables",
        one_shot_compile_passes_variables,
        Mode::Shared,
    ),
];

const CHEAP: &str = "qcctest-linux-gnu";

/// Prints the date the compiler saw (`SOURCE_DATE_EPOCH` sets it).
const WHEN: &str = "#include <stdio.h>\nint main(void) { puts(__DATE__); return 0; }\n";

/// `__DATE__` for `SOURCE_DATE_EPOCH=86400`.
const DAY_TWO: &str = "Jan  2 1970\n";

fn run_here(t: &T, exe: &str) -> String {
    stdout(&ok(&mut Command::new(t.work().join(exe))))
}

/// The user cannot reach the docker socket, so the sudo path is the one
/// that works: `probe` says `sudo docker` with `--engine docker`, and with
/// `auto` where only sudo is on PATH; a compile through what `auto` found
/// works and its session is sudo docker's.
fn detection_finds_sudo_docker(eng: Eng) {
    let mut t = T::new(eng, "sudo-detect", false);
    let image = t.gcc_image();
    let o = fails(t.program("docker", ["version"]));
    assert!(
        stderr(&o).contains("permission denied"),
        "docker without sudo: {}",
        stderr(&o)
    );
    let o = ok(t.qcc(["probe"]));
    assert_eq!(stdout(&o), "sudo docker\n");

    let only = t.dir.join("only-sudo");
    std::fs::create_dir_all(&only).unwrap();
    std::os::unix::fs::symlink(which("sudo"), only.join("sudo")).unwrap();
    t.env.push(("PATH".into(), only.display().to_string()));
    t.env.push(("QEMU_CROSS_CC_ENGINE".into(), "auto".into()));
    let o = ok(t.qcc_plain(["probe"]));
    assert_eq!(stdout(&o), "sudo docker\n");

    t.write("work/hello.c", "int main(void) { return 0; }\n");
    let o = ok(t
        .qcc_plain(["cc", "-i", &image, "--", "hello.c", "-o", "hello"])
        .env("QEMU_CROSS_CC_DEBUG", "1"));
    assert_eq!(stderr(&o), "", "a compile prints nothing");
    let meta = std::fs::metadata(t.work().join("hello")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (t.uid(), t.gid()));
    ok(&mut Command::new(t.work().join("hello")));
    let s = ok(t.qcc_plain(["sessions", "list", "--json"]));
    let s: Vec<serde_json::Value> = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["engine"], "sudo docker", "{s:?}");
}

/// A target's tool through the shims, in a session (its image built
/// through sudo docker): allow-listed and `QEMU_CROSS_CC_PASSENV` variables
/// reach the compiler, the output belongs to the user, and the session
/// container lives in root's docker.
fn session_compile_passes_variables(eng: Eng) {
    let mut t = T::new(eng, "sudo-session", false);
    let image = t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/when.c", WHEN);
    for (k, v) in [
        ("SOURCE_DATE_EPOCH", "86400"),
        ("QEMU_CROSS_CC_PASSENV", "QCC_SUDO_VALUE"),
        ("QCC_SUDO_VALUE", "through the session"),
    ] {
        t.env.push((k.into(), v.into()));
    }
    let gcc = format!("{CHEAP}-gcc");
    let o = ok(t.program(&gcc, ["when.c", "-o", "when"]).env("PATH", &path));
    assert_eq!(stderr(&o), "");
    assert_eq!(run_here(&t, "when"), DAY_TWO);
    let meta = std::fs::metadata(t.work().join("when")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (t.uid(), t.gid()));
    let o = ok(t
        .program(format!("{CHEAP}-env"), Vec::<&str>::new())
        .env("PATH", &path));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l == "QCC_SUDO_VALUE=through the session"),
        "{}",
        stdout(&o)
    );
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["engine"], "sudo docker", "{s:?}");
    assert_eq!(s[0]["image"], image.as_str(), "{s:?}");
    assert!(s[0]["calls"].as_u64().unwrap() >= 2, "{s:?}");
    let container = s[0]["container"].as_str().unwrap();
    let o = ok(t.engine(["ps", "-q", "--filter", &format!("name={container}")]));
    assert!(!stdout(&o).trim().is_empty(), "session container not found");
}

/// `QEMU_CROSS_CC_SESSION=0`: the tool runs `sudo -n docker run` as the
/// user (`-u uid:gid`), the variables travel in an env file in the private
/// runtime folder (sudo drops the environment), never on the command line,
/// and the file is gone afterwards; a value an env file cannot hold is one
/// error line.
fn one_shot_compile_passes_variables(eng: Eng) {
    let mut t = T::new(eng, "sudo-one-shot", false);
    let image = t.gcc_image();
    let (path, log) = logging_wrapper(&t);
    for (k, v) in [
        ("PATH", path.as_str()),
        ("QEMU_CROSS_CC_SESSION", "0"),
        ("SOURCE_DATE_EPOCH", "86400"),
        ("QEMU_CROSS_CC_PASSENV", "QCC_SUDO_VALUE"),
        ("QCC_SUDO_VALUE", "secret through sudo"),
    ] {
        t.env.push((k.into(), v.into()));
    }
    t.write("work/when.c", WHEN);
    let o = ok(t.qcc(["cc", "-i", &image, "--", "when.c", "-o", "when"]));
    assert_eq!(stderr(&o), "");
    assert_eq!(run_here(&t, "when"), DAY_TWO);
    let meta = std::fs::metadata(t.work().join("when")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (t.uid(), t.gid()));
    let o = ok(t.qcc(["cc", "-i", &image, "--cc", "env", "--"]));
    let env = stdout(&o);
    assert!(
        env.lines()
            .any(|l| l == "QCC_SUDO_VALUE=secret through sudo")
            && env.lines().any(|l| l == "SOURCE_DATE_EPOCH=86400"),
        "{env}"
    );

    let calls = std::fs::read_to_string(&log).unwrap();
    let runs: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("-n docker run "))
        .collect();
    assert_eq!(runs.len(), 2, "engine calls: {calls}");
    let env_file = format!("--env-file {}/.env", t.dir.join("runtime").display());
    let user = format!("-u {}:{}", t.uid(), t.gid());
    for r in &runs {
        assert!(
            r.contains(&env_file) && r.contains(&user),
            "sudo -n docker {r}"
        );
        assert!(
            !r.contains("secret") && !r.contains("86400"),
            "a value on the command line: {r}"
        );
    }
    let left: Vec<String> = std::fs::read_dir(t.dir.join("runtime"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".env"))
        .collect();
    assert!(left.is_empty(), "env files left: {left:?}");
    assert!(t.sessions().is_empty());

    t.env.push(("QCC_SUDO_VALUE".into(), "two\nlines".into()));
    let o = fails(t.qcc(["cc", "-i", &image, "--cc", "env", "--"]));
    let line = one_error_line(&o);
    assert!(
        line.contains("cannot pass QCC_SUDO_VALUE to the container through sudo"),
        "{line}"
    );
}
