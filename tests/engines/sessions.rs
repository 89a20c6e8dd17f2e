//! Warm toolchain sessions: same results as one-shot, one session per build,
//! recovery from a killed container, Ctrl-C, idle timeout, `clean`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "session_matches_one_shot",
        session_matches_one_shot,
        Mode::Shared,
    ),
    (
        "session_matches_one_shot_as_user",
        session_matches_one_shot_as_user,
        Mode::Shared,
    ),
    (
        "make_j8_uses_one_session",
        make_j8_uses_one_session,
        Mode::Shared,
    ),
    (
        "killed_container_is_replaced",
        killed_container_is_replaced,
        Mode::Shared,
    ),
    (
        "ctrl_c_kills_compiler_keeps_session",
        ctrl_c_kills_compiler_keeps_session,
        Mode::Shared,
    ),
    (
        "idle_timeout_ends_container",
        idle_timeout_ends_container,
        Mode::Shared,
    ),
    (
        "recreated_build_dir_gets_new_session",
        recreated_build_dir_gets_new_session,
        Mode::Shared,
    ),
    (
        "replacing_session_joins_the_old_network",
        replacing_session_joins_the_old_network,
        Mode::Shared,
    ),
    (
        "network_join_falls_back_when_the_donor_is_gone",
        network_join_falls_back_when_the_donor_is_gone,
        Mode::Shared,
    ),
    (
        "sessions_off_runs_one_shot",
        sessions_off_runs_one_shot,
        Mode::Shared,
    ),
    (
        "inherited_descriptors_do_not_leak",
        inherited_descriptors_do_not_leak,
        Mode::Shared,
    ),
    (
        "another_builds_session_is_not_used",
        another_builds_session_is_not_used,
        Mode::Shared,
    ),
    ("clean_ends_sessions", clean_ends_sessions, Mode::Exclusive),
];

const CHEAP: &str = "qcctest-linux-gnu";

fn container_alive(t: &T, name: &str) -> bool {
    let o = out(t.engine(["ps", "-q", "--filter", &format!("name={name}")]));
    !stdout(&o).trim().is_empty()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

const SOURCES: &[(&str, &str)] = &[
    ("ok.c", "int ok(void) { return 1; }\n"),
    ("warn.c", "int warn(void) { int unused; return 0; }\n"),
    ("bad.c", "int bad(void) { return missing; }\n"),
    (
        "main.c",
        "#include <stdio.h>\nint main(void) { puts(\"ran\"); return 0; }\n",
    ),
];

/// The same commands, one-shot and in a session: identical stdout, stderr,
/// exit status, output files and their owner.
fn compare_modes(t: &T) {
    let path = t.shims(&[CHEAP]);
    let gcc = format!("{CHEAP}-gcc");
    let sh = format!("{CHEAP}-sh");
    let commands: Vec<(String, Vec<String>)> = vec![
        (gcc.clone(), vec!["-c".into(), "ok.c".into()]),
        (
            gcc.clone(),
            vec!["-Wall".into(), "-c".into(), "warn.c".into()],
        ),
        (gcc.clone(), vec!["-c".into(), "bad.c".into()]),
        (gcc.clone(), vec!["-E".into(), "-P".into(), "ok.c".into()]),
        (
            gcc.clone(),
            vec!["main.c".into(), "-o".into(), "main".into()],
        ),
        (
            sh.clone(),
            vec![
                "-c".into(),
                "echo out; echo err >&2; umask; id -u; exit 5".into(),
            ],
        ),
    ];
    let mut results: Vec<Vec<Output>> = Vec::new();
    for (mode, session) in [("one-shot", "0"), ("session", "1")] {
        let dir = format!("work/{mode}");
        for (f, body) in SOURCES {
            t.write(&format!("{dir}/{f}"), body);
        }
        let cwd = t.dir.join(&dir);
        let mut outs = Vec::new();
        for (prog, args) in &commands {
            outs.push(out(t
                .program(prog, args)
                .current_dir(&cwd)
                .env("PATH", &path)
                .env("LC_ALL", "C")
                .env("QEMU_CROSS_CC_SESSION", session)));
        }
        results.push(outs);
    }
    for (i, (a, b)) in results[0].iter().zip(&results[1]).enumerate() {
        assert_eq!(
            a.status.code(),
            b.status.code(),
            "status of {:?}",
            commands[i]
        );
        assert_eq!(stdout(a), stdout(b), "stdout of {:?}", commands[i]);
        assert_eq!(stderr(a), stderr(b), "stderr of {:?}", commands[i]);
    }
    assert_eq!(results[1][2].status.code(), Some(1));
    assert_eq!(results[1][5].status.code(), Some(5));
    for f in ["ok.o", "warn.o", "main"] {
        let a = t.dir.join("work/one-shot").join(f);
        let b = t.dir.join("work/session").join(f);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{f} differs"
        );
        let (ma, mb) = (
            std::fs::metadata(&a).unwrap(),
            std::fs::metadata(&b).unwrap(),
        );
        assert_eq!(
            (ma.uid(), ma.gid(), ma.mode()),
            (mb.uid(), mb.gid(), mb.mode()),
            "{f} owner/mode"
        );
        assert_eq!(mb.uid(), t.uid());
    }
    // The session really served the second half.
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(
        s[0]["calls"].as_u64().unwrap() >= commands.len() as u64,
        "{s:?}"
    );
}

fn session_matches_one_shot(eng: Eng) {
    let t = T::new(eng, "sess-same", false);
    t.cheap_plugin(CHEAP);
    compare_modes(&t);
}

/// As the unprivileged user: docker (group) and rootless podman, where the
/// socket and the descriptors cross the user namespace.
fn session_matches_one_shot_as_user(eng: Eng) {
    let t = T::new(eng, "sess-same", true);
    t.cheap_plugin(CHEAP);
    compare_modes(&t);
}

fn make_j8_uses_one_session(eng: Eng) {
    let t = T::new(eng, "sess-make", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let mut mk = String::from("OBJS =");
    for i in 0..16 {
        t.write(
            &format!("work/sub/f{i}.c"),
            format!("int f{i}(void) {{ return {i}; }}\n"),
        );
        mk.push_str(&format!(" sub/f{i}.o"));
    }
    mk.push_str(&format!(
        "\nall: $(OBJS) recurse\nsub/%.o: sub/%.c\n\t{CHEAP}-gcc -c $< -o $@\nrecurse:\n\t$(MAKE) -C sub2\n"
    ));
    t.write("work/Makefile", mk);
    t.write("work/sub2/g.c", "int g(void) { return 0; }\n");
    t.write(
        "work/sub2/Makefile",
        format!("g.o: g.c\n\t{CHEAP}-gcc -c g.c -o g.o\n"),
    );
    ok(t.program("make", ["-s", "-j8"]).env("PATH", &path));
    for i in 0..16 {
        assert!(t.work().join(format!("sub/f{i}.o")).exists());
    }
    assert!(t.work().join("sub2/g.o").exists());
    let s = t.sessions();
    assert_eq!(s.len(), 1, "one session for the whole build: {s:#?}");
    assert_eq!(s[0]["calls"].as_u64(), Some(17), "{s:?}");
    assert_eq!(
        s[0]["root"].as_str().unwrap(),
        t.work().display().to_string()
    );
}

fn killed_container_is_replaced(eng: Eng) {
    let t = T::new(eng, "sess-kill", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    let gcc = format!("{CHEAP}-gcc");
    ok(t.program(&gcc, ["-c", "a.c"]).env("PATH", &path));
    let first = t.sessions()[0]["container"].as_str().unwrap().to_string();

    // Killed mid-call: that call fails like a killed compiler...
    let long = t
        .program(format!("{CHEAP}-sh"), ["-c", "sleep 30"])
        .env("PATH", &path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    ok(t.engine(["rm", "-f", &first]));
    let o = long.wait_with_output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("session container ended"),
        "{}",
        stderr(&o)
    );

    // ...and the next calls work, in a fresh session, with nothing printed.
    for _ in 0..2 {
        let o = ok(t.program(&gcc, ["-c", "a.c"]).env("PATH", &path));
        assert_eq!(stderr(&o), "");
    }
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_ne!(s[0]["container"].as_str().unwrap(), first);
    assert!(container_alive(&t, s[0]["container"].as_str().unwrap()));

    // A stale socket left by a container that died between calls.
    let second = s[0]["container"].as_str().unwrap().to_string();
    ok(t.engine(["rm", "-f", &second]));
    let o = ok(t.program(&gcc, ["-c", "a.c"]).env("PATH", &path));
    assert_eq!(stderr(&o), "");
    assert_ne!(t.sessions()[0]["container"].as_str().unwrap(), second);
}

fn ctrl_c_kills_compiler_keeps_session(eng: Eng) {
    let t = T::new(eng, "sess-intr", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    let gcc = format!("{CHEAP}-gcc");
    let sh = format!("{CHEAP}-sh");
    ok(t.program(&gcc, ["-c", "a.c"]).env("PATH", &path));
    let container = t.sessions()[0]["container"].as_str().unwrap().to_string();
    let marker = format!("sleep 47.{}", eng as u8);
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let mut child = t
            .program(&sh, ["-c", &format!("exec {marker}")])
            .env("PATH", &path)
            .spawn()
            .unwrap();
        // The pattern does not match its own text (no grep finding itself).
        let find = format!(
            "grep -l '4[7][.]{}' /proc/[0-9]*/cmdline 2>/dev/null | wc -l",
            eng as u8
        );
        wait_until("the compiler to start", 30, || {
            let o = out(t.program(&sh, ["-c", &find]).env("PATH", &path));
            stdout(&o).trim() != "0"
        });
        ok(Command::new("kill").args([sig, &child.id().to_string()]));
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(code));
        // The program is gone, the session stays and works.
        wait_until("the compiler to end", 10, || {
            let o = out(t.program(&sh, ["-c", &find]).env("PATH", &path));
            stdout(&o).trim() == "0"
        });
        ok(t.program(&gcc, ["-c", "a.c"]).env("PATH", &path));
        let s = t.sessions();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["container"].as_str().unwrap(), container);
    }
}

fn idle_timeout_ends_container(eng: Eng) {
    let mut t = T::new(eng, "sess-idle", false);
    t.env
        .push(("QEMU_CROSS_CC_SESSION_IDLE".into(), "2".into()));
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    ok(t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    let container = t.sessions()[0]["container"].as_str().unwrap().to_string();
    assert!(container_alive(&t, &container));
    wait_until("the idle session to end", 30, || {
        !container_alive(&t, &container)
    });
    assert!(t.sessions().is_empty());
    // Its container is removed (`--rm`), not just stopped.
    wait_until("the container to be removed", 30, || {
        let o = out(t.engine(["ps", "-a", "-q", "--filter", &format!("name={container}")]));
        stdout(&o).trim().is_empty()
    });
}

fn recreated_build_dir_gets_new_session(eng: Eng) {
    let t = T::new(eng, "sess-rmrf", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let build = t.dir.join("tree/build");
    for round in 0..3 {
        let _ = std::fs::remove_dir_all(&build);
        std::fs::create_dir_all(&build).unwrap();
        std::fs::write(build.join("a.c"), format!("int a{round};\n")).unwrap();
        let o = ok(t
            .program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
            .current_dir(&build)
            .env("PATH", &path));
        assert_eq!(stderr(&o), "");
        assert!(build.join("a.o").exists(), "round {round}");
    }
    assert_eq!(recorded(&t).len(), 1);
}

/// The sessions with a record (a replaced one's container may still be
/// ending, listed as orphaned).
fn recorded(t: &T) -> Vec<serde_json::Value> {
    t.sessions()
        .into_iter()
        .filter(|s| s["orphaned"] != serde_json::Value::Bool(true))
        .collect()
}

fn network_mode(t: &T, container: &str) -> String {
    let o = ok(t.engine(["inspect", "-f", "{{.HostConfig.NetworkMode}}", container]));
    stdout(&o).trim().to_string()
}

fn container_id(t: &T, container: &str) -> String {
    let o = ok(t.engine(["inspect", "-f", "{{.Id}}", container]));
    stdout(&o).trim().to_string()
}

/// The network interfaces a call sees, through the session of `build`.
fn interfaces(t: &T, path: &str, build: &Path) -> String {
    let o = ok(t
        .program(
            format!("{CHEAP}-sh"),
            ["-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"],
        )
        .current_dir(build)
        .env("PATH", path));
    stdout(&o)
}

/// The session that replaces one whose build folder was made again joins
/// the old one's network namespace with docker (whose own takes ~80 ms to
/// make), then ends it; the network is a loopback only, and outlives the
/// container that made it. A joined session has its own `/etc/hosts`,
/// `/etc/resolv.conf` and `/etc/hostname`. Podman makes its own (no cost worth saving).
fn replacing_session_joins_the_old_network(eng: Eng) {
    let t = T::new(eng, "sess-netns", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    let build = t.dir.join("tree/build");
    let mut containers: Vec<(String, String)> = Vec::new();
    for round in 0..3 {
        let _ = std::fs::remove_dir_all(&build);
        std::fs::create_dir_all(&build).unwrap();
        assert_eq!(interfaces(&t, &path, &build), "lo\n", "round {round}");
        let s = recorded(&t);
        assert_eq!(s.len(), 1, "the replaced session ended: {s:?}");
        let name = s[0]["container"].as_str().unwrap().to_string();
        let mode = network_mode(&t, &name);
        match containers.last() {
            Some((_, donor)) if eng == Eng::Docker => {
                assert_eq!(mode, format!("container:{donor}"), "round {round}");
                // Its own name files, not those of the container that made
                // the network (whose removal a start could race).
                let id = name.trim_start_matches("qemu-cross-cc-session-");
                for (field, file) in [
                    ("HostsPath", "hosts"),
                    ("ResolvConfPath", "resolv.conf"),
                    ("HostnamePath", "hostname"),
                ] {
                    let o = ok(t.engine(["inspect", "-f", &format!("{{{{.{field}}}}}"), &name]));
                    assert!(
                        stdout(&o)
                            .trim()
                            .ends_with(&format!("/sessions/{id}/{file}")),
                        "round {round}: {field} {}",
                        stdout(&o)
                    );
                }
                let o = ok(t
                    .program(format!("{CHEAP}-sh"), ["-c", "cat /etc/hosts"])
                    .current_dir(&build)
                    .env("PATH", &path));
                assert!(stdout(&o).contains("localhost"), "{}", stdout(&o));
            }
            _ => assert_eq!(mode, "none", "round {round}"),
        }
        containers.push((name.clone(), container_id(&t, &name)));
    }
    for (old, _) in &containers[..2] {
        wait_until("the replaced containers to end", 30, || {
            !container_alive(&t, old)
        });
    }
    // The last one's network outlived both containers before it.
    assert_eq!(interfaces(&t, &path, &build), "lo\n");
}

/// A donor that ends between the look and the start (here: docker told
/// of a container that is gone): the session makes a network of its own,
/// and the container the failed start made is gone.
fn network_join_falls_back_when_the_donor_is_gone(eng: Eng) {
    let t = T::new(eng, "sess-netns-gone", false);
    t.cheap_plugin(CHEAP);
    let shims = t.shims(&[CHEAP]);
    let tried = t.dir.join("join-tried");
    let rewrite = format!(
        "n=$#
for a do
  case $a in container:*) a=container:{gone}; : > {f};; esac
  set -- \"$@\" \"$a\"
done
shift $n",
        gone = t.name,
        f = tried.display()
    );
    let path = t.wrapped_engine(eng.prog()[0], &rewrite, &shims);
    let build = t.dir.join("tree/build");
    for round in 0..2 {
        let _ = std::fs::remove_dir_all(&build);
        std::fs::create_dir_all(&build).unwrap();
        std::fs::write(build.join("a.c"), "int a;\n").unwrap();
        let o = ok(t
            .program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
            .current_dir(&build)
            .env("PATH", &path));
        assert_eq!(stderr(&o), "", "round {round}");
        assert!(build.join("a.o").exists(), "round {round}");
    }
    assert_eq!(tried.exists(), eng == Eng::Docker);
    let s = recorded(&t);
    assert_eq!(s.len(), 1, "{s:?}");
    let name = s[0]["container"].as_str().unwrap();
    assert_eq!(network_mode(&t, name), "none");
    let o = ok(t.engine(["ps", "-a", "-q", "--filter", &format!("name={name}")]));
    assert_eq!(stdout(&o).split_whitespace().count(), 1, "one container");
    assert_eq!(interfaces(&t, &shims, &build), "lo\n");
}

/// A session started by another build of the tool (whose agent may speak
/// another protocol) is never used: a call starts a session of its own, and
/// the other build's session serves the other build on.
fn another_builds_session_is_not_used(eng: Eng) {
    let t = T::new(eng, "sess-other-build", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    // A copy is another build to the tool: its identity differs.
    let other = t.dir.join("other");
    let other_bin = other.join("qemu-cross-cc");
    ok(t.program("mkdir", [&other]));
    ok(t.program("cp", [&run().bin, &other_bin]));
    ok(t.program(&other_bin, ["shims", "--quiet", "--dir"])
        .arg(&other)
        .arg(CHEAP));
    let other_path = format!("{}:{}", other.display(), std::env::var("PATH").unwrap());
    t.write("work/a.c", "int a;\n");
    let own = |t: &T| -> Vec<serde_json::Value> {
        t.sessions()
            .into_iter()
            .filter(|s| s["orphaned"] != serde_json::Value::Bool(true))
            .collect()
    };
    let gcc = |path: &str, out: &str| {
        let o = ok(t
            .program(format!("{CHEAP}-gcc"), ["-c", "a.c", "-o", out])
            .env("PATH", path));
        assert_eq!(stderr(&o), "");
        assert!(t.work().join(out).exists(), "{out}");
    };
    gcc(&other_path, "other.o");
    let first = own(&t);
    assert_eq!(first.len(), 1, "{first:?}");
    gcc(&path, "own.o");
    gcc(&path, "own2.o");
    gcc(&other_path, "other2.o");
    let all = own(&t);
    assert_eq!(all.len(), 2, "{all:?}");
    for s in &all {
        assert_eq!(s["calls"].as_u64(), Some(2), "{all:?}");
    }
    assert!(all.iter().any(|s| s["id"] == first[0]["id"]));
}

fn sessions_off_runs_one_shot(eng: Eng) {
    let mut t = T::new(eng, "sess-off", false);
    t.env.push(("QEMU_CROSS_CC_SESSION".into(), "0".into()));
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    ok(t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    assert!(t.sessions().is_empty());
    assert!(!Path::new(&t.dir.join("runtime/sessions")).exists());
}

fn clean_ends_sessions(eng: Eng) {
    let t = T::new(eng, "sess-clean", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    stop_all_sessions();
    if !t.containers_with("com.qemu.instance.uuid").is_empty() {
        eprintln!(
            "{eng}::clean_ends_sessions: skipped, labelled containers exist that this run did not create"
        );
        return;
    }
    ok(t.program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    let container = t.sessions()[0]["container"].as_str().unwrap().to_string();
    ok(t.qcc(["clean", "--quiet"]));
    assert!(!container_alive(&t, &container));
    assert!(t.sessions().is_empty());
    let o = ok(t
        .program(format!("{CHEAP}-gcc"), ["-c", "a.c"])
        .env("PATH", &path));
    assert_eq!(stderr(&o), "");
}

/// A caller's extra descriptors (configure keeps config.log on 5 and its
/// messages on 6) must not reach the engine: podman would hand them to the
/// session's conmon, and `configure | tee log` would never end.
fn inherited_descriptors_do_not_leak(eng: Eng) {
    let t = T::new(eng, "sess-fds", false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    // The shell's stdout (also on 9) is our pipe: it must reach end of file
    // when the shell exits.
    let script = format!("exec 5>config.log 9>&1; {CHEAP}-gcc -c a.c && echo built");
    let mut child = t
        .program("sh", ["-c", &script])
        .env("PATH", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        use std::io::Read;
        let _ = pipe.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    assert!(child.wait().unwrap().success());
    let got = rx.recv_timeout(Duration::from_secs(60)).expect(
        "the caller's pipe stayed open after the compile (a descriptor leaked into the engine)",
    );
    assert_eq!(got, "built\n");
    assert_eq!(t.sessions().len(), 1);
}
