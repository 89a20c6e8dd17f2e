//! Per built-in target: the image build time, and the wall time of the test
//! project's configure + make through the shims (warm session), against the
//! host's native cross gcc where the host has one (aarch64). `cargo bench
//! --bench targets` as root after tests/setup-engines.sh.
//!
//! Images are built under the tag `qcc-bench/<target>` (a user plugin
//! overriding the built-in one) and removed afterwards; the engine is
//! QCC_BENCH_ENGINE (default docker); QCC_BENCH_TARGETS limits the targets
//! (comma-separated).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{configure_and_make, time as run};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let engine = std::env::var("QCC_BENCH_ENGINE").unwrap_or_else(|_| "docker".into());
    let only: Option<Vec<String>> = std::env::var("QCC_BENCH_TARGETS")
        .ok()
        .map(|s| s.split(',').map(String::from).collect());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qemu-cross-cc"));
    let dir = tempfile::Builder::new()
        .prefix("qcc-bench-targets")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let mut targets: Vec<String> = std::fs::read_dir(repo.join("plugins"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .filter(|t| only.as_ref().is_none_or(|o| o.contains(t)))
        .collect();
    targets.sort();
    // Our own tags: nothing of the user's is touched.
    for t in &targets {
        let text = std::fs::read_to_string(repo.join(format!("plugins/{t}.json"))).unwrap();
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        m["image"] = serde_json::Value::from(format!("qcc-bench/{t}"));
        std::fs::write(plugins.join(format!("{t}.json")), m.to_string()).unwrap();
    }
    let shims = root.join("bin");
    let qcc = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args)
            .env("QEMU_CROSS_CC_ENGINE", &engine)
            .env("QEMU_CROSS_CC_PLUGIN_PATH", &plugins)
            .env("QEMU_CROSS_CC_RUNTIME_DIR", root.join("runtime"))
            .env("QEMU_CROSS_CC_CACHE_DIR", root.join("cache"));
        c
    };
    run(qcc(&["shims", "--quiet", "--dir", shims.to_str().unwrap()]).stdout(Stdio::null()));
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap());
    let project = repo.join("tests/fixtures/project");
    let runtime = root.join("runtime").display().to_string();
    let cache = root.join("cache").display().to_string();
    let plugin_path = plugins.display().to_string();
    let build = |t: &str, path: &str, extra: &[(&str, &str)]| -> Duration {
        let mut env = vec![
            ("PATH", path),
            ("QEMU_CROSS_CC_ENGINE", engine.as_str()),
            ("QEMU_CROSS_CC_PLUGIN_PATH", plugin_path.as_str()),
            ("QEMU_CROSS_CC_RUNTIME_DIR", runtime.as_str()),
            ("QEMU_CROSS_CC_CACHE_DIR", cache.as_str()),
        ];
        env.extend_from_slice(extra);
        configure_and_make(&project, &root.join("src-tree"), t, &env)
    };
    println!(
        "per-target figures, engine {engine}: image build (network-bound), then configure + make -j4"
    );
    println!(
        "of tests/fixtures/project through the shims (session; median of 3, after a first run)"
    );
    println!();
    println!(
        "{:<26} {:>12} {:>14} {:>14} {:>8}",
        "TARGET", "IMAGE BUILD", "SHIMS BUILD", "NATIVE BUILD", "RATIO"
    );
    for t in &targets {
        let image_build = run(qcc(&["build", "--quiet", t]).stderr(Stdio::null()));
        build(t, &path, &[]);
        let mut shim: Vec<Duration> = (0..3).map(|_| build(t, &path, &[])).collect();
        shim.sort();
        let native_cc = format!("/usr/bin/{t}-gcc");
        let (native, ratio) = if Path::new(&native_cc).exists() {
            let sys = std::env::var("PATH").unwrap();
            let mut n: Vec<Duration> = (0..3)
                .map(|_| build(t, &sys, &[("PKG_CONFIG", "true")]))
                .collect();
            n.sort();
            (
                format!("{:.2} s", n[1].as_secs_f64()),
                format!("{:.2}x", shim[1].as_secs_f64() / n[1].as_secs_f64()),
            )
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "{t:<26} {:>10.1} s {:>12.2} s {native:>14} {ratio:>8}",
            image_build.as_secs_f64(),
            shim[1].as_secs_f64()
        );
        let _ = qcc(&["sessions", "stop", "--all"])
            .stdout(Stdio::null())
            .status();
        let _ = Command::new(&engine)
            .args(["rmi", "-f", &format!("qcc-bench/{t}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
