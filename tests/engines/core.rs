//! The docker.py-compatible subcommands, end to end.

use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "build_twice_then_up_to_date",
        build_twice_then_up_to_date,
        Mode::Shared,
    ),
    (
        "build_no_cache_rebuilds",
        build_no_cache_rebuilds,
        Mode::Shared,
    ),
    (
        "check_checksum_and_age",
        check_checksum_and_age,
        Mode::Shared,
    ),
    (
        "run_as_current_user_owns_files",
        run_as_current_user_owns_files,
        Mode::Shared,
    ),
    (
        "run_passes_exit_status",
        run_passes_exit_status,
        Mode::Shared,
    ),
    (
        "cc_compiles_in_user_owned_dir",
        cc_compiles_in_user_owned_dir,
        Mode::Shared,
    ),
    (
        "cc_source_paths_are_read_only",
        cc_source_paths_are_read_only,
        Mode::Shared,
    ),
    (
        "clean_removes_only_labelled",
        clean_removes_only_labelled,
        Mode::Exclusive,
    ),
    ("probe_names_engine", probe_names_engine, Mode::Shared),
    (
        "images_passes_arguments",
        images_passes_arguments,
        Mode::Shared,
    ),
    (
        "fetch_from_local_registry",
        fetch_from_local_registry,
        Mode::Shared,
    ),
    (
        "build_with_registry_cache",
        build_with_registry_cache,
        Mode::Shared,
    ),
    (
        "include_executable_persistent_binfmt",
        include_executable_persistent_binfmt,
        Mode::Shared,
    ),
    (
        "include_executable_and_update_copy_interpreter",
        include_executable_and_update_copy_interpreter,
        Mode::Shared,
    ),
    ("pre_script_exit_codes", pre_script_exit_codes, Mode::Shared),
    ("extra_files_labels", extra_files_labels, Mode::Shared),
    ("proxy_build_args", proxy_build_args, Mode::Shared),
    ("add_current_user", add_current_user, Mode::Shared),
    (
        "signals_remove_run_container",
        signals_remove_run_container,
        Mode::Shared,
    ),
    (
        "signals_remove_cc_container",
        signals_remove_cc_container,
        Mode::Shared,
    ),
    (
        "signal_during_build_leaves_nothing",
        signal_during_build_leaves_nothing,
        Mode::Shared,
    ),
    (
        "daemon_down_is_one_line",
        daemon_down_is_one_line,
        Mode::Shared,
    ),
];

const SMALL: &str = "FROM debian:12-slim\nRUN echo small > /small.txt\n";

/// `build --quiet -t TAG -f DF`, labelled as this run's.
fn build_quiet(t: &T, tag: &str, df: &str) {
    let label = t.run_label();
    ok(t.qcc(["build", "--quiet", "-t", tag, "-f", df, "--label", &label]));
}

/// A dockerfile in the test folder; returns its path. A label naming the
/// test keeps its image apart from other tests' (identical dockerfiles
/// would share one image, which one test's `rmi -f` would take from all).
fn dockerfile(t: &T, name: &str, body: &str) -> String {
    let body = format!("{body}\nLABEL qcc-test-name={}\n", t.name);
    t.write(&format!("df/{name}"), body).display().to_string()
}

fn build_twice_then_up_to_date(eng: Eng) {
    let t = T::new(eng, "build-twice", false);
    let tag = t.tag("img");
    let df = dockerfile(&t, "small.docker", SMALL);
    let label = t.run_label();
    ok(t.qcc(["build", "-t", &tag, "-f", &df, "--label", &label]));
    let id = t.image_id(&tag);
    assert_eq!(t.label(&tag, "com.qemu.dockerfile-checksum").len(), 40);

    // The second build must not call the engine's build at all: watch the
    // engine through a logging wrapper on PATH (of `sudo` for sudo docker,
    // whose lines then start with `-n docker`).
    let (path, log) = logging_wrapper(&t);
    let o = ok(t.qcc(["build", "-t", &tag, "-f", &df]).env("PATH", &path));
    assert_eq!(stdout(&o), "Image is up to date.\n");
    let calls = std::fs::read_to_string(&log).unwrap();
    let words = eng.prog().len() - 1;
    assert!(
        !calls
            .lines()
            .any(|l| l.split_whitespace().nth(words) == Some("build")),
        "engine calls: {calls}"
    );
    assert_eq!(t.image_id(&tag), id);
    let o = ok(t.qcc(["build", "--quiet", "-t", &tag, "-f", &df]));
    assert_eq!(stdout(&o), "");
}

/// A wrapper of the engine's first command word (`docker`, `podman` or
/// `sudo`) that logs its arguments, one call a line, and runs the real one;
/// returns a PATH with it first and the log.
pub fn logging_wrapper(t: &T) -> (String, std::path::PathBuf) {
    let wrap = t.dir.join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    let prog = t.eng.prog()[0];
    let real = which(prog);
    let log = t.dir.join("engine.log");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {} \"$@\"\n",
        log.display(),
        real
    );
    let w = wrap.join(prog);
    std::fs::write(&w, script).unwrap();
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", wrap.display(), std::env::var("PATH").unwrap());
    (path, log)
}

pub fn which(prog: &str) -> String {
    let o = ok(std::process::Command::new("sh").args(["-c", &format!("command -v {prog}")]));
    stdout(&o).trim().to_string()
}

fn build_no_cache_rebuilds(eng: Eng) {
    let t = T::new(eng, "no-cache", false);
    let tag = t.tag("img");
    let df = dockerfile(
        &t,
        "date.docker",
        "FROM debian:12-slim\nRUN date +%s%N > /stamp\n",
    );
    let label = t.run_label();
    build_quiet(&t, &tag, &df);
    let first = t.image_id(&tag);
    let o = ok(t.qcc([
        "build",
        "-t",
        &tag,
        "-f",
        &df,
        "--no-cache",
        "--label",
        &label,
    ]));
    assert!(!stdout(&o).contains("up to date"), "{}", stdout(&o));
    assert_ne!(t.image_id(&tag), first, "--no-cache must rebuild");
}

fn check_checksum_and_age(eng: Eng) {
    let t = T::new(eng, "check", false);
    let tag = t.tag("img");
    let df = dockerfile(&t, "small.docker", SMALL);
    build_quiet(&t, &tag, &df);

    let o = ok(t.qcc(["check", &tag, &df]));
    assert_eq!(stdout(&o), "Image is up to date\n");
    let o = ok(t.qcc(["check", "--quiet", &tag, &df]));
    assert_eq!(stdout(&o), "");

    // Comments and blank lines do not change the checksum...
    let same = dockerfile(&t, "same.docker", &format!("# comment\n\n{SMALL}\n"));
    ok(t.qcc(["check", &tag, &same]));
    // ...anything else does.
    let other = dockerfile(&t, "other.docker", &format!("{SMALL}RUN true\n"));
    let o = fails(t.qcc(["check", &tag, &other]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "Image needs updating\n");

    let o = fails(t.qcc(["check", &format!("{}-none", t.name), &df]));
    assert_eq!(stdout(&o), "Image does not exist\n");
    let o = fails(t.qcc(["check", &tag]));
    assert_eq!(stdout(&o), format!("Need a dockerfile for tag:{tag}\n"));

    let o = ok(t.qcc(["check", "--checktype", "age", "--olderthan", "60", &tag]));
    assert_eq!(stdout(&o), "Image less than 60 minutes old\n");
    std::thread::sleep(Duration::from_millis(1100));
    let o = fails(t.qcc(["check", "--checktype=age", "--olderthan=0", &tag]));
    assert!(
        stdout(&o).starts_with("Image created @ ")
            && stdout(&o).ends_with(" more than 0 minutes old\n"),
        "{}",
        stdout(&o)
    );
    let o = fails(t.qcc(["check", "--checktype", "size", &tag]));
    assert_eq!(o.status.code(), Some(2));
    one_error_line(&o);
}

/// docker: the test user in the docker group; podman: the test user's
/// rootless podman (keep-id); sudo docker: the sudo user (`-u uid:gid`).
/// Either way the files belong to that user.
fn run_as_current_user_owns_files(eng: Eng) {
    let t = T::new(eng, "run-user", true);
    let work = t.work().display().to_string();
    let vol = format!("{work}:{work}");
    ok(t.qcc([
        "run",
        "--run-as-current-user",
        "--network",
        "none",
        "-v",
        &vol,
        "-w",
        &work,
        "debian:12-slim",
        "sh",
        "-c",
        "touch made-inside && id -u && id -g",
    ]));
    let meta = std::fs::metadata(t.work().join("made-inside")).unwrap();
    assert_eq!(meta.uid(), t.uid());
    assert_eq!(meta.gid(), t.gid());
}

fn run_passes_exit_status(eng: Eng) {
    let t = T::new(eng, "run-status", false);
    let o = out(t.qcc([
        "run",
        "debian:12-slim",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]));
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let o = ok(t.qcc(["run", "--quiet", "debian:12-slim", "echo", "hidden"]));
    assert_eq!(stdout(&o), "");
    // `cc` with an image that does not exist: one line, no engine noise.
    let absent = format!("{}-absent", t.name);
    let o = fails(t.qcc(["cc", "-i", &absent, "--", "-c", "x.c"]));
    let line = one_error_line(&o);
    assert!(
        line.contains(&format!("image {absent} does not exist")),
        "{line}"
    );
}

const HELLO: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from the image\"); return 0; }\n";

/// `cc` in a folder owned by a non-root user: docker as that user (docker
/// group), podman as that user's rootless podman, and rootful podman as root
/// (sudo docker: as its user only).
fn cc_compiles_in_user_owned_dir(eng: Eng) {
    let users: &[bool] = if eng == Eng::SudoDocker {
        &[true]
    } else {
        &[true, false]
    };
    for &tester in users {
        let t = T::new(eng, "cc-user", tester);
        let image = t.gcc_image();
        t.write("work/hello.c", HELLO);
        if !tester {
            chown_r(&t.work(), tester_uid(), tester_gid());
        }
        ok(t.qcc(["cc", "-i", &image, "--", "-Wall", "hello.c", "-o", "hello"]));
        let meta = std::fs::metadata(t.work().join("hello")).unwrap();
        assert_eq!(meta.uid(), t.uid(), "output owned by the caller");
        let o = ok(&mut std::process::Command::new(t.work().join("hello")));
        assert_eq!(stdout(&o), "hello from the image\n");
        // The compiler's failure status and messages pass through.
        t.write("work/bad.c", "int main(void) { return undeclared; }\n");
        let o = fails(t.qcc(["cc", "-i", &image, "--", "-c", "bad.c"]));
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("undeclared"), "{}", stderr(&o));
    }
}

fn cc_source_paths_are_read_only(eng: Eng) {
    let t = T::new(eng, "cc-ro", false);
    let image = t.gcc_image();
    let src = t.dir.join("src");
    t.write("src/lib.c", "int lib(void) { return 42; }\n");
    let src_s = src.display().to_string();
    // -s given twice and equal to the cwd: deduplicated, not "Duplicate mount point".
    let work = t.work().display().to_string();
    ok(t.qcc([
        "cc",
        "-i",
        &image,
        "-s",
        &src_s,
        &src_s,
        &work,
        "--",
        "-c",
        &format!("{src_s}/lib.c"),
        "-o",
        "lib.o",
    ]));
    assert!(t.work().join("lib.o").exists());
    let o = fails(t.qcc([
        "cc",
        "-i",
        &image,
        "-s",
        &src_s,
        "--",
        "-c",
        &format!("{src_s}/lib.c"),
        "-o",
        &format!("{src_s}/lib.o"),
    ]));
    assert!(
        stderr(&o).to_lowercase().contains("read-only"),
        "{}",
        stderr(&o)
    );
    assert!(!src.join("lib.o").exists());
}

/// `clean` removes every container with the instance label and leaves the
/// others. It would remove containers this run did not create, so it only
/// runs when there are none.
fn clean_removes_only_labelled(eng: Eng) {
    let t = T::new(eng, "clean", false);
    // This run's own sessions are not foreign: end them first.
    stop_all_sessions();
    let foreign = t.containers_with("com.qemu.instance.uuid");
    if !foreign.is_empty() {
        eprintln!(
            "{eng}::clean: skipped, {} labelled containers exist that this run did not create",
            foreign.len()
        );
        return;
    }
    let run_label = t.run_label();
    let mark = format!("qcc-test-clean={}", t.name);
    let labelled = ok(t.engine([
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        "com.qemu.instance.uuid=qcc-test",
        "--label",
        &run_label,
        "--label",
        &mark,
        "debian:12-slim",
        "sleep",
        "300",
    ]));
    let plain = ok(t.engine([
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        &run_label,
        "--label",
        &mark,
        "debian:12-slim",
        "sleep",
        "300",
    ]));
    let labelled = stdout(&labelled).trim().to_string();
    let plain = stdout(&plain).trim().to_string();
    let o = ok(t.qcc(["clean"]));
    assert_eq!(stdout(&o), "filter=--filter=label=com.qemu.instance.uuid\n");
    let left = t.containers_with(&mark);
    assert!(
        left.iter().any(|c| plain.starts_with(c.as_str())),
        "unlabelled container removed"
    );
    assert!(
        !left.iter().any(|c| labelled.starts_with(c.as_str())),
        "labelled container left"
    );
    ok(t.engine(["rm", "-f", &plain]));
}

fn probe_names_engine(eng: Eng) {
    let t = T::new(eng, "probe", false);
    let o = ok(t.qcc(["probe"]));
    assert_eq!(stdout(&o), format!("{}\n", eng.probe_name()));
    let o = ok(t
        .qcc_plain(["probe"])
        .env("QEMU_CROSS_CC_ENGINE", eng.choice()));
    assert_eq!(stdout(&o), format!("{}\n", eng.probe_name()));
}

fn images_passes_arguments(eng: Eng) {
    let t = T::new(eng, "images", false);
    // podman 4.3's listing fails for a moment while other tests change the
    // image store ("locating image ... not known", "locating item named
    // manifest ... file does not exist"): ask again.
    let images = |args: &[&str]| {
        let mut o = out(t.qcc(args));
        for _ in 0..8 {
            if o.status.success() || eng != Eng::Podman {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            o = out(t.qcc(args));
        }
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let o = images(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        stdout(&o).lines().any(|l| l.ends_with("debian:12-slim")),
        "{}",
        stdout(&o)
    );
    let o = images(&["images", "--quiet"]);
    assert_eq!(stdout(&o), "", "--quiet is ours, as in docker.py");
}

fn push(t: &T, local: &str, remote: &str) {
    ok(t.engine(["tag", local, remote]));
    let mut args = vec!["push"];
    if t.eng == Eng::Podman {
        args.push("--tls-verify=false");
    }
    args.push(remote);
    let mut cmd = t.engine(&args);
    ok(cmd.stdout(Stdio::null()));
    ok(t.engine(["rmi", remote]).stdout(Stdio::null()));
}

fn fetch_from_local_registry(eng: Eng) {
    let t = T::new(eng, "fetch", false);
    let reg = registry();
    let tag = t.tag("fetched");
    let src = t.tag("src");
    let df = dockerfile(&t, "small.docker", SMALL);
    let label = t.run_label();
    ok(t.qcc(["build", "--quiet", "-t", &src, "-f", &df, "--label", &label]));
    let remote = format!("{reg}/{tag}");
    push(&t, &src, &remote);
    // A compile never pulls (the session it starts while the image is
    // checked runs `--pull never`): an image only a registry has is missing.
    t.record_image(&remote);
    let o = fails(t.qcc(["cc", "-i", &remote, "--", "-c", "x.c"]));
    let line = one_error_line(&o);
    assert!(
        line.contains(&format!("image {remote} does not exist")),
        "{line}"
    );
    assert!(!t.image_exists(&remote), "the compile pulled {remote}");
    ok(t.qcc(["fetch", "--quiet", &tag, &reg]));
    assert!(t.image_exists(&tag));
    assert_eq!(t.image_id(&tag), t.image_id(&src));
    let o = fails(t.qcc(["fetch", &format!("{}-absent", t.name), &reg]));
    one_error_line(&o);
}

fn build_with_registry_cache(eng: Eng) {
    let t = T::new(eng, "registry", false);
    let reg = registry();
    let tag = t.tag("cached");
    let df = dockerfile(&t, "small.docker", SMALL);
    let label = t.run_label();
    build_quiet(&t, &tag, &df);
    push(&t, &tag, &format!("{reg}/{tag}"));
    let cs = t.label(&tag, "com.qemu.dockerfile-checksum");
    ok(t.engine(["rmi", "-f", &tag]).stdout(Stdio::null()));
    let o = ok(t.qcc([
        "build",
        "-t",
        &tag,
        "-f",
        &df,
        "--registry",
        &reg,
        "--label",
        &label,
    ]));
    assert!(!stdout(&o).contains("up to date"));
    assert_eq!(t.label(&tag, "com.qemu.dockerfile-checksum"), cs);
    let _ = out(t.engine(["rmi", "-f", &format!("{reg}/{tag}")]));
}

/// With the persistent (F) qemu-aarch64 handler of setup-engines.sh, only
/// support libraries are copied (none: the binary is static).
fn include_executable_persistent_binfmt(eng: Eng) {
    let t = T::new(eng, "binfmt-f", false);
    let entry = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    let text = std::fs::read_to_string(entry)
        .expect("qemu-aarch64 binfmt handler: run tests/setup-engines.sh");
    assert!(
        text.contains("flags: ")
            && text
                .lines()
                .any(|l| l.starts_with("flags:") && l.contains('F'))
    );
    let exe = t.dir.join("qemu-aarch64");
    std::fs::copy("/usr/bin/qemu-aarch64-static", &exe).unwrap();
    let tag = t.tag("img");
    let df = dockerfile(&t, "small.docker", SMALL);
    let label = t.run_label();
    let o = ok(t
        .qcc(["build", "-t", &tag, "-f", &df, "--include-executable"])
        .arg(&exe)
        .args(["--label", &label]));
    let s = stdout(&o);
    assert!(
        s.contains("binfmt_misc for qemu-aarch64 uses persistent(F) mapping to host binary"),
        "{s}"
    );
    assert!(s.contains("only copying support libraries for"), "{s}");
    assert!(t.image_exists(&tag));
    // An executable without a handler is refused.
    let none = t.dir.join("qemu-nonexistent-arch");
    std::fs::copy("/bin/true", &none).unwrap();
    let o = fails(
        t.qcc([
            "build",
            "-t",
            &format!("{tag}-x"),
            "-f",
            &df,
            "--include-executable",
        ])
        .arg(&none),
    );
    assert!(stdout(&o).contains("No binfmt_misc entry for qemu-nonexistent-arch"));
}

/// A handler of our own without the F flag: the executable lands in the
/// image at the interpreter's folder, with its libraries; `update
/// --executable` puts it at the interpreter path.
fn include_executable_and_update_copy_interpreter(eng: Eng) {
    let t = T::new(eng, "binfmt-copy", false);
    let name = format!("qcc-{}-{}", run().id, eng);
    let exe = t.dir.join(&name);
    std::fs::copy("/bin/ls", &exe).unwrap();
    let interp = format!("/opt/{name}/interp");
    // A magic no real file has.
    let reg = format!(":{name}:M::QCCTEST{}::{interp}:\n", eng as u8);
    std::fs::write("/proc/sys/fs/binfmt_misc/register", reg).expect("register a binfmt handler");
    struct Unregister(String);
    impl Drop for Unregister {
        fn drop(&mut self) {
            let _ = std::fs::write(format!("/proc/sys/fs/binfmt_misc/{}", self.0), "-1");
        }
    }
    let _u = Unregister(name.clone());

    let tag = t.tag("img");
    let df = dockerfile(&t, "add.docker", "FROM debian:12-slim\nADD . /\n");
    let label = t.run_label();
    let o = ok(t
        .qcc(["build", "-t", &tag, "-f", &df, "-e"])
        .arg(&exe)
        .args(["--label", &label]));
    assert!(
        stdout(&o).contains(&format!("binfmt_misc for {name} does not point to")),
        "{}",
        stdout(&o)
    );
    let o = ok(t.qcc([
        "run",
        &tag,
        "sh",
        "-c",
        &format!("ls /opt/{name}/{name} && ls /lib/x86_64-linux-gnu/libselinux.so.1"),
    ]));
    assert!(stdout(&o).contains(&name));

    let utag = t.tag("updated");
    ok(t.engine(["tag", &tag, &utag]));
    ok(t.qcc(["update", &utag, "--executable"]).arg(&exe));
    let o = ok(t.qcc(["run", &utag, "ls", &interp]));
    assert_eq!(stdout(&o).trim(), interp);
    // Labels survive the update.
    assert_eq!(
        t.label(&utag, "com.qemu.dockerfile-checksum"),
        t.label(&tag, "com.qemu.dockerfile-checksum")
    );
}

fn pre_script_exit_codes(eng: Eng) {
    let t = T::new(eng, "pre", false);
    let label = t.run_label();
    for (code, name) in [(0, "zero"), (3, "three"), (1, "one")] {
        let df = dockerfile(
            &t,
            &format!("{name}.docker"),
            "FROM debian:12-slim\nADD made-by-pre /\n",
        );
        let pre = t.write(
            &format!("df/{name}.pre"),
            format!("#!/bin/sh\necho pre-ran > made-by-pre\nexit {code}\n"),
        );
        std::fs::set_permissions(&pre, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tag = t.tag(name);
        let o = out(t.qcc(["build", "-t", &tag, "-f", &df, "--label", &label]));
        match code {
            0 => {
                assert!(o.status.success(), "{}", stderr(&o));
                let r = ok(t.qcc(["run", &tag, "cat", "/made-by-pre"]));
                assert_eq!(stdout(&r), "pre-ran\n");
            }
            3 => {
                assert!(o.status.success());
                assert_eq!(stdout(&o), "Skip\n");
                assert!(!t.image_exists(&tag));
            }
            _ => {
                assert_eq!(o.status.code(), Some(1));
                let line = one_error_line(&o);
                assert!(line.contains("one.pre exited with code 1"), "{line}");
                assert!(!t.image_exists(&tag));
            }
        }
    }
}

fn extra_files_labels(eng: Eng) {
    let t = T::new(eng, "extra", false);
    t.write("work/payload.txt", "payload\n");
    t.write("work/second.bin", [0u8, 1, 2, 255]);
    let tag = t.tag("img");
    let df = dockerfile(
        &t,
        "extra.docker",
        "FROM debian:12-slim\nADD payload.txt second.bin /\n",
    );
    let label = t.run_label();
    ok(t.qcc([
        "build",
        "-t",
        &tag,
        "-f",
        &df,
        "--extra-files",
        "payload.txt",
        "second.bin",
        "--label",
        &label,
    ]));
    assert_eq!(
        t.label(&tag, "com.qemu.payload.txt-checksum"),
        sha1_hex(b"payload\n")
    );
    assert_eq!(
        t.label(&tag, "com.qemu.second.bin-checksum"),
        sha1_hex(&[0, 1, 2, 255])
    );
    let o = ok(t.qcc(["run", &tag, "cat", "/payload.txt"]));
    assert_eq!(stdout(&o), "payload\n");
}

fn sha1_hex(b: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn proxy_build_args(eng: Eng) {
    let mut t = T::new(eng, "proxy", false);
    t.env
        .push(("http_proxy".into(), "http://proxy.invalid:3128".into()));
    t.env
        .push(("FTP_PROXY".into(), "ftp://ftp.invalid:21".into()));
    let tag = t.tag("img");
    let df = dockerfile(
        &t,
        "proxy.docker",
        "FROM debian:12-slim\nARG http_proxy\nARG ftp_proxy\nRUN echo \"$http_proxy $ftp_proxy\" > /proxies\n",
    );
    build_quiet(&t, &tag, &df);
    let o = ok(t.qcc(["run", &tag, "cat", "/proxies"]));
    assert_eq!(
        stdout(&o),
        "http://proxy.invalid:3128 ftp://ftp.invalid:21\n"
    );
}

fn add_current_user(eng: Eng) {
    let t = T::new(eng, "add-user", false);
    let tag = t.tag("img");
    let df = dockerfile(&t, "small.docker", SMALL);
    let label = t.run_label();
    ok(t.qcc([
        "build", "--quiet", "-u", "-t", &tag, "-f", &df, "--label", &label,
    ]));
    let o = ok(t.qcc(["run", &tag, "id", "-un"]));
    assert_eq!(stdout(&o), "root\n");
}

/// Wait until a container with the instance label whose command contains
/// `marker` exists; returns whether it appeared.
fn wait_for_container(t: &T, marker: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !labelled_with(t, marker).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn labelled_with(t: &T, marker: &str) -> Vec<String> {
    let o = out(t.engine([
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        "label=com.qemu.instance.uuid",
        "--format",
        "{{.ID}} {{.Command}}",
    ]));
    stdout(&o)
        .lines()
        .filter(|l| l.contains(marker))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

fn signal_leaves_no_container(t: &T, args: &[&str], marker: &str) {
    for (sig, code) in [
        (libc_sig::SIGTERM, 143),
        (libc_sig::SIGINT, 130),
        (libc_sig::SIGHUP, 129),
    ] {
        let mut child = t
            .qcc(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(wait_for_container(t, marker), "the container never started");
        unsafe_kill(t.tool_pid(&child), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "exit code after signal {sig}");
        // Removal is done before we exit: nothing may be left.
        let left = labelled_with(t, marker);
        for c in &left {
            let _ = out(t.engine(["rm", "-f", c]));
        }
        assert!(
            left.is_empty(),
            "containers left after signal {sig}: {left:?}"
        );
    }
}

mod libc_sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}

fn unsafe_kill(pid: i32, sig: i32) {
    ok(std::process::Command::new("kill").args([format!("-{sig}"), pid.to_string()]));
}

fn signals_remove_run_container(eng: Eng) {
    let t = T::new(eng, "sig-run", false);
    let marker = format!("{}.5", 90 + eng as u32);
    let label = t.run_label();
    signal_leaves_no_container(
        &t,
        &[
            "run",
            "--label",
            &label,
            "--network",
            "none",
            "debian:12-slim",
            "sleep",
            &marker,
        ],
        &marker,
    );
}

fn signals_remove_cc_container(eng: Eng) {
    let t = T::new(eng, "sig-cc", false);
    let image = t.gcc_image();
    let marker = format!("{}.25", 90 + eng as u32);
    // The one-shot path (sessions have their own test).
    let mut t = t;
    t.env.push(("QEMU_CROSS_CC_SESSION".into(), "0".into()));
    signal_leaves_no_container(
        &t,
        &["cc", "-i", &image, "--cc", "sleep", "--", &marker],
        &marker,
    );
}

/// The engine is installed but its daemon (docker) or service (podman
/// remote) does not answer: one error line naming what was tried.
fn daemon_down_is_one_line(eng: Eng) {
    let t = T::new(eng, "down", false);
    let dir = t.dir.join("dead-engine");
    std::fs::create_dir_all(&dir).unwrap();
    let w = dir.join(eng.name());
    let body = match eng {
        Eng::Docker | Eng::SudoDocker => format!(
            "#!/bin/sh\nexec {} -H unix:///nonexistent/qcc.sock \"$@\"\n",
            which("docker")
        ),
        Eng::Podman => format!(
            "#!/bin/sh\nexec {} --remote --url unix:///nonexistent/qcc.sock \"$@\"\n",
            which("podman")
        ),
    };
    std::fs::write(&w, body).unwrap();
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = fails(t.qcc(["images"]).env("PATH", &dir));
    assert_eq!(o.status.code(), Some(1));
    let line = one_error_line(&o);
    assert!(line.contains("no working container engine"), "{line}");
    assert!(line.contains(&format!("{} (", eng.name())), "{line}");
    let o = ok(t.qcc(["probe"]).env("PATH", &dir));
    assert_eq!(stdout(&o), "no\n");
}

/// SIGTERM while an image builds: exit 143, the temporary build context is
/// gone (destructors do not run on a signal exit; the handler removes it).
fn signal_during_build_leaves_nothing(eng: Eng) {
    let mut t = T::new(eng, "sig-build", false);
    let tmp = t.dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    t.env.push(("TMPDIR".into(), tmp.display().to_string()));
    let tag = t.tag("img");
    let df = dockerfile(&t, "slow.docker", "FROM debian:12-slim\nRUN sleep 60\n");
    let label = t.run_label();
    let mut child = t
        .qcc(["build", "-t", &tag, "-f", &df, "--label", &label])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the context exists and the build runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&tmp).unwrap().next().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    unsafe_kill(child.id() as i32, libc_sig::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    // Ours is docker_build*; what a killed engine client leaves in TMPDIR
    // (podman's buildah*) is the engine's.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("docker_build"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!t.image_exists(&tag));
}
