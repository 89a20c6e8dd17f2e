//! `dist check`: ask each configured distcc server whether it takes this
//! machine's compiles for a target, by compiling one probe file on it alone
//! (`DISTCC_FALLBACK=0`) and comparing the object with a local compile.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};

use crate::commands;
use crate::context::Ctx;
use crate::distcc::{client, fingerprint};
use crate::target::distcc_hosts as hosts;
use crate::target::plugin::Registry;

pub const COMMAND: commands::Command = commands::Command::clap(
    "dist",
    "'dist check': which distcc servers take this machine's compiles",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(about = "Check distcc servers: which take this machine's compiles")]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Classify each host: ok, different toolchain, unreachable or refused.
    Check {
        /// The target (default: QEMU_CROSS_CC_TARGET).
        target: Option<String>,
        /// The hosts to check (default: QEMU_CROSS_CC_DISTCC_HOSTS or the
        /// project file's `distcc`).
        #[arg(long, value_name = "LIST")]
        hosts: Option<String>,
    },
}

/// What a host does with this machine's compiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    DifferentToolchain,
    Unreachable(String),
    Refused,
    Failed(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Ok => f.write_str("ok"),
            Verdict::DifferentToolchain => f.write_str(
                "different toolchain: the server does not know this toolchain's compiler name \
                 (rebuild one side's image, or serve this target there)",
            ),
            Verdict::Unreachable(why) => write!(f, "unreachable: {why}"),
            Verdict::Refused => {
                f.write_str("refused: this machine is not in the server's --allow list")
            }
            Verdict::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let Action::Check { target, hosts } = args.action;
    let target = target
        .or_else(|| {
            std::env::var("QEMU_CROSS_CC_TARGET")
                .ok()
                .filter(|t| !t.is_empty())
        })
        .ok_or_else(|| crate::error::UsageError {
            command: "dist check".into(),
            message: "name the target (dist check TARGET) or set QEMU_CROSS_CC_TARGET".into(),
        })?;
    let reg = Registry::load_matching(|t| t == target)?;
    let Some(plugin) = reg.find(&target) else {
        return Err(Registry::load()?.unknown(&target));
    };
    let plugin = &*crate::target::project::apply(plugin)?;
    let Some(list) = hosts.or_else(|| client::hosts_for(plugin)) else {
        bail!(
            "no distcc hosts to check: set {} (such as '10.0.0.2:3632/8') or `distcc` in \
             qemu-cross-cc.toml, or pass --hosts",
            client::HOSTS_VAR
        );
    };
    let parsed = hosts::parse(&list).map_err(|why| anyhow::anyhow!("the host list {why}"))?;
    let dir = client::link_dir()?;
    let fp = client::fingerprint_for(ctx, plugin)?;
    let tool = if plugin.tools.contains_key("gcc") {
        "gcc"
    } else {
        "cc"
    };
    let name = fingerprint::compiler_name(&plugin.target, tool, &fp, fingerprint::utf8_locale());
    client::link(&dir, &name)?;
    let work = tempfile::Builder::new()
        .prefix("qemu-cross-cc-dist-check")
        .tempdir()
        .context("cannot create a temporary folder")?;
    std::fs::write(
        work.path().join("probe.c"),
        "int qemu_cross_cc_probe(int x) { return x * 3 + 1; }\n",
    )
    .context("cannot write the probe source")?;
    let engine = ctx.choice.name();
    let local = local_object(&dir, &name, work.path(), engine)?;
    println!("target {} (toolchain {fp})", plugin.target);
    let mut all_ok = true;
    for h in &parsed {
        let verdict = match &h.kind {
            hosts::Kind::Local => {
                println!("{:<28} local compiles", h.entry);
                continue;
            }
            hosts::Kind::Tcp { host, port } => match reach(host, *port) {
                Err(v) => v,
                Ok(()) => probe(&dir, &name, work.path(), &h.entry, &local, engine),
            },
            hosts::Kind::Ssh { .. } => probe(&dir, &name, work.path(), &h.entry, &local, engine),
        };
        all_ok &= verdict == Verdict::Ok;
        println!("{:<28} {verdict}", h.entry);
    }
    Ok(if all_ok { 0 } else { 1 })
}

/// Connect, and see whether distccd hangs up at once (its allow-list
/// check comes first, before it reads anything).
fn reach(host: &str, port: u16) -> Result<(), Verdict> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Verdict::Unreachable(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(3)) {
            Ok(mut s) => {
                // The protocol's first token: a server that takes the
                // client waits for the next; one that refuses has hung up
                // (through a proxy, only once there is something to pass).
                use std::io::Write;
                let _ = s.write_all(b"DIST00000001");
                let _ = s.set_read_timeout(Some(Duration::from_millis(700)));
                let mut b = [0u8; 1];
                return match s.read(&mut b) {
                    Ok(0) => Err(Verdict::Refused),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        Err(Verdict::Refused)
                    }
                    _ => Ok(()),
                };
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(Verdict::Unreachable(last))
}

/// The probe compiled here, as the fallback would.
fn local_object(dir: &Path, name: &str, work: &Path, engine: &str) -> Result<Vec<u8>> {
    let status = Command::new(dir.join(name))
        .args(["-O2", "-c", "probe.c", "-o", "local.o"])
        .env("QEMU_CROSS_CC_ENGINE", engine)
        .env(client::SAFEGUARD_VAR, "1")
        .current_dir(work)
        .status()
        .context("cannot compile the probe locally")?;
    if !status.success() {
        bail!("compiling the probe locally failed ({status})");
    }
    std::fs::read(work.join("local.o")).context("cannot read the local probe object")
}

/// Compile the probe on `entry` alone, no fallback.
fn probe(dir: &Path, name: &str, work: &Path, entry: &str, local: &[u8], engine: &str) -> Verdict {
    let state = work.join("distcc-state");
    let _ = std::fs::remove_dir_all(&state);
    if let Err(e) = std::fs::create_dir(&state) {
        return Verdict::Failed(format!("cannot create {}: {e}", state.display()));
    }
    let log = work.join("distcc.log");
    let _ = std::fs::remove_file(work.join("remote.o"));
    let out = Command::new("distcc")
        .arg(name)
        .args(["-O2", "-c", "probe.c", "-o", "remote.o"])
        .env("DISTCC_HOSTS", entry)
        .env("QEMU_CROSS_CC_ENGINE", engine)
        .env("DISTCC_FALLBACK", "0")
        .env("DISTCC_DIR", &state)
        .env("DISTCC_LOG", &log)
        .env("PATH", client::path_with(dir))
        .env_remove(client::SAFEGUARD_VAR)
        .current_dir(work)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return Verdict::Failed(format!("cannot run distcc ({e}); install distcc")),
    };
    if out.status.success() {
        return match std::fs::read(work.join("remote.o")) {
            Ok(o) if o == local => Verdict::Ok,
            Ok(_) => Verdict::Failed("its object differs from the local compile's".into()),
            Err(e) => Verdict::Failed(format!("no object came back: {e}")),
        };
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if text.contains("server provided no answer") {
        Verdict::DifferentToolchain
    } else {
        let line = text
            .lines()
            .rfind(|l| l.contains("ERROR"))
            .unwrap_or("distcc failed")
            .to_string();
        Verdict::Failed(line)
    }
}
