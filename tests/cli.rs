//! Command-line behaviour that needs no working engine: usage errors, help,
//! and engine faults injected with stand-in engine scripts (absent, failing,
//! hanging). Every user-caused failure must be one error line and a
//! non-zero exit.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test; `QCC_TEST_BIN` substitutes another build (e.g.
/// an older one, to show that a test catches what it was written for).
fn bin() -> String {
    std::env::var("QCC_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_qemu-cross-cc").into())
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A folder holding only the given stand-in engine scripts.
    fn fake_path(&self, scripts: &[(&str, &str)]) -> PathBuf {
        let bin = self.path().join("fakebin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, body) in scripts {
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bin
    }

    fn qcc(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        self.setup(&mut c);
        c
    }

    /// Like `qcc`, with the address space limited to 1 GiB: a read without
    /// bounds fails fast instead of eating the machine's memory.
    fn qcc_limited(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\"", &bin()])
            .args(args);
        self.setup(&mut c);
        c
    }

    fn setup(&self, c: &mut Command) {
        c.current_dir(self.path())
            .env("QEMU_CROSS_CC_CONFIG_DIR", self.path().join("config"))
            .env("QEMU_CROSS_CC_CACHE_DIR", self.path().join("cache"))
            .env("QEMU_CROSS_CC_RUNTIME_DIR", self.path().join("runtime"))
            .env_remove("QEMU_CROSS_CC_ENGINE")
            .env_remove("QEMU_CROSS_CC_TARGET")
            .env_remove("QEMU_CROSS_CC_PLUGIN_PATH");
    }

    /// Run with only the stand-in engines on PATH.
    fn qcc_with(&self, scripts: &[(&str, &str)], args: &[&str]) -> Output {
        let path = self.fake_path(scripts);
        self.qcc(args).env("PATH", path).output().unwrap()
    }
}

/// Run `cmd` to its end; kill it and fail the test when it takes more than
/// 20 s. Its output goes to files, so a full pipe cannot stall it.
fn output_within_20s(s: &Scratch, mut cmd: Command) -> Output {
    let out = tempfile::tempfile_in(s.path()).unwrap();
    let err = tempfile::tempfile_in(s.path()).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: read_back(out),
        stderr: read_back(err),
    }
}

fn read_back(mut f: std::fs::File) -> Vec<u8> {
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut buf).unwrap();
    buf
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Exactly one line on stderr, ours, and the exit code `code`.
fn one_line(o: &Output, code: i32) -> String {
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "want one line: {e}");
    assert!(lines[0].starts_with("qemu-cross-cc: error: "), "{e}");
    assert!(!e.contains("panicked") && !e.contains("Traceback"));
    lines[0].to_string()
}

#[test]
fn no_engine_installed() {
    let s = Scratch::new();
    let o = s.qcc_with(&[], &["images"]);
    let line = one_line(&o, 1);
    assert!(
        line.contains(
            "no working container engine (tried: podman (not installed), docker (not installed), \
             sudo -n docker (not installed))"
        ),
        "{line}"
    );
    assert!(line.contains("--engine"), "names the fix: {line}");
    let o = s.qcc_with(&[], &["probe"]);
    assert_eq!(stdout(&o), "no\n");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn engine_choice_limits_the_probe() {
    let s = Scratch::new();
    let o = s.qcc_with(&[], &["--engine", "podman", "images"]);
    let line = one_line(&o, 1);
    assert!(line.contains("tried: podman (not installed))"), "{line}");
    let o = s.qcc_with(&[], &["--engine=docker", "images"]);
    let line = one_line(&o, 1);
    assert!(
        line.contains("tried: docker (not installed), sudo -n docker"),
        "{line}"
    );
}

#[test]
fn failing_engine_reports_its_message() {
    let s = Scratch::new();
    let fail = "echo 'Cannot connect to the Docker daemon at unix:///x.sock' >&2; exit 1";
    let o = s.qcc_with(&[("docker", fail)], &["--engine", "docker", "images"]);
    let line = one_line(&o, 1);
    assert!(
        line.contains("docker (Cannot connect to the Docker daemon"),
        "{line}"
    );
}

#[test]
fn hanging_engine_times_out() {
    let s = Scratch::new();
    let path = s.fake_path(&[("podman", "exec /bin/sleep 30")]);
    let start = std::time::Instant::now();
    let o = s
        .qcc(&["--engine", "podman", "images"])
        .env("PATH", path)
        .env("QEMU_CROSS_CC_ENGINE_TIMEOUT", "0.5")
        .output()
        .unwrap();
    assert!(start.elapsed().as_secs() < 10);
    let line = one_line(&o, 1);
    assert!(line.contains("podman (no answer within 0.5s)"), "{line}");
}

#[test]
fn engine_failing_later_is_one_line() {
    // `version` works, `image inspect` fails: check reports a missing image,
    // a build reports the failed build.
    let s = Scratch::new();
    let script =
        "case \"$1\" in version) exit 0;; build) echo 'boom' >&2; exit 3;; *) exit 1;; esac";
    std::fs::write(s.path().join("x.docker"), "FROM debian:12-slim\n").unwrap();
    let o = s.qcc_with(
        &[("docker", script)],
        &["--engine", "docker", "build", "-t", "t", "-f", "x.docker"],
    );
    // The engine's own stderr passes through; our line is the last.
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1));
    let last = e.lines().last().unwrap();
    assert!(
        last.starts_with("qemu-cross-cc: error: building image t failed"),
        "{e}"
    );
    assert!(
        !std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.starts_with("docker_build") && e.path().join("x.docker").exists()
            })
    );
}

#[test]
fn invalid_engine_name() {
    let s = Scratch::new();
    let line = one_line(&s.qcc(&["--engine", "lxc", "probe"]).output().unwrap(), 2);
    assert!(
        line.contains("invalid engine 'lxc' (choose from auto, docker, podman)"),
        "{line}"
    );
    let o = s
        .qcc(&["probe"])
        .env("QEMU_CROSS_CC_ENGINE", "rkt")
        .output()
        .unwrap();
    let line = one_line(&o, 1);
    assert!(line.contains("QEMU_CROSS_CC_ENGINE"), "{line}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let s = Scratch::new();
    for (args, want) in [
        (&["build", "-t"][..], "argument -t: expected one argument"),
        (
            &["cc", "-c", "x.c"][..],
            "the following arguments are required: --image/-i",
        ),
        (
            &["fetch", "only-tag"][..],
            "the following arguments are required: registry",
        ),
        (&["check"][..], "the following arguments are required: tag"),
        (&["build", "-f", "x"][..], "-t TAG is required"),
        (
            &["build"][..],
            "give -t TAG -f DOCKERFILE, or a target name",
        ),
        (&["run", "--keep=yes"][..], "ignored explicit argument"),
        (&["shims"][..], "--dir"),
        (&["targets", "--bogus"][..], "--bogus"),
    ] {
        let o = s.qcc(args).output().unwrap();
        let line = one_line(&o, 2);
        assert!(line.contains(want), "{args:?}: {line}");
    }
}

#[test]
fn missing_dockerfile_is_one_line() {
    let s = Scratch::new();
    let o = s
        .qcc(&["build", "-t", "x", "-f", "/nonexistent/x.docker"])
        .output()
        .unwrap();
    let line = one_line(&o, 1);
    assert!(
        line.contains("cannot read dockerfile /nonexistent/x.docker"),
        "{line}"
    );
    // A FROM qemu/ parent that cannot be found names the search path.
    std::fs::write(s.path().join("child.docker"), "FROM qemu/no-such-parent\n").unwrap();
    let o = s.qcc_with(
        &[("docker", "exit 0")],
        &[
            "--engine",
            "docker",
            "build",
            "-t",
            "x",
            "-f",
            "child.docker",
        ],
    );
    let line = one_line(&o, 1);
    assert!(line.contains("no-such-parent.docker not found"), "{line}");
    assert!(line.contains("--dockerfiles-dir"), "{line}");
}

#[test]
fn help_and_version() {
    let s = Scratch::new();
    let o = s.qcc(&["help"]).output().unwrap();
    assert!(o.status.success());
    for sub in [
        "run", "build", "fetch", "update", "clean", "images", "probe", "cc", "check", "targets",
        "shims", "sessions",
    ] {
        assert!(
            stdout(&o).contains(&format!("  {sub} ")),
            "{sub} missing from help"
        );
    }
    let o = s.qcc(&["help", "shims"]).output().unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("--dir"), "{}", stdout(&o));
    let o = s.qcc(&["build", "--help"]).output().unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("--include-executable"));
    let o = s.qcc(&["--version"]).output().unwrap();
    assert!(stdout(&o).starts_with("qemu-cross-cc "));
    let o = s.qcc(&[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// The subcommands `help` lists, in its order: the registry, as the
/// binary shows it.
fn listed_subcommands(s: &Scratch) -> Vec<String> {
    let o = s.qcc(&["help"]).output().unwrap();
    assert!(o.status.success());
    let mut names = Vec::new();
    let mut in_list = false;
    for line in stdout(&o).lines() {
        if line.starts_with("subcommands ") {
            in_list = true;
        } else if line.is_empty() {
            in_list = false;
        } else if in_list {
            names.push(line.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(
        names.len() > 10 && names.iter().any(|n| n == "help"),
        "{names:?}"
    );
    names
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A program the completion and man page tests run: installed by
/// tests/setup-engines.sh, so its absence is a failure, not a skip.
fn need(program: &str) {
    let found = Command::new("sh")
        .args(["-c", "command -v \"$0\" >/dev/null", program])
        .status()
        .unwrap();
    assert!(
        found.success(),
        "{program} is not installed; tests/setup-engines.sh installs it"
    );
}

/// The generated text of `qemu-cross-cc ARGS` (exit 0, nothing on stderr),
/// saved as `name` in the scratch folder.
fn generated(s: &Scratch, args: &[&str], name: &str) -> (PathBuf, String) {
    let o = s.qcc(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let path = s.path().join(name);
    std::fs::write(&path, &o.stdout).unwrap();
    (path, stdout(&o))
}

/// Check a script with `SHELL -n` (parse only).
fn parses(shell: &str, script: &Path) {
    let o = Command::new(shell).arg("-n").arg(script).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{shell} -n: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What the bash completion `script` offers for `qemu-cross-cc WORDS`, the
/// last word being the one under the cursor: the function that `complete
/// -p qemu-cross-cc` names is called as bash calls it on TAB.
fn bash_offers(script: &Path, words: &[&str]) -> Vec<String> {
    const DRIVE: &str = r#"
source "$1" || exit 3
shift
spec=$(complete -p qemu-cross-cc) || exit 4
fn=${spec#*-F }
fn=${fn%% *}
COMP_WORDS=(qemu-cross-cc "$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$fn" qemu-cross-cc "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 5
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let o = Command::new("bash")
        .args(["-c", DRIVE, "bash"])
        .arg(script)
        .args(words)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{words:?}: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// `completions bash` parses, and TAB after `qemu-cross-cc` offers exactly
/// the subcommands `help` lists (and the global options); after a
/// subcommand, its options (docker.py's grammar and clap's alike); after
/// `--engine`, the engines; after `help` or `man`, the subcommands.
#[test]
fn bash_completion_offers_every_subcommand() {
    need("bash");
    let s = Scratch::new();
    let names = listed_subcommands(&s);
    let (script, _) = generated(&s, &["completions", "bash"], "qemu-cross-cc.bash");
    parses("bash", &script);
    let offered = bash_offers(&script, &[""]);
    let (options, words): (Vec<String>, Vec<String>) =
        offered.into_iter().partition(|w| w.starts_with('-'));
    assert_eq!(sorted(words), sorted(names.clone()));
    for o in [
        "--engine",
        "--dockerfiles-dir",
        "--target",
        "--help",
        "--version",
    ] {
        assert!(
            options.iter().any(|w| w == o),
            "{o} not offered: {options:?}"
        );
    }
    let build = bash_offers(&script, &["build", "--"]);
    for o in [
        "--include-executable",
        "--extra-files",
        "--add-current-user",
        "--quiet",
    ] {
        assert!(
            build.iter().any(|w| w == o),
            "build {o} not offered: {build:?}"
        );
    }
    let toolchain = bash_offers(&script, &["toolchain", "--"]);
    assert!(toolchain.iter().any(|w| w == "--cmake"), "{toolchain:?}");
    assert_eq!(
        bash_offers(&script, &["sessions", "stop", "--"]),
        ["--all", "--help"]
    );
    assert_eq!(
        bash_offers(&script, &["--engine", ""]),
        ["auto", "docker", "podman"]
    );
    for sub in ["help", "man"] {
        let offered = bash_offers(&script, &[sub, ""]);
        for n in &names {
            assert!(offered.contains(n), "{sub} {n} not offered: {offered:?}");
        }
    }
}

/// `completions zsh` and `completions fish` parse (`zsh -n`, `fish -n`) and
/// name every subcommand; fish, asked what follows `qemu-cross-cc `,
/// offers exactly the subcommands `help` lists.
#[test]
fn zsh_and_fish_completions_parse_and_name_every_subcommand() {
    need("zsh");
    need("fish");
    let s = Scratch::new();
    let names = listed_subcommands(&s);
    let (zsh, text) = generated(&s, &["completions", "zsh"], "_qemu-cross-cc");
    parses("zsh", &zsh);
    assert!(text.starts_with("#compdef qemu-cross-cc"), "{text}");
    for n in &names {
        assert!(
            text.contains(&format!("'{n}:")),
            "{n} missing from the zsh script"
        );
    }
    let (fish, text) = generated(&s, &["completions", "fish"], "qemu-cross-cc.fish");
    parses("fish", &fish);
    for n in &names {
        assert!(
            text.contains(&format!(" -a \"{n}\"")),
            "{n} missing from the fish script"
        );
    }
    let complete = |line: &str| -> Vec<String> {
        let o = Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg("source $argv[1]; complete -C $argv[2]")
            .arg(&fish)
            .arg(line)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(sorted(complete("qemu-cross-cc ")), sorted(names));
    let build = complete("qemu-cross-cc build --");
    assert!(
        build.iter().any(|w| w == "--include-executable"),
        "{build:?}"
    );
}

/// Render roff with groff, every warning on: nothing on stderr, the text
/// with plain ASCII hyphens, lines long enough not to break.
fn render_man(page: &Path) -> String {
    let o = Command::new("groff")
        .args(["-man", "-Tascii", "-ww", "-rLL=200n", "-rHY=0", "-P-cbou"])
        .arg(page)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// `man` is roff that groff renders without a warning: a title, the usual
/// sections, and every subcommand `help` lists; `man SUB` is each
/// subcommand's page (`man sessions stop` its subcommand's); an unknown
/// name is a usage error.
#[test]
fn man_pages_are_valid_roff() {
    need("groff");
    let s = Scratch::new();
    let names = listed_subcommands(&s);
    let (page, roff) = generated(&s, &["man"], "qemu-cross-cc.1");
    assert!(
        roff.lines().any(|l| l.starts_with(".TH qemu-cross-cc 1 ")),
        "{roff}"
    );
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "VERSION",
    ] {
        assert!(roff.contains(&format!("\n.SH {section}\n")), "no {section}");
    }
    let text = render_man(&page);
    let listed: Vec<String> = text
        .lines()
        .skip_while(|l| *l != "SUBCOMMANDS")
        .filter_map(|l| l.trim().strip_prefix("qemu-cross-cc-")?.strip_suffix("(1)"))
        .map(String::from)
        .collect();
    assert_eq!(listed, names);
    for o in ["--engine", "--dockerfiles-dir", "--target"] {
        assert!(text.contains(o), "{o} missing from the page");
    }
    for n in &names {
        let (page, roff) = generated(&s, &["man", n], &format!("qemu-cross-cc-{n}.1"));
        assert!(
            roff.lines()
                .any(|l| l.starts_with(&format!(".TH qemu-cross-cc-{n} 1 "))),
            "{roff}"
        );
        let text = render_man(&page);
        assert!(text.contains(&format!("qemu-cross-cc {n}")), "{n}: {text}");
    }
    let (page, _) = generated(&s, &["man", "sessions", "stop"], "stop.1");
    assert!(render_man(&page).contains("qemu-cross-cc sessions stop [--all]"));
    let build = render_man(&generated(&s, &["man", "build"], "build.1").0);
    for o in [
        "--include-executable",
        "--extra-files",
        "-t",
        "[ENGINE ARGS]",
    ] {
        assert!(build.contains(o), "{o} missing from build's page");
    }
    for args in [&["man", "nope"][..], &["man", "sessions", "nope"][..]] {
        let line = one_line(&s.qcc(args).output().unwrap(), 2);
        assert!(
            line.contains("'nope'") && line.contains("man --help"),
            "{line}"
        );
    }
}

/// Every subcommand `help` lists answers `--help` (exit 0, its name in the
/// text, nothing on stderr), and `help SUB` prints exactly that.
#[test]
fn every_subcommand_has_help_and_help_sub_is_the_same() {
    let s = Scratch::new();
    for n in listed_subcommands(&s) {
        let o = s.qcc(&[&n, "--help"]).output().unwrap();
        assert!(o.status.success(), "{n} --help: {:?}", o.status);
        assert!(
            o.stderr.is_empty(),
            "{n}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout(&o).contains(&format!("qemu-cross-cc {n}")),
            "{n}: {}",
            stdout(&o)
        );
        let h = s.qcc(&["help", &n]).output().unwrap();
        assert!(h.status.success(), "help {n}: {:?}", h.status);
        assert_eq!(stdout(&h), stdout(&o), "help {n} differs from {n} --help");
    }
    let line = one_line(&s.qcc(&["help", "nope"]).output().unwrap(), 2);
    assert!(
        line.contains("no help for unknown subcommand 'nope'"),
        "{line}"
    );
}

/// Completions for unknown shells and a missing shell are usage errors.
#[test]
fn completions_usage_errors() {
    let s = Scratch::new();
    let line = one_line(&s.qcc(&["completions"]).output().unwrap(), 2);
    assert!(
        line.contains("<SHELL>") && line.contains("completions --help"),
        "{line}"
    );
    let line = one_line(&s.qcc(&["completions", "tcsh"]).output().unwrap(), 2);
    assert!(line.contains("'tcsh'") && line.contains("bash"), "{line}");
}

#[test]
fn compiler_line_without_target() {
    let s = Scratch::new();
    let o = s.qcc(&["-c", "x.c"]).output().unwrap();
    let line = one_line(&o, 1);
    assert!(
        line.contains("--target=TARGET") && line.contains("aarch64-linux-gnu"),
        "{line}"
    );
    let o = s
        .qcc(&["--target=vax-dec-ultrix", "-c", "x.c"])
        .output()
        .unwrap();
    let line = one_line(&o, 1);
    assert!(
        line.contains("unknown target 'vax-dec-ultrix'") && line.contains("riscv64-linux-gnu"),
        "{line}"
    );
}

#[test]
fn bad_plugin_manifest_names_file_and_field() {
    let s = Scratch::new();
    let dir = s.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("toy-linux-gnu.json");
    std::fs::write(
        &file,
        r#"{"target":"toy-linux-gnu","image":"i","dockerfile":"d.docker","qemu":"toy",
            "sysroot":"/usr/toy","tools":{"cc":"toy-gcc"},"colour":"blue"}"#,
    )
    .unwrap();
    let o = s
        .qcc(&["targets", "--offline"])
        .env("QEMU_CROSS_CC_PLUGIN_PATH", &dir)
        .output()
        .unwrap();
    let line = one_line(&o, 1);
    assert!(
        line.contains(&file.display().to_string()) && line.contains("colour"),
        "{line}"
    );
    std::fs::write(&file, r#"{"target":"toy-linux-gnu"}"#).unwrap();
    let o = s
        .qcc(&["targets", "--offline"])
        .env("QEMU_CROSS_CC_PLUGIN_PATH", &dir)
        .output()
        .unwrap();
    let line = one_line(&o, 1);
    assert!(line.contains("missing field `image`"), "{line}");
    std::fs::write(&file, "{ not json").unwrap();
    let o = s
        .qcc(&["targets", "--offline"])
        .env("QEMU_CROSS_CC_PLUGIN_PATH", &dir)
        .output()
        .unwrap();
    one_line(&o, 1);
}

/// A plugin folder in the scratch folder.
fn plugin_dir(s: &Scratch) -> PathBuf {
    let dir = s.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `targets --offline` with `dir` as the plugin path, at most 20 s and 1 GiB.
fn targets_with_plugins(s: &Scratch, dir: &Path) -> Output {
    let mut cmd = s.qcc_limited(&["targets", "--offline"]);
    cmd.env("QEMU_CROSS_CC_PLUGIN_PATH", dir);
    output_within_20s(s, cmd)
}

/// A manifest for `target` with `field` replaced by `value`.
fn manifest(target: &str, field: &str, value: serde_json::Value) -> String {
    let mut m = serde_json::json!({
        "target": target, "image": "toy/img", "dockerfile": "d.docker", "qemu": "toy",
        "sysroot": "/usr/toy", "tools": {"cc": "toy-gcc"},
    });
    m[field] = value;
    m.to_string()
}

#[test]
fn fifo_manifest_is_refused_promptly() {
    let s = Scratch::new();
    let dir = plugin_dir(&s);
    let fifo = dir.join("x-linux-gnu.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let line = one_line(&targets_with_plugins(&s, &dir), 1);
    assert!(
        line.contains(&format!("bad plugin manifest {}", fifo.display()))
            && line.contains("a FIFO"),
        "{line}"
    );
}

#[test]
fn dev_zero_manifest_is_refused_promptly() {
    let s = Scratch::new();
    let dir = plugin_dir(&s);
    let zero = dir.join("z-linux-gnu.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let line = one_line(&targets_with_plugins(&s, &dir), 1);
    assert!(
        line.contains(&format!("bad plugin manifest {}", zero.display()))
            && line.contains("character device"),
        "{line}"
    );
}

#[test]
fn oversized_manifest_is_refused() {
    let s = Scratch::new();
    let dir = plugin_dir(&s);
    let big = dir.join("big-linux-gnu.json");
    let text = manifest("big-linux-gnu", "description", "x".repeat(1 << 20).into());
    std::fs::write(&big, text).unwrap();
    let line = one_line(&targets_with_plugins(&s, &dir), 1);
    assert!(
        line.contains(&format!("bad plugin manifest {}", big.display())) && line.contains("bytes"),
        "{line}"
    );
}

#[test]
fn image_with_spaces_is_refused() {
    let s = Scratch::new();
    let dir = plugin_dir(&s);
    let file = dir.join("toy-linux-gnu.json");
    let text = manifest("toy-linux-gnu", "image", "rel sp --privileged".into());
    std::fs::write(&file, text).unwrap();
    let line = one_line(&targets_with_plugins(&s, &dir), 1);
    assert!(
        line.contains(&format!("bad plugin manifest {}", file.display()))
            && line.contains("field `image`")
            && line.contains("rel sp --privileged"),
        "{line}"
    );
}

#[test]
fn dot_dot_target_is_refused() {
    // `...json` has the stem `..`, `..json` the stem `.`: either way the
    // target is refused before it could name a link.
    for file in ["...json", "..json"] {
        let s = Scratch::new();
        let dir = plugin_dir(&s);
        std::fs::write(dir.join(file), manifest("..", "target", "..".into())).unwrap();
        let line = one_line(&targets_with_plugins(&s, &dir), 1);
        assert!(
            line.contains(&dir.join(file).display().to_string()) && line.contains("field `target`"),
            "{file}: {line}"
        );
    }
}

#[test]
fn tool_name_with_slash_is_refused() {
    let s = Scratch::new();
    let dir = plugin_dir(&s);
    let file = dir.join("toy-linux-gnu.json");
    let tools = serde_json::json!({"cc": "toy-gcc", "../../escaped": "toy-ld"});
    std::fs::write(&file, manifest("toy-linux-gnu", "tools", tools)).unwrap();
    let line = one_line(&targets_with_plugins(&s, &dir), 1);
    assert!(
        line.contains(&file.display().to_string()) && line.contains("field `tools`"),
        "{line}"
    );
    // `shims` refuses it too, and makes nothing anywhere.
    let bin = s.path().join("a/b/bin");
    let mut cmd = s.qcc_limited(&["shims", "--dir", bin.to_str().unwrap()]);
    cmd.env("QEMU_CROSS_CC_PLUGIN_PATH", &dir);
    let line = one_line(&output_within_20s(&s, cmd), 1);
    assert!(line.contains("field `tools`"), "{line}");
    assert!(!s.path().join("a").exists());
}

#[test]
fn fifo_dockerfile_is_refused_promptly() {
    let s = Scratch::new();
    let fifo = s.path().join("x.docker");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let cmd = s.qcc_limited(&["build", "-t", "x", "-f", fifo.to_str().unwrap()]);
    let line = one_line(&output_within_20s(&s, cmd), 1);
    assert!(
        line.contains(&format!("cannot read dockerfile {}", fifo.display()))
            && line.contains("a FIFO"),
        "{line}"
    );
}

#[test]
fn user_plugin_overrides_builtin_and_missing_dockerfile_is_clear() {
    let s = Scratch::new();
    let dir = s.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("aarch64-linux-gnu.json"),
        r#"{"target":"aarch64-linux-gnu","image":"my/aarch64","dockerfile":"absent.docker",
            "qemu":"aarch64","sysroot":"/usr/aarch64-linux-gnu","tools":{"cc":"aarch64-linux-gnu-gcc"}}"#,
    )
    .unwrap();
    let o = s
        .qcc(&["targets", "--offline", "--json"])
        .env("QEMU_CROSS_CC_PLUGIN_PATH", &dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "aarch64-linux-gnu")
        .unwrap();
    assert_eq!(a["image"], "my/aarch64");
    assert!(v.as_array().unwrap().len() >= 16);
    // Compiling needs the dockerfile: a clear error before any engine call.
    let path = s.fake_path(&[]);
    let o = s
        .qcc(&["--target=aarch64-linux-gnu", "-c", "x.c"])
        .env("QEMU_CROSS_CC_PLUGIN_PATH", &dir)
        .env("PATH", path)
        .output()
        .unwrap();
    let line = one_line(&o, 1);
    assert!(line.contains("absent.docker not found"), "{line}");
}

#[test]
fn shims_are_idempotent_and_never_overwrite() {
    let s = Scratch::new();
    let dir = s.path().join("bin");
    let o = s
        .qcc(&["shims", "--dir", dir.to_str().unwrap(), "aarch64-linux-gnu"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gcc = dir.join("aarch64-linux-gnu-gcc");
    assert!(std::fs::read_link(&gcc).unwrap().ends_with("qemu-cross-cc"));
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert!(n >= 15, "{n} links");
    // Again: nothing changes.
    let o = s
        .qcc(&["shims", "--dir", dir.to_str().unwrap(), "aarch64-linux-gnu"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("0 links created"), "{}", stdout(&o));
    // A foreign file is kept and named.
    std::fs::remove_file(dir.join("aarch64-linux-gnu-ar")).unwrap();
    std::fs::write(dir.join("aarch64-linux-gnu-ar"), "mine").unwrap();
    let o = s
        .qcc(&["shims", "--dir", dir.to_str().unwrap(), "aarch64-linux-gnu"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("not replacing") && e.contains("aarch64-linux-gnu-ar"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("aarch64-linux-gnu-ar")).unwrap(),
        "mine"
    );
    // --remove takes ours away, leaves the foreign file.
    let o = s
        .qcc(&["shims", "--remove", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, vec!["aarch64-linux-gnu-ar"]);
    // Unknown target.
    let o = s
        .qcc(&["shims", "--dir", dir.to_str().unwrap(), "pdp11"])
        .output()
        .unwrap();
    one_line(&o, 1);
}

#[test]
fn closed_stdout_is_not_a_panic() {
    // `qemu-cross-cc targets | head -1`: the reader may go away first.
    let s = Scratch::new();
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let o = s
        .qcc(&["targets", "--offline"])
        .stdout(std::process::Stdio::from(write))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert!(!o.status.success());
}

/// `exec` usage mistakes are one line and exit 2; an unknown target is one
/// line listing the targets and exit 1. None needs an engine.
#[test]
fn exec_usage_errors() {
    let s = Scratch::new();
    let engines = s.fake_path(&[]);
    let run = |args: &[&str]| {
        let mut cmd = s.qcc(args);
        cmd.env("PATH", &engines);
        output_within_20s(&s, cmd)
    };
    for (args, says) in [
        (&["exec"][..], "a target is required"),
        (&["exec", "s390x-linux-gnu"][..], "`--` must come between"),
        (
            &["exec", "s390x-linux-gnu", "make", "check"][..],
            "`--` must come between",
        ),
        (
            &["exec", "s390x-linux-gnu", "--"][..],
            "no command after `--`",
        ),
        (&["exec", "--target", "--", "make"][..], "expected a target"),
        (
            &["exec", "--links", "/tmp", "s390x-linux-gnu", "--", "make"][..],
            "--links goes with --host",
        ),
        (&["exec", "--host", "--links"][..], "--links needs a folder"),
        (&["exec", "--host"][..], "a target is required"),
    ] {
        let line = one_line(&run(args), 2);
        assert!(
            line.contains(says) && line.contains("qemu-cross-cc exec --help"),
            "{args:?}: {line}"
        );
    }
    let line = one_line(&run(&["exec", "vax-linux-gnu", "--", "make"]), 1);
    assert!(
        line.contains("unknown target 'vax-linux-gnu'") && line.contains("s390x-linux-gnu"),
        "{line}"
    );
    for args in [&["exec", "--help"][..], &["help", "exec"][..]] {
        let o = run(args);
        assert!(o.status.success(), "{args:?}");
        assert!(
            stdout(&o).contains("exec TARGET -- COMMAND"),
            "{}",
            stdout(&o)
        );
    }
}

/// The runner is a link of every target; without a program it is a usage
/// error, and a missing program is one line (no engine is asked).
#[test]
fn runner_usage_errors() {
    let s = Scratch::new();
    let engines = s.fake_path(&[]);
    let link = s.path().join("s390x-linux-gnu-run");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&link);
        cmd.args(args);
        s.setup(&mut cmd);
        cmd.env("PATH", &engines);
        output_within_20s(&s, cmd)
    };
    let line = one_line(&run(&[]), 2);
    assert!(
        line.contains("s390x-linux-gnu-run needs a program"),
        "{line}"
    );
    let line = one_line(&run(&["./no-such-program", "x"]), 1);
    assert!(line.contains("cannot run ./no-such-program"), "{line}");
    std::fs::write(s.path().join("text"), "not a program").unwrap();
    let line = one_line(&run(&["./text"]), 1);
    assert!(
        line.contains("neither an ELF program nor a script"),
        "{line}"
    );
    let o = run(&["--help"]);
    assert!(o.status.success() && stdout(&o).contains("s390x-linux-gnu-run PROGRAM"));
}

/// `shims` makes `<target>-run` for every target; a manifest that defines
/// its own `run` tool is refused by name.
#[test]
fn runner_link_and_run_tool_refused() {
    let s = Scratch::new();
    let bin_dir = s.path().join("links");
    let cmd = s.qcc_limited(&["shims", "--quiet", "--dir", bin_dir.to_str().unwrap()]);
    let o = output_within_20s(&s, cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for t in ["s390x-linux-gnu", "aarch64-linux-gnu", "sh4-linux-gnu"] {
        assert!(bin_dir.join(format!("{t}-run")).is_symlink(), "{t}-run");
    }
    let dir = plugin_dir(&s);
    let file = dir.join("toy-linux-gnu.json");
    let tools = serde_json::json!({"cc": "toy-gcc", "run": "toy-run"});
    std::fs::write(&file, manifest("toy-linux-gnu", "tools", tools)).unwrap();
    let line = one_line(&targets_with_plugins(&s, &dir), 1);
    assert!(
        line.contains(&file.display().to_string())
            && line.contains("field `tools`")
            && line.contains("may not define the tool \"run\""),
        "{line}"
    );
}

/// `exec` needs the host's binfmt_misc handler for the target's programs:
/// without one it is one line naming the package, before any engine call.
#[test]
fn exec_without_binfmt_handler_names_the_package() {
    let s = Scratch::new();
    let engines = s.fake_path(&[]);
    let empty = s.path().join("binfmt");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = s.qcc(&["exec", "s390x-linux-gnu", "--", "make", "check"]);
    cmd.env("PATH", &engines)
        .env("QEMU_CROSS_CC_BINFMT_DIR", &empty);
    let line = one_line(&output_within_20s(&s, cmd), 1);
    assert!(
        line.contains("no binfmt_misc handler for qemu-s390x")
            && line.contains("apt-get install qemu-user-static"),
        "{line}"
    );
    // On the host too, before the export is made.
    let mut cmd = s.qcc(&["exec", "--host", "s390x-linux-gnu", "--", "make", "check"]);
    cmd.env("PATH", &engines)
        .env("QEMU_CROSS_CC_BINFMT_DIR", &empty);
    let line = one_line(&output_within_20s(&s, cmd), 1);
    assert!(
        line.contains("from a host command")
            && line.contains("no binfmt_misc handler for qemu-s390x")
            && line.contains("qemu-cross-cc exec s390x-linux-gnu --"),
        "{line}"
    );
}

#[test]
fn serve_refuses_to_run_open_to_everyone() {
    let s = Scratch::new();
    // No engine is reached: these are refused first.
    let o = s.qcc_with(&[], &["serve", "s390x-linux-gnu"]);
    let line = one_line(&o, 2);
    assert!(line.contains("--allow CIDR is required"), "{line}");
    let o = s.qcc_with(&[], &["serve", "s390x-linux-gnu", "--allow", "0.0.0.0/0"]);
    let line = one_line(&o, 2);
    assert!(line.contains("--allow-any"), "{line}");
    let o = s.qcc_with(&[], &["serve", "s390x-linux-gnu", "--allow", "10.0.0.0/40"]);
    let line = one_line(&o, 2);
    assert!(line.contains("prefix length"), "{line}");
    let o = s.qcc_with(&[], &["serve", "--allow", "10.0.0.0/8"]);
    let line = one_line(&o, 2);
    assert!(line.contains("name the targets"), "{line}");
    let o = s.qcc_with(&[], &["serve", "vax-dec-ultrix", "--allow", "10.0.0.0/8"]);
    let line = one_line(&o, 1);
    assert!(line.contains("unknown target 'vax-dec-ultrix'"), "{line}");
    let o = s.qcc_with(
        &[],
        &[
            "serve",
            "s390x-linux-gnu",
            "--allow",
            "10.0.0.0/8",
            "--stop",
        ],
    );
    let line = one_line(&o, 2);
    assert!(line.contains("--stop"), "{line}");
    for (args, why) in [
        (&["--listen", "my-host"][..], "IP address"),
        (&["--network", "host"], "engine network"),
        (&["--network", "a b"], "engine network"),
    ] {
        let mut all = vec!["serve", "s390x-linux-gnu", "--allow", "10.0.0.0/8"];
        all.extend_from_slice(args);
        let line = one_line(&s.qcc_with(&[], &all), 2);
        assert!(line.contains(why), "{args:?}: {line}");
    }
    let o = s.qcc_with(
        &[],
        &[
            "serve",
            "s390x-linux-gnu",
            "s390x-linux-gnu",
            "--allow",
            "10.0.0.0/8",
        ],
    );
    assert!(one_line(&o, 2).contains("named twice"));
    // With an engine missing, the error names it.
    let o = s.qcc_with(&[], &["serve", "s390x-linux-gnu", "--allow", "10.0.0.0/8"]);
    let line = one_line(&o, 1);
    assert!(line.contains("no working container engine"), "{line}");
}

#[test]
fn dist_check_needs_hosts_and_a_target() {
    let s = Scratch::new();
    let o = s.qcc_with(&[], &["dist", "check"]);
    assert!(one_line(&o, 2).contains("name the target"));
    let o = s.qcc_with(&[], &["dist", "check", "s390x-linux-gnu"]);
    let line = one_line(&o, 1);
    assert!(line.contains("no distcc hosts to check"), "{line}");
    let o = s.qcc_with(
        &[],
        &["dist", "check", "s390x-linux-gnu", "--hosts", "h,cpp"],
    );
    let line = one_line(&o, 1);
    assert!(line.contains("pump mode"), "{line}");
}

#[test]
fn bad_distcc_hosts_in_the_project_file_are_named() {
    let s = Scratch::new();
    std::fs::write(
        s.path().join("qemu-cross-cc.toml"),
        "[build]\ndistcc = \"10.0.0.2:99999\"\n",
    )
    .unwrap();
    let o = s.qcc_with(&[], &["--target", "s390x-linux-gnu", "-c", "x.c"]);
    let line = one_line(&o, 1);
    assert!(
        line.contains("qemu-cross-cc.toml") && line.contains("distcc") && line.contains("port"),
        "{line}"
    );
}

#[test]
fn compiles_stay_local_and_silent_without_distcc() {
    // distcc servers configured, no distcc on PATH: the compile goes the
    // local way (here to the missing engine) and says why only in debug.
    let s = Scratch::new();
    let run = |debug: bool| {
        let mut c = s.qcc(&["--target", "s390x-linux-gnu", "-c", "x.c"]);
        c.env("PATH", s.fake_path(&[]))
            .env("QEMU_CROSS_CC_DISTCC_HOSTS", "10.0.0.2:3632/4");
        if debug {
            c.env("QEMU_CROSS_CC_DEBUG", "1");
        }
        c.output().unwrap()
    };
    let o = run(false);
    let line = one_line(&o, 1);
    assert!(line.contains("no working container engine"), "{line}");
    let o = run(true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no distcc on PATH"), "{err}");
}

#[test]
fn an_empty_argv_is_one_error_line() {
    // Some supervisors exec with an empty argv; Linux then passes one empty
    // string as argv[0]. Neither names a tool.
    let s = Scratch::new();
    let src = s.path().join("noargv.c");
    std::fs::write(
        &src,
        "#include <unistd.h>\nextern char **environ;\n\
         int main(int c, char **v) { char *none[] = { 0 }; (void)c;\n\
         execve(v[1], none, environ); return 127; }\n",
    )
    .unwrap();
    let helper = s.path().join("noargv");
    let built = Command::new("cc").arg(&src).arg("-o").arg(&helper).status();
    assert!(built.unwrap().success(), "cannot build the helper with cc");
    let mut c = Command::new(&helper);
    c.arg(bin());
    s.setup(&mut c);
    c.env("QEMU_CROSS_CC_TARGET", "s390x-linux-gnu")
        .env("PATH", s.fake_path(&[]));
    let o = output_within_20s(&s, c);
    let line = one_line(&o, 2);
    assert!(line.contains("argv[0] is empty"), "{line}");
}

#[test]
fn an_unreadable_response_file_is_named_under_debug() {
    let s = Scratch::new();
    // A folder is no file to read (an unterminated quote is no error: gcc
    // reads to the end of the file).
    std::fs::create_dir(s.path().join("folder.rsp")).unwrap();
    for rsp in ["@missing.rsp", "@folder.rsp"] {
        let mut c = s.qcc(&["--target", "s390x-linux-gnu", "-c", rsp]);
        c.env("PATH", s.fake_path(&[]))
            .env("QEMU_CROSS_CC_DEBUG", "1");
        let o = output_within_20s(&s, c);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.lines()
                .any(|l| l.starts_with("qemu-cross-cc: debug: response file")
                    && l.contains(rsp)
                    && l.contains("not mounted")),
            "{rsp}: {err}"
        );
        // Without debug, only the engine's absence is reported.
        let mut c = s.qcc(&["--target", "s390x-linux-gnu", "-c", rsp]);
        c.env("PATH", s.fake_path(&[]));
        let line = one_line(&output_within_20s(&s, c), 1);
        assert!(line.contains("no working container engine"), "{line}");
    }
}

#[test]
fn corrupt_session_records_are_removed() {
    use std::os::unix::fs::DirBuilderExt;
    let s = Scratch::new();
    let sessions = s.path().join("runtime/sessions");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sessions)
        .unwrap();
    let private = |p: &Path, body: &str| {
        std::fs::write(p, body).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // A record that does not parse, one that names another folder, a
    // folder a killed starter left long ago, and one being started now.
    for id in ["0badc0de", "0badc0df"] {
        std::fs::create_dir(sessions.join(id)).unwrap();
    }
    private(&sessions.join("0badc0de/record.json"), "{ not json");
    private(&sessions.join("0badc0df/record.json"), "{\"id\": \"1234\"}");
    let old = sessions.join("0ddba11");
    std::fs::create_dir(&old).unwrap();
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let starting = sessions.join("5ea10b");
    std::fs::create_dir(&starting).unwrap();
    let mut c = s.qcc(&["sessions", "list"]);
    c.env("PATH", s.fake_path(&[]));
    let o = output_within_20s(&s, c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), "no live sessions\n");
    for gone in ["0badc0de", "0badc0df", "0ddba11"] {
        assert!(!sessions.join(gone).exists(), "{gone} was left");
    }
    assert!(starting.exists(), "a session being started was removed");
}

#[test]
fn project_file_swapped_after_the_check_is_never_read() {
    // A project file in a folder every user can write to is used only when
    // the caller or root owns it. Another user swaps theirs in and out
    // while the caller runs: the file that was checked must be the file
    // that is read, every time.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (to give a file to another user)");
        return;
    }
    let s = Scratch::new();
    let shared = s.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let name = shared.join("qemu-cross-cc.toml");
    let spare = shared.join("spare.toml");
    std::fs::write(&name, "[build]\n").unwrap();
    std::fs::write(&spare, "[build]\npaths = [\"/planted-by-another-user\"]\n").unwrap();
    std::os::unix::fs::chown(&spare, Some(65534), Some(65534)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, name, spare) = (stop.clone(), name.clone(), spare.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &name,
                    nix::fcntl::AT_FDCWD,
                    &spare,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .unwrap();
            }
        })
    };
    let (mut used, mut refused) = (0, 0);
    for _ in 0..100 {
        let o = s
            .qcc(&["--target", "s390x-linux-gnu", "-c", "x.c"])
            .current_dir(&shared)
            .env("PATH", s.fake_path(&[]))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("planted-by-another-user"),
            "another user's project file was read: {err}"
        );
        // The caller's own file leads on to the (missing) engine.
        if err.contains("no working container engine") {
            used += 1;
        } else {
            assert!(err.contains("refusing to use"), "{err}");
            refused += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(used > 0 && refused > 0, "used {used}, refused {refused}");
}
