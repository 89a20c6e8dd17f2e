//! Shared machinery of the engine tests: the test run (its id, scratch root
//! and a copy of the binary every user can execute), per-test contexts, the
//! fixture images, and clean-up of everything the run created.
//!
//! Everything a run creates carries its id: images and containers are named
//! `qcc-test-<run>-...` and labelled `qcc-test-run=<run>`, and only those are
//! removed at the end.

#![allow(dead_code)]

use std::borrow::BorrowMut;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The unprivileged user made by tests/setup-engines.sh.
pub const TESTER: &str = "qcc-tester";

/// The second unprivileged user made by tests/setup-engines.sh: outside the
/// docker group, allowed `sudo -n docker` (the docker client, nothing else).
pub const SUDOER: &str = "qcc-sudoer";

/// The registry started by tests/setup-engines.sh.
pub fn registry() -> String {
    format!(
        "127.0.0.1:{}",
        std::env::var("QCC_REGISTRY_PORT").unwrap_or_else(|_| "5000".into())
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Eng {
    Docker,
    Podman,
    /// `sudo -n docker`, as the user `SUDOER` (root's docker storage).
    SudoDocker,
}

impl fmt::Display for Eng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Eng {
    /// The engines every test runs for (`SudoDocker` runs a subset).
    pub const ALL: [Eng; 2] = [Eng::Docker, Eng::Podman];

    /// The name of the tests (`sudo-docker::x`) and of their scratch names.
    pub fn name(self) -> &'static str {
        match self {
            Eng::Docker => "docker",
            Eng::Podman => "podman",
            Eng::SudoDocker => "sudo-docker",
        }
    }

    /// What `--engine` / `QEMU_CROSS_CC_ENGINE` says for it: `docker` takes
    /// docker, then `sudo -n docker`.
    pub fn choice(self) -> &'static str {
        match self {
            Eng::Docker | Eng::SudoDocker => "docker",
            Eng::Podman => "podman",
        }
    }

    /// The engine command words.
    pub fn prog(self) -> &'static [&'static str] {
        match self {
            Eng::Docker => &["docker"],
            Eng::Podman => &["podman"],
            Eng::SudoDocker => &["sudo", "-n", "docker"],
        }
    }

    /// What `probe` prints for it.
    pub fn probe_name(self) -> &'static str {
        match self {
            Eng::Docker => "docker",
            Eng::Podman => "podman",
            Eng::SudoDocker => "sudo docker",
        }
    }
}

/// One test run.
pub struct Run {
    pub id: String,
    pub root: PathBuf,
    /// The binary, copied where the test user can run it.
    pub bin: PathBuf,
    pub repo: PathBuf,
}

pub fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let id = std::env::var("QCC_TEST_RUN").unwrap_or_else(|_| {
            let u = uuid::Uuid::new_v4().simple().to_string();
            u[..8].to_string()
        });
        let root = PathBuf::from(format!("/tmp/qcc-test-{id}"));
        std::fs::create_dir_all(root.join("bin")).expect("create the run root");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = root.join("bin/qemu-cross-cc");
        // `QCC_TEST_BIN` substitutes another build (e.g. an older one, to
        // show that a test catches what it was written for).
        let built = std::env::var("QCC_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_qemu-cross-cc").into());
        std::fs::copy(built, &bin).expect("copy the binary");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Run {
            id,
            root,
            bin,
            repo: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        }
    })
}

/// `id -u USER` (`-g` for the group).
fn user_id(user: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, user]).output().unwrap();
    assert!(
        out.status.success(),
        "user {user} is missing: run tests/setup-engines.sh"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

pub fn tester_uid() -> u32 {
    user_id(TESTER, "-u")
}

pub fn tester_gid() -> u32 {
    user_id(TESTER, "-g")
}

fn user_home(user: &str) -> String {
    let out = Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(':')
        .nth(5)
        .unwrap_or("/")
        .to_string()
}

/// The runtime dir rootless podman uses for a test user (as in
/// setup-engines.sh).
fn user_runtime(user: &str) -> String {
    let (uid, gid) = (user_id(user, "-u"), user_id(user, "-g"));
    let dir = format!("/tmp/qcc-runtime-{uid}");
    std::fs::create_dir_all(&dir).unwrap();
    chown(Path::new(&dir), uid, gid);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

pub fn chown_r(path: &Path, uid: u32, gid: u32) {
    chown(path, uid, gid);
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_r(&e.unwrap().path(), uid, gid);
        }
    }
}

/// Images and containers to remove at the end, per engine and user.
static CREATED: Mutex<Vec<(Eng, bool, String)>> = Mutex::new(Vec::new());

/// Every test context made, so that their sessions can be stopped.
static CONTEXTS: Mutex<Vec<(Eng, bool, PathBuf)>> = Mutex::new(Vec::new());

/// Stop the sessions every test context started (their containers would
/// otherwise idle for minutes after the run).
pub fn stop_all_sessions() {
    let all = CONTEXTS.lock().unwrap().clone();
    for (eng, tester, dir) in all {
        let t = T {
            eng,
            tester,
            dir,
            name: String::new(),
            env: Vec::new(),
        };
        let _ = out(t.qcc(["sessions", "stop", "--all"]));
    }
}

/// One test's context: the engine, whether it runs as the test user, a
/// scratch folder and unique names.
pub struct T {
    pub eng: Eng,
    /// Runs as an unprivileged user: `TESTER`, or `SUDOER` for
    /// `Eng::SudoDocker` (whose contexts always do).
    pub tester: bool,
    pub dir: PathBuf,
    pub name: String,
    /// Extra environment for the tool.
    pub env: Vec<(String, String)>,
}

impl T {
    pub fn new(eng: Eng, test: &str, tester: bool) -> T {
        let tester = tester || eng == Eng::SudoDocker;
        let run = run();
        let name = format!(
            "qcc-test-{}-{}-{}{}",
            run.id,
            test.replace('_', "-"),
            eng,
            if tester { "-u" } else { "" }
        );
        let dir = run.root.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for sub in ["config", "runtime", "work", "plugins", "bin"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::set_permissions(dir.join("runtime"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let t = T {
            eng,
            tester,
            dir,
            name,
            env: Vec::new(),
        };
        if tester {
            chown_r(&t.dir, t.uid(), t.gid());
        }
        CONTEXTS.lock().unwrap().push((eng, tester, t.dir.clone()));
        t
    }

    /// The user the tool and the engine client run as (None: root).
    pub fn user(&self) -> Option<&'static str> {
        match (self.tester, self.eng) {
            (false, _) => None,
            (true, Eng::SudoDocker) => Some(SUDOER),
            (true, _) => Some(TESTER),
        }
    }

    /// The pid of the tool started by `qcc` as `child`: the child itself,
    /// or the one child of `runuser` (which forks, and ends itself by a
    /// signal it was sent) when the context runs as a user.
    pub fn tool_pid(&self, child: &std::process::Child) -> i32 {
        if self.user().is_none() {
            return child.id() as i32;
        }
        let list = format!("/proc/{0}/task/{0}/children", child.id());
        let text = std::fs::read_to_string(&list).unwrap_or_default();
        let pids: Vec<i32> = text
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 1, "runuser's children: {text:?}");
        pids[0]
    }

    /// The uid of `user()` (0 for root).
    pub fn uid(&self) -> u32 {
        self.user().map_or(0, |u| user_id(u, "-u"))
    }

    /// The gid of `user()` (0 for root).
    pub fn gid(&self) -> u32 {
        self.user().map_or(0, |u| user_id(u, "-g"))
    }

    /// The folder tests compile in.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// A file in the scratch folder, owned by whoever runs the tool.
    pub fn write(&self, rel: &str, body: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        if self.tester {
            chown(&p, self.uid(), self.gid());
            chown(p.parent().unwrap(), self.uid(), self.gid());
        }
        p
    }

    /// The cache (build logs and locks) shared by the run's tests, so that
    /// tests needing the same image build it once.
    pub fn cache(&self) -> PathBuf {
        let dir = run().root.join(match self.user() {
            None => "cache",
            Some(TESTER) => "cache-tester",
            Some(_) => "cache-sudoer",
        });
        if !dir.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            if self.tester {
                chown(&dir, self.uid(), self.gid());
            }
        }
        dir
    }

    /// The folder of this test's plugins (QEMU_CROSS_CC_PLUGIN_PATH).
    pub fn plugins(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    /// A user plugin for `target` in `image`, built from `dockerfile` (a
    /// file written next to it), with `tools`.
    pub fn plugin(&self, target: &str, image: &str, dockerfile: &str, tools: &[(&str, &str)]) {
        let mut m = serde_json::json!({
            "target": target,
            "image": image,
            "dockerfile": format!("{target}.docker"),
            "qemu": "x86_64",
            "sysroot": "/",
            "tools": {},
        });
        for (k, v) in tools {
            m["tools"][*k] = serde_json::Value::from(*v);
        }
        self.write(
            &format!("plugins/{target}.json"),
            serde_json::to_string_pretty(&m).unwrap(),
        );
        self.write(&format!("plugins/{target}.docker"), dockerfile);
    }

    /// A copy of a built-in target's manifest whose image is this run's.
    pub fn builtin_plugin(&self, target: &str) -> serde_json::Value {
        let text =
            std::fs::read_to_string(run().repo.join(format!("plugins/{target}.json"))).unwrap();
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        let image = format!("qcc-test-{}-{target}", run().id);
        CREATED
            .lock()
            .unwrap()
            .push((self.eng, self.tester, image.clone()));
        m["image"] = serde_json::Value::from(image);
        // The floors' images are this run's too (`qcc-test-<run>-<target>-glibc2.31`).
        if let Some(floors) = m.get_mut("glibc_floors").and_then(|f| f.as_object_mut()) {
            for (version, floor) in floors.iter_mut() {
                let image = format!("qcc-test-{}-{target}-glibc{version}", run().id);
                CREATED
                    .lock()
                    .unwrap()
                    .push((self.eng, self.tester, image.clone()));
                floor["image"] = serde_json::Value::from(image);
            }
        }
        self.write(
            &format!("plugins/{target}.json"),
            serde_json::to_string_pretty(&m).unwrap(),
        );
        m
    }

    /// A fault-injecting `prog` in this test's `fakebin` folder: a shell
    /// script that runs `before` and then the real `prog` with its
    /// arguments (as `before` left them). Returns `path` with it first.
    pub fn wrapped_engine(&self, prog: &str, before: &str, path: &str) -> String {
        let fake = self.dir.join("fakebin");
        std::fs::create_dir_all(&fake).unwrap();
        let wrapper = fake.join(prog);
        let real = crate::core::which(prog);
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\n{before}\nexec {real} \"$@\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!("{}:{path}", fake.display())
    }

    /// Links for `targets` in this test's `bin` folder; returns a PATH
    /// with them first.
    pub fn shims(&self, targets: &[&str]) -> String {
        let bin = self.dir.join("bin");
        ok(self
            .qcc(["shims", "--quiet", "--dir"])
            .arg(&bin)
            .args(targets));
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
    }

    /// Environment every tool call gets: its own config, cache and runtime.
    fn tool_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "QEMU_CROSS_CC_CONFIG_DIR".into(),
                self.dir.join("config").display().to_string(),
            ),
            (
                "QEMU_CROSS_CC_CACHE_DIR".into(),
                self.cache().display().to_string(),
            ),
            (
                "QEMU_CROSS_CC_PLUGIN_PATH".into(),
                self.plugins().display().to_string(),
            ),
            ("QEMU_CROSS_CC_ENGINE".into(), self.eng.choice().to_string()),
            (
                "QEMU_CROSS_CC_RUNTIME_DIR".into(),
                self.dir.join("runtime").display().to_string(),
            ),
        ];
        env.extend(self.env.iter().cloned());
        env
    }

    /// A command run as the test user (or root), in the work folder, with
    /// `env` set.
    fn as_user(&self, prog: &OsStr, env: &[(String, String)]) -> Command {
        let mut cmd = if let Some(user) = self.user() {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "env"]);
            c.arg(format!("HOME={}", user_home(user)));
            c.arg(format!("XDG_RUNTIME_DIR={}", user_runtime(user)));
            for (k, v) in env {
                c.arg(format!("{k}={v}"));
            }
            c.arg(prog);
            c
        } else {
            let mut c = Command::new(prog);
            c.envs(env.iter().map(|(k, v)| (k, v)));
            c
        };
        cmd.current_dir(self.work()).stdin(Stdio::null());
        cmd
    }

    /// `qemu-cross-cc --engine ENGINE args...`
    pub fn qcc<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.as_user(run().bin.as_os_str(), &self.tool_env());
        c.args(["--engine", self.eng.choice()]).args(args);
        c
    }

    /// `qemu-cross-cc` without `--engine` (engine from the environment).
    pub fn qcc_plain<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.as_user(run().bin.as_os_str(), &self.tool_env());
        c.args(args);
        c
    }

    /// Another program run like the tool (same user, env and folder).
    pub fn program<I, S>(&self, prog: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.as_user(prog.as_ref(), &self.tool_env());
        c.args(args);
        c
    }

    /// The engine itself, as the same user (`sudo -n docker ...` for
    /// `Eng::SudoDocker`).
    pub fn engine<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let prog = self.eng.prog();
        let mut c = self.as_user(OsStr::new(prog[0]), &[]);
        c.args(&prog[1..]).args(args);
        c
    }

    /// A unique image tag, removed at the end of the run.
    pub fn tag(&self, suffix: &str) -> String {
        let t = format!("{}-{suffix}", self.name);
        CREATED
            .lock()
            .unwrap()
            .push((self.eng, self.tester, t.clone()));
        t
    }

    /// The label that marks what this run built.
    pub fn run_label(&self) -> String {
        format!("qcc-test-run={}", run().id)
    }

    /// Whether image `tag` exists. podman 4.3's `image inspect` can fail
    /// for a moment while other tests change the image store at the same
    /// time ("layer not known"); only "no such image" answers counts as
    /// absent, anything else is asked again.
    pub fn image_exists(&self, tag: &str) -> bool {
        // podman 4.3 can also answer "not known" about another image (a
        // parent, a layer) while the store changes: absent only when it
        // says so three times in a row.
        let mut absent = 0;
        for _ in 0..8 {
            let o = out(self.engine(["image", "inspect", "--format", "{{.Id}}", tag]));
            if o.status.success() {
                return true;
            }
            let e = stderr(&o).to_lowercase();
            if e.contains("not known") && !e.contains("layer") || e.contains("no such image") {
                absent += 1;
                if absent == 3 {
                    return false;
                }
            } else {
                absent = 0;
                eprintln!("{}: image inspect {tag}: {}", self.eng, e.trim());
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        false
    }

    pub fn image_id(&self, tag: &str) -> String {
        self.inspect_image(tag, "{{.Id}}")
    }

    pub fn label(&self, tag: &str, label: &str) -> String {
        self.inspect_image(tag, &format!("{{{{index .Config.Labels \"{label}\"}}}}"))
    }

    /// One field of an image that exists. podman 4.3 can fail to read an
    /// image for a moment while other tests tag or untag the same image
    /// (tests that build one dockerfile get one image id): "image not
    /// known" about the id its tag just resolved to. Asked again then.
    fn inspect_image(&self, tag: &str, format: &str) -> String {
        for _ in 0..5 {
            let o = out(self.engine(["image", "inspect", "--format", format, tag]));
            if o.status.success() {
                return stdout(&o).trim().to_string();
            }
            if !stderr(&o).contains("locating image with ID") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        // The failure, with the command, as the test's panic.
        let o = ok(&mut self.engine(["image", "inspect", "--format", format, tag]));
        stdout(&o).trim().to_string()
    }

    /// This test's live sessions (`sessions list --json`).
    pub fn sessions(&self) -> Vec<serde_json::Value> {
        let o = ok(self.qcc(["sessions", "list", "--json"]));
        serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
    }

    /// Containers (all states) carrying `label` (`k=v`).
    pub fn containers_with(&self, label: &str) -> Vec<String> {
        let o = ok(&mut self.engine(["ps", "-a", "-q", "--filter", &format!("label={label}")]));
        stdout(&o).split_whitespace().map(String::from).collect()
    }

    /// A cheap target for `target` (the fixture's native gcc and a few
    /// tools) under this test's own image, so that its containers are the
    /// test's alone; returns the image.
    pub fn cheap_plugin(&self, target: &str) -> String {
        let image = self.tag("cheap");
        let df = format!(
            "FROM {}\nRUN echo {} > /cheap\n",
            self.gcc_image(),
            self.name
        );
        self.plugin(
            target,
            &image,
            &df,
            &[
                ("cc", "gcc"),
                ("gcc", "gcc"),
                ("cpp", "cpp"),
                ("ar", "ar"),
                ("env", "env"),
                ("sh", "sh"),
            ],
        );
        image
    }

    /// How many builds of `image` its build log records.
    pub fn build_count(&self, image: &str) -> usize {
        let name: String = image
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::read_to_string(self.cache().join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("=== qemu-cross-cc: building image"))
            .count()
    }

    /// The fixture C compiler image of this engine and user.
    pub fn gcc_image(&self) -> String {
        fixture_gcc(self.eng, self.tester)
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Run and return the output.
pub fn out(mut cmd: impl BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run, requiring success.
pub fn ok(mut cmd: impl BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    let desc = format!("{cmd:?}");
    let o = out(cmd);
    assert!(
        o.status.success(),
        "{desc} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Run, requiring failure; returns the output.
pub fn fails(mut cmd: impl BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    let desc = format!("{cmd:?}");
    let o = out(cmd);
    assert!(
        !o.status.success(),
        "{desc} should have failed:\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Assert stderr is exactly one line, our error line.
pub fn one_error_line(o: &Output) -> String {
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {e}");
    assert!(lines[0].starts_with("qemu-cross-cc: error: "), "{e}");
    assert!(!e.contains("panicked") && !e.contains("Traceback"), "{e}");
    lines[0].to_string()
}

/// Build `tests/fixtures/gcc.docker` once per engine (root), and copy it
/// into the test user's rootless storage when needed. `sudo -n docker`
/// reaches root's docker storage: it uses docker's.
pub fn fixture_gcc(eng: Eng, tester: bool) -> String {
    if eng == Eng::SudoDocker {
        return fixture_gcc(Eng::Docker, false);
    }
    static ROOT: [OnceLock<Result<String, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    static TESTER_COPY: [OnceLock<Result<String, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let i = eng as usize;
    let tag = ROOT[i]
        .get_or_init(|| {
            let t = T::new(eng, "fixture", false);
            let tag = t.tag("gcc");
            let df = run().repo.join("tests/fixtures/gcc.docker");
            let o = out(t
                .qcc(["build", "--quiet", "-t", &tag, "-f"])
                .arg(&df)
                .args(["--label", &t.run_label()]));
            if o.status.success() {
                Ok(tag)
            } else {
                Err(format!("building the gcc fixture failed: {}", stderr(&o)))
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"));
    if !tester || eng == Eng::Docker {
        return tag;
    }
    TESTER_COPY[i]
        .get_or_init(|| {
            let archive = run().root.join(format!("gcc-{eng}.tar"));
            let _ = std::fs::remove_file(&archive);
            let t = T::new(eng, "fixture-copy", true);
            ok(T::new(eng, "fixture-save", false)
                .engine(["save", "-o"])
                .arg(&archive)
                .arg(&tag));
            std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
            ok(t.engine(["load", "-i"]).arg(&archive));
            let _ = std::fs::remove_file(&archive);
            CREATED.lock().unwrap().push((eng, true, tag.clone()));
            Ok::<_, String>(tag.clone())
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Remove what the run created: its images (by tag and by label), its
/// containers, its scratch folder. What `sudo -n docker` made is in root's
/// docker storage and goes with docker's.
pub fn cleanup() {
    let run = run();
    stop_all_sessions();
    let created = std::mem::take(&mut *CREATED.lock().unwrap());
    for eng in Eng::ALL {
        for tester in [false, true] {
            let t = T::new(eng, "cleanup", tester);
            let label = t.run_label();
            for id in t.containers_with(&label) {
                let _ = out(t.engine(["rm", "-f", &id]));
            }
            let root_docker = eng == Eng::Docker && !tester;
            let mut images: Vec<String> = created
                .iter()
                .filter(|(e, u, _)| {
                    *e == eng && *u == tester || root_docker && *e == Eng::SudoDocker
                })
                .map(|(_, _, tag)| tag.clone())
                .collect();
            let o = out(t.engine(["images", "-q", "--filter", &format!("label={label}")]));
            images.extend(stdout(&o).split_whitespace().map(String::from));
            for img in images {
                let _ = t
                    .engine(["rmi", "-f", &img])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            // Whatever else carries the run's name (images the tool derived
            // that a test did not record, or whose removal failed in a
            // moment of podman's store changing): asked again a few times.
            for _ in 0..3 {
                let left = named_after_run(&t);
                if left.is_empty() {
                    break;
                }
                for img in left {
                    let _ = out(t.engine(["rmi", "-f", &img]));
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
    }
    if std::env::var_os("QCC_TEST_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&run.root);
    }
}

/// The images of `t`'s engine and user whose name is this run's
/// (`qcc-test-<run>-...`, podman's with `localhost/` before it).
fn named_after_run(t: &T) -> Vec<String> {
    let prefix = format!("qcc-test-{}-", run().id);
    let o = out(t.engine(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    stdout(&o)
        .lines()
        .map(str::trim)
        .filter(|r| r.trim_start_matches("localhost/").starts_with(&prefix))
        .map(String::from)
        .collect()
}

/// A python3 every user can run (root's PATH may lead to a per-user
/// install first).
pub fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

impl T {
    /// Record an image the tool made for this test (a derived image of a
    /// built-in target) so that the run removes it; it goes first, before
    /// the images it was built from.
    pub fn record_image(&self, tag: &str) {
        CREATED
            .lock()
            .unwrap()
            .insert(0, (self.eng, self.tester, tag.to_string()));
    }
}

/// Copy a folder tree (a fixture) to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process of the test's own (sshd, a podman service), killed
/// when dropped.
pub struct Background(pub std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// podman's remote mode on this machine: a `podman system service` of the
/// test's own (root's storage) on a socket in its scratch folder. Returns
/// the service (stopped when dropped) and the `CONTAINER_HOST` that
/// reaches it; podman itself confirms that it is remote then.
pub fn podman_service(t: &T) -> (Background, String) {
    let sock = t.dir.join("podman.sock");
    let child = Command::new("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let service = Background(child);
    let start = std::time::Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed().as_secs() < 10,
            "podman system service did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let host = format!("unix://{}", sock.display());
    let remote = stdout(&ok(Command::new("podman")
        .args(["info", "--format", "{{.Host.ServiceIsRemote}}"])
        .env("CONTAINER_HOST", &host)));
    assert_eq!(remote.trim(), "true", "podman is not in remote mode");
    (service, host)
}

/// Run `cmd` with `input` on its stdin.
pub fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}
