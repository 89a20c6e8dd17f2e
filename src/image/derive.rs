//! Derived images: a target's image plus Debian packages for the target
//! (`zlib1g-dev:s390x`), asked for by its manifest's `packages` or by a
//! project's `qemu-cross-cc.toml`.
//!
//! The dockerfile is generated: `FROM` the target's image, a label with that
//! image's own dockerfile checksum (so that a changed base dockerfile makes
//! the derived image stale), a label listing the packages, and one `RUN`
//! adding the architecture and installing them. Its checksum label is docker.py's checksum of
//! that text, as for every image. Its tag is the base image's name, `-lib-`
//! and 12 hex digits of a hash of the base reference, the architecture and
//! the sorted packages: the same packages share one image, other packages
//! get another, and a rebuilt base replaces the derived image in place.

use crate::image::dockerfile;

/// Between the base image's name and the hash in a derived image's tag.
pub const TAG_INFIX: &str = "-lib-";

/// The label holding the base image's dockerfile checksum.
pub const BASE_CHECKSUM_LABEL: &str = "com.qemu-cross-cc.base-checksum";

/// The label listing the packages installed (`NAME:ARCH,...`).
pub const PACKAGES_LABEL: &str = "com.qemu-cross-cc.packages";

/// The longest image name (as in the distribution reference grammar).
const NAME_MAX: usize = 255;

/// The packages, sorted, without repeats.
fn sorted(packages: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = packages.iter().map(String::as_str).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The tag of the image derived from `base` (whose name without tag or
/// digest is `base_name`) with `packages` of `arch`. The error completes
/// "`packages` ...".
pub fn tag(base_name: &str, base: &str, arch: &str, packages: &[String]) -> Result<String, String> {
    let key = format!("{base}\n{arch}\n{}", sorted(packages).join("\n"));
    let hash = dockerfile::bytes_checksum(key.as_bytes());
    let tag = format!("{base_name}{TAG_INFIX}{}", &hash[..12]);
    if tag.len() > NAME_MAX {
        return Err(format!(
            "cannot be installed: the derived image's name {tag} would be longer than \
             {NAME_MAX} characters; give the target a shorter image name"
        ));
    }
    Ok(tag)
}

/// The dockerfile of the image derived from `base` (whose dockerfile
/// checksum is `base_checksum`) with `packages` of `arch` for `target`.
pub fn dockerfile(
    target: &str,
    base: &str,
    base_checksum: &str,
    arch: &str,
    packages: &[String],
) -> String {
    let list: Vec<String> = sorted(packages)
        .into_iter()
        .map(|p| format!("{p}:{arch}"))
        .collect();
    format!(
        "# qemu-cross-cc: the image of target {target} with Debian packages for {arch}\n\
         FROM {base}\n\
         LABEL {BASE_CHECKSUM_LABEL}={base_checksum}\n\
         LABEL {PACKAGES_LABEL}={}\n\
         RUN dpkg --add-architecture {arch} && \\\n    \
         apt-get update && \\\n    \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n        \
         {} && \\\n    \
         apt-get clean && rm -rf /var/lib/apt/lists/*\n",
        list.join(","),
        list.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::dockerfile::Library;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generated_dockerfile_text() {
        let text = dockerfile(
            "s390x-linux-gnu",
            "qemu-cross-cc/s390x-linux-gnu",
            "abc123",
            "s390x",
            &strings(&["zlib1g-dev", "libbz2-dev", "zlib1g-dev"]),
        );
        let want = "\
# qemu-cross-cc: the image of target s390x-linux-gnu with Debian packages for s390x
FROM qemu-cross-cc/s390x-linux-gnu
LABEL com.qemu-cross-cc.base-checksum=abc123
LABEL com.qemu-cross-cc.packages=libbz2-dev:s390x,zlib1g-dev:s390x
RUN dpkg --add-architecture s390x && \\
    apt-get update && \\
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        libbz2-dev:s390x zlib1g-dev:s390x && \\
    apt-get clean && rm -rf /var/lib/apt/lists/*
";
        assert_eq!(text, want);
    }

    #[test]
    fn checksum_follows_the_base_checksum_and_packages() {
        let lib = Library::default();
        let sum = |base_sum: &str, pkgs: &[&str]| {
            let text = dockerfile("t-linux-gnu", "img", base_sum, "arm64", &strings(pkgs));
            dockerfile::checksum(&text, &lib).unwrap()
        };
        let one = sum("aaa", &["zlib1g-dev"]);
        assert_eq!(one.len(), 40);
        assert_eq!(one, sum("aaa", &["zlib1g-dev", "zlib1g-dev"]));
        assert_ne!(one, sum("bbb", &["zlib1g-dev"]));
        assert_ne!(one, sum("aaa", &["zlib1g-dev", "libbz2-dev"]));
    }

    #[test]
    fn tags_are_deterministic_and_keep_the_base_name() {
        let t = |base: &str, arch: &str, pkgs: &[&str]| {
            tag("qcc-test-r1-s390x-linux-gnu", base, arch, &strings(pkgs)).unwrap()
        };
        let a = t(
            "qcc-test-r1-s390x-linux-gnu",
            "s390x",
            &["zlib1g-dev", "libbz2-dev"],
        );
        assert!(a.starts_with("qcc-test-r1-s390x-linux-gnu-lib-"), "{a}");
        assert_eq!(a.len(), "qcc-test-r1-s390x-linux-gnu-lib-".len() + 12);
        // Order and repeats do not matter; packages, arch and base do.
        assert_eq!(
            a,
            t(
                "qcc-test-r1-s390x-linux-gnu",
                "s390x",
                &["libbz2-dev", "zlib1g-dev", "libbz2-dev"]
            )
        );
        assert_ne!(
            a,
            t("qcc-test-r1-s390x-linux-gnu", "s390x", &["zlib1g-dev"])
        );
        assert_ne!(
            a,
            t(
                "qcc-test-r1-s390x-linux-gnu",
                "arm64",
                &["zlib1g-dev", "libbz2-dev"]
            )
        );
        assert_ne!(
            a,
            t(
                "qcc-test-r1-s390x-linux-gnu:v2",
                "s390x",
                &["zlib1g-dev", "libbz2-dev"]
            )
        );
        let long = "a".repeat(250);
        let e = tag(&long, &long, "s390x", &strings(&["zlib1g-dev"])).unwrap_err();
        assert!(e.contains("shorter image name"), "{e}");
    }
}
