//! Servers: the image and container that `serve` runs for a target.
//!
//! The image is derived from the target's (`FROM` it; the target's own
//! dockerfile and checksum are untouched) and adds Debian's distcc. Its
//! allow-list (`/usr/lib/distcc`) holds only the fingerprinted compiler
//! names, each a link in `/usr/local/bin` to the target's compiler.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::target::plugin::Plugin;

/// distccd's port inside the container (the published port is the
/// target's); its statistics port beside it, never published.
pub const INNER_PORT: u16 = 3632;
pub const STATS_PORT: u16 = 3633;

/// Labels of a server container.
pub const SERVE_LABEL: &str = "com.qemu-cross-cc.serve";
pub const PORT_LABEL: &str = "com.qemu-cross-cc.distcc-port";
pub const STATS_LABEL: &str = "com.qemu-cross-cc.distcc-stats-port";
/// The clients distccd admits (besides the container's own loopback),
/// space-separated.
pub const ALLOW_LABEL: &str = "com.qemu-cross-cc.distcc-allow";
/// What the server was asked for (see `settings`): a `serve` asking the
/// same leaves it running.
pub const SETTINGS_LABEL: &str = "com.qemu-cross-cc.distcc-settings";

/// The uid and gid distccd runs as (nobody).
pub const USER: &str = "65534:65534";

/// The tools a server compiles for: the gcc drivers the target has.
pub fn compilers(plugin: &Plugin) -> Vec<(&str, &str)> {
    crate::target::plugin::COMPILERS
        .iter()
        .filter_map(|t| plugin.tools.get(*t).map(|p| (*t, p.as_str())))
        .collect()
}

/// The server image's tag.
pub fn tag(plugin: &Plugin) -> String {
    format!("{}-distcc", plugin.image_name())
}

/// The server image's dockerfile for `plugin`, whose image carries the
/// checksum `base_checksum` and the toolchain `fingerprint`.
pub fn dockerfile(plugin: &Plugin, base_checksum: &str, fingerprint: &str) -> String {
    let mut links = String::new();
    for (tool, program) in compilers(plugin) {
        let name = super::fingerprint::compiler_name(&plugin.target, tool, fingerprint, false);
        let utf8 = super::fingerprint::compiler_name(&plugin.target, tool, fingerprint, true);
        links.push_str(&format!(
            " && \\\n    p=$(command -v {}) && ln -s \"$p\" /usr/local/bin/{name} && \
             printf '%s\\n' '#!/bin/sh' \"LC_ALL=C.UTF-8 exec $p \\\"\\$@\\\"\" \
             > /usr/local/bin/{utf8} && chmod 755 /usr/local/bin/{utf8} && \
             ln -s ../../bin/distcc /usr/lib/distcc/{name} && \
             ln -s ../../bin/distcc /usr/lib/distcc/{utf8}",
            shell_words::quote(program)
        ));
    }
    format!(
        "# qemu-cross-cc: distcc server for target {target}, toolchain {fingerprint}\n\
         FROM {image}\n\
         LABEL {base}={base_checksum}\n\
         LABEL {fp_label}={fingerprint}\n\
         RUN apt-get update && \\\n    \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends distcc && \\\n    \
         apt-get clean && rm -rf /var/lib/apt/lists/* && \\\n    \
         rm -f /usr/lib/distcc/*{links}\n",
        target = plugin.target,
        image = plugin.image,
        base = crate::image::derive::BASE_CHECKSUM_LABEL,
        fp_label = super::fingerprint::LABEL,
    )
}

/// How a server container is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// The engine's default network, the port published on `listen`.
    Published { listen: Option<String> },
    /// An engine network (or `none`): distccd listens on the target's port
    /// on the container's own address.
    Named(String),
}

/// What `serve` starts for one target.
pub struct Spec<'a> {
    pub target: &'a str,
    pub image: &'a str,
    /// The server image's id (part of the settings).
    pub image_id: &'a str,
    pub instance: &'a str,
    pub port: u16,
    pub fingerprint: &'a str,
    /// The clients `--allow` names.
    pub allow: &'a [String],
    /// More clients to admit: what the engine's port forwarding makes of
    /// clients on this machine (see `forwarding`).
    pub admit: &'a [String],
    pub jobs: Option<u32>,
    pub network: &'a Network,
}

/// The value of the settings label: everything a server was asked for,
/// in one canonical line (no commas: docker lists labels comma-joined).
pub fn settings(s: &Spec) -> String {
    let mut allow: Vec<&str> = s.allow.iter().map(String::as_str).collect();
    allow.sort_unstable();
    allow.dedup();
    let net = match s.network {
        Network::Published { listen: None } => "published".to_string(),
        Network::Published { listen: Some(l) } => format!("published:{l}"),
        Network::Named(n) => format!("network:{n}"),
    };
    format!(
        "port={} allow={} jobs={} net={net} image={}",
        s.port,
        allow.join("+"),
        s.jobs.map_or("-".to_string(), |j| j.to_string()),
        s.image_id
    )
}

/// How two settings labels differ, for the line saying what `serve`
/// replaces: `allow 10.0.0.0/8 -> 10.1.0.0/16` (the port is said apart).
pub fn changes(old: &str, new: &str) -> Vec<String> {
    let fields = |s: &str| -> BTreeMap<String, String> {
        s.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace('+', " ")))
            .collect()
    };
    let (old, new) = (fields(old), fields(new));
    let mut out = Vec::new();
    for (key, word) in [
        ("allow", "allow"),
        ("jobs", "jobs"),
        ("net", ""),
        ("image", ""),
    ] {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        let show = |v: Option<&String>| v.map_or("?".to_string(), Clone::clone);
        match key {
            "image" => out.push("a rebuilt image".to_string()),
            "net" => {
                let net = |v: Option<&String>| match v.map(String::as_str) {
                    Some("published") => "published on every address".to_string(),
                    Some(v) => match v.split_once(':') {
                        Some(("published", l)) => format!("published on {l}"),
                        Some(("network", n)) => format!("on network {n}"),
                        _ => v.to_string(),
                    },
                    None => "?".to_string(),
                };
                out.push(format!("{} -> {}", net(a), net(b)));
            }
            _ => out.push(format!("{word} {} -> {}", show(a), show(b))),
        }
    }
    out
}

/// The container name of a target's server.
pub fn container_name(instance: &str, target: &str) -> String {
    format!("qemu-cross-cc-serve-{instance}-{target}")
}

/// `run` arguments after `run` (the caller adds the ownership labels).
pub fn run_args(s: &Spec) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-d".into(),
        "--rm".into(),
        "--name".into(),
        container_name(s.instance, s.target),
        "--label".into(),
        format!("{SERVE_LABEL}={}", s.instance),
        "--label".into(),
        format!("{}={}", crate::session::TARGET_LABEL, s.target),
        "--label".into(),
        format!("{PORT_LABEL}={}", s.port),
        "--label".into(),
        format!("{}={}", super::fingerprint::LABEL, s.fingerprint),
        "--label".into(),
        format!("{SETTINGS_LABEL}={}", settings(s)),
        "--label".into(),
        format!(
            "{ALLOW_LABEL}={}",
            s.allow
                .iter()
                .chain(s.admit)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "--read-only".into(),
        // Jobs' files only (preprocessed input, object): bounded, so that
        // an allowed client cannot fill the machine's memory.
        "--tmpfs".into(),
        "/tmp:size=1g".into(),
        "--user".into(),
        USER.into(),
        "--cap-drop".into(),
        "ALL".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
        "--env".into(),
        "TMPDIR=/tmp".into(),
    ];
    let port = match s.network {
        Network::Published { listen } => {
            a.push("--publish".into());
            a.push(match listen {
                Some(l) if l.contains(':') => format!("[{l}]:{}:{INNER_PORT}", s.port),
                Some(l) => format!("{l}:{}:{INNER_PORT}", s.port),
                None => format!("{}:{INNER_PORT}", s.port),
            });
            INNER_PORT
        }
        Network::Named(n) => {
            a.push("--network".into());
            a.push(n.clone());
            s.port
        }
    };
    // Beside distccd's port, inside the container only.
    let stats = if port == STATS_PORT {
        STATS_PORT + 1
    } else {
        STATS_PORT
    };
    a.extend([
        "--label".into(),
        format!("{STATS_LABEL}={stats}"),
        s.image.to_string(),
        "distccd".into(),
        "--no-detach".into(),
        "--daemon".into(),
        "--log-stderr".into(),
        "--log-level".into(),
        "warning".into(),
        "--port".into(),
        port.to_string(),
        "--stats".into(),
        "--stats-port".into(),
        stats.to_string(),
    ]);
    // The statistics port answers only allowed clients too: the
    // container's own loopback (reachable from inside it alone) is how
    // `serve --status` reads it.
    a.push("--allow".into());
    a.push("127.0.0.1/32".into());
    for cidr in s.allow.iter().chain(s.admit) {
        a.push("--allow".into());
        a.push(cidr.clone());
    }
    if let Some(j) = s.jobs {
        a.push("--jobs".into());
        a.push(j.to_string());
    }
    a
}

/// distccd's `--stats` page: its `name value` counters.
pub fn parse_stats(page: &str) -> BTreeMap<String, String> {
    page.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| k.starts_with("dcc_"))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Check an `--allow` value: an IPv4 address or network (`10.0.0.0/24`).
/// `0.0.0.0/0` (every client) only with `any`. The error completes
/// "--allow ...".
pub fn check_allow(cidr: &str, any: bool) -> Result<(), String> {
    let (addr, _) = cidr.split_once('/').unwrap_or((cidr, "32"));
    if addr.parse::<Ipv4Addr>().is_err() {
        return Err(format!(
            "{cidr}: give an IPv4 address or network such as 192.168.1.0/24"
        ));
    }
    let Some((_, bits)) = parse_cidr(cidr) else {
        return Err(format!("{cidr}: the prefix length after / must be 0 to 32"));
    };
    if bits == 0 && !any {
        return Err(format!(
            "{cidr} lets every machine that reaches the port run compilers; name your \
             clients' network, or add --allow-any if that is really meant"
        ));
    }
    Ok(())
}

/// An `--allow` value as distccd reads it: an address and a prefix length
/// (32 when there is none).
fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, bits) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let bits = bits.parse::<u8>().ok().filter(|b| *b <= 32)?;
    Some((addr.parse().ok()?, bits))
}

/// Whether any of the `--allow` values admits `ip`.
pub fn admits(allow: &[String], ip: Ipv4Addr) -> bool {
    allow
        .iter()
        .filter_map(|c| parse_cidr(c))
        .any(|(net, bits)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_values() {
        assert!(check_allow("10.0.0.0/24", false).is_ok());
        assert!(check_allow("10.0.0.7", false).is_ok());
        assert!(
            check_allow("0.0.0.0/0", false)
                .unwrap_err()
                .contains("--allow-any")
        );
        assert!(check_allow("0.0.0.0/0", true).is_ok());
        assert!(check_allow("10.0.0.0/33", false).is_err());
        assert!(check_allow("example.com", false).is_err());
        assert!(check_allow("10.0.0.0/x", false).is_err());
    }

    #[test]
    fn allow_lists_admit_addresses() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let lo = Ipv4Addr::LOCALHOST;
        assert!(admits(&list(&["127.0.0.0/8"]), lo));
        assert!(admits(&list(&["127.0.0.1"]), lo));
        assert!(admits(&list(&["10.0.0.0/8", "0.0.0.0/0"]), lo));
        assert!(!admits(&list(&["127.0.0.2"]), lo));
        assert!(!admits(&list(&["10.0.0.0/8"]), lo));
        assert!(admits(
            &list(&["172.16.0.0/12"]),
            Ipv4Addr::new(172, 17, 0, 1)
        ));
        assert!(!admits(&list(&["bad"]), lo));
    }

    #[test]
    fn settings_are_canonical_and_their_changes_named() {
        let net = Network::Published {
            listen: Some("127.0.0.1".into()),
        };
        let spec = |port, allow: &[String], jobs| {
            settings(&Spec {
                target: "s390x-linux-gnu",
                image: "img-distcc",
                image_id: "sha256:1",
                instance: "default",
                port,
                fingerprint: "0123456789ab",
                allow,
                admit: &[],
                jobs,
                network: &net,
            })
        };
        let ab = vec!["10.0.0.0/8".to_string(), "127.0.0.0/8".to_string()];
        let ba = vec!["127.0.0.0/8".to_string(), "10.0.0.0/8".to_string()];
        let a = spec(3632, &ab, None);
        assert_eq!(a, spec(3632, &ba, None), "the order of --allow");
        assert!(!a.contains(','), "{a}");
        assert_eq!(
            a,
            "port=3632 allow=10.0.0.0/8+127.0.0.0/8 jobs=- net=published:127.0.0.1 image=sha256:1"
        );
        let b = spec(3633, &ab[..1], Some(2));
        assert_eq!(
            changes(&a, &b),
            ["allow 10.0.0.0/8 127.0.0.0/8 -> 10.0.0.0/8", "jobs - -> 2"]
        );
        assert!(changes(&a, &spec(3640, &ab, None)).is_empty());
        assert_eq!(
            changes(&a, &a.replace("published:127.0.0.1", "network:none")),
            ["published on 127.0.0.1 -> on network none"]
        );
        assert_eq!(
            changes(&a, &a.replace("image=sha256:1", "image=sha256:2")),
            ["a rebuilt image"]
        );
    }

    #[test]
    fn stats_page() {
        let page = "HTTP/1.0 200 OK\nContent-Type: text/plain\n\nargv /distccd\n<distccstats>\n\
                    dcc_tcp_accept 6\ndcc_compile_ok 5\ndcc_longest_job a.c\n</distccstats>\n";
        let s = parse_stats(page);
        assert_eq!(s["dcc_compile_ok"], "5");
        assert_eq!(s["dcc_tcp_accept"], "6");
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn containers_are_locked_down() {
        let allow = vec!["10.1.0.0/24".to_string()];
        let net = Network::Published {
            listen: Some("10.1.0.2".into()),
        };
        let admit = vec!["172.17.0.1/32".to_string()];
        let a = run_args(&Spec {
            target: "s390x-linux-gnu",
            image: "img-distcc",
            image_id: "sha256:1",
            instance: "default",
            port: 3640,
            fingerprint: "0123456789ab",
            allow: &allow,
            admit: &admit,
            jobs: Some(3),
            network: &net,
        });
        let s = a.join(" ");
        for want in [
            "--read-only",
            "--tmpfs /tmp:size=1g",
            "--user 65534:65534",
            "--cap-drop ALL",
            "--publish 10.1.0.2:3640:3632",
            "img-distcc distccd --no-detach --daemon --log-stderr",
            "--allow 10.1.0.0/24 --allow 172.17.0.1/32",
            "--jobs 3",
            "com.qemu-cross-cc.distcc-allow=10.1.0.0/24 172.17.0.1/32",
        ] {
            assert!(s.contains(want), "{want}: {s}");
        }
    }
}
