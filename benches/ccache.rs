//! ccache mode (`QEMU_CROSS_CC_CCACHE=1`): a real autoconf package, GNU
//! hello 2.10, built for s390x (whose headers the host does not have)
//! without ccache, with an empty cache, and again with the cache warm
//! (same build path, fresh build folder), in turn, QCC_BENCH_BUILDS rounds
//! (default 3), for docker and podman. Prints the median
//! times, the warm build against the cold and the uncached ones, ccache's
//! hit rate for the warm build, and whether its objects equal the uncached
//! build's. `cargo bench --bench ccache` (as root, after
//! tests/setup-engines.sh; the host's `ccache` reads the statistics).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{configure_and_make, gnu_hello_source, make_shims, median};

const TARGET: &str = "s390x-linux-gnu";

/// The objects of a build tree, by path below it, with their bytes.
fn objects(build: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![build.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "o") {
                let rel = p.strip_prefix(build).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// ccache's counters for the cache folder `dir`.
fn stats(dir: &Path) -> Vec<(String, u64)> {
    let o = Command::new("ccache")
        .arg("--print-stats")
        .env("CCACHE_DIR", dir)
        .output()
        .expect("ccache");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

fn count(stats: &[(String, u64)], key: &str) -> u64 {
    stats.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(src) = gnu_hello_source() else {
        return;
    };
    if Command::new("ccache")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        println!(
            "ccache benchmark: the host's ccache is missing (apt-get install ccache); skipped"
        );
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("qcc-bench-ccache")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qemu-cross-cc"));
    let shims = root.join("bin");
    make_shims(&bin, &shims, TARGET);
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap());
    let rounds: usize = std::env::var("QCC_BENCH_BUILDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "ccache mode: GNU hello 2.10 for {TARGET}, configure + make -j4, medians of {rounds} \
         rounds (no ccache, cold cache, warm cache in turn)"
    );
    for engine in ["docker", "podman"] {
        let cache = root.join(format!("cache-{engine}"));
        let rt = root.join(format!("runtime-{engine}"));
        let tree = root.join("hello");
        let build = |ccache: &str| -> Duration {
            configure_and_make(
                &src,
                &tree,
                TARGET,
                &[
                    ("PATH", &path),
                    ("QEMU_CROSS_CC_ENGINE", engine),
                    ("QEMU_CROSS_CC_RUNTIME_DIR", &rt.display().to_string()),
                    ("QEMU_CROSS_CC_CACHE_DIR", &cache.display().to_string()),
                    ("QEMU_CROSS_CC_CCACHE", ccache),
                ],
            )
        };
        // The first build also ensures the image and starts a session:
        // it is not timed.
        build("0");
        let folder_of = || -> Option<PathBuf> {
            std::fs::read_dir(cache.join("ccache"))
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(TARGET))
                })
        };
        let (mut plain, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        let mut report = String::new();
        for _ in 0..rounds {
            plain.push(build("0"));
            let reference = objects(&tree.join("build"));
            // An empty cache for the cold build.
            if let Some(f) = folder_of() {
                std::fs::remove_dir_all(f).unwrap();
            }
            cold.push(build("1"));
            let folder = folder_of().expect("the ccache folder");
            let zeroed = Command::new("ccache")
                .arg("--zero-stats")
                .env("CCACHE_DIR", &folder)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(zeroed.success());
            warm.push(build("1"));
            let s = stats(&folder);
            let direct = count(&s, "direct_cache_hit");
            let preprocessed = count(&s, "preprocessed_cache_hit");
            let misses = count(&s, "cache_miss");
            let asked = direct + preprocessed + misses;
            let got = objects(&tree.join("build"));
            report = format!(
                "  {engine}: warm build: {direct} direct hits, {preprocessed} preprocessed hits, \
                 {misses} misses of {asked} cacheable compiles ({:.1}% direct); {} objects, {}",
                100.0 * direct as f64 / asked.max(1) as f64,
                got.len(),
                if got == reference {
                    "identical to the build without ccache"
                } else {
                    "NOT identical to the build without ccache"
                }
            );
        }
        let (plain, cold, warm) = (median(plain), median(cold), median(warm));
        println!(
            "  {engine}: no ccache {:.1} s, cold cache {:.1} s, warm cache {:.1} s \
             ({:.2}x the cold build, {:.2}x no ccache)",
            plain.as_secs_f64(),
            cold.as_secs_f64(),
            warm.as_secs_f64(),
            warm.as_secs_f64() / cold.as_secs_f64(),
            warm.as_secs_f64() / plain.as_secs_f64(),
        );
        println!("{report}");
        let st = Command::new(&bin)
            .args(["sessions", "stop", "--all"])
            .env("QEMU_CROSS_CC_RUNTIME_DIR", &rt)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
}
