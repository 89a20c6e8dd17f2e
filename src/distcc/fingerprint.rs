//! Toolchain identity: the compiler name a distcc server accepts carries a
//! fingerprint of the compile-side toolchain of the target's image, the
//! versions of its gcc, g++, cpp and binutils packages. A server whose
//! image has other versions does not know the name, refuses the job, and
//! distcc compiles locally: objects never come from a different compiler.
//!
//! Read with one `dpkg-query` in the image, once per image id (cached).

use anyhow::{Context, Result, bail};

use crate::engine::Engine;

/// The image label of a server image: its fingerprint.
pub const LABEL: &str = "com.qemu-cross-cc.distcc-fingerprint";

/// Hex digits of the fingerprint in a name.
const LEN: usize = 12;

/// The compiler name servers accept for `tool` of `target`:
/// `aarch64-linux-gnu-gcc-q0123456789ab`, with a `u` for a client whose
/// locale is UTF-8 (the server's compiler then quotes as it does, ‘x’, not
/// 'x': distcc sends no environment).
pub fn compiler_name(target: &str, tool: &str, fingerprint: &str, utf8: bool) -> String {
    format!(
        "{target}-{tool}-q{fingerprint}{}",
        if utf8 { "u" } else { "" }
    )
}

/// Split a fingerprinted name (`<shim name>-q<12 hex>[u]`) into the shim
/// name and the fingerprint. Every shim call asks: no regex here.
pub fn split(name: &str) -> Option<(&str, &str)> {
    let name = name.strip_suffix('u').unwrap_or(name);
    let at = name.len().checked_sub(LEN + 2)?;
    let (shim, tail) = (name.get(..at)?, name.get(at..)?);
    let fp = tail.strip_prefix("-q")?;
    let hex = fp
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (!shim.is_empty() && hex).then_some((shim, fp))
}

/// Whether this process's messages are in a UTF-8 locale (`LC_ALL`, else
/// `LC_CTYPE`, else `LANG`).
pub fn utf8_locale() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        })
}

/// The packages that make up the toolchain of `target`: the compiler
/// drivers, the preprocessor, cc1 and the assembler.
fn is_toolchain_package(target: &str, package: &str) -> bool {
    let Some(rest) = ["gcc-", "g++-", "cpp-", "binutils-"]
        .iter()
        .find_map(|p| package.strip_prefix(p))
    else {
        return false;
    };
    // An optional version (`12-`), the target, an optional `-base`.
    let rest = match rest.split_once('-') {
        Some((v, r)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => r,
        _ => rest,
    };
    let rest = rest.strip_suffix("-base").unwrap_or(rest);
    rest == target
}

/// The fingerprint from `dpkg-query -W -f '${Package}\t${Version}\n'`
/// output. The error completes "cannot fingerprint the toolchain: ...".
pub fn from_packages(target: &str, dpkg: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = dpkg
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.split('\t')
                .next()
                .is_some_and(|p| is_toolchain_package(target, p))
        })
        .collect();
    if lines.is_empty() {
        return Err(format!(
            "the image has no gcc, cpp or binutils package for {target} (Debian's \
             gcc-{target} and binutils-{target})"
        ));
    }
    lines.sort_unstable();
    lines.dedup();
    let text = format!(
        "qemu-cross-cc toolchain v1\n{target}\n{}\n",
        lines.join("\n")
    );
    Ok(crate::image::dockerfile::bytes_checksum(text.as_bytes())[..LEN].to_string())
}

/// The cache file of an image id's fingerprint.
fn cache_file(image_id: &str, target: &str) -> Result<std::path::PathBuf> {
    let key = crate::image::dockerfile::bytes_checksum(format!("{image_id}\n{target}").as_bytes());
    Ok(crate::state::paths::cache_subdir("distcc")?.join(format!("{}.fingerprint", &key[..24])))
}

/// The fingerprint of `target`'s toolchain in the image `image_id`,
/// cached by image id.
pub fn of_image(engine: &Engine, image_id: &str, target: &str) -> Result<String> {
    let file = cache_file(image_id, target)?;
    if let Some(b) = crate::state::safefs::read_state(&file, 64) {
        let s = String::from_utf8_lossy(&b).trim().to_string();
        if s.len() == LEN && s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(s);
        }
    }
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    args.extend(crate::engine::orphans::label_args());
    args.extend(
        [
            "--network",
            "none",
            "--entrypoint",
            "dpkg-query",
            image_id,
            "-W",
            "-f",
            "${Package}\t${Version}\n",
        ]
        .map(String::from),
    );
    let out = engine.output(&args)?;
    if !out.status.success() {
        bail!(
            "cannot fingerprint the toolchain of {target}: dpkg-query in its image failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let fp = from_packages(target, &String::from_utf8_lossy(&out.stdout))
        .map_err(|why| anyhow::anyhow!("cannot fingerprint the toolchain: {why}"))?;
    crate::state::safefs::write_private(&file, fp.as_bytes())
        .with_context(|| format!("cannot cache the toolchain fingerprint of {target}"))?;
    Ok(fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DPKG: &str = "binutils-common\t2.40-2\n\
        binutils-s390x-linux-gnu\t2.40-2\n\
        cpp-12-s390x-linux-gnu\t12.2.0-14cross1\n\
        cpp-s390x-linux-gnu\t4:12.2.0-3\n\
        g++-12-s390x-linux-gnu\t12.2.0-14cross1\n\
        gcc-12-base\t12.2.0-14+deb12u1\n\
        gcc-12-s390x-linux-gnu\t12.2.0-14cross1\n\
        gcc-12-s390x-linux-gnu-base\t12.2.0-14cross1\n\
        gcc-s390x-linux-gnu\t4:12.2.0-3\n\
        libc6\t2.36-9\n\
        make\t4.3-4.1\n";

    #[test]
    fn fingerprint_covers_the_toolchain_packages_only() {
        let fp = from_packages("s390x-linux-gnu", DPKG).unwrap();
        assert_eq!(fp.len(), 12);
        // Other packages and their order do not matter.
        let shuffled: String = DPKG
            .lines()
            .rev()
            .filter(|l| !l.starts_with("make") && !l.starts_with("libc6"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(fp, from_packages("s390x-linux-gnu", &shuffled).unwrap());
        // A new cc1 changes it.
        let newer = DPKG.replace(
            "gcc-12-s390x-linux-gnu\t12.2.0-14cross1",
            "gcc-12-s390x-linux-gnu\t12.2.0-15cross1",
        );
        assert_ne!(fp, from_packages("s390x-linux-gnu", &newer).unwrap());
        // So does the target.
        let e = from_packages("aarch64-linux-gnu", DPKG).unwrap_err();
        assert!(e.contains("aarch64-linux-gnu"), "{e}");
    }

    #[test]
    fn names_carry_the_fingerprint() {
        let n = compiler_name("s390x-linux-gnu", "gcc", "0123456789ab", false);
        assert_eq!(n, "s390x-linux-gnu-gcc-q0123456789ab");
        assert_eq!(split(&n), Some(("s390x-linux-gnu-gcc", "0123456789ab")));
        let u = compiler_name("s390x-linux-gnu", "gcc", "0123456789ab", true);
        assert_eq!(u, "s390x-linux-gnu-gcc-q0123456789abu");
        assert_eq!(split(&u), Some(("s390x-linux-gnu-gcc", "0123456789ab")));
        assert_eq!(split("s390x-linux-gnu-gcc"), None);
        assert_eq!(split("s390x-linux-gnu-gcc-q0123"), None);
        assert_eq!(split("x-gcc-qABCDEF012345"), None);
        assert_eq!(split("-q0123456789ab"), None);
        assert_eq!(split("x-gcc-q0123456789abuu"), None);
        assert_eq!(split("x-gcc-r0123456789ab"), None);
    }
}
