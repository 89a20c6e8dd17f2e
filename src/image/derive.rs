//! Derived images: a target's image plus Debian packages for the target
//! (`zlib1g-dev:s390x`), asked for by its manifest's `packages` or by a
//! project's `qemu-cross-cc.toml`.
//!
//! The dockerfile is generated: `FROM` the target's image, a label with that
//! image's own dockerfile checksum (so that a changed base dockerfile makes
//! the derived image stale), a label listing the packages, one `RUN`
//! adding the architecture and installing them with Debian's C library for
//! it (`libc6-dev:ARCH`), and one `RUN` that makes that the only C library
//! in the image (see [`ONE_LIBC`]). Its checksum label is docker.py's checksum of
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

/// The image's shell, given `SYSROOT MULTIARCH DEBIAN_ARCH` as `$1 $2 $3`:
/// every file of the cross compiler's C library (the packages
/// `libc6-ARCH-cross` and `libc6-dev-ARCH-cross`, below SYSROOT) that has a
/// twin in Debian's multiarch C library just installed (`/usr/lib/MULTIARCH`,
/// `/usr/include/MULTIARCH`, `/usr/include`) becomes a link to that twin.
///
/// Why: the two are separate builds of glibc (`2.36-8cross1` against
/// `2.36-9+deb12u*` in Debian 12), and a program loaded with one's dynamic
/// linker and the other's `libc.so.6` aborts ("stack smashing detected").
/// A target package's libraries need the multiarch one, so the compiler now
/// links against that too, and whatever runs a program (the runner, `exec`,
/// qemu-user on the host) finds one dynamic linker and one libc. The cross
/// compiler's own files (libgcc, libstdc++) and the kernel headers stay.
/// A sysroot whose `libc.so.6` is still another file afterwards fails the
/// build (an image with two C libraries would abort at run time).
pub const ONE_LIBC: &str = r#"set -f; s=$1 ma=$2 a=$3 n=0;
for f in $(dpkg-query -L libc6-$a-cross libc6-dev-$a-cross 2>/dev/null); do
case $f in
"$s"/lib/*) set -- "/usr/lib/$ma/${f#"$s"/lib/}" ;;
"$s"/include/*) set -- "/usr/include/$ma/${f#"$s"/include/}" "/usr/include/${f#"$s"/include/}" ;;
*) continue ;;
esac;
if [ -d "$f" ] && [ ! -L "$f" ]; then continue; fi;
for t in "$@"; do
if [ -f "$t" ]; then ln -sfn "$t" "$f" && n=$((n + 1)); break; fi;
done;
done;
if [ -e "$s/lib/libc.so.6" ] && [ "$(readlink -f "$s/lib/libc.so.6")" != "$(readlink -f "/usr/lib/$ma/libc.so.6")" ]; then
echo "qemu-cross-cc: $s/lib/libc.so.6 is not the Debian C library for $a (the packages libc6-$a-cross and libc6-dev-$a-cross were expected); the image would have two" >&2; exit 1;
fi;
echo "qemu-cross-cc: $n files of $s link to the Debian C library for $a""#;

/// The dockerfile of the image derived from `base` (whose dockerfile
/// checksum is `base_checksum`) with `packages` of `arch` for `target`,
/// whose cross compiler's sysroot is `sysroot` and whose multiarch name is
/// `multiarch`.
pub fn dockerfile(
    target: &str,
    base: &str,
    base_checksum: &str,
    arch: &str,
    sysroot: &str,
    multiarch: &str,
    packages: &[String],
) -> String {
    let list: Vec<String> = sorted(packages)
        .into_iter()
        .map(|p| format!("{p}:{arch}"))
        .collect();
    let mut install = vec![format!("libc6-dev:{arch}")];
    install.extend(
        list.iter()
            .filter(|p| !p.starts_with("libc6-dev:"))
            .cloned(),
    );
    // One line: the lines of the script end in separators.
    let script = ONE_LIBC.lines().collect::<Vec<_>>().join(" ");
    format!(
        "# qemu-cross-cc: the image of target {target} with Debian packages for {arch}\n\
         FROM {base}\n\
         LABEL {BASE_CHECKSUM_LABEL}={base_checksum}\n\
         LABEL {PACKAGES_LABEL}={}\n\
         RUN dpkg --add-architecture {arch} && \\\n    \
         apt-get update && \\\n    \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n        \
         {} && \\\n    \
         apt-get clean && rm -rf /var/lib/apt/lists/*\n\
         # One C library in the image: the cross compiler's copy links to the Debian one.\n\
         RUN sh -c {} sh {} {} {}\n",
        list.join(","),
        install.join(" "),
        shell_words::quote(&script),
        shell_words::quote(sysroot),
        shell_words::quote(multiarch),
        shell_words::quote(arch),
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
            "/usr/s390x-linux-gnu",
            "s390x-linux-gnu",
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
        libc6-dev:s390x libbz2-dev:s390x zlib1g-dev:s390x && \\
    apt-get clean && rm -rf /var/lib/apt/lists/*
# One C library in the image: the cross compiler's copy links to the Debian one.
RUN sh -c ";
        let (head, run) = text.split_at(want.len());
        assert_eq!(head, want);
        let words = shell_words::split(run.trim_end()).unwrap();
        assert_eq!(
            words,
            [
                ONE_LIBC.lines().collect::<Vec<_>>().join(" ").as_str(),
                "sh",
                "/usr/s390x-linux-gnu",
                "s390x-linux-gnu",
                "s390x"
            ]
        );
    }

    #[test]
    fn the_script_is_valid_shell() {
        let script = ONE_LIBC.lines().collect::<Vec<_>>().join(" ");
        let o = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    #[test]
    fn checksum_follows_the_base_checksum_and_packages() {
        let lib = Library::default();
        let sum = |base_sum: &str, pkgs: &[&str]| {
            let text = dockerfile(
                "t-linux-gnu",
                "img",
                base_sum,
                "arm64",
                "/usr/t-linux-gnu",
                "t-linux-gnu",
                &strings(pkgs),
            );
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
