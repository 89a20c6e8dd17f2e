//! Per-call overhead of qemu-cross-cc against the host's native cross
//! compiler, on one machine in one run: `cargo bench` (as root, after
//! tests/setup-engines.sh). Prints medians and ratios to native.
//!
//! Measured, for docker and podman:
//! - N trivial `aarch64-linux-gnu-gcc -c` compiles: host native, through the
//!   shim one-shot (QEMU_CROSS_CC_SESSION=0), through the shim with a warm
//!   session, and the raw engine baselines (`run --rm`, `exec`);
//! - the first call with the image present and no session, against `run
//!   --rm` of the same command;
//! - a configure-style workload: the test project's out-of-tree configure
//!   (many tiny probes) and `make -j4`, native against the shims.
//!
//! Environment: QCC_BENCH_RUNS (trivial compiles per mode, default 40),
//! QCC_BENCH_BUILDS (configure+make runs per mode, default 5).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{configure_and_make, median, time};

const TARGET: &str = "aarch64-linux-gnu";
const NATIVE: &str = "/usr/bin/aarch64-linux-gnu-gcc";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Bench {
    dir: PathBuf,
    bin: PathBuf,
    shims: PathBuf,
    image: String,
}

impl Bench {
    /// The shim command for `engine`, sessions on or off.
    fn shim(&self, engine: &str, session: bool) -> Command {
        let mut c = Command::new(self.shims.join(format!("{TARGET}-gcc")));
        c.current_dir(self.dir.join("work"))
            .env("QEMU_CROSS_CC_ENGINE", engine)
            .env("QEMU_CROSS_CC_SESSION", if session { "1" } else { "0" })
            .env(
                "QEMU_CROSS_CC_RUNTIME_DIR",
                self.dir.join(format!("runtime-{engine}")),
            );
        c
    }

    fn stop_sessions(&self, engine: &str) {
        let st = Command::new(&self.bin)
            .args(["sessions", "stop", "--all"])
            .env(
                "QEMU_CROSS_CC_RUNTIME_DIR",
                self.dir.join(format!("runtime-{engine}")),
            )
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn work(&self) -> String {
        self.dir.join("work").display().to_string()
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = env_num("QCC_BENCH_RUNS", 40);
    let builds = env_num("QCC_BENCH_BUILDS", 5);
    assert!(
        Path::new(NATIVE).exists(),
        "{NATIVE} missing: run tests/setup-engines.sh"
    );
    let dir = tempfile::Builder::new()
        .prefix("qcc-bench")
        .tempdir()
        .unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("work")).unwrap();
    std::fs::write(root.join("work/t.c"), "int main(void) { return 0; }\n").unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qemu-cross-cc"));
    let shims = root.join("bin");
    let st = Command::new(&bin)
        .args(["shims", "--quiet", "--dir"])
        .arg(&shims)
        .arg(TARGET)
        .status()
        .unwrap();
    assert!(st.success());
    let b = Bench {
        dir: root.clone(),
        bin,
        shims,
        image: format!("qemu-cross-cc/{TARGET}"),
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "qemu-cross-cc overhead benchmark: {} CPUs ({cpu}), {runs} runs per mode, medians",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!();

    // Warm up: images present in both engines, page cache hot.
    for engine in ["docker", "podman"] {
        time(b.shim(engine, false).args(["-c", "t.c", "-o", "t.o"]));
    }
    let native = median(
        (0..runs)
            .map(|_| {
                time(
                    Command::new(NATIVE)
                        .args(["-c", "t.c", "-o", "t.o"])
                        .current_dir(root.join("work")),
                )
            })
            .collect(),
    );
    println!("trivial compile (`{TARGET}-gcc -c t.c`):");
    println!("  {:<44} {:>9.1} ms", "host native", ms(native));
    let mut session_medians = Vec::new();
    for engine in ["docker", "podman"] {
        let work = b.work();
        let vol = format!("{work}:{work}");
        let raw_run = median(
            (0..runs.min(15))
                .map(|_| {
                    time(Command::new(engine).args([
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "-v",
                        &vol,
                        "-w",
                        &work,
                        &b.image,
                        "aarch64-linux-gnu-gcc",
                        "-c",
                        "t.c",
                        "-o",
                        "t.o",
                    ]))
                })
                .collect(),
        );
        let name = format!("qcc-bench-{}", std::process::id());
        let st = Command::new(engine)
            .args([
                "run",
                "-d",
                "--rm",
                "--name",
                &name,
                "--network",
                "none",
                "-v",
                &vol,
                "-w",
                &work,
                "--entrypoint",
                "sleep",
                &b.image,
                "600",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let raw_exec = median(
            (0..runs.min(15))
                .map(|_| {
                    time(Command::new(engine).args([
                        "exec",
                        "-w",
                        &work,
                        &name,
                        "aarch64-linux-gnu-gcc",
                        "-c",
                        "t.c",
                        "-o",
                        "t.o",
                    ]))
                })
                .collect(),
        );
        let mut rm = vec!["rm", "-f"];
        if engine == "podman" {
            rm.extend(["-t", "0"]);
        }
        let _ = Command::new(engine)
            .args(&rm)
            .arg(&name)
            .stdout(Stdio::null())
            .status();
        let one_shot = median(
            (0..runs.min(15))
                .map(|_| time(b.shim(engine, false).args(["-c", "t.c", "-o", "t.o"])))
                .collect(),
        );
        time(b.shim(engine, true).args(["-c", "t.c", "-o", "t.o"]));
        let session = median(
            (0..runs)
                .map(|_| time(b.shim(engine, true).args(["-c", "t.c", "-o", "t.o"])))
                .collect(),
        );
        // The first call: image present, no session.
        let first = median(
            (0..7)
                .map(|_| {
                    b.stop_sessions(engine);
                    time(b.shim(engine, true).args(["-c", "t.c", "-o", "t.o"]))
                })
                .collect(),
        );
        for (what, d) in [
            (format!("{engine} run --rm (raw engine)"), raw_run),
            (format!("{engine} exec (raw engine)"), raw_exec),
            (format!("shim, {engine}, one-shot"), one_shot),
            (
                format!("shim, {engine}, first call (starts session)"),
                first,
            ),
            (format!("shim, {engine}, warm session"), session),
        ] {
            println!(
                "  {what:<44} {:>9.1} ms  {:>6.2}x native  {:>+8.1} ms over native",
                ms(d),
                d.as_secs_f64() / native.as_secs_f64(),
                ms(d) - ms(native)
            );
        }
        println!(
            "  first call vs {engine} run --rm: {:+.1} ms",
            ms(first) - ms(raw_run)
        );
        session_medians.push((engine, session));
    }
    println!();

    // The configure-style workload.
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/project");
    println!(
        "configure + make -j4 of tests/fixtures/project, out of tree, fresh build folder each run ({builds} runs):"
    );
    let tree = root.join("tree");
    let build_once = |path_env: &str, extra: &[(&str, &str)]| -> Duration {
        let mut env = vec![("PATH", path_env)];
        env.extend_from_slice(extra);
        configure_and_make(&project, &tree, TARGET, &env)
    };
    let sys_path = std::env::var("PATH").unwrap();
    let shim_path = format!("{}:{sys_path}", b.shims.display());
    // The host has no aarch64-linux-gnu-pkg-config; configure only asks for
    // its version.
    let native_env: &[(&str, &str)] = if Path::new("/usr/bin/aarch64-linux-gnu-pkg-config").exists()
    {
        &[]
    } else {
        &[("PKG_CONFIG", "true")]
    };
    let native_build = median(
        (0..builds)
            .map(|_| build_once(&sys_path, native_env))
            .collect(),
    );
    println!(
        "  {:<44} {:>9.0} ms",
        "host native cross gcc",
        ms(native_build)
    );
    for engine in ["docker", "podman"] {
        let rt = root.join(format!("runtime-{engine}")).display().to_string();
        for (label, session) in [("warm session", "1"), ("one-shot", "0")] {
            let n = if session == "1" {
                builds
            } else {
                builds.min(2)
            };
            let d = median(
                (0..n)
                    .map(|_| {
                        build_once(
                            &shim_path,
                            &[
                                ("QEMU_CROSS_CC_ENGINE", engine),
                                ("QEMU_CROSS_CC_SESSION", session),
                                ("QEMU_CROSS_CC_RUNTIME_DIR", &rt),
                            ],
                        )
                    })
                    .collect(),
            );
            println!(
                "  {:<44} {:>9.0} ms  {:>6.2}x native",
                format!("shims, {engine}, {label}"),
                ms(d),
                d.as_secs_f64() / native_build.as_secs_f64()
            );
        }
    }
    println!();
    gnu_hello(&root, &b, builds);
    for engine in ["docker", "podman"] {
        b.stop_sessions(engine);
    }
    println!();
    for (engine, s) in session_medians {
        println!(
            "per-call overhead over native, {engine} session: {:+.1} ms (goal <= 5 ms)",
            ms(s) - ms(native)
        );
    }
}

/// A real autoconf package: GNU hello 2.10 (Debian's orig tarball, fetched
/// from the Debian mirror into target/bench-cache on first use), configured
/// and built out of tree in a fresh build folder each run.
fn gnu_hello(root: &Path, b: &Bench, builds: usize) {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    let src = cache.join("hello-2.10");
    if !src.join("configure").exists() {
        std::fs::create_dir_all(&cache).unwrap();
        let url = "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10.orig.tar.gz";
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("curl -sSf {url} | tar -xz -C {}", cache.display()))
            .status()
            .unwrap();
        if !st.success() {
            println!("GNU hello: cannot download {url}; skipped");
            return;
        }
    }
    let tree = root.join("hello");
    let once = |path_env: &str, extra: &[(&str, &str)]| -> Duration {
        let mut env = vec![("PATH", path_env)];
        env.extend_from_slice(extra);
        configure_and_make(&src, &tree, "aarch64-linux-gnu", &env)
    };
    let sys_path = std::env::var("PATH").unwrap();
    let shim_path = format!("{}:{sys_path}", b.shims.display());
    println!("GNU hello 2.10: configure + make -j4, fresh build folder each run ({builds} runs):");
    let native = median((0..builds).map(|_| once(&sys_path, &[])).collect());
    println!("  {:<44} {:>9.0} ms", "host native cross gcc", ms(native));
    for engine in ["docker", "podman"] {
        let rt = root.join(format!("runtime-{engine}")).display().to_string();
        let d = median(
            (0..builds)
                .map(|_| {
                    once(
                        &shim_path,
                        &[
                            ("QEMU_CROSS_CC_ENGINE", engine),
                            ("QEMU_CROSS_CC_RUNTIME_DIR", &rt),
                        ],
                    )
                })
                .collect(),
        );
        println!(
            "  {:<44} {:>9.0} ms  {:>6.2}x native",
            format!("shims, {engine}, sessions"),
            ms(d),
            d.as_secs_f64() / native.as_secs_f64()
        );
    }
}
