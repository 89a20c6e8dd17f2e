//! Per-call overhead of qemu-cross-cc against the host's native cross
//! compiler, on one machine in one run: `cargo bench` (as root, after
//! tests/setup-engines.sh). Prints medians and ratios to native.
//!
//! Measured, for docker and podman:
//! - N trivial `aarch64-linux-gnu-gcc -c` compiles: host native, through the
//!   shim one-shot (QEMU_CROSS_CC_SESSION=0), through the shim with a warm
//!   session, and the raw engine baselines (`run --rm`, `exec`);
//! - the first call with the image present and no session, paired in turn
//!   with `run --rm` of the same compile with the same mount, and the first
//!   call in a build folder removed and made again (its old session up);
//! - a configure-style workload: the test project's out-of-tree configure
//!   (many tiny probes) and `make -j4`, native against the shims, and GNU
//!   hello 2.10;
//! - on request, a Linux kernel arm64 `tinyconfig` build, native and through
//!   the shims in pairs, with `vmlinux` and the objects compared
//!   (`common/kernel.rs`).
//!
//! Environment: QCC_BENCH_RUNS (trivial compiles per mode, default 40),
//! QCC_BENCH_BUILDS (configure+make runs per mode, or GNU hello rounds, default 5),
//! QCC_BENCH_FIRST (first-call pairs, default 10), QCC_BENCH_KERNEL (`1`
//! adds the kernel, `only` runs it alone), QCC_BENCH_KERNEL_PAIRS (default 3).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{configure_and_make, kernel, make_shims, median, paired, time};

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
    let builds = env_num("QCC_BENCH_BUILDS", 5).max(1);
    let first_runs = env_num("QCC_BENCH_FIRST", 10).max(1);
    let kernel_mode = KernelMode::from_env();
    let kernel_pairs = env_num("QCC_BENCH_KERNEL_PAIRS", 3).max(1);
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
    make_shims(&bin, &shims, TARGET);
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
    if kernel_mode == KernelMode::Only {
        let summary = linux_kernel(&root, &b, kernel_pairs);
        for engine in ["docker", "podman"] {
            b.stop_sessions(engine);
        }
        println!();
        for line in summary {
            println!("{line}");
        }
        return;
    }

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
    let mut first_medians = Vec::new();
    for engine in ["docker", "podman"] {
        let work = b.work();
        let vol = format!("{work}:{work}");
        // The engine's own one-shot run of the same compile, as the calling
        // user, with the mount a session of this folder has (the folder
        // itself, read-write).
        let user = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
        let raw_run_cmd = || {
            let mut c = Command::new(engine);
            c.args([
                "run",
                "--rm",
                "-u",
                &user,
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
            ]);
            c
        };
        let raw_run = median(
            (0..runs.min(15))
                .map(|_| time(&mut raw_run_cmd()))
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
        // Warm calls paired with native ones, in turn, so that the machine's
        // drift falls on both.
        let (pairs, diff) = paired(
            runs,
            || {
                time(
                    Command::new(NATIVE)
                        .args(["-c", "t.c", "-o", "t.o"])
                        .current_dir(root.join("work")),
                )
            },
            || time(b.shim(engine, true).args(["-c", "t.c", "-o", "t.o"])),
        );
        let session = median(pairs.iter().map(|p| p.1).collect());
        let paired_native = median(pairs.iter().map(|p| p.0).collect());
        // The first call: image present, no session; paired in turn with
        // the engine's `run --rm` of the same compile.
        let (first_pairs, first_diff) = paired(
            first_runs,
            || time(&mut raw_run_cmd()),
            || {
                b.stop_sessions(engine);
                time(b.shim(engine, true).args(["-c", "t.c", "-o", "t.o"]))
            },
        );
        let first = median(first_pairs.iter().map(|p| p.1).collect());
        let paired_run = median(first_pairs.iter().map(|p| p.0).collect());
        // The same, with what the program remembers of the engine expired
        // (`QEMU_CROSS_CC_ENGINE_TTL=0`), as for a build's first call after
        // more than a minute without one: the engine is asked again whether
        // it answers and where it runs containers, and swept.
        let (expired_pairs, expired_diff) = paired(
            first_runs,
            || time(&mut raw_run_cmd()),
            || {
                b.stop_sessions(engine);
                time(
                    b.shim(engine, true)
                        .args(["-c", "t.c", "-o", "t.o"])
                        .env("QEMU_CROSS_CC_ENGINE_TTL", "0"),
                )
            },
        );
        let expired = median(expired_pairs.iter().map(|p| p.1).collect());
        let expired_run = median(expired_pairs.iter().map(|p| p.0).collect());
        // The first call of a rebuild in a build folder removed and made
        // again (`rm -rf build`): the old session is still up, cannot see
        // the new folder, and is replaced.
        let remade = root.join("remade/build");
        let remade_call = || {
            let _ = std::fs::remove_dir_all(&remade);
            std::fs::create_dir_all(&remade).unwrap();
            std::fs::copy(root.join("work/t.c"), remade.join("t.c")).unwrap();
            time(
                b.shim(engine, true)
                    .args(["-c", "t.c", "-o", "t.o"])
                    .current_dir(&remade),
            )
        };
        remade_call();
        let (remade_pairs, remade_diff) =
            paired(first_runs, || time(&mut raw_run_cmd()), remade_call);
        let remade_first = median(remade_pairs.iter().map(|p| p.1).collect());
        let remade_run = median(remade_pairs.iter().map(|p| p.0).collect());
        // The warm session again, for the breakdown below.
        time(b.shim(engine, true).args(["-c", "t.c", "-o", "t.o"]));
        for (what, d) in [
            (format!("{engine} run --rm (raw engine)"), raw_run),
            (format!("{engine} exec (raw engine)"), raw_exec),
            (format!("shim, {engine}, one-shot"), one_shot),
            (
                format!("shim, {engine}, first call (starts session)"),
                first,
            ),
        ] {
            println!(
                "  {what:<44} {:>9.1} ms  {:>6.2}x native  {:>+8.1} ms over native",
                ms(d),
                d.as_secs_f64() / native.as_secs_f64(),
                ms(d) - ms(native)
            );
        }
        // Against the native runs it was paired with.
        println!(
            "  {:<44} {:>9.1} ms  {:>6.2}x native  {:>+8.1} ms over native (paired)",
            format!("shim, {engine}, warm session"),
            ms(session),
            session.as_secs_f64() / paired_native.as_secs_f64(),
            diff
        );
        println!(
            "  first call vs {engine} run --rm, {first_runs} pairs in turn: {:.1} ms vs {:.1} ms, \
             {:.3}x, median of the pairs' differences {:+.1} ms",
            ms(first),
            ms(paired_run),
            first.as_secs_f64() / paired_run.as_secs_f64(),
            first_diff
        );
        println!(
            "  first call with the engine's facts expired (a build after a minute's pause) vs \
             {engine} run --rm, {first_runs} pairs in turn: {:.1} ms vs {:.1} ms, {:.3}x, median \
             of the pairs' differences {:+.1} ms",
            ms(expired),
            ms(expired_run),
            expired.as_secs_f64() / expired_run.as_secs_f64(),
            expired_diff
        );
        println!(
            "  first call in a remade build folder (old session up) vs {engine} run --rm, \
             {first_runs} pairs in turn: {:.1} ms vs {:.1} ms, {:.3}x, median of the pairs' \
             differences {:+.1} ms",
            ms(remade_first),
            ms(remade_run),
            remade_first.as_secs_f64() / remade_run.as_secs_f64(),
            remade_diff
        );
        first_medians.push((engine, first_diff));
        println!(
            "  warm session, {runs} pairs in turn with native: {:.1} ms vs {:.1} ms, {:.3}x, \
             median of the pairs' differences {:+.2} ms",
            ms(session),
            ms(paired_native),
            session.as_secs_f64() / paired_native.as_secs_f64(),
            diff
        );
        breakdown(&b, engine, runs);
        session_medians.push((engine, diff));
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
    println!();
    let kernel_summary = if kernel_mode == KernelMode::On {
        linux_kernel(&root, &b, kernel_pairs)
    } else {
        println!(
            "Linux arm64 tinyconfig: not run (QCC_BENCH_KERNEL=1 adds it, QCC_BENCH_KERNEL=only \
             runs it alone; 4-20 min a build on 2 CPUs)"
        );
        Vec::new()
    };
    for engine in ["docker", "podman"] {
        b.stop_sessions(engine);
    }
    println!();
    for (engine, d) in session_medians {
        println!(
            "per-call overhead over native, {engine} session (median of paired differences): \
             {d:+.2} ms (goal <= +1 ms)"
        );
    }
    for (engine, d) in first_medians {
        println!(
            "first call over {engine} run --rm (median of paired differences): {d:+.1} ms \
             (goal <= 0)"
        );
    }
    for line in kernel_summary {
        println!("{line}");
    }
}

/// What `QCC_BENCH_KERNEL` asks for: unset, empty or `0` leaves the kernel
/// out, `only` runs it alone, anything else adds it.
#[derive(PartialEq)]
enum KernelMode {
    Off,
    On,
    Only,
}

impl KernelMode {
    fn from_env() -> KernelMode {
        match std::env::var("QCC_BENCH_KERNEL").as_deref() {
            Err(_) | Ok("") | Ok("0") => KernelMode::Off,
            Ok("only") => KernelMode::Only,
            Ok(_) => KernelMode::On,
        }
    }
}

/// The Linux kernel, arm64 `tinyconfig`, `make -j2 vmlinux`: native and
/// through the shims in pairs run in turn, for each engine; each build in a
/// fresh folder at one path, then moved aside so the pair's trees can be
/// compared. Each shim build starts its session. Returns the summary lines.
fn linux_kernel(root: &Path, b: &Bench, pairs: usize) -> Vec<String> {
    if let Some(line) = kernel::missing_tools() {
        println!("Linux arm64 tinyconfig: skipped, {line}");
        return Vec::new();
    }
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    let src = match kernel::source(&cache) {
        Ok(s) => s,
        Err(e) => {
            println!("Linux arm64 tinyconfig: skipped, {e}");
            return Vec::new();
        }
    };
    let build = root.join("kbuild");
    let native_tree = root.join("kbuild-native");
    let shim_tree = root.join("kbuild-shims");
    let keep = |to: &Path| {
        let _ = std::fs::remove_dir_all(to);
        std::fs::rename(&build, to).unwrap();
    };
    let native_cross = format!("{TARGET}-");
    let shim_cross = format!("{}/{TARGET}-", b.shims.display());
    println!(
        "Linux ({}) arm64 tinyconfig + make -j2 vmlinux, fresh build folder at one path, \
         {pairs} {} in turn with native:",
        src.display(),
        if pairs == 1 { "pair" } else { "pairs" }
    );
    let mut summary = Vec::new();
    for engine in ["docker", "podman"] {
        let rt = root.join(format!("runtime-{engine}")).display().to_string();
        let shim_env = [
            ("QEMU_CROSS_CC_ENGINE", engine),
            ("QEMU_CROSS_CC_RUNTIME_DIR", rt.as_str()),
        ];
        let native_once = || {
            let d = kernel::build(&src, &build, &native_cross, &[]);
            keep(&native_tree);
            d
        };
        let shim_once = || {
            b.stop_sessions(engine);
            let d = kernel::build(&src, &build, &shim_cross, &shim_env);
            keep(&shim_tree);
            d
        };
        let mut runs = Vec::new();
        let mut differing_pairs = 0;
        for i in 0..pairs {
            let (n, s) = if i % 2 == 0 {
                let n = native_once();
                (n, shim_once())
            } else {
                let s = shim_once();
                (native_once(), s)
            };
            let cmp = kernel::compare(&native_tree, &shim_tree);
            let same = if cmp.vmlinux_same && cmp.differing.is_empty() {
                format!("vmlinux and all {} objects identical", cmp.objects)
            } else {
                differing_pairs += 1;
                let first: Vec<String> = cmp
                    .differing
                    .iter()
                    .take(5)
                    .map(|p| p.display().to_string())
                    .collect();
                format!(
                    "vmlinux {}, {} of {} objects differ ({})",
                    if cmp.vmlinux_same {
                        "identical"
                    } else {
                        "DIFFERS"
                    },
                    cmp.differing.len(),
                    cmp.objects,
                    first.join(" ")
                )
            };
            println!(
                "  {engine} pair {}: native {:.1} s, shims {:.1} s, {:.3}x; {same}",
                i + 1,
                n.as_secs_f64(),
                s.as_secs_f64(),
                s.as_secs_f64() / n.as_secs_f64()
            );
            runs.push((n, s));
        }
        let mut ratios: Vec<f64> = runs
            .iter()
            .map(|(n, s)| s.as_secs_f64() / n.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let native = median(runs.iter().map(|r| r.0).collect());
        let shims = median(runs.iter().map(|r| r.1).collect());
        println!(
            "  {:<44} {:>9.1} s vs {:.1} s native, {ratio:.3}x (median of the pairs' ratios)",
            format!("shims, {engine}, sessions"),
            shims.as_secs_f64(),
            native.as_secs_f64()
        );
        summary.push(format!(
            "Linux arm64 tinyconfig, {engine}: {ratio:.3}x native (median of {pairs} pairs' \
             ratios; goal <= 1.03x), vmlinux {}",
            if differing_pairs == 0 {
                "byte-identical in every pair".to_string()
            } else {
                format!("or objects differ in {differing_pairs} of {pairs} pairs")
            }
        ));
    }
    summary
}

/// The steps of a warm call, from the program's own timings
/// (`QEMU_CROSS_CC_TIMINGS`), with what the parent saw around them, and the
/// compiler's own run inside the session's container against the host.
fn breakdown(b: &Bench, engine: &str, runs: usize) {
    const STEPS: [(&str, &str); 10] = [
        ("ready", "start-up in main (descriptors, signal thread)"),
        ("plugin", "plugin (manifests read, extends resolved)"),
        ("project", "project file found and applied"),
        ("request", "command line read, request built"),
        ("checksum", "dockerfile checksum the image must carry"),
        ("records", "session records read"),
        ("connect", "connect to the agent"),
        ("accepted", "run request until the agent took it"),
        ("exited", "the program's run, until its exit status came"),
        ("end", "after it returned (depfiles, exit)"),
    ];
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    let mut before_main = Vec::new();
    for _ in 0..runs {
        let mut c = b.shim(engine, true);
        c.args(["-c", "t.c", "-o", "t.o"])
            .env("QEMU_CROSS_CC_TIMINGS", "1")
            .stdin(Stdio::null());
        let start = std::time::Instant::now();
        let o = c.output().unwrap();
        let wall = ms(start.elapsed());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let marks: Vec<(String, f64)> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter_map(|l| {
                let mut w = l.strip_prefix("qemu-cross-cc: timing: ")?.split(' ');
                Some((
                    w.next()?.to_string(),
                    w.next()?.parse::<f64>().ok()? / 1000.0,
                ))
            })
            .collect();
        let at = |step: &str| marks.iter().find(|(s, _)| s == step).map(|m| m.1);
        let mut last = 0.0;
        for (i, (step, _)) in STEPS.iter().enumerate() {
            let t = at(step).unwrap_or_else(|| panic!("no timing {step}: {marks:?}"));
            steps[i].push(t - last);
            last = t;
        }
        before_main.push(wall - last);
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // What starting any program costs here, seen the same way.
    let floor = median(
        (0..runs)
            .map(|_| time(&mut Command::new("/bin/true")))
            .collect(),
    );
    println!("  breakdown of a warm {engine} call (medians of {runs}):");
    println!(
        "    {:<52} {:>7.2} ms (/bin/true: {:.2} ms)",
        "exec, and exit after main (the parent's view)",
        med(before_main),
        ms(floor)
    );
    for (i, (_, what)) in STEPS.iter().enumerate() {
        println!("    {what:<52} {:>7.2} ms", med(steps[i].clone()));
    }
    // The compiler alone, in the session's container and on the host: the
    // same loop timed from inside.
    let loop_script = format!(
        "cd {} && s=$(date +%s%N) && for i in $(seq {runs}); do aarch64-linux-gnu-gcc -c t.c \
         -o t.o; done && echo $(( ($(date +%s%N) - s) / {runs} ))",
        b.work()
    );
    let container = Command::new(engine)
        .args(["ps", "-q", "--filter"])
        .arg(format!(
            "label=com.qemu-cross-cc.runtime={}",
            b.dir.join(format!("runtime-{engine}")).display()
        ))
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&container.stdout)
        .split_whitespace()
        .next()
        .map(String::from);
    let per_call = |cmd: &mut Command| -> Option<f64> {
        let o = cmd.output().ok()?;
        let ns: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
        Some(ns / 1e6)
    };
    let inside = id.and_then(|id| {
        per_call(
            Command::new(engine)
                .args(["exec", "--user"])
                .arg(format!(
                    "{}:{}",
                    nix::unistd::getuid(),
                    nix::unistd::getgid()
                ))
                .arg(&id)
                .args(["sh", "-c", &loop_script]),
        )
    });
    let host = per_call(Command::new("sh").args(["-c", &loop_script]));
    match (inside, host) {
        (Some(i), Some(h)) => println!(
            "    {:<52} {i:>7.2} ms in the container, {h:.2} ms on the host ({:+.2} ms)",
            "the compiler alone, in a loop",
            i - h
        ),
        _ => println!("    the compiler alone: could not time it in the session's container"),
    }
}

/// A real autoconf package: GNU hello 2.10 (Debian's orig tarball, fetched
/// from the host's Debian mirror into target/bench-cache on first use),
/// configured and built out of tree in a fresh build folder each run. Each
/// round runs native, docker and podman once, in an order that turns, so that
/// a ratio compares builds made close together.
fn gnu_hello(root: &Path, b: &Bench, rounds: usize) {
    let Some(src) = common::gnu_hello_source() else {
        return;
    };
    let tree = root.join("hello");
    let sys_path = std::env::var("PATH").unwrap();
    let shim_path = format!("{}:{sys_path}", b.shims.display());
    let runtime = |engine: &str| root.join(format!("runtime-{engine}")).display().to_string();
    let (rt_docker, rt_podman) = (runtime("docker"), runtime("podman"));
    let modes: [(&str, Vec<(&str, &str)>); 3] = [
        ("host native cross gcc", vec![("PATH", &sys_path)]),
        (
            "shims, docker, sessions",
            vec![
                ("PATH", &shim_path),
                ("QEMU_CROSS_CC_ENGINE", "docker"),
                ("QEMU_CROSS_CC_RUNTIME_DIR", &rt_docker),
            ],
        ),
        (
            "shims, podman, sessions",
            vec![
                ("PATH", &shim_path),
                ("QEMU_CROSS_CC_ENGINE", "podman"),
                ("QEMU_CROSS_CC_RUNTIME_DIR", &rt_podman),
            ],
        ),
    ];
    println!(
        "GNU hello 2.10: configure + make -j4, fresh build folder each run, \
         {rounds} rounds of native, docker, podman in turn:"
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        for k in 0..modes.len() {
            let m = (k + round) % modes.len();
            times[m].push(configure_and_make(&src, &tree, TARGET, &modes[m].1));
        }
    }
    let native = median(times[0].clone());
    println!("  {:<44} {:>9.0} ms", modes[0].0, ms(native));
    for (m, (name, _)) in modes.iter().enumerate().skip(1) {
        let mut ratios: Vec<f64> = times[m]
            .iter()
            .zip(&times[0])
            .map(|(s, n)| s.as_secs_f64() / n.as_secs_f64())
            .collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {name:<44} {:>9.0} ms  {:>6.3}x native (median of the rounds' ratios: {})",
            ms(median(times[m].clone())),
            ratios[ratios.len() / 2],
            each.join(" ")
        );
    }
}
