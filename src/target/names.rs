//! The grammars of the names a manifest or project file holds: image
//! references, target and tool names, qemu names, variable names, Debian
//! package and architecture names. Written out by hand: they are checked on
//! every compiler call, where compiling regular expressions for them was
//! the largest part of the call's own CPU time.

/// The name of an image reference, without its tag and digest, when the
/// reference is valid by the distribution reference grammar:
/// `[registry[:port]/]path[:tag][@sha256:digest]`. The first component is a
/// registry only when it has a `.` or a port or is `localhost` (as docker
/// reads it); path components are lowercase.
pub fn image_name(reference: &str) -> Option<&str> {
    let (named, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
    }
    // A tag's `:` comes after the last `/` (a registry's port is before it).
    let after_slash = named.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match named[after_slash..].find(':') {
        Some(i) => (
            &named[..after_slash + i],
            Some(&named[after_slash + i + 1..]),
        ),
        None => (named, None),
    };
    if let Some(t) = tag {
        let b = t.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if b.is_empty()
            || b.len() > 128
            || !word(b[0])
            || !b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
        {
            return None;
        }
    }
    let mut parts = name.split('/');
    let first = parts.next()?;
    let path_ok = parts.clone().all(path_component);
    let valid = if name.contains('/') && registry(first) {
        path_ok
    } else {
        path_component(first) && path_ok
    };
    valid.then_some(name)
}

/// A path component: lowercase letters and digits, runs of them joined by
/// one `.`, one or two `_`, or any number of `-`.
fn path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let ok = match &b[sep..i] {
            b"." | b"_" | b"__" => true,
            s => s.iter().all(|&c| c == b'-'),
        };
        if !ok {
            return false;
        }
    }
}

/// A registry: a host with a `.`, `localhost` or a bracketed IPv6 address,
/// with an optional port; or any host with a port.
fn registry(s: &str) -> bool {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((addr, tail)) => {
                let addr_ok =
                    !addr.is_empty() && addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':');
                if !addr_ok {
                    return false;
                }
                return tail.is_empty() || tail.strip_prefix(':').is_some_and(digits);
            }
            None => return false,
        },
        None => match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        },
    };
    if let Some(p) = port {
        return digits(p) && host.split('.').all(host_component);
    }
    host == "localhost" || host.contains('.') && host.split('.').all(host_component)
}

/// A host name component: letters, digits and inner `-`.
fn host_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// Not empty, its first byte passing `first` and the others `rest`.
fn spelled(s: &str, first: impl Fn(u8) -> bool, rest: impl Fn(u8) -> bool) -> bool {
    match s.as_bytes() {
        [f, tail @ ..] => first(*f) && tail.iter().all(|&c| rest(c)),
        [] => false,
    }
}

fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A target triplet's spelling: letters, digits and `_.+-`, not starting
/// with `.`, `+` or `-`.
pub fn target(s: &str) -> bool {
    spelled(s, word, |c| word(c) || matches!(c, b'.' | b'+' | b'-'))
}

/// A tool name's spelling: letters, digits and `_.+-`, not starting with
/// `.` or `-`.
pub fn tool(s: &str) -> bool {
    spelled(
        s,
        |c| word(c) || c == b'+',
        |c| word(c) || matches!(c, b'.' | b'+' | b'-'),
    )
}

/// A qemu-user name: lowercase letters, digits and `_`.
pub fn qemu(s: &str) -> bool {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    spelled(s, ok, ok)
}

/// An environment variable name: letters, digits and `_`, not starting
/// with a digit.
pub fn env_name(s: &str) -> bool {
    spelled(s, |c| c.is_ascii_alphabetic() || c == b'_', word)
}

/// A Debian package name (Debian policy 5.6.1): at least two of lowercase
/// letters, digits and `+.-`, starting with a letter or digit.
pub fn package(s: &str) -> bool {
    let lower = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.len() >= 2 && spelled(s, lower, |c| lower(c) || matches!(c, b'+' | b'.' | b'-'))
}

/// A Debian architecture name: runs of lowercase letters and digits joined
/// by single `-` (`arm64`, `ppc64el`, `musl-linux-arm64`).
pub fn debian_arch(s: &str) -> bool {
    s.split('-').all(|p| {
        spelled(
            p,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_names_without_tag_and_digest() {
        for (reference, name) in [
            ("img", "img"),
            ("debian:12-slim", "debian"),
            ("localhost:5000/a/b:v1.0", "localhost:5000/a/b"),
            ("[::1]:5000/x", "[::1]:5000/x"),
            ("[::1]/x:t", "[::1]/x"),
            ("my-reg:5000/x", "my-reg:5000/x"),
            ("host:5000", "host"),
            ("x.y/z", "x.y/z"),
            (&format!("a/b:t@sha256:{DIGEST}"), "a/b"),
        ] {
            assert_eq!(image_name(reference), Some(name), "{reference}");
        }
        for bad in [
            "[::1]:5000",
            "[zz]:5/x",
            "[::1]x/y",
            "a:b:c",
            "Host/x",
            "-reg.io/x",
            "reg-.io/x",
            "reg.io:/x",
            "x@",
            "x@sha256:",
            "a__-b",
            "a-",
            "a.",
        ] {
            assert_eq!(image_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn simple_names() {
        assert!(target("aarch64-linux-gnu") && target("_x") && !target("+x") && !target(""));
        assert!(tool("g++") && tool("+x") && !tool(".x") && !tool("-x") && !tool("a/b"));
        assert!(qemu("aarch64") && qemu("x86_64") && !qemu("Arm") && !qemu(""));
        assert!(env_name("A_1") && env_name("_") && !env_name("1A") && !env_name("A-B"));
        assert!(package("zlib1g-dev") && package("g++") && !package("z") && !package("+a"));
        assert!(package("libc6.1") && !package("Zlib"));
        assert!(debian_arch("arm64") && debian_arch("musl-linux-arm64"));
        assert!(!debian_arch("arm--64") && !debian_arch("-arm") && !debian_arch("arm-"));
        assert!(!debian_arch("") && !debian_arch("ARM"));
        for s in ["é", "a\u{e9}", "a b", "a\n"] {
            assert!(!target(s) && !tool(s) && !qemu(s) && !env_name(s), "{s:?}");
        }
    }

    /// The grammars as the regular expressions they replace, compared on
    /// strings made of the characters that matter.
    #[test]
    fn same_answers_as_the_regular_expressions() {
        let image = regex::Regex::new(concat!(
            r"^(?P<name>(?:(?:(?:",
            r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
            r"|localhost|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?",
            r"|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?:[0-9]+)/)?",
            r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*",
            r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)",
            r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",
            r"(?:@sha256:[0-9a-f]{64})?$",
        ))
        .unwrap();
        type Check = fn(&str) -> bool;
        let simple: [(&str, Check); 6] = [
            (r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$", target),
            (r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$", tool),
            (r"^[a-z0-9_]+$", qemu),
            (r"^[A-Za-z_][A-Za-z0-9_]*$", env_name),
            (r"^[a-z0-9][a-z0-9+.-]+$", package),
            (r"^[a-z0-9]+(?:-[a-z0-9]+)*$", debian_arch),
        ];
        let simple: Vec<_> = simple
            .iter()
            .map(|(re, f)| (regex::Regex::new(re).unwrap(), *f))
            .collect();
        let alphabet: Vec<char> = "aZ09._-+:/@[]lhs".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces = [
            "localhost",
            "reg.io",
            ":5000",
            "[::1]",
            "/",
            "__",
            "--",
            ":",
            "sha256:",
            "@",
        ];
        let mut valid = 0;
        for _ in 0..200_000 {
            let len = (next() % 12) as usize;
            let mut s = String::new();
            for _ in 0..len {
                let r = next();
                if r % 4 == 0 {
                    s.push_str(pieces[(r / 4 % pieces.len() as u64) as usize]);
                } else {
                    s.push(alphabet[(r / 4 % alphabet.len() as u64) as usize]);
                }
            }
            if next() % 8 == 0 {
                s.push_str("@sha256:");
                s.push_str(&DIGEST[..if next() % 2 == 0 { 64 } else { 63 }]);
            }
            let expected = image
                .captures(&s)
                .and_then(|c| c.name("name"))
                .map(|n| n.as_str());
            assert_eq!(image_name(&s), expected, "{s:?}");
            valid += usize::from(expected.is_some());
            for (re, f) in &simple {
                assert_eq!(f(&s), re.is_match(&s), "{s:?} against {re}");
            }
        }
        // Enough of them valid for the comparison to mean something.
        assert!(valid > 2_000, "{valid}");
    }
}
