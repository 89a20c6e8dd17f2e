//! Scale-out with real distcc: `serve` containers made separate hosts on a
//! private network (a bridge in its own network namespace, a veth pair per
//! host, the client in a namespace of its own), the shims routing plain
//! compiles of s390x (a target the host has no toolchain for) to them.
//!
//! One test per engine walks through the cases in order, sharing the
//! servers: objects byte-identical to local compiles across flags, a
//! `make -j` over 200 files spread over every server (remote + local counts
//! equal the total), a server with another toolchain, an unreachable one,
//! a client outside `--allow`, a server killed mid-build and a link cut
//! mid-build: the build succeeds with the same objects every time.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "distcc::servers_on_a_private_network",
        servers_on_a_private_network,
        Mode::Shared,
    ),
    (
        "distcc::ssh_into_the_server_container",
        ssh_into_the_server_container,
        Mode::Shared,
    ),
    (
        "distcc::serve_through_a_remote_engine",
        serve_through_a_remote_engine,
        Mode::Shared,
    ),
    (
        "distcc::serve_admits_loopback_clients",
        serve_admits_loopback_clients,
        Mode::Shared,
    ),
    (
        "distcc::serve_replaces_a_server_once",
        serve_replaces_a_server_once,
        Mode::Shared,
    ),
    (
        "distcc::serve_started_twice_at_once",
        serve_started_twice_at_once,
        Mode::Shared,
    ),
];

const TARGET: &str = "s390x-linux-gnu";

/// Run a command as root, panicking with its output when it fails.
fn sys(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The private network: namespaces and the links between them, removed
/// when dropped.
struct Net {
    /// Namespace names.
    bridge: String,
    client: String,
    /// `10.213.N`
    prefix: String,
    /// Interface name stem (at most 11 characters).
    stem: String,
    /// Bridge-side ends of the server links, by host number.
    ports: BTreeMap<u8, String>,
}

impl Net {
    fn new(eng: Eng) -> Net {
        let id = &run().id[..6];
        let e = &eng.name()[..1];
        let net = Net {
            bridge: format!("qccd-{id}-{e}-br"),
            client: format!("qccd-{id}-{e}-c"),
            prefix: format!("10.213.{}", if eng == Eng::Docker { 1 } else { 2 }),
            stem: format!("qd{id}{e}"),
            ports: BTreeMap::new(),
        };
        for ns in [&net.bridge, &net.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            sys("ip", &["netns", "add", ns]);
        }
        let br = net.bridge.as_str();
        sys("ip", &["-n", br, "link", "add", "br0", "type", "bridge"]);
        sys("ip", &["-n", br, "link", "set", "br0", "up"]);
        let cn = net.client.clone();
        net.plug(
            &format!("{}c", net.stem),
            &cn,
            &["ip", "-n", &cn],
            &format!("{}.100/24", net.prefix),
        );
        sys("ip", &["-n", &cn, "link", "set", "lo", "up"]);
        net
    }

    fn ip(&self, host: u8) -> String {
        format!("{}.{host}", self.prefix)
    }

    /// A veth pair `name`/`nameb`: `nameb` on the bridge, `name` moved into
    /// `ns` (a namespace's name or a process id) and given `addr` there by
    /// `ip` run as `inside`. Returns the bridge end.
    fn plug(&self, name: &str, ns: &str, inside: &[&str], addr: &str) -> String {
        let peer = format!("{name}b");
        sys(
            "ip",
            &["link", "add", name, "type", "veth", "peer", "name", &peer],
        );
        sys("ip", &["link", "set", &peer, "netns", &self.bridge]);
        sys(
            "ip",
            &[
                "-n",
                &self.bridge,
                "link",
                "set",
                &peer,
                "master",
                "br0",
                "up",
            ],
        );
        sys("ip", &["link", "set", name, "netns", ns]);
        for args in [
            &["addr", "add", addr, "dev", name][..],
            &["link", "set", name, "up"],
        ] {
            let cmd: Vec<&str> = inside.iter().chain(args).copied().collect();
            sys(cmd[0], &cmd[1..]);
        }
        peer
    }

    /// Give the container (started with `--network none`) an address on
    /// the bridge: it becomes host `host`.
    fn attach(&mut self, t: &T, container: &str, host: u8) {
        let pid = stdout(&ok(t.engine([
            "inspect",
            "--format",
            "{{.State.Pid}}",
            container,
        ])))
        .trim()
        .to_string();
        let addr = format!("{}/24", self.ip(host));
        let sb = self.plug(
            &format!("{}s{host}", self.stem),
            &pid,
            &["nsenter", "-t", &pid, "-n", "ip"],
            &addr,
        );
        self.ports.insert(host, sb);
    }

    /// Cut a host's link at the bridge.
    fn cut(&self, host: u8) {
        sys(
            "ip",
            &[
                "-n",
                &self.bridge,
                "link",
                "set",
                &self.ports[&host],
                "down",
            ],
        );
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the links in it (and their peers).
        for ns in [&self.client, &self.bridge] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Servers started with `serve --name NAME`, stopped when dropped.
struct Served<'a> {
    t: &'a T,
    name: String,
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let _ = out(self.t.qcc(["serve", "--stop", "--name", &self.name]));
    }
}

/// `serve` for the target as one host of the network; returns the
/// fingerprint it printed.
fn serve<'a>(t: &'a T, net: &mut Net, name: &str, host: u8, allow: &str) -> (Served<'a>, String) {
    let o = ok(t.qcc([
        "serve",
        TARGET,
        "--network",
        "none",
        "--name",
        name,
        "--allow",
        allow,
        "--jobs",
        "2",
    ]));
    let served = Served {
        t,
        name: name.to_string(),
    };
    let line = stdout(&o);
    let fp = line
        .split_whitespace()
        .skip_while(|w| *w != "toolchain")
        .nth(1)
        .unwrap_or_else(|| panic!("no toolchain in: {line}"))
        .to_string();
    net.attach(t, &format!("qemu-cross-cc-serve-{name}-{TARGET}"), host);
    (served, fp)
}

/// distccd's counter `key` of the servers named `name`.
fn counter(t: &T, name: &str, key: &str) -> u64 {
    let o = ok(t.qcc(["serve", "--status", "--json", "--name", name]));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    v.iter()
        .filter_map(|s| s["stats"][key].as_str()?.parse::<u64>().ok())
        .sum()
}

/// The project: `n` sources sharing a header, a Makefile with `-MD`.
fn project(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("include")).unwrap();
    std::fs::write(
        dir.join("include/common.h"),
        "#include <stdint.h>\n#include <string.h>\nstruct rec { uint64_t a; uint32_t b; char n[12]; };\n",
    )
    .unwrap();
    let mut objs = Vec::new();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("f{i:03}.c")),
            format!(
                "#include \"common.h\"\n\
                 static struct rec r{i} = {{ {i}ULL << 40, {i}, \"f{i}\" }};\n\
                 uint64_t f{i}(const struct rec *x) {{\n\
                 \x20   uint64_t h = r{i}.a ^ x->a;\n\
                 \x20   for (size_t k = 0; k < strlen(x->n); k++) h = h * 131 + (uint8_t)x->n[k];\n\
                 \x20   return h + x->b * {i}u;\n}}\n"
            ),
        )
        .unwrap();
        objs.push(format!("f{i:03}.o"));
    }
    std::fs::write(
        dir.join("Makefile"),
        format!(
            "CFLAGS ?= -O2 -g\nOBJS = {}\nall: $(OBJS)\n%.o: %.c\n\t$(CC) $(CFLAGS) -Iinclude -MD -c $< -o $@\n\
             clean:\n\trm -f *.o *.d\n-include $(OBJS:.o=.d)\n",
            objs.join(" ")
        ),
    )
    .unwrap();
}

/// The objects and depfiles of a folder.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if matches!(p.extension().and_then(|x| x.to_str()), Some("o" | "d")) {
            m.insert(
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    m
}

/// The same outputs, or a panic naming the first that differs.
fn assert_same(what: &str, want: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: other files"
    );
    for (k, v) in want {
        assert!(got[k] == *v, "{what}: {k} differs from the local compile's");
    }
}

/// A command in the client's network namespace (only that: `ip netns
/// exec` would also remount /sys, where podman finds the cgroups), with
/// the shims on PATH.
fn client(t: &T, net: &Net, path: &str, dir: &Path, hosts: &str, args: &[&str]) -> Command {
    let mut c = t.program("nsenter", [format!("--net=/run/netns/{}", net.client)]);
    c.args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("QEMU_CROSS_CC_DISTCC_HOSTS", hosts)
        .env("DISTCC_DIR", t.dir.join("distcc-state"))
        .env("DISTCC_IO_TIMEOUT", "8");
    c
}

fn make(t: &T, net: &Net, path: &str, dir: &Path, hosts: &str, extra: &[&str]) {
    ok(client(t, net, path, dir, "", &["make", "clean"]));
    let mut args = vec!["make", "-j4", "CC=s390x-linux-gnu-gcc"];
    args.extend_from_slice(extra);
    let o = ok(client(t, net, path, dir, hosts, &args));
    assert!(
        stderr(&o).trim().is_empty(),
        "the build printed: {}",
        stderr(&o)
    );
}

fn servers_on_a_private_network(eng: Eng) {
    if Command::new("distcc").arg("--version").output().is_err() {
        panic!("distcc is missing: run tests/setup-engines.sh");
    }
    let t = T::new(eng, "distcc", false);
    let plugin = t.builtin_plugin(TARGET);
    let image = plugin["image"].as_str().unwrap().to_string();
    t.record_image(&format!("{image}-distcc"));
    let path = t.shims(&[TARGET]);
    std::fs::create_dir_all(t.dir.join("distcc-state")).unwrap();
    let mut net = Net::new(eng);
    let id = &run().id[..6];
    let client_ip = net.ip(100);
    let subnet = format!("{}.0/24", net.prefix);
    let stranger = format!("{}/32", net.ip(200));

    // Two hosts with the target's toolchain, one refusing this client.
    let (_a, fp) = serve(
        &t,
        &mut net,
        &format!("{id}-a"),
        2,
        &format!("{client_ip}/32"),
    );
    let (_b, fp_b) = serve(&t, &mut net, &format!("{id}-b"), 3, &subnet);
    assert_eq!(fp, fp_b, "the same image, the same toolchain");
    let (_r, _) = serve(&t, &mut net, &format!("{id}-r"), 5, &stranger);

    // A host whose image was built from a changed dockerfile: gcc 11 as
    // the target's gcc.
    let tm = T::new(eng, "distcc-m", false);
    let m_image = tm.tag("gcc11");
    tm.record_image(&format!("{m_image}-distcc"));
    tm.plugin(
        TARGET,
        &m_image,
        &format!(
            "FROM {image}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends gcc-11-{TARGET} && ln -sf {TARGET}-gcc-11 /usr/bin/{TARGET}-gcc && \
             rm -rf /var/lib/apt/lists/*\n"
        ),
        &[("cc", "s390x-linux-gnu-gcc"), ("gcc", "s390x-linux-gnu-gcc")],
    );
    let (_m, fp_m) = serve(&tm, &mut net, &format!("{id}-m"), 4, &subnet);
    assert_ne!(fp, fp_m, "gcc 11 is another toolchain");

    let (a, b, m, r) = (net.ip(2), net.ip(3), net.ip(4), net.ip(5));
    let proj = t.dir.join("proj");

    // Objects and depfiles byte-identical to local compiles, flag by flag,
    // each compiled remotely (no fallback).
    std::fs::create_dir_all(&proj).unwrap();
    project(&proj, 3);
    // String offsets differ with the strings' order, which follows their
    // hashes: the producer string (its options) and the folder (the run
    // id) move it from run to run. readelf prints a zero offset as `0`.
    let offsets = regex::Regex::new(r"\((indirect string, )?offset: (0x[0-9a-f]+|0)\)").unwrap();
    for flags in [
        "-O2",
        "-g",
        "-O2 -g",
        "-fPIC -O1",
        "-g -MD -MF dep.d",
        "-Wp,-MMD,wp.d",
        "-MD",
    ] {
        let debug = flags.split_whitespace().any(|f| f == "-g");
        let compile = |hosts: &str, fallback: &str, extra: &[&str]| {
            let mut args = vec!["s390x-linux-gnu-gcc"];
            args.extend(flags.split_whitespace());
            args.extend(extra);
            args.extend(["-Iinclude", "-c", "f001.c", "-o", "out.o"]);
            let mut c = client(&t, &net, &path, &proj, hosts, &args);
            c.env("DISTCC_FALLBACK", fallback);
            let o = ok(c);
            assert!(stderr(&o).is_empty(), "{flags}: {}", stderr(&o));
            let got = outputs(&proj);
            for f in got.keys() {
                std::fs::remove_file(proj.join(f)).unwrap();
            }
            got
        };
        let before = counter(&t, &format!("{id}-a"), "dcc_compile_ok");
        let plain = compile("", "1", &[]);
        let remote = compile(&format!("{a}/2"), "0", &[]);
        assert_eq!(
            counter(&t, &format!("{id}-a"), "dcc_compile_ok"),
            before + 1,
            "{flags}: compiled on the server"
        );
        if !debug {
            assert_same(flags, &plain, &remote);
            continue;
        }
        // With debug information the options distcc gets carry
        // -fdirectives-only (so that columns survive): byte-identical to
        // the fallback's compile, and to a compile without distcc but for
        // the options recorded in DW_AT_producer.
        let fallback = compile("", "1", &["-fdirectives-only"]);
        assert_same(flags, &fallback, &remote);
        let dump = |o: &[u8]| {
            let f = t.dir.join("dump.o");
            std::fs::write(&f, o).unwrap();
            let d = stdout(&ok(Command::new("readelf")
                .args(["--debug-dump=info,line", "-W"])
                .arg(&f)));
            d.lines()
                .filter(|l| !l.contains("DW_AT_producer"))
                .map(|l| offsets.replace_all(l, "").to_string())
                .collect::<Vec<_>>()
        };
        let (want, got) = (dump(&plain["out.o"]), dump(&remote["out.o"]));
        if let Some((w, g)) = want.iter().zip(&got).find(|(w, g)| w != g) {
            panic!("{flags}: debug information differs: {w:?} locally, {g:?} remotely");
        }
        assert_eq!(want.len(), got.len(), "{flags}: debug information");
        if let Some(d) = plain.get("dep.d") {
            assert_eq!(*d, remote["dep.d"], "{flags}: dep.d");
        }
    }

    // Diagnostics: a warning compiled remotely reads as locally (but for
    // the source excerpt under it: the server has only the preprocessed
    // text); a missing header (the local preprocessing fails, distcc
    // compiles again locally) is said once, as locally.
    std::fs::write(
        proj.join("warn.c"),
        "int w(int x) { int unused; return x; }\n",
    )
    .unwrap();
    std::fs::write(proj.join("nohdr.c"), "#include \"missing.h\"\nint n;\n").unwrap();
    let diagnose = |hosts: &str, file: &str, want: i32| {
        let mut c = client(
            &t,
            &net,
            &path,
            &proj,
            hosts,
            &["s390x-linux-gnu-gcc", "-Wall", "-c", file, "-o", "d.o"],
        );
        c.env("DISTCC_FALLBACK", "1");
        let o = out(c);
        assert_eq!(o.status.code(), Some(want), "{file}: {}", stderr(&o));
        stderr(&o)
    };
    let before = counter(&t, &format!("{id}-a"), "dcc_compile_ok");
    let (local, remote) = (
        diagnose("", "warn.c", 0),
        diagnose(&format!("{a}/2"), "warn.c", 0),
    );
    assert_eq!(
        counter(&t, &format!("{id}-a"), "dcc_compile_ok"),
        before + 1
    );
    let messages = |s: &str| {
        s.lines()
            .filter(|l| l.starts_with("warn.c:"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert!(!messages(&local).is_empty(), "{local}");
    assert_eq!(
        messages(&local),
        messages(&remote),
        "local:\n{local}\nremote:\n{remote}"
    );
    assert_eq!(
        diagnose("", "nohdr.c", 1),
        diagnose(&format!("{a}/2"), "nohdr.c", 1)
    );
    std::fs::remove_dir_all(&proj).unwrap();

    // The reference: the project built locally, with what distcc adds for
    // debug information (so its objects are those of any distcc build,
    // whichever host compiled what; checked against a build without it
    // above).
    project(&proj, 200);
    make(
        &t,
        &net,
        &path,
        &proj,
        "",
        &["CFLAGS=-O2 -g -fdirectives-only"],
    );
    let reference = outputs(&proj);
    assert_eq!(reference.len(), 400);

    // make -j over 200 files, no fallback: every server gets jobs, and the
    // remote and local compiles add up to the total.
    let log = t.dir.join("distcc.log");
    let _ = std::fs::remove_file(&log);
    let (a0, b0) = (
        counter(&t, &format!("{id}-a"), "dcc_compile_ok"),
        counter(&t, &format!("{id}-b"), "dcc_compile_ok"),
    );
    let mut c = client(&t, &net, &path, &proj, "", &["make", "clean"]);
    ok(&mut c);
    let mut c = client(
        &t,
        &net,
        &path,
        &proj,
        &format!("localhost/1 {a}/2 {b}/2"),
        &["make", "-j4", "CC=s390x-linux-gnu-gcc"],
    );
    c.env("DISTCC_FALLBACK", "0").env("DISTCC_LOG", &log);
    let o = ok(c);
    assert!(stderr(&o).trim().is_empty(), "{}", stderr(&o));
    assert_same(
        "make -j4 over a, b and localhost",
        &reference,
        &outputs(&proj),
    );
    let on_a = counter(&t, &format!("{id}-a"), "dcc_compile_ok") - a0;
    let on_b = counter(&t, &format!("{id}-b"), "dcc_compile_ok") - b0;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let local = text
        .lines()
        .filter(|l| l.contains(" on localhost completed ok") && l.contains("] compile "))
        .count() as u64;
    let remote_logged = text
        .lines()
        .filter(|l| l.contains("] compile ") && l.contains(&format!(" on {}.", net.prefix)))
        .count() as u64;
    eprintln!("{eng}: make -j4 over 200 files: a {on_a}, b {on_b}, local {local}");
    assert!(
        on_a > 0 && on_b > 0,
        "every server gets jobs: a {on_a}, b {on_b}"
    );
    assert_eq!(
        remote_logged,
        on_a + on_b,
        "the client's log agrees with the servers"
    );
    assert_eq!(on_a + on_b + local, 200, "remote + local = total");

    // `dist check` classifies each host.
    let o = out(client(
        &t,
        &net,
        &path,
        &proj,
        &format!("{a} {m} {r} {}", net.ip(9)),
        &[
            run().bin.to_str().unwrap(),
            "--engine",
            eng.name(),
            "dist",
            "check",
            TARGET,
        ],
    ));
    let report = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{report}{}", stderr(&o));
    let verdict = |ip: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("{ip} ")))
            .unwrap_or_else(|| panic!("no line for {ip}: {report}"))
            .to_string()
    };
    assert!(verdict(&a).contains(" ok"), "{report}");
    assert!(verdict(&m).contains("different toolchain"), "{report}");
    assert!(verdict(&r).contains("refused"), "{report}");
    assert!(verdict(&net.ip(9)).contains("unreachable"), "{report}");

    // Another toolchain, a refusing server, nothing there: the build
    // compiles locally, silently, with the same objects; the gcc 11 server
    // never compiled one.
    for (what, hosts) in [
        ("another toolchain", m.clone()),
        ("outside --allow", r.clone()),
        ("unreachable", net.ip(9)),
    ] {
        make(&t, &net, &path, &proj, &hosts, &[]);
        assert_same(what, &reference, &outputs(&proj));
    }
    assert_eq!(counter(&tm, &format!("{id}-m"), "dcc_compile_ok"), 0);

    // A server killed mid-build, a link cut mid-build.
    let kill = || {
        ok(t.engine(["kill", &format!("qemu-cross-cc-serve-{id}-a-{TARGET}")]));
    };
    let faults: [(&str, &str, String, &dyn Fn()); 2] = [
        ("server killed mid-build", "a", a.clone(), &kill),
        ("link cut mid-build", "b", b.clone(), &|| net.cut(3)),
    ];
    for (what, server, ip, fault) in faults {
        ok(client(&t, &net, &path, &proj, "", &["make", "clean"]));
        let name = format!("{id}-{server}");
        let before = counter(&t, &name, "dcc_compile_ok");
        let mut c = client(
            &t,
            &net,
            &path,
            &proj,
            &format!("{ip}/4"),
            &["make", "-j4", "CC=s390x-linux-gnu-gcc"],
        );
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = c.spawn().unwrap();
        wait_for_jobs(&t, &name, before + 5);
        fault();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        assert_same(what, &reference, &outputs(&proj));
    }
}

/// Wait until the servers `name` have compiled `n` jobs (20 s at most).
fn wait_for_jobs(t: &T, name: &str, n: u64) {
    let start = std::time::Instant::now();
    while counter(t, name, "dcc_compile_ok") < n {
        assert!(
            start.elapsed().as_secs() < 20,
            "{name} did not reach {n} jobs"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// distcc's ssh mode (`@host`), as the README sets it up: the server's
/// account has a forced command that runs `distccd --inetd` in the
/// target's server container (`--network none`: nothing listens at all).
fn ssh_into_the_server_container(eng: Eng) {
    if !Path::new("/usr/sbin/sshd").exists() {
        panic!("sshd is missing: run tests/setup-engines.sh");
    }
    let t = T::new(eng, "distcc-ssh", false);
    let plugin = t.builtin_plugin(TARGET);
    let image = plugin["image"].as_str().unwrap().to_string();
    t.record_image(&format!("{image}-distcc"));
    let path = t.shims(&[TARGET]);
    let name = format!("{}-ssh", &run().id[..6]);
    ok(t.qcc([
        "serve",
        TARGET,
        "--network",
        "none",
        "--name",
        &name,
        "--allow",
        "10.9.9.9",
    ]));
    let _served = Served {
        t: &t,
        name: name.clone(),
    };
    let container = format!("qemu-cross-cc-serve-{name}-{TARGET}");

    let d = t.dir.join("ssh");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    for (key, _) in [("host", ()), ("client", ())] {
        sys(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                d.join(key).to_str().unwrap(),
            ],
        );
    }
    let public = std::fs::read_to_string(d.join("client.pub")).unwrap();
    std::fs::write(
        d.join("authorized_keys"),
        format!(
            "command=\"{} exec -i {container} distccd --inetd\",no-pty,no-port-forwarding,\
             no-agent-forwarding,no-X11-forwarding {public}",
            eng.name()
        ),
    )
    .unwrap();
    let port = free_port();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n\
             AuthorizedKeysFile {}\nPermitRootLogin forced-commands-only\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
            d.join("host").display(),
            d.join("authorized_keys").display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::File::create(d.join("sshd.log"))
                .map(std::process::Stdio::from)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let _sshd = Background(child);
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed().as_secs() < 10, "sshd did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let wrapper = d.join("ssh-test");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec ssh -F /dev/null -p {port} -i {} -o BatchMode=yes \
             -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n",
            d.join("client").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let proj = t.dir.join("proj");
    project(&proj, 2);
    std::fs::create_dir_all(t.dir.join("distcc-state")).unwrap();
    let compile = |hosts: &str, out: &str| {
        let mut c = t.program(
            "s390x-linux-gnu-gcc",
            ["-O2", "-Iinclude", "-c", "f001.c", "-o", out],
        );
        c.current_dir(&proj)
            .env("PATH", &path)
            .env("QEMU_CROSS_CC_DISTCC_HOSTS", hosts)
            .env("DISTCC_SSH", &wrapper)
            .env("DISTCC_FALLBACK", "0")
            .env("DISTCC_DIR", t.dir.join("distcc-state"))
            .env("DISTCC_LOG", t.dir.join("distcc.log"));
        let o = ok(c);
        assert!(stderr(&o).is_empty(), "{}", stderr(&o));
        std::fs::read(proj.join(out)).unwrap()
    };
    let local = compile("", "local.o");
    let remote = compile("root@127.0.0.1/2", "remote.o");
    // No fallback was allowed: the object came back through ssh from the
    // container's `distccd --inetd`.
    assert!(
        local == remote,
        "the object through ssh differs from the local one"
    );
}

/// `serve` needs no bind mounts, so it works against a remote engine:
/// podman in remote mode (`CONTAINER_HOST`, through a `podman system
/// service` socket) builds the server image and runs the server, and a
/// client compiles on it. (docker's remote forms, `tcp://` and `ssh://`,
/// need a daemon listening or ssh keys of the caller's own; podman's is
/// the one a test can set up alone.)
fn serve_through_a_remote_engine(eng: Eng) {
    if eng != Eng::Podman {
        return;
    }
    let mut t = T::new(eng, "distcc-remote", false);
    let plugin = t.builtin_plugin(TARGET);
    let image = plugin["image"].as_str().unwrap().to_string();
    t.record_image(&format!("{image}-distcc"));
    let (_service, host) = podman_service(&t);
    t.env.push(("CONTAINER_HOST".into(), host));
    let name = format!("{}-remote", &run().id[..6]);
    let port = free_port();
    let o = ok(t.qcc([
        "serve",
        TARGET,
        "--listen",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--allow",
        "127.0.0.1",
        "--allow",
        "10.88.0.0/16",
        "--name",
        &name,
    ]));
    let _served = Served {
        t: &t,
        name: name.clone(),
    };
    assert!(
        stdout(&o).contains(&format!("port {port}")),
        "{}",
        stdout(&o)
    );

    // A client on this machine, through the local engine.
    let c = T::new(eng, "distcc-remote-client", false);
    c.builtin_plugin(TARGET);
    let o = out(c.qcc([
        "dist",
        "check",
        TARGET,
        "--hosts",
        &format!("127.0.0.1:{port}"),
    ]));
    assert!(
        o.status.success() && stdout(&o).contains(&format!("127.0.0.1:{port}")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(counter(&t, &name, "dcc_compile_ok") >= 1);
}

/// A context for `serve` tests: the built-in target under this run's
/// image (its server image removed at the end).
fn serving(eng: Eng, test: &str) -> T {
    let t = T::new(eng, test, false);
    let plugin = t.builtin_plugin(TARGET);
    t.record_image(&format!("{}-distcc", plugin["image"].as_str().unwrap()));
    t
}

/// `serve TARGET --port PORT --name NAME MORE...`
fn serve_cmd(t: &T, name: &str, port: u16, more: &[&str]) -> Command {
    let mut c = t.qcc(["serve", TARGET, "--port", &port.to_string(), "--name", name]);
    c.args(more);
    c
}

/// The containers (any state) of the set `name`.
fn set_containers(t: &T, name: &str) -> Vec<String> {
    t.containers_with(&format!("com.qemu-cross-cc.serve={name}"))
}

/// `serve --status --json` of the set `name`.
fn set_status(t: &T, name: &str) -> Vec<serde_json::Value> {
    let o = ok(t.qcc(["serve", "--status", "--json", "--name", name]));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Whether something takes connections on loopback port `port`.
fn answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_secs(2),
    )
    .is_ok()
}

/// Free loopback ports, all different.
fn free_ports(n: usize) -> Vec<u16> {
    let mut v: Vec<u16> = Vec::new();
    while v.len() < n {
        let p = free_port();
        if !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

/// `dist check` of `host` from this machine: its verdict line.
fn check_from_here(t: &T, host: &str) -> (bool, String) {
    let o = out(t.qcc(["dist", "check", TARGET, "--hosts", host]));
    let report = stdout(&o);
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_else(|| panic!("no line for {host}: {report}{}", stderr(&o)))
        .to_string();
    (o.status.success(), line)
}

/// A server published on loopback with `--allow 127.0.0.0/8` takes the
/// compiles of a client on this machine, which the engine's port
/// forwarding makes arrive from its network's gateway; published on every
/// address, where that gateway also stands for the engine's containers,
/// `serve` refuses, naming the exact `--allow` to add.
fn serve_admits_loopback_clients(eng: Eng) {
    let t = serving(eng, "distcc-lo");
    let path = t.shims(&[TARGET]);
    std::fs::create_dir_all(t.dir.join("distcc-state")).unwrap();
    let name = format!("{}-lo", &run().id[..6]);
    let ports = free_ports(2);
    let o = ok(serve_cmd(
        &t,
        &name,
        ports[0],
        &["--allow", "127.0.0.0/8", "--listen", "127.0.0.1"],
    ));
    let _served = Served {
        t: &t,
        name: name.clone(),
    };
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let host = format!("127.0.0.1:{}", ports[0]);
    let (good, line) = check_from_here(&t, &host);
    assert!(good && line.ends_with(" ok"), "dist check: {line}");

    // A compile through distcc on loopback, no fallback.
    let proj = t.dir.join("proj");
    project(&proj, 1);
    let before = counter(&t, &name, "dcc_compile_ok");
    let mut c = t.program(
        "s390x-linux-gnu-gcc",
        ["-O2", "-Iinclude", "-c", "f000.c", "-o", "f000.o"],
    );
    c.current_dir(&proj)
        .env("PATH", &path)
        .env("QEMU_CROSS_CC_DISTCC_HOSTS", format!("{host}/2"))
        .env("DISTCC_FALLBACK", "0")
        .env("DISTCC_DIR", t.dir.join("distcc-state"));
    let o = ok(c);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert_eq!(counter(&t, &name, "dcc_compile_ok"), before + 1);

    // What it admits: --allow's, and the gateway of its own network.
    let container = format!("qemu-cross-cc-serve-{name}-{TARGET}");
    let gw = stdout(&ok(t.engine([
        "container",
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        &container,
    ])))
    .trim()
    .to_string();
    assert!(gw.parse::<std::net::Ipv4Addr>().is_ok(), "gateway {gw:?}");
    let st = set_status(&t, &name);
    assert_eq!(
        st[0]["allow"],
        serde_json::json!(["127.0.0.0/8", format!("{gw}/32")]),
        "{st:?}"
    );

    // Published on every address: refused with the --allow to add, and
    // nothing left running.
    let every = format!("{}-lo-all", &run().id[..6]);
    let _every = Served {
        t: &t,
        name: every.clone(),
    };
    let o = fails(serve_cmd(&t, &every, ports[1], &["--allow", "127.0.0.0/8"]));
    let line = one_error_line(&o);
    assert!(
        line.contains(&format!("--allow {gw}/32")) && line.contains("--listen 127.0.0.1"),
        "{line}"
    );
    assert!(set_containers(&t, &every).is_empty());
    // With that --allow, it serves this machine.
    ok(serve_cmd(
        &t,
        &every,
        ports[1],
        &["--allow", "127.0.0.0/8", "--allow", &format!("{gw}/32")],
    ));
    let (good, line) = check_from_here(&t, &format!("127.0.0.1:{}", ports[1]));
    assert!(good, "dist check: {line}");
}

/// `serve` of a set on another port replaces its server, saying so in one
/// line naming both ports; asked again for what it serves, it leaves it.
fn serve_replaces_a_server_once(eng: Eng) {
    let t = serving(eng, "distcc-replace");
    let name = format!("{}-rp", &run().id[..6]);
    let ports = free_ports(2);
    let (a, b) = (ports[0], ports[1]);
    let more = ["--allow", "10.9.9.9", "--listen", "127.0.0.1"];
    let _served = Served {
        t: &t,
        name: name.clone(),
    };
    let o = ok(serve_cmd(&t, &name, a, &more));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert!(answers(a), "nothing on port {a}");

    let o = ok(serve_cmd(&t, &name, b, &more));
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one line about the replacement: {e:?}");
    assert!(
        lines[0].contains(&format!("port {a}")) && lines[0].contains(&format!("port {b}")),
        "{e}"
    );
    assert!(stdout(&o).contains(&format!("port {b}")), "{}", stdout(&o));
    let ids = set_containers(&t, &name);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(!answers(a), "port {a} still answers");
    assert!(answers(b), "nothing on port {b}");
    let st = set_status(&t, &name);
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["port"], b, "{st:?}");
    assert!(st[0]["stats"]["dcc_tcp_accept"].is_string(), "{st:?}");

    // The same again: nothing replaced, nothing said.
    let o = ok(serve_cmd(&t, &name, b, &more));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("port {b}")), "{}", stdout(&o));
    assert_eq!(set_containers(&t, &name), ids, "the server was replaced");
    assert!(answers(b));

    // A container of the server's name that is not a server is not
    // replaced: one line names it.
    ok(t.qcc(["serve", "--stop", "--name", &name]));
    let container = format!("qemu-cross-cc-serve-{name}-{TARGET}");
    let image = format!("qcc-test-{}-{TARGET}-distcc", run().id);
    ok(t.engine([
        "run", "-d", "--rm", "--name", &container, &image, "sleep", "120",
    ]));
    let o = out(serve_cmd(&t, &name, b, &more));
    let still = out(t.engine(["container", "inspect", &container]));
    let mut rm = vec!["rm", "-f"];
    if eng == Eng::Podman {
        rm.extend(["-t", "0"]);
    }
    ok(t.engine(rm.into_iter().chain([container.as_str()])));
    assert!(!o.status.success(), "{}", stdout(&o));
    let line = one_error_line(&o);
    assert!(
        line.contains("not a distcc server") && line.contains(&container),
        "{line}"
    );
    assert!(still.status.success(), "the other container was removed");
}

/// Two `serve`s of `t`s (and `more` args) at once; their outputs.
fn at_once(
    first: (&T, &str, u16),
    second: (&T, &str, u16),
    more: &[&str],
) -> (std::process::Output, std::process::Output) {
    let spawn = |(t, name, port): (&T, &str, u16)| {
        let mut c = serve_cmd(t, name, port, more);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (x, y) = (spawn(first), spawn(second));
    (x.wait_with_output().unwrap(), y.wait_with_output().unwrap())
}

/// Concurrent `serve`s of one set: the same settings succeed as one; other
/// ports end as if run one after the other (the later replaces the
/// earlier, saying so). From two runtime folders (which share no lock),
/// the same settings still succeed as one, and other ports leave one
/// server, a start whose server was taken from it failing with a line
/// naming the other. Never "its container exited".
fn serve_started_twice_at_once(eng: Eng) {
    let t = serving(eng, "distcc-twice");
    let t2 = serving(eng, "distcc-twice-2");
    let name = format!("{}-tw", &run().id[..6]);
    let more = ["--allow", "10.9.9.9", "--listen", "127.0.0.1"];
    let ports = free_ports(5);
    let _served = Served {
        t: &t,
        name: name.clone(),
    };
    // The images first: not what races.
    ok(serve_cmd(&t, &name, ports[0], &more));
    ok(t.qcc(["serve", "--stop", "--name", &name]));
    let stop = || {
        ok(t.qcc(["serve", "--stop", "--name", &name]));
        assert!(set_containers(&t, &name).is_empty());
    };
    let never_exited = |o: &std::process::Output| {
        assert!(
            !stderr(o).contains("exited") && !stderr(o).contains("panicked"),
            "{}",
            stderr(o)
        );
    };

    // The same settings, one runtime folder: both succeed, one server.
    let (x, y) = at_once((&t, &name, ports[1]), (&t, &name, ports[1]), &more);
    for o in [&x, &y] {
        never_exited(o);
        assert!(o.status.success(), "{}", stderr(o));
        assert!(stderr(o).is_empty(), "{}", stderr(o));
    }
    assert_eq!(set_containers(&t, &name).len(), 1);
    assert!(answers(ports[1]));
    stop();

    // Other ports, one runtime folder: both succeed; the later replaced
    // the earlier and said so.
    let (x, y) = at_once((&t, &name, ports[1]), (&t, &name, ports[2]), &more);
    for o in [&x, &y] {
        never_exited(o);
        assert!(o.status.success(), "{}", stderr(o));
    }
    let notes: Vec<(u16, u16, String)> = [(&x, ports[1], ports[2]), (&y, ports[2], ports[1])]
        .into_iter()
        .filter(|(o, _, _)| !stderr(o).is_empty())
        .map(|(o, own, other)| (own, other, stderr(o)))
        .collect();
    assert_eq!(notes.len(), 1, "one of them replaced the other: {notes:?}");
    let (winner, loser, note) = &notes[0];
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(note.contains(&format!("port {loser}")), "{note}");
    assert_eq!(set_containers(&t, &name).len(), 1);
    assert_eq!(set_status(&t, &name)[0]["port"], *winner);
    assert!(answers(*winner) && !answers(*loser));
    stop();

    // Two runtime folders, the same settings: both succeed, one server.
    let (x, y) = at_once((&t, &name, ports[3]), (&t2, &name, ports[3]), &more);
    for o in [&x, &y] {
        never_exited(o);
        assert!(o.status.success(), "{}", stderr(o));
    }
    assert_eq!(set_containers(&t, &name).len(), 1);
    assert!(answers(ports[3]));
    stop();

    // Two runtime folders, other ports: one server at the end; a start
    // that failed says which other start took its place.
    let (x, y) = at_once((&t, &name, ports[3]), (&t2, &name, ports[4]), &more);
    let mut won = Vec::new();
    for (o, port) in [(&x, ports[3]), (&y, ports[4])] {
        never_exited(o);
        if o.status.success() {
            won.push(port);
        } else {
            let line = one_error_line(o);
            assert!(line.contains("another serve"), "{line}");
        }
    }
    eprintln!(
        "{eng}: other ports from two runtime folders: {} succeeded; said: {:?} {:?}",
        won.len(),
        stderr(&x).trim(),
        stderr(&y).trim()
    );
    assert!(!won.is_empty(), "{}{}", stderr(&x), stderr(&y));
    assert_eq!(set_containers(&t, &name).len(), 1);
    let port = set_status(&t, &name)[0]["port"].as_u64().unwrap() as u16;
    assert!(won.contains(&port), "{port} {won:?}");
    assert!(answers(port));
}
