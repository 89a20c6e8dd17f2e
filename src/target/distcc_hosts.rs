//! distcc's host list syntax (`DISTCC_HOSTS`), as far as qemu-cross-cc
//! needs to read it: which servers `dist check` asks, and that the list is
//! one distcc accepts in plain mode.
//!
//! ```text
//! localhost/2  10.0.0.2:3632/8,lzo  build3  @build4/4  --randomize
//! ```

/// One entry of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The entry as written (what `dist check` hands distcc).
    pub entry: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Local compiles (`localhost`).
    Local,
    /// A `distccd` listening on TCP.
    Tcp { host: String, port: u16 },
    /// `[USER]@HOST`: distcc runs `distccd --inetd` through ssh.
    Ssh { host: String },
}

/// distcc's default port.
pub const DEFAULT_PORT: u16 = 3632;

/// Parse a host list. The error completes "`distcc` ...".
pub fn parse(list: &str) -> Result<Vec<Host>, String> {
    let mut out = Vec::new();
    for word in list.split_whitespace() {
        if word.starts_with("--") {
            if word == "--randomize" || word.starts_with("--localslots") {
                continue;
            }
            return Err(format!("has the unknown option '{word}'"));
        }
        out.push(entry(word)?);
    }
    if out.is_empty() {
        return Err("is empty; give distcc hosts such as '10.0.0.2:3632/4'".into());
    }
    Ok(out)
}

fn entry(word: &str) -> Result<Host, String> {
    if word.chars().any(|c| c.is_control()) {
        return Err(format!(
            "has '{}', with a control character",
            word.escape_debug()
        ));
    }
    let (main, options) = word.split_once(',').unwrap_or((word, ""));
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "lzo" | "auth" => {}
            o if o.starts_with("auth=") => {}
            "cpp" => {
                return Err(format!(
                    "has '{word}': pump mode (,cpp) needs the image's headers on the host; \
                     qemu-cross-cc uses plain mode, so remove ,cpp"
                ));
            }
            o => return Err(format!("has '{word}', with the unknown option ',{o}'")),
        }
    }
    // `[USER]@HOST[/LIMIT][:COMMAND]`: the command is distccd's path there.
    let main = match main.find('@') {
        Some(at) => main[at..].find(':').map_or(main, |c| &main[..at + c]),
        None => main,
    };
    let (addr, limit) = main.split_once('/').unwrap_or((main, ""));
    if !limit.is_empty() && limit.parse::<u32>().map_or(true, |n| n == 0) {
        return Err(format!(
            "has '{word}': the job limit after / must be a positive number"
        ));
    }
    let bad_name = |h: &str| {
        h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    };
    let kind = if addr == "localhost" {
        Kind::Local
    } else if let Some((_, host)) = addr.split_once('@') {
        if bad_name(host) {
            return Err(format!("has '{word}', whose host name is not valid"));
        }
        Kind::Ssh { host: host.into() }
    } else {
        let (host, port) = split_port(addr)
            .ok_or_else(|| format!("has '{word}', whose port is not a number from 1 to 65535"))?;
        if bad_name(&host) {
            return Err(format!("has '{word}', whose host name is not valid"));
        }
        Kind::Tcp { host, port }
    };
    Ok(Host {
        entry: word.to_string(),
        kind,
    })
}

/// `HOST[:PORT]`, `[V6]:PORT`.
fn split_port(addr: &str) -> Option<(String, u16)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host.to_string(), port(p)?)),
            None if after.is_empty() => Some((host.to_string(), DEFAULT_PORT)),
            None => None,
        };
    }
    match addr.split_once(':') {
        Some((host, p)) => Some((host.to_string(), port(p)?)),
        None => Some((addr.to_string(), DEFAULT_PORT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_distcc_host_lists() {
        let h = parse(
            "localhost/2 10.0.0.2:3633/8,lzo build3 me@build4/4:/opt/distccd,lzo --randomize [::1]:4000",
        )
            .unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(h[3].entry, "me@build4/4:/opt/distccd,lzo");
        assert_eq!(h[0].kind, Kind::Local);
        assert_eq!(
            h[1].kind,
            Kind::Tcp {
                host: "10.0.0.2".into(),
                port: 3633
            }
        );
        assert_eq!(h[1].entry, "10.0.0.2:3633/8,lzo");
        assert_eq!(
            h[2].kind,
            Kind::Tcp {
                host: "build3".into(),
                port: DEFAULT_PORT
            }
        );
        assert_eq!(
            h[3].kind,
            Kind::Ssh {
                host: "build4".into()
            }
        );
        assert_eq!(
            h[4].kind,
            Kind::Tcp {
                host: "::1".into(),
                port: 4000
            }
        );
    }

    #[test]
    fn refuses_what_distcc_would_not_take() {
        for (list, why) in [
            ("", "is empty"),
            ("h:0", "port"),
            ("h:99999", "port"),
            ("h/0", "job limit"),
            ("h,cpp,lzo", "pump mode"),
            ("h,zstd", "unknown option"),
            ("--frobnicate", "unknown option"),
            ("h;rm", "not valid"),
        ] {
            let e = parse(list).unwrap_err();
            assert!(e.contains(why), "{list}: {e}");
        }
    }
}
