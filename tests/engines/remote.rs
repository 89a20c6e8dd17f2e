//! A remote engine: what would bind-mount this machine's folders (a compile
//! through a shim or `--target`, `cc`, `run`, the runner, `exec`) is refused
//! with one line pointing at `serve` and distcc, and starts no container;
//! `build`, `check` and `images` work through it. podman in its remote mode
//! (`CONTAINER_HOST` of a `podman system service`), docker through
//! `DOCKER_HOST=tcp://127.0.0.1:PORT` (a loopback port of the test's own
//! forwarding to the daemon's socket). Both are this machine's engines
//! really, so the old behaviour (compiling through them) would work here and
//! the refusal is what is tested; `QEMU_CROSS_CC_ENGINE_LOCAL=1` then says
//! so and the compile goes through.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::*;
use crate::{Mode, TestFn};

pub const TESTS: &[(&str, TestFn, Mode)] = &[
    (
        "remote::podman_remote_mode_refuses_compiles",
        podman_remote_mode_refuses_compiles,
        Mode::Shared,
    ),
    (
        "remote::docker_over_tcp_refuses_compiles",
        docker_over_tcp_refuses_compiles,
        Mode::Shared,
    ),
];

const TARGET: &str = "qccremote-linux-gnu";

/// A program of `t`'s work folder, run with the shims first on PATH.
fn tool(t: &T, path: &str, program: &str, args: &[&str]) -> Command {
    let mut c = t.program(program, args);
    c.env("PATH", path);
    c
}

/// The containers of `image` in any state (through the engine's own local
/// socket, whatever the tool was pointed at).
fn containers_of(t: &T, image: &str) -> Vec<String> {
    let o = ok(t.engine(["ps", "-a", "-q", "--filter", &format!("ancestor={image}")]));
    stdout(&o).split_whitespace().map(String::from).collect()
}

/// Every command that bind-mounts this machine's folders fails with one
/// line naming `engine` as remote and the way out, exit 1, and leaves no
/// container and no object behind.
fn compiles_are_refused(t: &T, path: &str, image: &str, engine: &str) {
    t.write("work/hello.c", "int main(void) { return 0; }\n");
    let compile = ["-c", "hello.c", "-o", "hello.o"];
    let calls: Vec<(&str, Command)> = vec![
        (
            "a compile through a shim",
            tool(t, path, &format!("{TARGET}-gcc"), &compile),
        ),
        ("--target", {
            let mut c = t.qcc(["--target", TARGET]);
            c.args(compile);
            c
        }),
        ("cc", {
            let mut c = t.qcc(["cc", "-i", image, "--cc", "gcc", "--"]);
            c.args(compile);
            c
        }),
        (
            "run",
            t.qcc([
                "run",
                "--rm",
                "-v",
                &format!("{0}:{0}", t.work().display()),
                image,
                "true",
            ]),
        ),
        (
            "the runner",
            tool(t, path, &format!("{TARGET}-run"), &["/bin/true"]),
        ),
        ("exec", t.qcc(["exec", TARGET, "--", "true"])),
    ];
    for (what, cmd) in calls {
        let o = out(cmd);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{what} through {engine}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let line = one_error_line(&o);
        for part in [
            &format!("the engine ({engine}) is remote")[..],
            "qemu-cross-cc serve TARGET",
            "QEMU_CROSS_CC_DISTCC_HOSTS",
            "QEMU_CROSS_CC_ENGINE_LOCAL=1",
        ] {
            assert!(line.contains(part), "{what}: {line}");
        }
        assert!(stdout(&o).is_empty(), "{what}: {}", stdout(&o));
        assert!(!t.work().join("hello.o").exists(), "{what} compiled");
        assert_eq!(containers_of(t, image), Vec::<String>::new(), "{what}");
    }
}

/// `build`, `check` and `images` go through the remote engine.
fn image_commands_work(t: &T, image: &str) {
    ok(t.qcc(["build", "--quiet", TARGET]));
    let o = ok(t.qcc(["check", TARGET]));
    assert!(stdout(&o).contains("Image is up to date"), "{}", stdout(&o));
    let o = ok(t.qcc(["images"]));
    let repo = image.split(':').next().unwrap();
    assert!(stdout(&o).contains(repo), "{}", stdout(&o));
}

/// The user says the engine is this machine's: the compile goes through
/// (one-shot: no session outlives the test).
fn declared_local_compiles(t: &T, path: &str) {
    let mut c = tool(
        t,
        path,
        &format!("{TARGET}-gcc"),
        &["-c", "hello.c", "-o", "hello.o"],
    );
    c.env("QEMU_CROSS_CC_ENGINE_LOCAL", "1")
        .env("QEMU_CROSS_CC_SESSION", "0");
    ok(c);
    assert!(t.work().join("hello.o").exists());
}

fn podman_remote_mode_refuses_compiles(eng: Eng) {
    if eng != Eng::Podman {
        return;
    }
    let mut t = T::new(eng, "remote-podman", false);
    let image = t.cheap_plugin(TARGET);
    let path = t.shims(&[TARGET]);
    let (_service, host) = podman_service(&t);
    t.env.push(("CONTAINER_HOST".into(), host.clone()));
    compiles_are_refused(&t, &path, &image, &format!("podman at {host}"));
    image_commands_work(&t, &image);
    compiles_are_refused(&t, &path, &image, &format!("podman at {host}"));
    declared_local_compiles(&t, &path);
}

/// A loopback TCP port forwarding each connection to a unix socket (the
/// docker daemon's), for as long as it lives; counts the connections.
struct TcpToUnix {
    port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// Copy `from` to `to` until `from` ends, then end `to`'s writing half.
fn copy_then_close(mut from: impl Read, mut to: impl Write, close: impl FnOnce()) {
    let _ = std::io::copy(&mut from, &mut to);
    close();
}

impl TcpToUnix {
    fn start(socket: &str) -> TcpToUnix {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, n, socket) = (stop.clone(), connections.clone(), socket.to_string());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let (Ok(client), Ok(daemon)) = (conn, UnixStream::connect(&socket)) else {
                    continue;
                };
                n.fetch_add(1, Ordering::SeqCst);
                let (c2, d2) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
                let (c3, d3) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
                std::thread::spawn(move || {
                    copy_then_close(client, daemon, || {
                        let _ = d3.shutdown(Shutdown::Write);
                    })
                });
                std::thread::spawn(move || {
                    copy_then_close(d2, c2, || {
                        let _ = c3.shutdown(Shutdown::Write);
                    })
                });
            }
        });
        TcpToUnix {
            port,
            stop,
            connections,
            accept: Some(accept),
        }
    }
}

impl Drop for TcpToUnix {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread; it sees the flag and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn docker_over_tcp_refuses_compiles(eng: Eng) {
    if eng != Eng::Docker {
        return;
    }
    let mut t = T::new(eng, "remote-docker", false);
    let image = t.cheap_plugin(TARGET);
    let path = t.shims(&[TARGET]);
    let proxy = TcpToUnix::start("/var/run/docker.sock");
    let host = format!("tcp://127.0.0.1:{}", proxy.port);
    // The engine detected (and remembered) before DOCKER_HOST is exported:
    // the change is seen at once.
    ok(t.qcc(["images", "-q"]));
    t.env.push(("DOCKER_HOST".into(), host.clone()));
    compiles_are_refused(&t, &path, &image, &format!("docker at {host}"));
    let before = proxy.connections.load(Ordering::SeqCst);
    image_commands_work(&t, &image);
    assert!(
        proxy.connections.load(Ordering::SeqCst) > before,
        "build, check and images did not go through {host}"
    );
    compiles_are_refused(&t, &path, &image, &format!("docker at {host}"));
    declared_local_compiles(&t, &path);

    // The same endpoint as a docker context (in a config folder of the
    // test's own), selected by DOCKER_CONTEXT: the client reports it.
    std::fs::remove_file(t.work().join("hello.o")).unwrap();
    t.env.retain(|(k, _)| k != "DOCKER_HOST");
    let config = t.dir.join("docker-config");
    ok(Command::new("docker").arg("--config").arg(&config).args([
        "context",
        "create",
        "qcc-far",
        "--docker",
        &format!("host={host}"),
    ]));
    t.env
        .push(("DOCKER_CONFIG".into(), config.display().to_string()));
    t.env.push(("DOCKER_CONTEXT".into(), "qcc-far".into()));
    let o = out(tool(
        &t,
        &path,
        &format!("{TARGET}-gcc"),
        &["-c", "hello.c", "-o", "hello.o"],
    ));
    let line = one_error_line(&o);
    assert!(
        line.contains(&format!("the engine (docker at {host}) is remote")),
        "{line}"
    );
    assert!(!t.work().join("hello.o").exists());
    let before = proxy.connections.load(Ordering::SeqCst);
    ok(t.qcc(["images", "-q"]));
    assert!(proxy.connections.load(Ordering::SeqCst) > before);

    // The context chosen in the config, no variable changed: seen once
    // what was remembered of the engine is due again (here at once, as a
    // minute after the last call), when it is probed again and asked
    // where it runs containers meanwhile. One-shot: no session outlives
    // the test, and none answers the call before the engine is asked.
    t.env.retain(|(k, _)| k != "DOCKER_CONTEXT");
    let one_shot = |t: &T| {
        let mut c = tool(
            t,
            &path,
            &format!("{TARGET}-gcc"),
            &["-c", "hello.c", "-o", "hello.o"],
        );
        c.env("QEMU_CROSS_CC_SESSION", "0");
        c
    };
    ok(one_shot(&t));
    assert!(t.work().join("hello.o").exists());
    std::fs::remove_file(t.work().join("hello.o")).unwrap();
    ok(Command::new("docker")
        .arg("--config")
        .arg(&config)
        .args(["context", "use", "qcc-far"]));
    t.env.push(("QEMU_CROSS_CC_ENGINE_TTL".into(), "0".into()));
    let line = one_error_line(&out(one_shot(&t)));
    assert!(
        line.contains(&format!("the engine (docker at {host}) is remote")),
        "{line}"
    );
    assert!(!t.work().join("hello.o").exists());
    drop(proxy);
}
