//! Clients on this machine as a server sees them through a published port.
//!
//! Both engines forward a published port through the host: docker's
//! userland proxy and podman's port forwarding connect to the container
//! from the gateway of its network (172.17.0.1, 10.88.0.1), so a client on
//! loopback never arrives from 127.0.0.1. When `--allow` admits loopback,
//! that gateway is admitted too, read from the engine, never assumed; but
//! only for ports published on loopback: through any other address the
//! same gateway is also where every container of that network comes from.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result, bail};

use super::server::{self, Network};
use crate::engine::{Engine, Flavor};

/// Who can reach a server's port from this machine's loopback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Nothing to do: nothing is published, it is published on another
    /// address, or `--allow` does not admit loopback.
    NotAsked,
    /// Published on loopback alone: what arrives from the gateway is a
    /// client on this machine.
    Loopback,
    /// Published on every address: the gateway also stands for every
    /// container of the engine's network.
    EveryAddress,
}

/// Whether a loopback client is meant to be admitted, and how the port is
/// published.
pub fn reach(allow: &[String], network: &Network) -> Reach {
    if !server::admits(allow, Ipv4Addr::LOCALHOST) {
        return Reach::NotAsked;
    }
    match network {
        Network::Named(_) => Reach::NotAsked,
        Network::Published { listen: None } => Reach::EveryAddress,
        Network::Published { listen: Some(l) } => match l.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => Reach::Loopback,
            Ok(ip) if ip.is_unspecified() => Reach::EveryAddress,
            _ => Reach::NotAsked,
        },
    }
}

/// The `--allow` values to add so that clients on this machine are
/// admitted (`gateway/32`), or the one-line refusal. `image` is a server
/// image, for a probe container when the engine's network inspection has
/// no gateway (docker's default bridge).
pub fn admissions(
    engine: &Engine,
    image: &str,
    allow: &[String],
    network: &Network,
) -> Result<Vec<String>> {
    let reach = reach(allow, network);
    if reach == Reach::NotAsked {
        return Ok(Vec::new());
    }
    let loopback = allow
        .iter()
        .find(|c| server::admits(std::slice::from_ref(c), Ipv4Addr::LOCALHOST))
        .map_or("", String::as_str);
    let mut gateways = default_network_gateways(engine)?;
    if gateways.is_empty() {
        gateways = probe_gateways(engine, image)?;
    }
    if gateways.is_empty() {
        bail!(
            "--allow {loopback}: {} reports no gateway for the servers' network, so the address \
             its port forwarding gives clients on this machine is unknown; add that address \
             with --allow, or serve on an engine network (--network NET)",
            word(engine)
        );
    }
    let missing: Vec<Ipv4Addr> = gateways
        .into_iter()
        .filter(|g| !server::admits(allow, *g))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let cidrs: Vec<String> = missing.iter().map(|g| format!("{g}/32")).collect();
    if reach == Reach::EveryAddress {
        bail!(
            "--allow {loopback}: {}'s port forwarding makes clients on this machine arrive from \
             {}, as it does the containers of its network; add --listen 127.0.0.1 to serve this \
             machine alone, or --allow {} to admit those containers too",
            word(engine),
            join(&missing),
            cidrs.join(" --allow ")
        );
    }
    crate::diag::debug(format!(
        "--allow {loopback}: admitting {} too, where {}'s port forwarding makes clients on \
         loopback arrive from",
        cidrs.join(", "),
        word(engine)
    ));
    Ok(cidrs)
}

/// Check a started server: every gateway of its network must be admitted
/// when loopback clients are meant to be (the engine's default network
/// may not be the one its inspection reported). The error completes
/// "the distcc server of T ...".
pub fn check_started(engine: &Engine, id: &str, allow: &[String], network: &Network) -> Result<()> {
    if reach(allow, network) != Reach::Loopback {
        return Ok(());
    }
    let missing: Vec<Ipv4Addr> = container_gateways(engine, id)?
        .into_iter()
        .filter(|g| !server::admits(allow, *g))
        .collect();
    if let Some(g) = missing.first() {
        bail!(
            "is on a network whose gateway, {g}, is where clients on this machine arrive from, \
             not the gateway its engine reports for its default network; serve again with \
             --allow {g}/32"
        );
    }
    Ok(())
}

/// The engine's name in a sentence.
fn word(engine: &Engine) -> &'static str {
    match engine.flavor() {
        Flavor::Docker => "docker",
        Flavor::Podman => "podman",
    }
}

fn join(ips: &[Ipv4Addr]) -> String {
    ips.iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The gateways of the network a container without `--network` joins, as
/// `network inspect` reports them: docker's `bridge` (whose inspection
/// names no gateway unless the daemon was given one), podman's `podman`
/// (rootful; rootless podman's default is not a network).
fn default_network_gateways(engine: &Engine) -> Result<Vec<Ipv4Addr>> {
    let name = match engine.flavor() {
        Flavor::Docker => "bridge",
        Flavor::Podman if engine.is_rootless() => return Ok(Vec::new()),
        Flavor::Podman => "podman",
    };
    let out = engine.output(["network", "inspect", name])?;
    if !out.status.success() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let net = &v[0];
    // docker: IPAM.Config[].Gateway; podman: subnets[].gateway.
    let mut found = Vec::new();
    let entries = net["IPAM"]["Config"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c["Gateway"])
        .chain(
            net["subnets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| &s["gateway"]),
        );
    for g in entries {
        if let Some(ip) = g.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
            found.push(ip);
        }
    }
    Ok(found)
}

/// The gateways of a running container's networks, as the engine reports
/// them.
fn container_gateways(engine: &Engine, id: &str) -> Result<Vec<Ipv4Addr>> {
    let out = engine.output([
        "container",
        "inspect",
        "--format",
        "{{json .NetworkSettings}}",
        id,
    ])?;
    if !out.status.success() {
        bail!(
            "cannot inspect container {id}: {}",
            crate::engine::message_line(&String::from_utf8_lossy(&out.stderr), true)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut found: Vec<Ipv4Addr> = Vec::new();
    let nets = v["Networks"].as_object().into_iter().flatten();
    for g in std::iter::once(&v["Gateway"]).chain(nets.map(|(_, n)| &n["Gateway"])) {
        if let Some(ip) = g.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
            if !found.contains(&ip) {
                found.push(ip);
            }
        }
    }
    Ok(found)
}

/// Start a container of `image` as a server would be (default network,
/// nothing published, locked down) to read its network's gateways, and
/// remove it.
fn probe_gateways(engine: &Engine, image: &str) -> Result<Vec<Ipv4Addr>> {
    let mut run: Vec<String> = vec!["run".into(), "-d".into(), "--rm".into()];
    run.extend(crate::engine::orphans::label_args());
    run.extend(
        [
            "--read-only",
            "--user",
            server::USER,
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            image,
            "sleep",
            "60",
        ]
        .map(String::from),
    );
    let out = engine.output(&run)?;
    if !out.status.success() {
        bail!(
            "cannot start a container to read the gateway of the servers' network: {}",
            crate::engine::message_line(&String::from_utf8_lossy(&out.stderr), true)
        );
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let found = container_gateways(engine, &id).context("reading the servers' network gateway");
    engine.remove_containers(std::slice::from_ref(&id));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_asked_for_where_it_can_reach() {
        let lo = vec!["127.0.0.0/8".to_string()];
        let lan = vec!["192.168.1.0/24".to_string()];
        let published = |l: Option<&str>| Network::Published {
            listen: l.map(String::from),
        };
        assert_eq!(reach(&lo, &published(Some("127.0.0.1"))), Reach::Loopback);
        assert_eq!(reach(&lo, &published(Some("::1"))), Reach::Loopback);
        assert_eq!(reach(&lo, &published(None)), Reach::EveryAddress);
        assert_eq!(reach(&lo, &published(Some("0.0.0.0"))), Reach::EveryAddress);
        assert_eq!(reach(&lo, &published(Some("192.168.1.5"))), Reach::NotAsked);
        assert_eq!(reach(&lo, &Network::Named("net".into())), Reach::NotAsked);
        assert_eq!(reach(&lan, &published(Some("127.0.0.1"))), Reach::NotAsked);
    }
}
