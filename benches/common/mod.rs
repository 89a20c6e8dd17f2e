//! Measuring helpers shared by the benchmarks.

#![allow(dead_code)]

pub mod kernel;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The median of some durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Run `cmd` (no stdin, stdout discarded), requiring success; its wall time.
pub fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let st = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("spawn");
    let d = start.elapsed();
    assert!(st.success(), "{cmd:?} failed");
    d
}

/// Copy the source tree `src` to `tree/src` (timestamps kept: make relies on
/// them, and a build may update files of its source tree), then time
/// `../src/configure --host=HOST` and `make -s -j4` in a fresh `tree/build`,
/// with `env` set (PATH among them).
pub fn configure_and_make(src: &Path, tree: &Path, host: &str, env: &[(&str, &str)]) -> Duration {
    let _ = std::fs::remove_dir_all(tree);
    std::fs::create_dir_all(tree).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(tree.join("src"))
        .status()
        .unwrap();
    assert!(st.success());
    let build = tree.join("build");
    std::fs::create_dir_all(&build).unwrap();
    let start = Instant::now();
    for args in [
        vec!["../src/configure".to_string(), format!("--host={host}")],
        vec!["make".into(), "-s".into(), "-j4".into()],
    ] {
        let mut c = Command::new(&args[0]);
        c.args(&args[1..]).current_dir(&build);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.stdin(Stdio::null()).output().unwrap();
        if !o.status.success() {
            let log = std::fs::read_to_string(build.join("config.log")).unwrap_or_default();
            panic!(
                "{args:?} failed ({env:?}): {}\nconfig.log:\n{log}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    start.elapsed()
}

/// The Debian mirror this host's apt uses (its first `URIs:` line, else the
/// first `deb` line naming a `debian` archive), read at run time;
/// `QCC_DEBIAN_MIRROR` wins, as in tests/setup-engines.sh.
pub fn debian_mirror() -> Option<String> {
    if let Ok(m) = std::env::var("QCC_DEBIAN_MIRROR") {
        if !m.is_empty() {
            return Some(m);
        }
    }
    let deb822 = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok();
    let from_deb822 = deb822.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("URIs:"))
            .and_then(|v| v.split_whitespace().next())
            .map(String::from)
    });
    from_deb822.or_else(|| {
        let list = std::fs::read_to_string("/etc/apt/sources.list").ok()?;
        list.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("deb"))
                .then(|| w.next())
                .flatten()
                .filter(|u| u.trim_end_matches('/').ends_with("debian"))
                .map(String::from)
        })
    })
}

/// GNU hello 2.10's source tree (Debian's orig tarball, fetched from the
/// host's Debian mirror into target/bench-cache on first use); None, after
/// a line saying why, when it cannot be fetched.
pub fn gnu_hello_source() -> Option<std::path::PathBuf> {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    let src = cache.join("hello-2.10");
    if src.join("configure").exists() {
        return Some(src);
    }
    std::fs::create_dir_all(&cache).ok()?;
    let Some(mirror) = debian_mirror() else {
        println!("GNU hello: no Debian mirror in /etc/apt (set QCC_DEBIAN_MIRROR); skipped");
        return None;
    };
    let url = format!(
        "{}/pool/main/h/hello/hello_2.10.orig.tar.gz",
        mirror.trim_end_matches('/')
    );
    let mut curl = Command::new("curl")
        .args(["-sSf", &url])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let body = curl.stdout.take()?;
    let untarred = Command::new("tar")
        .args(["-xz", "-C"])
        .arg(&cache)
        .stdin(body)
        .status()
        .is_ok_and(|s| s.success());
    if !curl.wait().is_ok_and(|s| s.success()) || !untarred || !src.join("configure").exists() {
        println!("GNU hello: cannot download {url}; skipped");
        return None;
    }
    Some(src)
}

/// Links for `target` to the binary `bin` in the folder `dir`
/// (`qemu-cross-cc shims`).
pub fn make_shims(bin: &Path, dir: &Path, target: &str) {
    let st = Command::new(bin)
        .args(["shims", "--quiet", "--dir"])
        .arg(dir)
        .arg(target)
        .status()
        .unwrap();
    assert!(st.success(), "qemu-cross-cc shims failed");
}

/// `runs` pairs of `a` and `b`, run in turn (which goes first alternates,
/// so that the machine's drift falls on both): their times, and the median
/// of the differences `b - a` in milliseconds.
pub fn paired(
    runs: usize,
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) -> (Vec<(Duration, Duration)>, f64) {
    let mut pairs = Vec::with_capacity(runs);
    for i in 0..runs {
        let pair = if i % 2 == 0 {
            let x = a();
            (x, b())
        } else {
            let y = b();
            (a(), y)
        };
        pairs.push(pair);
    }
    let mut diffs: Vec<f64> = pairs
        .iter()
        .map(|(x, y)| (y.as_secs_f64() - x.as_secs_f64()) * 1000.0)
        .collect();
    diffs.sort_by(f64::total_cmp);
    let diff = diffs[diffs.len() / 2];
    (pairs, diff)
}
