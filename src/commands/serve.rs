//! `serve`: run distcc servers for targets on this machine's engine (or a
//! remote one: nothing is bind-mounted), and stop them or show their
//! counters.

use std::fs::OpenOptions;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};
use nix::fcntl::{Flock, FlockArg};

use crate::commands::{self, Command};
use crate::context::Ctx;
use crate::distcc::{self, forwarding, server};
use crate::engine::Engine;
use crate::engine::orphans::{self, Container};
use crate::session::TARGET_LABEL;
use crate::target::plugin::Registry;

pub const COMMAND: Command = Command::clap(
    "serve",
    "run distcc servers for targets (one container each), stop them, show counters",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(
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
    #[arg(long, default_value_t = crate::target::distcc_hosts::DEFAULT_PORT)]
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
    crate::error::UsageError {
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
    let _lock = lock_set(engine, &args.name)?;
    // What clients on this machine arrive as, found once for every target.
    let mut admit: Option<Vec<String>> = None;
    for (i, plugin) in plugins.into_iter().enumerate() {
        let port = args.port + i as u16;
        let image = distcc::ensure_server_image(engine, plugin, &ctx.library)?;
        let name = server::container_name(&args.name, &plugin.target);
        let asked = server::Spec {
            target: &plugin.target,
            image: &image.tag,
            image_id: &image.id,
            instance: &args.name,
            port,
            fingerprint: &image.fingerprint,
            allow: &args.allow,
            admit: &[],
            jobs: args.jobs,
            network: &network,
        };
        let wanted = server::settings(&asked);
        let existing: Vec<Container> = containers(engine, Some(&args.name))?
            .into_iter()
            .filter(|c| c.name == name || c.label(TARGET_LABEL) == Some(plugin.target.as_str()))
            .collect();
        let current = existing.iter().find(|c| c.name == name && live(c));
        let (id, started) = match current {
            // Asked again for what it serves: it stays.
            Some(c) if c.label(server::SETTINGS_LABEL) == Some(wanted.as_str()) => {
                (c.id.clone(), false)
            }
            _ => {
                let admit = match &admit {
                    Some(a) => a,
                    None => admit.insert(forwarding::admissions(
                        engine,
                        &image.tag,
                        &args.allow,
                        &network,
                    )?),
                };
                if let Some(old) = current {
                    eprintln!("qemu-cross-cc: note: {}", replacing(old, &asked, &wanted));
                }
                let ids: Vec<String> = existing.iter().map(|c| c.id.clone()).collect();
                engine.remove_containers(&ids);
                let spec = server::Spec {
                    admit: admit.as_slice(),
                    ..asked
                };
                (run_server(engine, &spec, &name, &wanted)?, true)
            }
        };
        wait_ready(engine, &name, &id)
            .with_context(|| format!("the distcc server of {} did not start", plugin.target))?;
        if started {
            let mut effective = args.allow.clone();
            effective.extend(admit.iter().flatten().cloned());
            if let Err(e) = forwarding::check_started(engine, &id, &effective, &network) {
                engine.remove_containers(std::slice::from_ref(&id));
                return Err(e.context(format!("the distcc server of {}", plugin.target)));
            }
        }
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

/// One start or stop of a set at a time, per user (runtime folder) and
/// engine: a second `serve` of the set waits, then finds the first one's
/// servers. (Servers are the engine's: starts in other runtime folders
/// meet at the container name instead, see `run_server`.)
fn lock_set(engine: &Engine, instance: &str) -> Result<Flock<std::fs::File>> {
    let dir = crate::state::paths::runtime_subdir("serve")?;
    let key = crate::image::dockerfile::bytes_checksum(
        format!("{:?}/{instance}", engine.flavor()).as_bytes(),
    );
    let file = crate::state::safefs::open_private(
        &dir.join(format!(".lock-{}", &key[..16])),
        OpenOptions::new().create(true).truncate(false).write(true),
    )?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock the set {instance}: {e}"))
}

/// A container that is, or may be about to be, serving: any state but
/// those of a container that ended (podman shows others while it starts).
fn live(c: &Container) -> bool {
    !matches!(
        c.state.as_str(),
        "exited" | "dead" | "stopped" | "stopping" | "removing"
    )
}

/// The line saying what `serve` replaces: the old server's port, the new
/// one's, and what else differs.
fn replacing(old: &Container, new: &server::Spec, wanted: &str) -> String {
    let changes = old
        .label(server::SETTINGS_LABEL)
        .map(|s| server::changes(s, wanted))
        .unwrap_or_default();
    format!(
        "replacing the distcc server of {} (set {}) on port {} with one on port {}{}",
        new.target,
        new.instance,
        old.label(server::PORT_LABEL).unwrap_or("?"),
        new.port,
        if changes.is_empty() {
            String::new()
        } else {
            format!(" ({})", changes.join(", "))
        }
    )
}

/// Start a server; its container's id. When its name is taken meanwhile
/// (a `serve` of the set from another runtime folder, which the lock does
/// not reach), a server with the same settings is the one asked for, and
/// another is replaced, as it would have been had it been there first (its
/// start, if still waiting for it, then fails naming this one).
fn run_server(engine: &Engine, spec: &server::Spec, name: &str, wanted: &str) -> Result<String> {
    let mut run: Vec<String> = vec!["run".into()];
    run.extend(orphans::label_args());
    run.extend(server::run_args(spec));
    // The server this call removed to take the name, once it did.
    let mut replaced: Option<String> = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = engine.output(&run)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if let Some(id) = stdout
            .split_whitespace()
            .last()
            .filter(|_| out.status.success())
        {
            return Ok(id.to_string());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let holder = orphans::named(engine, name)?;
        let name_taken = [
            format!("\"{name}\" is already in use"),
            format!("\"/{name}\" is already in use"),
        ]
        .iter()
        .any(|m| stderr.contains(m.as_str()));
        if !name_taken {
            // A container this call created but could not start.
            if let Some(h) = holder.filter(orphans::made_here) {
                engine.remove_containers(std::slice::from_ref(&h.id));
            }
            bail!(
                "cannot start the distcc server of {} on port {}: {} (is the port taken? pick \
                 another with --port)",
                spec.target,
                spec.port,
                // docker ends with "Run 'docker run --help' ...".
                crate::engine::message_line(
                    &stderr
                        .lines()
                        .filter(|l| !l.starts_with("Run '"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    true
                )
            );
        }
        match &holder {
            // The same server, started at the same time: one.
            Some(h) if mine(h) && h.label(server::SETTINGS_LABEL) == Some(wanted) => {
                return Ok(h.id.clone());
            }
            Some(h)
                if replaced.is_none()
                    && mine(h)
                    && h.label(server::SERVE_LABEL) == Some(spec.instance) =>
            {
                if live(h) {
                    eprintln!("qemu-cross-cc: note: {}", replacing(h, spec, wanted));
                }
                engine.remove_containers(std::slice::from_ref(&h.id));
                replaced = Some(h.id.clone());
            }
            // The one this call removed, still listed: the engine is still
            // removing it, or refused while it started; asked again.
            Some(h) if replaced.as_deref() == Some(h.id.as_str()) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
                engine.remove_containers(std::slice::from_ref(&h.id));
            }
            // docker holds the name before it lists the container it
            // creates; or it was removed meanwhile: ask again.
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => bail!("{}", taken(spec, name, holder.as_ref())),
        }
    }
}

/// Whether this user made the container.
fn mine(c: &Container) -> bool {
    c.label(orphans::UID_LABEL) == Some(crate::host::user::uid().to_string().as_str())
}

/// Why the container name of a server is not this call's to take.
fn taken(spec: &server::Spec, name: &str, holder: Option<&Container>) -> String {
    let Some(h) = holder else {
        return format!(
            "the engine says the container name {name} is in use but lists no container of \
             that name (another serve of set {} at the same time?); run serve again",
            spec.instance
        );
    };
    let port = h.label(server::PORT_LABEL).unwrap_or("?");
    if h.label(server::SERVE_LABEL).is_none() {
        return format!(
            "the container name {name} is taken by a container that is not a distcc server \
             ({}); remove it, or give this set another --name",
            &h.id[..h.id.len().min(12)]
        );
    }
    if !mine(h) {
        return format!(
            "the container name {name} is taken by a distcc server of another user (uid {}, \
             port {port}); give this set another --name",
            h.label(orphans::UID_LABEL).unwrap_or("?")
        );
    }
    format!(
        "another serve of set {} (pid {}) started the distcc server of {} at the same time, on \
         port {port}; run serve again to replace it",
        h.label(server::SERVE_LABEL).unwrap_or(spec.instance),
        h.owner_pid().map_or("?".to_string(), |p| p.to_string()),
        spec.target
    )
}

/// Wait until distccd answers its statistics port (5 s at most).
fn wait_ready(engine: &Engine, name: &str, id: &str) -> Result<()> {
    let start = Instant::now();
    let mut gone_since: Option<Instant> = None;
    // When it was first seen ended, in which state, and its log then: an
    // ended container may be one another start of the set is removing
    // (podman shows it stopping, then exited), so a moment tells which.
    let mut ended: Option<(Instant, String, String)> = None;
    loop {
        match orphans::named(engine, name)? {
            Some(c) if c.id == id => {
                gone_since = None;
                match c.state.as_str() {
                    "running" if stats(engine, &c).is_some() => return Ok(()),
                    _ if live(&c) => {}
                    s => {
                        let (since, state, log) = ended.get_or_insert_with(|| {
                            (Instant::now(), s.to_string(), last_log(engine, id))
                        });
                        if since.elapsed() > Duration::from_secs(3) {
                            bail!("its container exited ({state}): {log}");
                        }
                    }
                }
            }
            // Removed by another start of the set, which took the name.
            Some(other) => bail!(
                "another serve{} replaced it meanwhile, with one on port {}",
                other
                    .owner_pid()
                    .map_or(String::new(), |p| format!(" (pid {p})")),
                other.label(server::PORT_LABEL).unwrap_or("?")
            ),
            // Exited (`--rm` removes it), or removed by another start
            // that is about to take the name: a moment tells.
            None => {
                let since = *gone_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(5) {
                    match &ended {
                        Some((_, state, log)) => bail!("its container exited ({state}): {log}"),
                        None => bail!(
                            "its container is gone: it exited ({}), or another serve removed it",
                            last_log(engine, id)
                        ),
                    }
                }
            }
        }
        if start.elapsed() > Duration::from_secs(5) && gone_since.is_none() && ended.is_none() {
            bail!(
                "distccd did not answer within 5 s; see `{} logs {name}`",
                engine.prog().join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last line of a container's log, while it still exists.
fn last_log(engine: &Engine, id: &str) -> String {
    match engine.output(["logs", id]) {
        Ok(o) if o.status.success() => {
            crate::engine::message_line(&String::from_utf8_lossy(&o.stderr), true)
        }
        _ => "no log left".into(),
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
    let _lock = lock_set(engine, instance)?;
    let ids: Vec<String> = containers(engine, Some(instance))?
        .into_iter()
        .filter(|c| {
            targets.is_empty()
                || c.label(TARGET_LABEL)
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
                    "target": c.label(TARGET_LABEL),
                    "port": c.label(server::PORT_LABEL).and_then(|p| p.parse::<u16>().ok()),
                    "fingerprint": c.label(distcc::fingerprint::LABEL),
                    "allow": c.label(server::ALLOW_LABEL).map(|a| a.split_whitespace().collect::<Vec<_>>()),
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
        "{:<26} {:>5}  {:<12}  {:<8} {:>8} {:>8} {:>8} {:>8}  ALLOW",
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
            "{:<26} {:>5}  {:<12}  {:<8} {:>8} {:>8} {:>8} {:>8}  {}",
            c.label(TARGET_LABEL).unwrap_or("?"),
            c.label(server::PORT_LABEL).unwrap_or("?"),
            c.label(distcc::fingerprint::LABEL).unwrap_or("?"),
            c.state,
            n("dcc_tcp_accept"),
            n("dcc_compile_ok"),
            n("dcc_compile_error"),
            rejected,
            c.label(server::ALLOW_LABEL)
                .map_or("?".to_string(), |a| a.replace(' ', ",")),
        );
    }
    Ok(0)
}
