//! The session agent under faults: callers of another user, callers killed
//! mid-call, its runtime folder removed, its container frozen.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "agent_refuses_other_users",
        agent_refuses_other_users,
        Mode::Shared,
    ),
    (
        "killed_call_leaves_no_temp_files",
        killed_call_leaves_no_temp_files,
        Mode::Shared,
    ),
    (
        "agent_exits_when_runtime_dir_removed",
        agent_exits_when_runtime_dir_removed,
        Mode::Shared,
    ),
    (
        "frozen_agent_is_given_up_quickly",
        frozen_agent_is_given_up_quickly,
        Mode::Shared,
    ),
    (
        "slow_session_keeps_its_calls",
        slow_session_keeps_its_calls,
        Mode::Shared,
    ),
    (
        "slow_session_is_kept_when_the_engine_cannot_tell",
        slow_session_is_kept_when_the_engine_cannot_tell,
        Mode::Shared,
    ),
    (
        "frozen_agent_with_a_full_backlog_is_given_up",
        frozen_agent_with_a_full_backlog_is_given_up,
        Mode::Shared,
    ),
    (
        "idle_connections_are_bounded_and_timed_out",
        idle_connections_are_bounded_and_timed_out,
        Mode::Shared,
    ),
    (
        "agent_forks_before_any_thread",
        agent_forks_before_any_thread,
        Mode::Shared,
    ),
    (
        "depfile_on_a_pipe_does_not_hang",
        depfile_on_a_pipe_does_not_hang,
        Mode::Shared,
    ),
];

const CHEAP: &str = "qcctest-linux-gnu";

/// A context with the cheap plugin, its shims (the PATH returned) and a
/// source file in the work folder.
fn setup(eng: Eng, name: &str) -> (T, String) {
    let t = T::new(eng, name, false);
    t.cheap_plugin(CHEAP);
    let path = t.shims(&[CHEAP]);
    t.write("work/a.c", "int a;\n");
    (t, path)
}

/// `CHEAP-TOOL args...` in the work folder, without the caller's TMPDIR.
fn tool(t: &T, path: &str, tool: &str, args: &[&str]) -> Command {
    let mut c = t.program(format!("{CHEAP}-{tool}"), args);
    c.env("PATH", path).env_remove("TMPDIR");
    c
}

/// This test's recorded sessions (`sessions list` also shows the session
/// containers of the engine it has no record of, other tests' among them).
fn own_sessions(t: &T) -> Vec<serde_json::Value> {
    t.sessions()
        .into_iter()
        .filter(|s| s["orphaned"] != serde_json::Value::Bool(true))
        .collect()
}

/// Compile once (starting a session); returns the session's record.
fn start_session(t: &T, path: &str) -> serde_json::Value {
    let o = ok(tool(t, path, "gcc", &["-c", "a.c"]));
    assert_eq!(stderr(&o), "");
    let s = own_sessions(t);
    assert_eq!(s.len(), 1, "{s:?}");
    s[0].clone()
}

fn container_of(session: &serde_json::Value) -> String {
    session["container"].as_str().unwrap().to_string()
}

fn running(t: &T, name: &str) -> bool {
    let o = out(t.engine(["ps", "-q", "--filter", &format!("name={name}")]));
    !stdout(&o).trim().is_empty()
}

/// Whether the container exists in any state.
fn exists(t: &T, name: &str) -> bool {
    let o = out(t.engine(["ps", "-a", "-q", "--filter", &format!("name={name}")]));
    !stdout(&o).trim().is_empty()
}

fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out ({limit:?}) waiting for {what}");
}

/// Sends `"Status"` to the agent socket in the folder given as argument and
/// prints REPLY <json>, CLOSED or SILENT.
const STATUS_CLIENT: &str = r#"
import os, socket, struct, sys
os.chdir(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect("agent.sock")
body = b'"Status"'
def read(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
try:
    s.sendall(struct.pack("<I", len(body)) + body)
    head = read(4)
    reply = head and read(struct.unpack("<I", head)[0])
except socket.timeout:
    print("SILENT")
    sys.exit(0)
except OSError:
    reply = None
print("REPLY " + reply.decode() if reply else "CLOSED")
"#;

/// Ask the agent whose socket is in `dir` for its status, as root or as
/// the test user.
fn raw_status(dir: &Path, as_tester: bool) -> String {
    let py = python3();
    let mut c = if as_tester {
        let mut c = Command::new("runuser");
        c.args(["-u", TESTER, "--", py]);
        c
    } else {
        Command::new(py)
    };
    c.args(["-c", STATUS_CLIENT]).arg(dir).stdin(Stdio::null());
    let o = ok(c);
    stdout(&o).trim().to_string()
}

/// Modes changed for a test, put back however it ends.
struct Loosened(Vec<(PathBuf, u32)>);

impl Loosened {
    fn set(&mut self, path: &Path, mode: u32) {
        let old = std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        self.0.push((path.to_path_buf(), old));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for Loosened {
    fn drop(&mut self) {
        for (p, mode) in self.0.iter().rev() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode));
        }
    }
}

/// With the private folder opened up (a broken first wall), another user
/// reaches the socket but the agent serves it nothing; root still gets
/// answers.
fn agent_refuses_other_users(eng: Eng) {
    let (t, path) = setup(eng, "agent-peer");
    let session = start_session(&t, &path);
    let runtime = t.dir.join("runtime");
    let sdir = runtime
        .join("sessions")
        .join(session["id"].as_str().unwrap());
    let mut loose = Loosened(Vec::new());
    for d in [&t.dir, &runtime, &runtime.join("sessions"), &sdir] {
        loose.set(d, 0o755);
    }
    loose.set(&sdir.join("agent.sock"), 0o777);
    let other = raw_status(&sdir, true);
    assert_eq!(other, "CLOSED", "the agent answered another user");
    let mine = raw_status(&sdir, false);
    assert!(mine.starts_with("REPLY {\"Status\""), "{mine}");
    drop(loose);
    // Still serving calls.
    ok(tool(&t, &path, "gcc", &["-c", "a.c"]));
    assert!(own_sessions(&t)[0]["calls"].as_u64().unwrap() >= 2);
}

/// What the container's /tmp holds.
fn tmp_listing(t: &T, container: &str) -> String {
    let o = ok(t.engine(["exec", container, "ls", "-A", "/tmp"]));
    stdout(&o)
}

/// A call killed with SIGKILL (its compiler killed by the agent) leaves no
/// temporary files in the container: each call has its own TMPDIR, removed
/// when it ends, on the session's tmpfs, where a script it writes can run.
fn killed_call_leaves_no_temp_files(eng: Eng) {
    let (t, path) = setup(eng, "agent-tmp");
    let container = container_of(&start_session(&t, &path));
    let before = tmp_listing(&t, &container);
    // An ordinary call sees a private folder, gone when it returns.
    let o = ok(tool(&t, &path, "sh", &["-c", "echo $TMPDIR; mktemp"]));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert!(lines[0].starts_with("/tmp/"), "{lines:?}");
    assert!(lines[1].starts_with(&format!("{}/", lines[0])), "{lines:?}");
    assert_eq!(tmp_listing(&t, &container), before);
    // On a tmpfs of the session's own, where a script the call writes runs.
    let fs = ok(t.engine(["exec", &container, "stat", "-f", "-c", "%T", "/tmp"]));
    assert_eq!(stdout(&fs).trim(), "tmpfs");
    let run_own = "printf '#!/bin/sh\\necho ran\\n' >\"$TMPDIR/x\" && chmod +x \"$TMPDIR/x\" && \"$TMPDIR/x\"";
    assert_eq!(
        stdout(&ok(tool(&t, &path, "sh", &["-c", run_own]))).trim(),
        "ran"
    );

    let script = "mktemp -t qcc-marker.XXXXXX && gcc -x c -c - -o /dev/null </dev/null && \
                  exec sleep 60";
    let mut child = tool(&t, &path, "sh", &["-c", script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let find = ["exec", &container, "find", "/tmp", "-name", "qcc-marker.*"];
    eventually("the call to make its file", Duration::from_secs(30), || {
        !stdout(&out(t.engine(find))).trim().is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    eventually(
        "the call's temporary files to go",
        Duration::from_secs(5),
        || tmp_listing(&t, &container) == before,
    );
    // The session lives on.
    assert!(running(&t, &container));
    ok(tool(&t, &path, "gcc", &["-c", "a.c"]));
}

/// `rm -rf` of the runtime folder leaves no session container behind: the
/// agent sees its socket gone and exits.
fn agent_exits_when_runtime_dir_removed(eng: Eng) {
    let (t, path) = setup(eng, "agent-rmrf");
    let container = container_of(&start_session(&t, &path));
    assert!(running(&t, &container));
    let runtime = t.dir.join("runtime");
    std::fs::remove_dir_all(&runtime).unwrap();
    eventually("the container to end", Duration::from_secs(5), || {
        !running(&t, &container)
    });
    eventually(
        "the container to be removed",
        Duration::from_secs(10),
        || !exists(&t, &container),
    );
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The next call starts another session.
    ok(tool(&t, &path, "gcc", &["-c", "a.c"]));
    let s = own_sessions(&t);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_ne!(container_of(&s[0]), container);
}

/// A container paused by the test: unpaused and removed if the tool left
/// it.
struct Paused<'a>(&'a T, String);

impl Paused<'_> {
    fn new(t: &T, container: String) -> Paused<'_> {
        ok(t.engine(["pause", &container]));
        Paused(t, container)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if exists(self.0, &self.1) {
            let _ = out(self.0.engine(["unpause", &self.1]));
            let _ = out(self.0.engine(["rm", "-f", &self.1]));
        }
    }
}

/// Time `cmd`, requiring success.
fn timed(cmd: Command) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let o = ok(cmd);
    (o, start.elapsed())
}

/// A paused session container completes connects from its listen backlog
/// but never answers: calls give it up within about a second and fall
/// back; its container is removed. `sessions list` and `sessions stop`
/// give it up as quickly.
fn frozen_agent_is_given_up_quickly(eng: Eng) {
    let (t, path) = setup(eng, "agent-frozen");
    let first = container_of(&start_session(&t, &path));
    let frozen = Paused::new(&t, first.clone());
    let (o, took) = timed(tool(&t, &path, "gcc", &["-c", "a.c"]));
    assert!(took < Duration::from_secs(10), "the compile took {took:?}");
    assert_eq!(stderr(&o), "");
    assert!(t.work().join("a.o").exists());
    assert!(!exists(&t, &first), "the frozen container was left behind");
    drop(frozen);

    // `sessions list` and `sessions stop` do not wait on a frozen agent
    // (stopped by image: `--all` would end other tests' sessions too).
    let image = t.tag("cheap");
    for action in [["list", "--json"], ["stop", &image]] {
        let s = own_sessions(&t);
        let container = match s.first() {
            Some(s) => container_of(s),
            None => container_of(&start_session(&t, &path)),
        };
        let frozen = Paused::new(&t, container.clone());
        let (o, took) = timed(t.qcc(["sessions"].iter().chain(&action)));
        assert!(took < Duration::from_secs(8), "{action:?} took {took:?}");
        assert!(!stdout(&o).contains(&container), "{}", stdout(&o));
        assert!(!exists(&t, &container), "{action:?} left it behind");
        drop(frozen);
    }
}

/// The host pid of the serving agent of a session container: the child of
/// the container's PID 1 (which only reaps).
fn agent_pid(t: &T, container: &str) -> i32 {
    let o = ok(t.engine(["inspect", "--format", "{{.State.Pid}}", container]));
    let init: i32 = stdout(&o).trim().parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    let kids: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(kids.len(), 1, "PID 1 of {container} has children {kids:?}");
    kids[0]
}

/// The number of threads of a host process.
fn threads(pid: i32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The session container's PID 1 forks the agent before any thread exists
/// (a fork in a threaded process leaves the child with locks held by
/// threads it does not have): PID 1 never starts one, and stays a single
/// thread for the session's life, while the agent has its own.
fn agent_forks_before_any_thread(eng: Eng) {
    let (t, path) = setup(eng, "agent-fork");
    let container = container_of(&start_session(&t, &path));
    let o = ok(t.engine(["inspect", "--format", "{{.State.Pid}}", &container]));
    let init: i32 = stdout(&o).trim().parse().unwrap();
    assert_eq!(threads(init), 1, "PID 1 of the session runs threads");
    assert!(threads(agent_pid(&t, &container)) > 1);
    ok(tool(&t, &path, "gcc", &["-c", "a.c"]));
    assert_eq!(threads(init), 1);
}

/// A process stopped with SIGSTOP by the test, continued however it ends.
struct Stopped(i32);

impl Stopped {
    /// Stops the process and waits until every one of its threads is
    /// stopped: `kill -STOP` returns before they all are, and a thread still
    /// running could accept the next request, answer it, and only then stop,
    /// which is not the "agent stopped before the request" this sets up.
    fn new(pid: i32) -> Stopped {
        ok(Command::new("kill").args(["-STOP", &pid.to_string()]));
        let stopped = Stopped(pid);
        eventually(
            "the agent's threads to stop",
            Duration::from_secs(60),
            || all_threads_stopped(pid),
        );
        stopped
    }
}

/// Whether every thread of `pid` is in state T (stopped) or t (traced).
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            return false;
        };
        // The state is the first field after the command, which is in
        // parentheses and may itself hold spaces or parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        if !matches!(rest.trim_start().chars().next(), Some('T' | 't')) {
            return false;
        }
        any = true;
    }
    any
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// A C file whose `-O2` compile takes a few seconds.
fn slow_source() -> String {
    let mut src = String::from("int sink;\n");
    for i in 0..400 {
        src.push_str(&format!(
            "int f{i}(int *a, int n) {{ int s = {i}; for (int j = 0; j < n; j++) \
             {{ s += a[j] * {i} + (s >> 3); if (s & 1) s ^= a[(j + {i}) % n]; }} \
             for (int k = 0; k < 16; k++) s += (s * k) ^ a[k]; return s; }}\n"
        ));
    }
    src
}

/// A session whose agent is only slow (stopped for 4 s, as on a loaded
/// machine) keeps the compile it runs: a second compile whose run request
/// times out runs one-shot and leaves the session alone, and the first one
/// ends with status 0 and a correct object.
fn slow_session_keeps_its_calls(eng: Eng) {
    slow_session(eng, "agent-slow", false);
}

/// The same, when the engine's inspect of the session's container fails
/// (here: an engine that says its store is locked, as podman does now and
/// then under load): a state it cannot tell retires nothing.
fn slow_session_is_kept_when_the_engine_cannot_tell(eng: Eng) {
    slow_session(eng, "agent-slow-unknown", true);
}

fn slow_session(eng: Eng, name: &str, inspect_fails: bool) {
    let (t, shims) = setup(eng, name);
    let tried = t.dir.join("inspect-tried");
    let path = if inspect_fails {
        let fail = format!(
            "case \"$1 $2\" in 'container inspect') : > {f}; \
             echo 'Error: database is locked' >&2; exit 125;; esac",
            f = tried.display()
        );
        t.wrapped_engine(eng.prog()[0], &fail, &shims)
    } else {
        shims
    };
    let container = container_of(&start_session(&t, &path));
    t.write("work/big.c", slow_source());
    let first = tool(&t, &path, "gcc", &["-O2", "-c", "big.c", "-o", "first.o"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(
        "the first compile to run in the session",
        Duration::from_secs(20),
        || own_sessions(&t)[0]["active"].as_u64() == Some(1),
    );
    let stopped = Stopped::new(agent_pid(&t, &container));
    let since = Instant::now();
    let mut second = tool(&t, &path, "gcc", &["-O2", "-c", "big.c", "-o", "second.o"])
        .env("QEMU_CROSS_CC_DEBUG", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped until the second compile has ended (however long a loaded
    // machine takes to start it), and for longer than a run request's
    // answer limit plus the shutdown request's: a caller that took the slow
    // session for a dead one would have removed its container by then. Its
    // exit, not its output's end: the descriptors it sent with its request
    // stay open in the stopped agent's queue until the agent takes them.
    eventually(
        "the second compile to end",
        Duration::from_secs(300),
        || second.try_wait().unwrap().is_some(),
    );
    std::thread::sleep(Duration::from_secs(4).saturating_sub(since.elapsed()));
    drop(stopped);
    let second = second.wait_with_output().unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("slow to answer"),
        "the second compile did not find the session slow: {}",
        stderr(&second)
    );
    if inspect_fails {
        assert!(tried.exists(), "the engine was not asked");
        assert!(
            stderr(&second).contains("database is locked"),
            "{}",
            stderr(&second)
        );
    }
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "the first compile was killed: {}",
        stderr(&first)
    );
    let a = std::fs::read(t.work().join("first.o")).unwrap();
    let b = std::fs::read(t.work().join("second.o")).unwrap();
    assert!(a.starts_with(b"\x7fELF") && a == b, "the objects differ");
    // The session lives on and serves again.
    assert!(running(&t, &container));
    ok(tool(&t, &path, "gcc", &["-c", "a.c"]));
    let s = own_sessions(&t);
    assert_eq!(container_of(&s[0]), container);
    assert_eq!(s[0]["calls"].as_u64(), Some(3), "{s:?}");
}

/// Connect to `sock` without blocking: None when the listener's backlog
/// is full.
fn connect_nonblocking(sock: &Path) -> Option<std::os::unix::net::UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    match connect(fd.as_raw_fd(), &UnixAddr::new(sock).unwrap()) {
        Ok(()) => Some(fd.into()),
        Err(nix::errno::Errno::EAGAIN) => None,
        Err(e) => panic!("connect {}: {e}", sock.display()),
    }
}

/// The session folder (with its agent's socket) of a session.
fn session_dir(t: &T, session: &serde_json::Value) -> PathBuf {
    t.dir
        .join("runtime/sessions")
        .join(session["id"].as_str().unwrap())
}

/// A frozen agent whose listen backlog is full makes a blocking connect
/// wait forever: the call connects without blocking, gives the session up
/// within the answer's limit and falls back.
fn frozen_agent_with_a_full_backlog_is_given_up(eng: Eng) {
    let (t, path) = setup(eng, "agent-backlog");
    let session = start_session(&t, &path);
    let container = container_of(&session);
    let sock = session_dir(&t, &session).join("agent.sock");
    let hard = raise_open_files();
    let frozen = Paused::new(&t, container.clone());
    let mut held = Vec::new();
    while let Some(c) = connect_nonblocking(&sock) {
        held.push(c);
        assert!(
            (held.len() as u64) < hard.saturating_sub(64),
            "the backlog never filled ({} connections)",
            held.len()
        );
    }
    let mut cmd = tool(&t, &path, "gcc", &["-c", "a.c", "-o", "b.o"]);
    let (o, took) = timed_within(&mut cmd, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(took < Duration::from_secs(10), "the compile took {took:?}");
    assert!(t.work().join("b.o").exists());
    assert!(
        !exists(&t, &container),
        "the frozen container was left behind"
    );
    drop(held);
    drop(frozen);
}

/// Raise this process's limit of open files to its hard limit (filling
/// a listen backlog takes thousands of connections); returns it.
fn raise_open_files() -> u64 {
    let mut lim = nix::libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_max
}

/// Run `cmd` in a process group of its own, killing the group after
/// `limit` (a hang fails the test instead of stalling the run).
fn timed_within(cmd: &mut Command, limit: Duration) -> (std::process::Output, Duration) {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let o = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr: {}",
                stderr(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    (child.wait_with_output().unwrap(), took)
}

/// Read one frame's body, waiting at most `limit`: None for silence,
/// Some("") for the end of the stream.
fn read_frame(c: &mut std::os::unix::net::UnixStream, limit: Duration) -> Option<String> {
    use std::io::Read;
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut head = [0u8; 4];
    // A signal to the test process (a child ending) can interrupt the wait.
    let first = loop {
        match c.read(&mut head[..1]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r,
        }
    };
    match first {
        Ok(0) => return Some(String::new()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(String::new()),
        Err(e) => panic!("read: {e}"),
    }
    c.read_exact(&mut head[1..]).unwrap();
    let mut body = vec![0u8; u32::from_le_bytes(head) as usize];
    c.read_exact(&mut body).unwrap();
    Some(String::from_utf8(body).unwrap())
}

/// Callers that connect and say nothing hold no thread for long, and only
/// so many at once: beyond the agent's limit a connection is told `Busy`
/// (and a compile then runs one-shot), and silent connections are closed
/// after the request time limit. The session serves on.
fn idle_connections_are_bounded_and_timed_out(eng: Eng) {
    let (t, path) = setup(eng, "agent-bounded");
    let session = start_session(&t, &path);
    let container = container_of(&session);
    let sock = session_dir(&t, &session).join("agent.sock");
    let mut held: Vec<_> = (0..300)
        .map(|_| std::os::unix::net::UnixStream::connect(&sock).unwrap())
        .collect();
    // Connections are taken in order: the last ones are over the limit.
    let mut busy = 0;
    for c in held.iter_mut().rev().take(44) {
        match read_frame(c, Duration::from_secs(5)).as_deref() {
            Some("\"Busy\"") => busy += 1,
            other => panic!("a connection over the limit got {other:?}"),
        }
    }
    assert_eq!(busy, 44);
    assert_eq!(read_frame(&mut held[0], Duration::from_millis(500)), None);
    // A compile now finds the session busy and runs one-shot.
    let o =
        ok(tool(&t, &path, "gcc", &["-c", "a.c", "-o", "busy.o"]).env("QEMU_CROSS_CC_DEBUG", "1"));
    assert!(t.work().join("busy.o").exists());
    assert!(
        stderr(&o).contains("runs as many calls as it takes") && !stderr(&o).contains("error"),
        "{}",
        stderr(&o)
    );
    // The silent ones are closed after the request limit (10 s).
    let start = Instant::now();
    for c in held.iter_mut().take(256) {
        assert_eq!(
            read_frame(c, Duration::from_secs(20)).as_deref(),
            Some(""),
            "a silent connection was kept open"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(20));
    drop(held);
    ok(tool(&t, &path, "gcc", &["-c", "a.c"]));
    let s = own_sessions(&t);
    assert_eq!(container_of(&s[0]), container, "the session was replaced");
}

/// `-MF /dev/stdout` into a pipe: the depfile reaches the pipe and the
/// compile returns, in a session and one-shot (the depfile is never read
/// back from the caller's stream).
fn depfile_on_a_pipe_does_not_hang(eng: Eng) {
    let (t, path) = setup(eng, "depfile-pipe");
    for session in ["1", "0"] {
        let script = format!("{CHEAP}-gcc -MD -MF /dev/stdout -c a.c -o a.o | cat");
        let mut cmd = t.program("sh", ["-c", &script]);
        cmd.env("PATH", &path).env("QEMU_CROSS_CC_SESSION", session);
        let (o, _) = timed_within(&mut cmd, Duration::from_secs(60));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).starts_with("a.o: a.c"), "{}", stdout(&o));
    }
}
