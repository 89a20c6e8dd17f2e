//! Nothing is left behind when things go wrong: a session whose record
//! cannot be written (a full runtime folder) removes its container, a
//! session whose record was lost is still found by its labels, and callers
//! killed with SIGKILL between the engine's create and start leave no
//! container in state Created for good.
//!
//! Every test uses its own image (`t.tag`), so its containers are found with
//! `ps -a --filter ancestor=IMAGE` and nothing else is looked at.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "full_runtime_dir_leaves_no_session",
        full_runtime_dir_leaves_no_session,
        Mode::Shared,
    ),
    (
        "lost_record_session_is_found_by_label",
        lost_record_session_is_found_by_label,
        Mode::Shared,
    ),
    (
        "sigkill_to_group_leaves_no_created_container",
        sigkill_to_group_leaves_no_created_container,
        Mode::Shared,
    ),
    (
        "sigkill_to_group_leaves_no_created_container_as_user",
        sigkill_to_group_leaves_no_created_container_as_user,
        Mode::Shared,
    ),
    (
        "a_call_sweeps_created_orphans",
        a_call_sweeps_created_orphans,
        Mode::Shared,
    ),
];

/// A target name of this run and engine only (the session containers'
/// target label is then this test's own).
fn target(t: &T) -> String {
    format!("qcc{}{}-linux-gnu", run().id, t.eng.name())
}

/// `TARGET-TOOL args...` through the shims, without the caller's TMPDIR.
fn tool(t: &T, path: &str, target: &str, tool: &str, args: &[&str]) -> Command {
    let mut c = t.program(format!("{target}-{tool}"), args);
    c.env("PATH", path).env_remove("TMPDIR");
    c
}

/// The containers of `image`, in any state: (id, state). podman 4 wants
/// the image's full name in the filter, and prints a status ("Up 2
/// seconds") as the state of a running container.
fn containers_of(t: &T, image: &str) -> Vec<(String, String)> {
    let name = match t.eng {
        Eng::Docker | Eng::SudoDocker => image.to_string(),
        Eng::Podman => format!("localhost/{image}"),
    };
    let o = ok(t.engine([
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("ancestor={name}"),
        "--format",
        "{{.ID}} {{.State}}",
    ]));
    stdout(&o)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (id, state) = (w.next()?, w.next()?.to_lowercase());
            let state = if state == "up" {
                "running".into()
            } else {
                state
            };
            Some((id.to_string(), state))
        })
        .collect()
}

/// No container of `image` within `limit`, in any state.
fn no_containers_left(t: &T, image: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = containers_of(t, image);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("containers of {image} left behind after {limit:?}: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// A full runtime folder.

/// A small tmpfs mounted for the test, unmounted when dropped (a failing
/// assertion too).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mode 0700: a tmpfs root is 1777 by default, which the tool rightly
    /// refuses as a runtime folder (other users can write to it).
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir));
        Tmpfs(dir.to_path_buf())
    }

    /// Fill it with one file until the file system refuses more.
    fn fill(&self) -> u64 {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        let mut n = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.0.display()),
            }
        }
        n
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let st = Command::new("umount").arg(&self.0).status();
        if !st.is_ok_and(|s| s.success()) {
            // Still busy (a container holding a bind mount of it): detach.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Every file below `dir` (relative names), folders included.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// The session starts its container, then cannot write its record (no
/// space left): the container must be removed, the call must still succeed
/// (one-shot), silently, and no temporary file may stay behind.
fn full_runtime_dir_leaves_no_session(eng: Eng) {
    let t = T::new(eng, "leak-full", false);
    let target = target(&t);
    let image = t.cheap_plugin(&target);
    let path = t.shims(&[&target]);
    t.write("work/a.c", "int a;\n");
    // Build the image first (in the normal runtime folder).
    ok(tool(&t, &path, &target, "gcc", &["-c", "a.c"]).env("QEMU_CROSS_CC_SESSION", "0"));
    no_containers_left(&t, &image, Duration::from_secs(10));

    let rt = t.dir.join("full");
    let fs = Tmpfs::mount(&rt, "64k");
    let filled = fs.fill();
    assert!(filled > 0, "nothing written to the tmpfs");
    let since = Instant::now();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for round in 0..4 {
        let debug = round == 3;
        let mut c = tool(&t, &path, &target, "gcc", &["-c", "a.c", "-o", "a.o"]);
        c.env("QEMU_CROSS_CC_RUNTIME_DIR", &rt);
        if debug {
            c.env("QEMU_CROSS_CC_DEBUG", "1");
        }
        let _ = std::fs::remove_file(t.work().join("a.o"));
        let o = ok(c);
        assert!(t.work().join("a.o").exists(), "round {round}: no a.o");
        if debug {
            // The session path got as far as the record, failed there, and
            // the call fell back to one-shot.
            let e = stderr(&o);
            assert!(
                e.contains("no session") && e.contains("running one-shot"),
                "round {round}: no fallback reported: {e}"
            );
            assert!(
                e.contains("/sessions/") && e.contains("No space left"),
                "round {round}: the session failed elsewhere than at its record: {e}"
            );
            eprintln!("{eng}::full_runtime_dir_leaves_no_session: {}", e.trim());
        } else {
            assert_eq!(stderr(&o), "", "round {round}");
        }
    }
    no_containers_left(&t, &image, Duration::from_secs(10));
    // The session containers really were started (and then removed).
    let until = started + since.elapsed().as_secs() + 2;
    let format = match eng {
        Eng::Docker | Eng::SudoDocker => "{{.Actor.Attributes.name}} {{.Actor.Attributes.image}}",
        Eng::Podman => "{{.Name}} {{.Image}}",
    };
    let ev = out(t.engine([
        "events",
        "--since",
        &started.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "event=start",
        "--format",
        format,
    ]));
    if ev.status.success() {
        let starts = stdout(&ev);
        let sessions = starts
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(name, img)| {
                name.starts_with("qemu-cross-cc-session-")
                    && img.trim_start_matches("localhost/").split(':').next() == Some(&image)
            })
            .count();
        eprintln!(
            "{eng}::full_runtime_dir_leaves_no_session: {sessions} session containers started, all removed"
        );
        assert!(sessions >= 1, "no session container was started: {starts}");
    }
    let files = tree(&rt);
    let temps: Vec<&String> = files
        .iter()
        .filter(|f| {
            let base = f.rsplit('/').next().unwrap();
            base.starts_with(".tmp") || base.contains(".tmp")
        })
        .collect();
    assert!(temps.is_empty(), "temporary files left: {files:?}");
    let sessions: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("sessions/") && !f["sessions/".len()..].starts_with('.'))
        .collect();
    assert!(sessions.is_empty(), "session folders left: {files:?}");
    drop(fs);
}

// ---------------------------------------------------------------------------
// A lost record.

/// This test's recorded sessions (not the orphaned entries).
fn own_sessions(t: &T) -> Vec<serde_json::Value> {
    t.sessions()
        .into_iter()
        .filter(|s| s["orphaned"] != serde_json::Value::Bool(true))
        .collect()
}

fn lost_record_session_is_found_by_label(eng: Eng) {
    let test = "lost_record_session_is_found_by_label";
    let t = T::new(eng, "leak-lost", false);
    let target = target(&t);
    let image = t.cheap_plugin(&target);
    let path = t.shims(&[&target]);
    t.write("work/a.c", "int a;\n");

    // A corrupt record (still the user's own private file).
    ok(tool(&t, &path, &target, "gcc", &["-c", "a.c"]));
    let s = own_sessions(&t);
    assert_eq!(s.len(), 1, "{s:?}");
    let id = s[0]["id"].as_str().unwrap().to_string();
    let container = s[0]["container"].as_str().unwrap().to_string();
    assert!(
        containers_of(&t, &image)
            .iter()
            .any(|(_, st)| st == "running")
    );
    let record = t.dir.join(format!("runtime/sessions/{id}/record.json"));
    let before = std::fs::metadata(&record).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&record)
        .unwrap();
    f.write_all(b"{\"id\": garbage\x00\xff").unwrap();
    drop(f);
    let after = std::fs::metadata(&record).unwrap();
    assert_eq!(
        (after.uid(), after.mode() & 0o7777),
        (before.uid(), 0o600),
        "the record must stay a private file of the user"
    );
    // The next call that reads the records removes the corrupt one with
    // its folder, and the agent, its socket gone, ends the container.
    let corrupted = Instant::now();
    assert!(own_sessions(&t).is_empty());
    assert!(
        !record.parent().unwrap().exists(),
        "the corrupt record was left"
    );
    ends_by_itself_or_is_found(&t, &image, &container, corrupted);

    // The whole runtime folder removed: the container ends either way
    // (its agent exits by itself, or `sessions stop` finds it by label).
    ok(tool(&t, &path, &target, "gcc", &["-c", "a.c"]));
    let s = own_sessions(&t);
    assert_eq!(s.len(), 1, "{s:?}");
    let container = s[0]["container"].as_str().unwrap().to_string();
    assert!(
        containers_of(&t, &image)
            .iter()
            .any(|(_, st)| st == "running")
    );
    let runtime = t.dir.join("runtime");
    ok(Command::new("rm").arg("-rf").arg(&runtime));
    let removed = Instant::now();
    let how = ends_by_itself_or_is_found(&t, &image, &container, removed);
    eprintln!(
        "{eng}::{test}: after rm -rf of the runtime folder the container was gone in {:?} ({how})",
        removed.elapsed(),
    );
}

/// A session container whose socket folder went away (since `since`) ends
/// by itself within 5 s (its agent exits), or else is listed as orphaned
/// (found by its labels) and ended by `sessions stop`; either way it is
/// gone within 10 s. Says which.
fn ends_by_itself_or_is_found(t: &T, image: &str, container: &str, since: Instant) -> &'static str {
    let by_itself = {
        let deadline = since + Duration::from_secs(5);
        loop {
            if containers_of(t, image).is_empty() {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    if !by_itself {
        // `sessions` makes the runtime folder again; the container is found
        // by its labels.
        let listed = t.sessions();
        assert!(
            listed
                .iter()
                .any(|e| e["container"].as_str() == Some(container)
                    && e["orphaned"] == serde_json::Value::Bool(true)),
            "{container} not listed as orphaned: {listed:#?}"
        );
        let o = ok(t.qcc(["sessions", "list"]));
        assert!(
            stdout(&o)
                .lines()
                .any(|l| l.contains(container) && l.contains("record lost")),
            "{}",
            stdout(&o)
        );
        ok(t.qcc(["sessions", "stop", "--all"]));
    }
    let limit = Duration::from_secs(10).saturating_sub(since.elapsed());
    no_containers_left(t, image, limit.max(Duration::from_secs(1)));
    if by_itself {
        "its agent exited by itself"
    } else {
        "removed by sessions stop"
    }
}

// ---------------------------------------------------------------------------
// SIGKILL to the caller's process group.

fn sigkill_trials(t: &T, trials: u32, test: &str) {
    let target = target(t);
    let image = t.cheap_plugin(&target);
    let path = t.shims(&[&target]);
    // Build the image first: the kills are for the container's start.
    ok(tool(t, &path, &target, "sh", &["-c", "true"]));
    no_containers_left(t, &image, Duration::from_secs(20));
    // How long a whole call takes here: the kills are spread over 0-600 ms,
    // or over that time when it is longer (rootless podman), so that some
    // land between the engine's create and start.
    let timed = Instant::now();
    ok(tool(t, &path, &target, "sh", &["-c", "true"]));
    let span = timed.elapsed().max(Duration::from_millis(600));
    no_containers_left(t, &image, Duration::from_secs(20));

    let mut seen_created = BTreeSet::new();
    let mut states_after = Vec::new();
    for i in 0..trials {
        let delay = span * i / (trials - 1).max(1);
        let mut child = tool(t, &path, &target, "sh", &["-c", "sleep 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
        let _ = child.wait();
        // Let the engine finish whatever it was doing for the dead client.
        std::thread::sleep(Duration::from_millis(500));
        let now = containers_of(t, &image);
        for (id, state) in &now {
            if state == "created" || state == "configured" || state == "initialized" {
                seen_created.insert(id.clone());
            }
        }
        states_after.push(format!(
            "{}ms:{}",
            delay.as_millis(),
            now.iter()
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join("+")
        ));
    }
    let before: Vec<(String, String)> = containers_of(t, &image);
    let before_created = before
        .iter()
        .filter(|(_, s)| s != "running" && s != "exited" && s != "removing")
        .count();
    // One `sessions list` sweeps the Created ones; the running ones end by
    // themselves (`sleep 1`, `--rm`).
    ok(t.qcc(["sessions", "list"]));
    let after_sweep = containers_of(t, &image);
    eprintln!(
        "{}::{test}: {trials} trials/kills over {span:?} (delay:states after each: {}); \
         {} distinct containers seen left in Created; before the sweep {} containers ({} not running: {:?}); right after it {}",
        t.eng,
        states_after.join(" "),
        seen_created.len(),
        before.len(),
        before_created,
        before,
        after_sweep.len(),
    );
    no_containers_left(t, &image, Duration::from_secs(20));
}

fn sigkill_to_group_leaves_no_created_container(eng: Eng) {
    let mut t = T::new(eng, "leak-kill", false);
    t.env.push(("QEMU_CROSS_CC_SESSION".into(), "0".into()));
    t.env.push(("QEMU_CROSS_CC_ENGINE_TTL".into(), "0".into()));
    sigkill_trials(&t, 12, "sigkill_to_group_leaves_no_created_container");
}

/// As the unprivileged user (docker through its group, rootless podman).
fn sigkill_to_group_leaves_no_created_container_as_user(eng: Eng) {
    let mut t = T::new(eng, "leak-kill", true);
    t.env.push(("QEMU_CROSS_CC_SESSION".into(), "0".into()));
    t.env.push(("QEMU_CROSS_CC_ENGINE_TTL".into(), "0".into()));
    sigkill_trials(
        &t,
        4,
        "sigkill_to_group_leaves_no_created_container_as_user",
    );
}

/// `boot id:pid namespace:pid:start time` of a live process, as the tool
/// labels the containers it makes.
fn identity(pid: u32) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    let ns = ns.to_string_lossy();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    format!(
        "{}:{}:{pid}:{start}",
        boot.trim(),
        ns.trim_start_matches("pid:[").trim_end_matches(']')
    )
}

/// A container left in state Created by a caller that is gone is removed
/// by the next compile once a sweep is due (here at once, and with the
/// engine's facts expired: with docker the sweep's list runs beside the
/// probe); one whose maker still runs is kept.
fn a_call_sweeps_created_orphans(eng: Eng) {
    let mut t = T::new(eng, "leak-sweep", false);
    t.env.push(("QEMU_CROSS_CC_SESSION".into(), "0".into()));
    let target = target(&t);
    let image = t.cheap_plugin(&target);
    let path = t.shims(&[&target]);
    ok(tool(&t, &path, &target, "sh", &["-c", "true"]));
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let gone = identity(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    let alive = identity(std::process::id());
    let uid = nix::unistd::getuid().as_raw();
    let create = |owner: &str| {
        let o = ok(t.engine([
            "create",
            "--label",
            &format!("com.qemu-cross-cc.uid={uid}"),
            "--label",
            &format!("com.qemu-cross-cc.owner={owner}"),
            &image,
            "true",
        ]));
        stdout(&o).trim().to_string()
    };
    let orphan = create(&gone);
    let kept = create(&alive);
    let ids = |t: &T| -> Vec<String> {
        containers_of(t, &image)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    assert!(ids(&t).contains(&orphan), "{:?}", containers_of(&t, &image));
    t.env.push(("QEMU_CROSS_CC_ENGINE_TTL".into(), "0".into()));
    t.env
        .push(("QEMU_CROSS_CC_SWEEP_INTERVAL".into(), "0".into()));
    ok(tool(&t, &path, &target, "sh", &["-c", "true"]));
    let left = ids(&t);
    // The orphan too, in case it was not swept (an error when it was).
    let _ = out(t.engine(["rm", "-f", &kept, &orphan]));
    assert!(!left.contains(&orphan), "{orphan} not swept: {left:?}");
    assert!(
        left.contains(&kept),
        "{kept} (its maker runs) swept: {left:?}"
    );
}
