//! The per-job cost model of scale-out with distcc, on one machine in one
//! run: `cargo bench --bench distcc` (as root, after tests/setup-engines.sh).
//! Wall-clock speedup cannot be measured with every "host" on the same 2
//! cores, so this measures what one distributed compile costs and predicts
//! the speedup from it:
//!
//! - a warm local compile of a typical unit (s390x, through the shim) and
//!   the host's native gcc on the same source, for scale;
//! - its local preprocessing (`-E`, what the client still does per job);
//! - cc1 + as on the preprocessed file (what a server does);
//! - bytes sent per job, plain and with `,lzo`, counted by a relay;
//! - a job through distcc to a `serve` container on loopback, and the time
//!   each added 1, 5 and 20 ms of one-way delay (a relay in this program:
//!   the kernel here has no `netem`) adds to it;
//! - the predicted speedup of a 200-file build and of GNU hello's `make`
//!   over 4 servers like this machine.
//!
//! Environment: QCC_BENCH_RUNS (jobs per figure, default 21),
//! QEMU_CROSS_CC_ENGINE (docker by default).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{median, time};

const TARGET: &str = "s390x-linux-gnu";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A TCP relay to `to` that delays every chunk by `delay` in each
/// direction and counts the bytes sent towards `to`.
struct Relay {
    port: u16,
    sent: Arc<AtomicU64>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration, count: Option<Arc<AtomicU64>>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if chunk.is_empty() {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            if to.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send((Instant::now() + delay, Vec::new()));
                break;
            }
            Ok(n) => {
                if let Some(c) = &count {
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = writer.join();
}

impl Relay {
    fn start(to: u16, delay: Duration) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let counted = sent.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let Ok(s) = TcpStream::connect(("127.0.0.1", to)) else {
                        return;
                    };
                    let _ = c.set_nodelay(true);
                    let _ = s.set_nodelay(true);
                    let (c2, s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
                    let up = std::thread::spawn(move || pipe(c, s, delay, Some(counted)));
                    pipe(s2, c2, delay, None);
                    let _ = up.join();
                });
            }
        });
        Relay { port, sent }
    }
}

struct Bench {
    work: PathBuf,
    shims: PathBuf,
    runtime: PathBuf,
    state: PathBuf,
}

impl Bench {
    fn shim(&self, hosts: &str) -> Command {
        let mut c = Command::new(self.shims.join(format!("{TARGET}-gcc")));
        c.current_dir(&self.work)
            .env("QEMU_CROSS_CC_RUNTIME_DIR", &self.runtime)
            .env("QEMU_CROSS_CC_DISTCC_HOSTS", hosts)
            .env("DISTCC_DIR", &self.state)
            .env("DISTCC_FALLBACK", "0");
        c
    }

    fn runs(&self, n: usize, mut make: impl FnMut() -> Command) -> Duration {
        median((0..n).map(|_| time(&mut make())).collect())
    }
}

/// Functions in the unit: about 150 lines, a compile of a few tens of ms.
const UNIT_FUNCTIONS: usize = 12;

/// A typical translation unit: libc headers and a few hundred lines.
fn unit() -> String {
    let mut s = String::from(
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <errno.h>\n\
         #include <stdint.h>\n#include <unistd.h>\n#include <sys/types.h>\n#include <sys/stat.h>\n\
         #include <fcntl.h>\n#include <signal.h>\n#include <time.h>\n\n\
         struct item { char name[32]; uint64_t size; struct item *next; };\n",
    );
    for i in 0..UNIT_FUNCTIONS {
        s.push_str(&format!(
            "static int step{i}(struct item *it, const char *p, size_t n)\n{{\n\
             \x20   uint64_t h = {i};\n\
             \x20   for (size_t k = 0; k < n; k++) {{ h = h * 33 + (unsigned char)p[k]; if (p[k] == '/') h ^= k; }}\n\
             \x20   if (!it) {{ errno = EINVAL; return -1; }}\n\
             \x20   snprintf(it->name, sizeof it->name, \"s{i}-%llx\", (unsigned long long)h);\n\
             \x20   it->size += h % 4096;\n\
             \x20   return strlen(it->name) > 8 ? (int)(h & 7) : -(int)(h & 3);\n}}\n"
        ));
    }
    s.push_str("int run_all(struct item *it, const char *p)\n{\n    int r = 0;\n    size_t n = strlen(p);\n");
    for i in 0..UNIT_FUNCTIONS {
        s.push_str(&format!("    r += step{i}(it, p, n);\n"));
    }
    s.push_str("    return r;\n}\n");
    s
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("QCC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let engine = std::env::var("QEMU_CROSS_CC_ENGINE").unwrap_or_else(|_| "docker".into());
    let dir = tempfile::Builder::new()
        .prefix("qcc-bench-distcc")
        .tempdir()
        .unwrap();
    let root = dir.path().to_path_buf();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qemu-cross-cc"));
    let b = Bench {
        work: root.join("work"),
        shims: root.join("bin"),
        runtime: root.join("runtime"),
        state: root.join("distcc"),
    };
    for d in [&b.work, &b.state] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::create_dir_all(&b.runtime).unwrap();
    std::fs::set_permissions(
        &b.runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(b.work.join("unit.c"), unit()).unwrap();
    common::make_shims(&bin, &b.shims, TARGET);

    // A server on loopback (the bench's own set, stopped at the end).
    let name = format!("bench{}", std::process::id());
    let port = 3900 + (std::process::id() % 500) as u16;
    let o = Command::new(&bin)
        .args([
            "--engine",
            &engine,
            "serve",
            TARGET,
            "--listen",
            "127.0.0.1",
        ])
        .args([
            "--port",
            &port.to_string(),
            "--allow",
            "0.0.0.0/0",
            "--allow-any",
        ])
        .args(["--name", &name, "--jobs", "2"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "serve: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stop = || {
        let _ = Command::new(&bin)
            .args(["--engine", &engine, "serve", "--stop", "--name", &name])
            .output();
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        measure(&b, &engine, port, runs, &root)
    }));
    stop();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn measure(b: &Bench, engine: &str, port: u16, runs: usize, root: &Path) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "qemu-cross-cc distcc cost model: {TARGET} through {engine}, {cores} CPUs, {runs} jobs per \
         figure, medians"
    );
    // Warm: the session and the page cache.
    for _ in 0..2 {
        time(
            b.shim("")
                .args(["-O2", "-g", "-c", "unit.c", "-o", "local.o"]),
        );
    }
    let native = b.runs(runs, || {
        let mut c = Command::new("gcc");
        c.args(["-O2", "-g", "-c", "unit.c", "-o", "native.o"])
            .current_dir(&b.work);
        c
    });
    // Local compiles through the shim.
    let shim = |args: &'static [&'static str]| {
        b.runs(runs, || {
            let mut c = b.shim("");
            c.args(args);
            c
        })
    };
    let local = shim(&["-O2", "-g", "-c", "unit.c", "-o", "local.o"]);
    // What the client does for a debug compile (see distcc::client), and
    // what a server then does.
    let cpp = shim(&[
        "-O2",
        "-g",
        "-fdirectives-only",
        "-E",
        "unit.c",
        "-o",
        "unit.i",
    ]);
    let cc1 = shim(&[
        "-O2",
        "-g",
        "-fdirectives-only",
        "-c",
        "unit.i",
        "-o",
        "unit-i.o",
    ]);
    // The object every distcc compile of it gives, remote or fallback.
    time(b.shim("").args([
        "-O2",
        "-g",
        "-fdirectives-only",
        "-c",
        "unit.c",
        "-o",
        "local.o",
    ]));
    let i_size = std::fs::metadata(b.work.join("unit.i"))
        .map(|m| m.len())
        .unwrap_or(0);

    // The relay's own cost: a request of the preprocessed size out, an
    // object-sized answer back, against a sink on loopback.
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    let request = i_size as usize;
    std::thread::spawn(move || {
        for mut c in sink.incoming().flatten() {
            let mut got = 0;
            let mut buf = vec![0u8; 64 * 1024];
            while got < request {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            let _ = c.write_all(&vec![7u8; 100 * 1024]);
        }
    });
    let mut relay_rows = Vec::new();
    for delay in [0u64, 1, 5, 20] {
        let relay = Relay::start(sink_port, Duration::from_millis(delay));
        let t = median(
            (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    let mut c = TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
                    c.set_nodelay(true).unwrap();
                    c.write_all(&vec![1u8; request]).unwrap();
                    let mut back = Vec::new();
                    let _ = c.read_to_end(&mut back);
                    start.elapsed()
                })
                .collect(),
        );
        relay_rows.push((delay, t));
    }

    // A job through distcc and the relay: its median time and the bytes
    // sent per job.
    let remote_job = |delay: u64, lzo: bool, args: &'static [&'static str]| {
        let relay = Relay::start(port, Duration::from_millis(delay));
        let hosts = format!(
            "127.0.0.1:{}/4{}",
            relay.port,
            if lzo { ",lzo" } else { "" }
        );
        let t = b.runs(runs, || {
            let mut c = b.shim(&hosts);
            c.args(args);
            c
        });
        (t, relay.sent.load(Ordering::Relaxed) / runs as u64)
    };
    // The typical unit remotely, plain and with lzo: time and bytes.
    let mut bytes = Vec::new();
    let mut remote = Vec::new();
    for lzo in [false, true] {
        let (t, sent) = remote_job(0, lzo, &["-O2", "-g", "-c", "unit.c", "-o", "remote.o"]);
        let got = std::fs::read(b.work.join("remote.o")).unwrap();
        let want = std::fs::read(b.work.join("local.o")).unwrap();
        assert!(got == want, "the remote object differs from the local one");
        bytes.push(sent);
        remote.push(t);
    }
    // The time a delay adds to a job: a small compile (its own time is
    // small against the delays), through the relay.
    std::fs::write(
        b.work.join("tiny.c"),
        "#include <stdio.h>\nint tiny(int x) { return printf(\"%d\\n\", x); }\n",
    )
    .unwrap();
    let mut rows = Vec::new();
    for lzo in [false, true] {
        for delay in [0u64, 1, 5, 20] {
            let (t, _) = remote_job(delay, lzo, &["-O2", "-c", "tiny.c", "-o", "tiny.o"]);
            rows.push((lzo, delay, t));
        }
    }
    let tiny_local = shim(&["-O2", "-c", "tiny.c", "-o", "tiny-local.o"]);

    println!();
    println!(
        "one job (-O2 -g, {} lines, {i_size} bytes preprocessed):",
        unit().lines().count()
    );
    println!(
        "  host gcc (x86-64 native, for scale)       {:>7.1} ms",
        ms(native)
    );
    println!(
        "  local compile through the shim (session)  {:>7.1} ms",
        ms(local)
    );
    println!(
        "  local preprocessing (-E, stays on client) {:>7.1} ms",
        ms(cpp)
    );
    println!(
        "  cc1+as of the .i (a server's work)        {:>7.1} ms",
        ms(cc1)
    );
    println!(
        "  through distcc to a server on loopback     {:>7.1} ms plain, {:.1} ms lzo",
        ms(remote[0]),
        ms(remote[1])
    );
    println!(
        "  bytes sent per job: {} plain, {} with lzo ({:.0}%)",
        bytes[0],
        bytes[1],
        100.0 * bytes[1] as f64 / bytes[0].max(1) as f64
    );
    print!("  the relay alone (request out, 100 KiB back):");
    for (delay, t) in &relay_rows {
        print!(" +{delay} ms: {:.1} ms;", ms(*t));
    }
    println!();
    println!(
        "time a one-way delay adds to a job (tiny.c, -O2; {:.1} ms locally through the shim):",
        ms(tiny_local)
    );
    let base = |lzo: bool| {
        rows.iter()
            .find(|r| r.0 == lzo && r.1 == 0)
            .map(|r| r.2)
            .unwrap()
    };
    let mut added = Vec::new();
    for (lzo, delay, t) in &rows {
        let plus = t.saturating_sub(base(*lzo));
        if !*lzo {
            added.push((*delay, plus));
        }
        println!(
            "    {:<5} +{delay:>2} ms  {:>7.1} ms  (+{:.1} ms)",
            if *lzo { "lzo" } else { "plain" },
            ms(*t),
            ms(plus)
        );
    }

    // The model: the client does the preprocessing and distcc's own work
    // for every job on its cores (everything of a job on loopback but the
    // server's compile: conservative, distccd's work is in it too);
    // servers do cc1+as on theirs; `make -j J` keeps J jobs in flight, each
    // taking client + server + the delay's cost. A build of N jobs takes the
    // largest of the three bounds; locally, N x local / cores.
    let client_job = remote[0].saturating_sub(cc1).max(cpp);
    let predict = |jobs: f64, servers: f64, delay: Duration| {
        let slots = servers * cores as f64;
        let in_flight = 2.0 * (slots + cores as f64);
        let local_t = jobs * local.as_secs_f64() / cores as f64;
        let client_t = jobs * client_job.as_secs_f64() / cores as f64;
        let server_t = jobs * cc1.as_secs_f64() / slots;
        let job = (client_job + cc1 + delay).as_secs_f64();
        let latency_t = jobs * job / in_flight;
        (local_t, client_t.max(server_t).max(latency_t))
    };
    println!();
    println!(
        "model: client time per job {:.1} ms, server time per job {:.1} ms, make -j 2x(all CPUs)",
        ms(client_job),
        ms(cc1)
    );
    for (delay, plus) in &added {
        let (l, d) = predict(200.0, 4.0, *plus);
        println!(
            "  200 files like this one over 4 servers of {cores} CPUs, +{delay} ms one-way: {:.1} s \
             locally, {:.1} s distributed: predicted speedup {:.2}x",
            l,
            d,
            l / d
        );
    }
    let five = added
        .iter()
        .find(|(d, _)| *d == 5)
        .map_or(Duration::ZERO, |(_, p)| *p);
    hello_prediction(root, b, &|jobs, servers| predict(jobs, servers, five));
}

/// GNU hello's `make` (its compile jobs counted and timed through the
/// shims), predicted over 4 servers: configure stays local.
fn hello_prediction(root: &Path, b: &Bench, predict: &dyn Fn(f64, f64) -> (f64, f64)) {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache/hello-2.10");
    if !cache.join("configure").exists() {
        println!(
            "  GNU hello: target/bench-cache/hello-2.10 missing (cargo bench --bench overhead fetches it); skipped"
        );
        return;
    }
    let tree = root.join("hello");
    let _ = std::fs::remove_dir_all(&tree);
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&cache)
            .arg(&tree)
            .status()
            .unwrap()
            .success()
    );
    let path = format!(
        "{}:{}",
        b.shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        let start = Instant::now();
        let o = Command::new(args[0])
            .args(&args[1..])
            .current_dir(&tree)
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_RUNTIME_DIR", &b.runtime)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        start.elapsed()
    };
    let conf = run(&["./configure", &format!("--host={TARGET}")]);
    let make = run(&["make", "-s", "-j4"]);
    let jobs = walk_count(&tree, "o");
    // Its compile jobs scale like the unit above, by the local time share
    // (with the cost of a 5 ms one-way delay).
    let (l, d) = predict(jobs as f64, 4.0);
    let compile_share = l.min(make.as_secs_f64());
    let rest = make.as_secs_f64() - compile_share;
    let predicted = conf.as_secs_f64() + rest + compile_share * d / l;
    println!(
        "  GNU hello 2.10: configure {:.1} s + make -j4 {:.1} s ({jobs} objects); over 4 servers \
         predicted {:.1} s: {:.2}x (configure stays local)",
        conf.as_secs_f64(),
        make.as_secs_f64(),
        predicted,
        (conf + make).as_secs_f64() / predicted,
    );
}

fn walk_count(dir: &Path, ext: &str) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += walk_count(&p, ext);
            } else if p.extension().is_some_and(|x| x == ext) {
                n += 1;
            }
        }
    }
    n
}
