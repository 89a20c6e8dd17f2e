//! `serve`: run distcc servers for targets on this machine's engine (or a
//! remote one: nothing is bind-mounted), and stop them or show their
//! counters.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::context::Ctx;
use crate::distcc::{self, server};
use crate::engine::Engine;
use crate::orphans::{self, Container};
use crate::plugin::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "qemu-cross-cc serve",
    about = "Run a distcc server (distccd in a container of the target's image) per target, \
             for clients elsewhere to send compiles to",
    after_help = "Targets get consecutive ports from --port in the order given. Clients set \
                  QEMU_CROSS_CC_DISTCC_HOSTS=\"THIS-HOST:PORT/JOBS ...\" (distcc's host syntax)."
)]
pub struct Args {
    /// Targets to serve (with --stop: the ones to stop; default all).
    targets: Vec<String>,
    /// Clients allowed to connect (IPv4 address or network; repeatable). Required.
    #[arg(long, value_name = "CIDR")]
    allow: Vec<String>,
    /// Let --allow 0.0.0.0/0 admit every client that reaches the port.
    #[arg(long)]
    allow_any: bool,
    /// The first target's port; the next targets take the following ones.
    #[arg(long, default_value_t = distcc::hosts::DEFAULT_PORT)]
    port: u16,
    /// Compiles each server runs at once (distccd's default otherwise).
    #[arg(long, value_name = "N")]
    jobs: Option<u32>,
    /// Publish the ports on this host address only (default: all).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Run the servers on this engine network instead of publishing ports
    /// (distccd listens on the target's port at the container's own address).
    #[arg(long, value_name = "NETWORK", conflicts_with = "listen")]
    network: Option<String>,
    /// Name of this set of servers (several can run on one engine).
    #[arg(long, value_name = "NAME", default_value = "default")]
    name: String,
    /// Stop the servers (of --name) instead.
    #[arg(long, conflicts_with_all = ["status", "allow"])]
    stop: bool,
    /// Show the servers (of --name) and their distccd counters instead.
    #[arg(long, conflicts_with = "allow")]
    status: bool,
    /// With --status: print JSON.
    #[arg(long, requires = "status")]
    json: bool,
}

fn usage(message: String) -> anyhow::Error {
    crate::argparse::UsageError {
        command: "serve".into(),
        message,
    }
    .into()
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    if !args
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || args.name.is_empty()
    {
        return Err(usage(format!(
            "--name {}: use letters, digits, - and _",
            args.name.escape_debug()
        )));
    }
    if args.stop {
        return stop(ctx.engine()?, &args.name, &args.targets);
    }
    if args.status {
        return status(ctx.engine()?, &args.name, args.json);
    }
    start(ctx, &args)
}

fn start(ctx: &Ctx, args: &Args) -> Result<i32> {
    if args.targets.is_empty() {
        return Err(usage("name the targets to serve".into()));
    }
    if args.allow.is_empty() {
        return Err(usage(
            "--allow CIDR is required: distccd without it accepts every client; name your \
             clients' network (such as --allow 192.168.1.0/24)"
                .into(),
        ));
    }
    for a in &args.allow {
        server::check_allow(a, args.allow_any).map_err(|why| usage(format!("--allow {why}")))?;
    }
    if usize::from(args.port) + args.targets.len() > 65536 {
        return Err(usage(format!(
            "--port {} leaves no port for every target",
            args.port
        )));
    }
    if let Some(l) = &args.listen {
        if l.parse::<std::net::IpAddr>().is_err() {
            return Err(usage(format!(
                "--listen {}: give an IP address of this machine, such as 192.168.1.10",
                l.escape_debug()
            )));
        }
    }
    if let Some(n) = &args.network {
        let name_ok = !n.is_empty()
            && !n.starts_with('-')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok || n == "host" {
            return Err(usage(format!(
                "--network {}: give an engine network's name, or none (the host's own \
                 network would put every target's statistics port on one address: publish \
                 the ports instead, with --listen)",
                n.escape_debug()
            )));
        }
    }
    for (i, t) in args.targets.iter().enumerate() {
        if args.targets[..i].contains(t) {
            return Err(usage(format!("target {t} is named twice")));
        }
    }
    let reg = Registry::load()?;
    let mut plugins = Vec::new();
    for t in &args.targets {
        let p = reg.find(t).ok_or_else(|| reg.unknown(t))?;
        if server::compilers(p).is_empty() {
            bail!("target {t} has no gcc driver (cc, gcc, c++ or g++) to serve");
        }
        plugins.push(p);
    }
    let network = match &args.network {
        Some(n) => server::Network::Named(n.clone()),
        None => server::Network::Published {
            listen: args.listen.clone(),
        },
    };
    let engine = ctx.engine()?;
    for (i, plugin) in plugins.into_iter().enumerate() {
        let port = args.port + i as u16;
        let image = distcc::ensure_server_image(engine, plugin, &ctx.library)?;
        let name = server::container_name(&args.name, &plugin.target);
        // A server of the same name is replaced.
        let _ = engine.output(["rm", "-f", name.as_str()]);
        let mut run: Vec<String> = vec!["run".into()];
        run.extend(orphans::label_args());
        run.extend(server::run_args(&server::Spec {
            target: &plugin.target,
            image: &image.tag,
            instance: &args.name,
            port,
            fingerprint: &image.fingerprint,
            allow: &args.allow,
            jobs: args.jobs,
            network: &network,
        }));
        let out = engine.output(&run)?;
        if !out.status.success() {
            let _ = engine.output(["rm", "-f", name.as_str()]);
            bail!(
                "cannot start the distcc server of {} on port {port}: {} (is the port taken? \
                 pick another with --port)",
                plugin.target,
                crate::engine::message_line(&String::from_utf8_lossy(&out.stderr), true)
            );
        }
        wait_ready(engine, &name)
            .with_context(|| format!("the distcc server of {} did not start", plugin.target))?;
        let names: Vec<String> = server::compilers(plugin)
            .iter()
            .map(|(tool, _)| {
                distcc::fingerprint::compiler_name(&plugin.target, tool, &image.fingerprint, false)
            })
            .collect();
        println!(
            "{}\tport {port}\ttoolchain {}\t{}",
            plugin.target,
            image.fingerprint,
            names.join(" ")
        );
    }
    Ok(0)
}

/// Wait until distccd answers its statistics port (5 s at most).
fn wait_ready(engine: &Engine, name: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let c = containers(engine, None)?
            .into_iter()
            .find(|c| c.name == name);
        match c {
            Some(c) if c.state == "running" && stats(engine, &c).is_some() => return Ok(()),
            Some(c) if c.state == "running" || c.state == "created" => {}
            _ => {
                let logs = engine.output(["logs", name]).ok();
                let why = logs
                    .map(|o| crate::engine::message_line(&String::from_utf8_lossy(&o.stderr), true))
                    .unwrap_or_default();
                bail!("its container exited: {why}");
            }
        }
        if start.elapsed() > Duration::from_secs(5) {
            bail!(
                "distccd did not answer within 5 s; see `{} logs {name}`",
                engine.prog().join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// This user's server containers (of one set, or all).
fn containers(engine: &Engine, instance: Option<&str>) -> Result<Vec<Container>> {
    let label = match instance {
        Some(i) => format!("{}={i}", server::SERVE_LABEL),
        None => server::SERVE_LABEL.to_string(),
    };
    orphans::containers(engine, &label)
}

/// distccd's counters, read inside the container (the statistics port is
/// never published).
fn stats(engine: &Engine, c: &Container) -> Option<std::collections::BTreeMap<String, String>> {
    let port: u16 = c.label(server::STATS_LABEL)?.parse().ok()?;
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && cat <&3");
    let out = engine
        .output(["exec", c.name.as_str(), "bash", "-c", script.as_str()])
        .ok()?;
    out.status
        .success()
        .then(|| server::parse_stats(&String::from_utf8_lossy(&out.stdout)))
        .filter(|s| !s.is_empty())
}

fn stop(engine: &Engine, instance: &str, targets: &[String]) -> Result<i32> {
    let ids: Vec<String> = containers(engine, Some(instance))?
        .into_iter()
        .filter(|c| {
            targets.is_empty()
                || c.label(crate::session::TARGET_LABEL)
                    .is_some_and(|t| targets.iter().any(|x| x == t))
        })
        .map(|c| c.id)
        .collect();
    engine.remove_containers(&ids);
    println!("stopped {} distcc servers", ids.len());
    Ok(0)
}

fn status(engine: &Engine, instance: &str, json: bool) -> Result<i32> {
    let mut rows = Vec::new();
    for c in containers(engine, Some(instance))? {
        let counters = stats(engine, &c).unwrap_or_default();
        rows.push((c, counters));
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(c, s)| {
                serde_json::json!({
                    "target": c.label(crate::session::TARGET_LABEL),
                    "port": c.label(server::PORT_LABEL).and_then(|p| p.parse::<u16>().ok()),
                    "fingerprint": c.label(distcc::fingerprint::LABEL),
                    "container": c.name,
                    "state": c.state,
                    "stats": s,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<26} {:>5}  {:<12}  {:<8} {:>8} {:>8} {:>8} {:>8}",
        "TARGET", "PORT", "TOOLCHAIN", "STATE", "ACCEPTED", "OK", "ERRORS", "REJECTED"
    );
    for (c, s) in &rows {
        let n = |k: &str| s.get(k).map_or("-", String::as_str).to_string();
        let rejected = match (s.get("dcc_rej_bad_req"), s.get("dcc_rej_overload")) {
            (Some(a), Some(b)) => {
                (a.parse::<u64>().unwrap_or(0) + b.parse::<u64>().unwrap_or(0)).to_string()
            }
            _ => "-".into(),
        };
        println!(
            "{:<26} {:>5}  {:<12}  {:<8} {:>8} {:>8} {:>8} {:>8}",
            c.label(crate::session::TARGET_LABEL).unwrap_or("?"),
            c.label(server::PORT_LABEL).unwrap_or("?"),
            c.label(distcc::fingerprint::LABEL).unwrap_or("?"),
            c.state,
            n("dcc_tcp_accept"),
            n("dcc_compile_ok"),
            n("dcc_compile_error"),
            rejected,
        );
    }
    Ok(0)
}
