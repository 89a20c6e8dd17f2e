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
/// when it ends.
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
