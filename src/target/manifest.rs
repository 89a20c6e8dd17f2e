//! A target's manifest: the JSON a plugin is written in (`plugins/<target>.json`),
//! and the checks every field passes when it loads (image references, target
//! and tool names, which become file names of links; package names, which go
//! into a generated dockerfile).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::target::names;

/// A target's manifest, resolved: an `extends` merged in, every field
/// checked.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// The GNU target triplet, also the prefix of the shim names.
    pub target: String,
    /// The target this one was made from (see `Written::extends`).
    pub extends: Option<String>,
    /// One line for `targets`.
    pub description: String,
    /// The image tag the tools run in (before packages: see `Plugin::image`).
    pub image: String,
    /// The dockerfile (file name) the image is built from.
    pub dockerfile: String,
    /// The qemu-user name that runs the target's binaries (`qemu-<name>`).
    pub qemu: String,
    /// What runs the target's programs: qemu-user (Linux targets) or wine
    /// (Windows targets).
    pub runs_with: RunsWith,
    /// The board for `runs_with: semihosting`.
    pub board: Option<Board>,
    /// What the toolchain files add to compiles and links.
    pub flags: Flags,
    /// Where the target's libraries and headers live inside the image.
    pub sysroot: String,
    /// The target's Debian architecture (`arm64`, `armhf`, `s390x`...), for
    /// `packages`.
    pub debian_arch: Option<String>,
    /// Debian packages for the target (`zlib1g-dev`), installed as
    /// `NAME:ARCH` into an image derived from `image` (see `image::derive`).
    pub packages: Vec<String>,
    /// Tool name (the shim is `<target>-<name>`) to executable in the image.
    /// `cc` is required: it is what `qemu-cross-cc` alone runs.
    pub tools: BTreeMap<String, String>,
    /// Environment set for every tool (the caller's allowed variables win).
    pub env: BTreeMap<String, String>,
    /// Extra host folders mounted read-only for every tool.
    pub paths: Vec<String>,
    /// The version of the image's C library (`2.36`), when known.
    pub glibc: Option<String>,
    /// Older C libraries to build against (`2.31`): the same toolchain in
    /// an image of an older Debian, which a project picks with `glibc`.
    pub glibc_floors: BTreeMap<String, Floor>,
}

/// What runs a target's programs (the runner, `exec`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunsWith {
    /// qemu-user, the host's static one or its binfmt_misc handler.
    #[default]
    Qemu,
    /// wine in the target's image, with a wine prefix of the caller's cache.
    Wine,
    /// Bare-metal programs with semihosting: the host's qemu-user, or the
    /// manifest's `board` under qemu-system in the image.
    Semihosting,
}

/// A board of qemu-system that runs a bare-metal target's programs linked
/// for it, with semihosting (`<target>-run --board`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// The qemu-system program in the image (`qemu-system-arm`).
    pub system: String,
    /// Its `-M` machine (`mps2-an385`, `virt`).
    pub machine: String,
    /// Its `-cpu`, when the machine's default is not the one.
    #[serde(default)]
    pub cpu: Option<String>,
    /// How the program is loaded: `kernel` (`-kernel PROG`, with `-bios
    /// none` where the board would start firmware first) or `loader`
    /// (`-device loader,file=PROG`, the ELF's own entry).
    pub load: BoardLoad,
    /// More qemu-system arguments (`-bios none`: no firmware before the
    /// program).
    #[serde(default)]
    pub args: Vec<String>,
    /// Whether the runner uses the board without `--board` (a target whose
    /// programs qemu-user cannot run).
    #[serde(default)]
    pub default: bool,
}

/// How a board loads the program.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BoardLoad {
    Kernel,
    Loader,
}

/// Flags the toolchain files add for programs that run under the runner
/// (a bare-metal target's C library and semihosting): `compile` for
/// compiles and links (as CMake's compiler flags go to both), `link` for
/// links only.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Flags {
    #[serde(default)]
    pub compile: Vec<String>,
    #[serde(default)]
    pub link: Vec<String>,
}

/// An image for a glibc floor: built from `dockerfile`, tagged `image`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    pub image: String,
    pub dockerfile: String,
}

/// The manifest file format (`plugins/<target>.json`) as written. With
/// `extends`, only `target` is required: every other field is the base's,
/// and those given replace it (`tools` and `env` entries are added to the
/// base's, `paths` and `packages` appended).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Written {
    pub(super) target: String,
    pub(super) extends: Option<String>,
    pub(super) description: Option<String>,
    pub(super) image: Option<String>,
    pub(super) dockerfile: Option<String>,
    pub(super) qemu: Option<String>,
    pub(super) runs_with: Option<RunsWith>,
    pub(super) board: Option<Board>,
    pub(super) flags: Option<Flags>,
    pub(super) sysroot: Option<String>,
    pub(super) debian_arch: Option<String>,
    #[serde(default)]
    pub(super) packages: Vec<String>,
    #[serde(default)]
    pub(super) tools: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) paths: Vec<String>,
    pub(super) glibc: Option<String>,
    #[serde(default)]
    pub(super) glibc_floors: BTreeMap<String, Floor>,
}

/// The largest manifest read; a bigger one is refused, never truncated.
pub(super) const MANIFEST_CAP: u64 = 1 << 20;

/// The longest target triplet and tool name: a link name must stay well
/// within a file name's 255 bytes.
const NAME_MAX: usize = 100;

/// The tool name of the runner every target has (`<target>-run`, see
/// `runner`); no manifest may define a tool of that name.
pub const RUNNER: &str = "run";

/// The tools that are gcc drivers (they answer `-print-prog-name=`).
pub const COMPILERS: &[&str] = &["cc", "gcc", "c++", "g++"];

/// The longest image name (without tag and digest), as in the distribution
/// reference grammar.
const IMAGE_NAME_MAX: usize = 255;

/// A refused manifest field: its name and why (completing "field `X` ...").
pub(super) struct Invalid(pub(super) &'static str, pub(super) String);

/// A value for a message: escaped (one line, control characters visible)
/// and cut short.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let head: String = value.chars().take(MAX).collect();
    let mut out = head.escape_debug().to_string();
    if value.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

impl Manifest {
    /// Every field checked for what the tool will do with it: image names go
    /// to the engine, targets and tool names become link names, paths
    /// become mounts.
    pub(super) fn validate(&self) -> std::result::Result<(), Invalid> {
        check_target(&self.target).map_err(|w| Invalid("target", w))?;
        if let Some(base) = &self.extends {
            check_target(base).map_err(|w| Invalid("extends", w))?;
        }
        check_image(&self.image).map_err(|w| Invalid("image", w))?;
        check_dockerfile(&self.dockerfile).map_err(|w| Invalid("dockerfile", w))?;
        check_qemu(&self.qemu).map_err(|w| Invalid("qemu", w))?;
        check_tools(&self.tools).map_err(|w| Invalid("tools", w))?;
        check_env(&self.env).map_err(|w| Invalid("env", w))?;
        self.paths
            .iter()
            .try_for_each(|p| check_path(p))
            .map_err(|w| Invalid("paths", w))?;
        if let Some(arch) = &self.debian_arch {
            check_debian_arch(arch).map_err(|w| Invalid("debian_arch", w))?;
        }
        check_packages(&self.packages).map_err(|w| Invalid("packages", w))?;
        if let Some(b) = &self.board {
            for (what, v) in [
                ("system", Some(&b.system)),
                ("machine", Some(&b.machine)),
                ("cpu", b.cpu.as_ref()),
            ] {
                if let Some(v) = v {
                    let fine = !v.is_empty()
                        && !v.starts_with('-')
                        && v.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
                    if !fine {
                        return Err(Invalid(
                            "board",
                            format!(
                                "has {what} '{}'; it must be a name of letters, digits and `-_.`, \
                                 not starting with `-` (such as qemu-system-arm, mps2-an385)",
                                shown(v)
                            ),
                        ));
                    }
                }
            }
        }
        if self.board.is_some() && self.runs_with != RunsWith::Semihosting {
            return Err(Invalid(
                "board",
                "is for targets whose programs run with semihosting; set `runs_with` to \
                 \"semihosting\" or remove `board`"
                    .into(),
            ));
        }
        let board_args = self.board.iter().flat_map(|b| &b.args);
        for f in self
            .flags
            .compile
            .iter()
            .chain(&self.flags.link)
            .chain(board_args)
        {
            if f.is_empty() || f.contains('\0') || f.contains(char::is_whitespace) {
                return Err(Invalid(
                    "flags",
                    "(or `board` `args`) has an empty word, or one with a space or NUL; give \
                     each word as its own entry"
                        .into(),
                ));
            }
        }
        if let Some(v) = &self.glibc {
            check_glibc(v).map_err(|w| Invalid("glibc", w))?;
        }
        for (v, floor) in &self.glibc_floors {
            let at = |why: String| Invalid("glibc_floors", format!("entry {}: {why}", shown(v)));
            check_glibc(v).map_err(at)?;
            check_image(&floor.image).map_err(|w| at(format!("`image` {w}")))?;
            check_dockerfile(&floor.dockerfile).map_err(|w| at(format!("`dockerfile` {w}")))?;
        }
        Ok(())
    }

    /// The image the tools run in: `image`, or with packages the image
    /// derived from it (see `image::derive`).
    pub(super) fn run_image(&self) -> std::result::Result<String, String> {
        if self.packages.is_empty() {
            return Ok(self.image.clone());
        }
        let arch = self.debian_arch.as_deref().ok_or_else(|| {
            format!(
                "needs the target's Debian architecture to install packages for {}: set \
                 `debian_arch` in its manifest (such as arm64, armhf or s390x)",
                self.target
            )
        })?;
        if !DEBIAN_MAIN_ARCHS.contains(&arch) {
            let why = if DEBIAN_PORTS_ARCHS.contains(&arch) {
                format!(" ({arch} is a debian-ports architecture)")
            } else if arch == "mips" {
                " (big-endian mips left Debian with bookworm)".to_string()
            } else {
                String::new()
            };
            return Err(format!(
                "cannot be installed for target {}: its Debian architecture {arch} is not in \
                 Debian bookworm's main archive, which has packages only for {}{why}; remove \
                 the packages for this target",
                self.target,
                DEBIAN_MAIN_ARCHS.join(", ")
            ));
        }
        let name = names::image_name(&self.image).unwrap_or(&self.image);
        crate::image::derive::tag(name, &self.image, arch, &self.packages)
    }
}

/// The Debian architectures whose packages Debian bookworm's main archive
/// has (the others, riscv64 among them, are in debian-ports).
pub const DEBIAN_MAIN_ARCHS: &[&str] = &[
    "amd64", "arm64", "armel", "armhf", "i386", "mips64el", "mipsel", "ppc64el", "s390x",
];

/// The debian-ports architectures (not reachable from the images).
const DEBIAN_PORTS_ARCHS: &[&str] = &[
    "alpha",
    "hppa",
    "hurd-amd64",
    "hurd-i386",
    "ia64",
    "loong64",
    "m68k",
    "powerpc",
    "ppc64",
    "riscv64",
    "sh4",
    "sparc64",
    "x32",
];

/// Debian package names, without an architecture (it is added).
pub(crate) fn check_packages(packages: &[String]) -> std::result::Result<(), String> {
    for p in packages {
        if !names::package(p) || p.len() > NAME_MAX {
            return Err(format!(
                "has '{}'; a Debian package name is lowercase letters, digits and `+.-`, at \
                 least two characters, starting with a letter or digit, without `:ARCH` (it is \
                 added), such as zlib1g-dev",
                shown(p)
            ));
        }
    }
    Ok(())
}

pub(super) fn check_debian_arch(arch: &str) -> std::result::Result<(), String> {
    if arch.len() <= NAME_MAX && names::debian_arch(arch) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a Debian architecture name such as arm64, armhf or ppc64el",
        shown(arch)
    ))
}

pub(super) fn check_target(target: &str) -> std::result::Result<(), String> {
    if target.len() <= NAME_MAX && target.contains('-') && names::target(target) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a target triplet such as aarch64-linux-gnu: letters, digits \
         and `_.+-`, at least one `-`, not starting with `.` or `-`, at most {NAME_MAX} characters",
        shown(target)
    ))
}

/// A glibc version: `MAJOR.MINOR`, such as `2.31`.
pub(super) fn check_glibc(version: &str) -> std::result::Result<(), String> {
    let ok = version.split_once('.').is_some_and(|(a, b)| {
        [a, b]
            .iter()
            .all(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit()))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "is '{}', not a glibc version such as 2.31",
            shown(version)
        ))
    }
}

pub(super) fn check_image(image: &str) -> std::result::Result<(), String> {
    if names::image_name(image).is_some_and(|n| n.len() <= IMAGE_NAME_MAX) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be an image reference [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] \
         with a lowercase NAME, such as qemu-cross-cc/aarch64-linux-gnu",
        shown(image)
    ))
}

pub(super) fn check_dockerfile(file: &str) -> std::result::Result<(), String> {
    let plain =
        !file.starts_with('.') && !file.contains('/') && !file.chars().any(char::is_control);
    if plain && file.len() > ".docker".len() && file.ends_with(".docker") {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a plain file name ending in .docker (no `/`, not starting with `.`)",
        shown(file)
    ))
}

pub(super) fn check_qemu(qemu: &str) -> std::result::Result<(), String> {
    if names::qemu(qemu) {
        return Ok(());
    }
    Err(format!(
        "is '{}'; it must be a qemu-user name of lowercase letters, digits and `_`, such as aarch64",
        shown(qemu)
    ))
}

pub(super) fn check_tools(tools: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    if !tools.contains_key("cc") {
        return Err("must map \"cc\" to the C compiler in the image".into());
    }
    if tools.contains_key(RUNNER) {
        return Err(format!(
            "may not define the tool \"{RUNNER}\": every target's <target>-{RUNNER} is the \
             runner of its programs (qemu-user in its image); rename that tool"
        ));
    }
    for (name, program) in tools {
        check_tool_name(name)?;
        check_program(name, program)?;
    }
    Ok(())
}

pub(super) fn check_tool_name(name: &str) -> std::result::Result<(), String> {
    if name.len() <= NAME_MAX && names::tool(name) {
        return Ok(());
    }
    Err(format!(
        "has the tool name '{}'; a tool name is letters, digits and `_.+-`, not starting with \
         `.` or `-`, at most {NAME_MAX} characters (such as gcc, g++, pkg-config)",
        shown(name)
    ))
}

pub(super) fn check_program(name: &str, program: &str) -> std::result::Result<(), String> {
    if !program.is_empty() && !program.starts_with('-') && !program.chars().any(char::is_control) {
        return Ok(());
    }
    Err(format!(
        "maps '{}' to '{}'; it must name an executable in the image (not empty, no control \
         characters, not starting with `-`)",
        shown(name),
        shown(program)
    ))
}

pub(super) fn check_env(env: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    for (name, value) in env {
        if !names::env_name(name) {
            return Err(format!(
                "has the variable name '{}'; a name is letters, digits and `_`, not starting \
                 with a digit",
                shown(name)
            ));
        }
        if value.contains('\0') {
            return Err(format!(
                "sets {name} to a value with a NUL character, which no environment can hold"
            ));
        }
    }
    Ok(())
}

pub(super) fn check_path(path: &str) -> std::result::Result<(), String> {
    let parent = Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir);
    if path.starts_with('/') && !parent && !path.contains([':', '\0']) {
        return Ok(());
    }
    Err(format!(
        "entry '{}' must be an absolute path without `..` components, `:` or NUL characters",
        shown(path)
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::target::plugin::Plugin;
    use crate::target::registry::Registry;
    use anyhow::Result;

    pub(crate) const GOOD: &str = r#"{"target":"t-linux-gnu","image":"img","dockerfile":"x.docker",
        "qemu":"t","sysroot":"/usr/t","tools":{"cc":"t-gcc","ar":"t-ar"}}"#;

    #[test]
    fn good_manifest() {
        let p = Plugin::parse(GOOD, "x", Some("t-linux-gnu")).unwrap();
        assert_eq!(p.image, "img");
        let names: Vec<String> = p.shim_names().collect();
        assert_eq!(
            names,
            vec!["t-linux-gnu-ar", "t-linux-gnu-cc", "t-linux-gnu-run"]
        );
    }

    #[test]
    fn run_is_the_runner_of_every_target() {
        refuses(
            "tools",
            &[serde_json::json!({"cc": "t-gcc", "run": "t-run"})],
        );
        let reg = Registry::load().unwrap();
        for p in reg.iter() {
            let (q, tool) = reg.by_shim_name(&format!("{}-run", p.target)).unwrap();
            assert_eq!(
                (q.target.as_str(), tool.as_str()),
                (p.target.as_str(), RUNNER)
            );
        }
    }

    #[test]
    fn unknown_field_is_named() {
        let bad = GOOD.replace("\"qemu\"", "\"qemuu\"");
        let e = Plugin::parse(&bad, "/p/t.json", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/p/t.json") && e.contains("qemuu"), "{e}");
    }

    #[test]
    fn missing_cc_is_named() {
        let bad = GOOD.replace("\"cc\"", "\"c\"");
        let e = Plugin::parse(&bad, "f", None).unwrap_err().to_string();
        assert!(e.contains("`tools`"), "{e}");
    }

    #[test]
    fn file_name_must_match_target() {
        let e = Plugin::parse(GOOD, "f", Some("other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`target`"), "{e}");
    }

    /// GOOD with `field` set to `value`, parsed.
    pub(crate) fn with(field: &str, value: serde_json::Value) -> Result<Plugin> {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v[field] = value;
        Plugin::parse(&v.to_string(), "/p/m.json", None)
    }

    /// Every value accepted for `field`.
    pub(crate) fn accepts(field: &str, values: &[serde_json::Value]) {
        for value in values {
            if let Err(e) = with(field, value.clone()) {
                panic!("{field} = {value}: {e}");
            }
        }
    }

    /// Every value refused for `field`, with one line naming file and field.
    pub(crate) fn refuses(field: &str, values: &[serde_json::Value]) {
        for value in values {
            let e = match with(field, value.clone()) {
                Ok(_) => panic!("{field} = {value} was accepted"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                e.starts_with("bad plugin manifest /p/m.json: field `")
                    && e.contains(&format!("`{field}`")),
                "{field} = {value}: {e}"
            );
            assert!(!e.contains('\n') && e.len() < 400, "{e}");
        }
    }

    pub(crate) fn strs(values: &[&str]) -> Vec<serde_json::Value> {
        values.iter().map(|v| serde_json::json!(v)).collect()
    }

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_must_be_a_reference() {
        accepts(
            "image",
            &strs(&[
                "img",
                "qemu-cross-cc/aarch64-linux-gnu",
                "debian:12-slim",
                "docker.io/library/debian:12-slim",
                "localhost/x",
                "localhost:5000/a/b:v1.0",
                "127.0.0.1:5000/x",
                "my-reg:5000/x",
                "[::1]:5000/x",
                "Registry.Example.com/a__b/c-d--e/f.g:Tag_1",
                &format!("x@sha256:{DIGEST}"),
                &format!("a/b:t@sha256:{DIGEST}"),
                &format!("x:{}", "t".repeat(128)),
            ]),
        );
        refuses(
            "image",
            &strs(&[
                "",
                "rel sp --privileged",
                "--privileged",
                "Upper",
                "MyOrg/x",
                "x:",
                ":t",
                "x:-t",
                "/x",
                "x/",
                "x//y",
                "-x",
                "x_-y",
                "x..y",
                "x___y",
                "a\nb",
                "x@sha256:abc",
                &format!("x@sha512:{DIGEST}"),
                &format!("x:{}", "t".repeat(129)),
                &"a".repeat(256),
                &"a".repeat(1000),
            ]),
        );
    }

    #[test]
    fn target_must_be_a_triplet() {
        let json = |t: &str| GOOD.replace("t-linux-gnu", t);
        for good in [
            "aarch64-linux-gnu",
            "x86_64-w64-mingw32",
            "arm-none-eabi",
            "a-b.c+d_e",
        ] {
            Plugin::parse(&json(good), "/p/m.json", Some(good)).unwrap();
        }
        for bad in [
            "..",
            ".",
            "",
            "-x",
            ".x-y",
            "a/b-c",
            "a b-c",
            "nodash",
            "a-\\nb",
            &format!("a-{}", "b".repeat(99)),
        ] {
            let e = Plugin::parse(&json(bad), "/p/m.json", None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("field `target`"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn tool_names_become_link_names() {
        let tools = |name: &str| serde_json::json!({"cc": "t-gcc", name: "t-tool"});
        let good = [
            "g++",
            "c++",
            "c++filt",
            "gcc-ar",
            "pkg-config",
            "addr2line",
            "_x",
            "+x",
            "x.y",
        ];
        accepts("tools", &good.map(tools));
        let long = "x".repeat(101);
        let bad = [
            "a/b", "/", ".", "..", ".x", "-x", "", "a b", "a\tb", "é", &long,
        ];
        refuses("tools", &bad.map(tools));
    }

    #[test]
    fn tool_programs_are_executables() {
        let tools = |program: &str| serde_json::json!({"cc": program});
        let good = ["t-gcc", "/usr/bin/t-gcc", "gcc-12", "with space"];
        accepts("tools", &good.map(tools));
        let bad = ["", "-rf", "--help", "a\nb", "a\0b", "\t", "a\u{85}b"];
        refuses("tools", &bad.map(tools));
        refuses("tools", &[serde_json::json!({"gcc": "t-gcc"})]);
    }

    #[test]
    fn qemu_is_a_qemu_user_name() {
        accepts(
            "qemu",
            &strs(&["aarch64", "ppc64le", "i386", "x86_64", "sparc64"]),
        );
        refuses(
            "qemu",
            &strs(&["", "Arm", "qemu-arm", "../x", "a b", "a/b", "arm\n"]),
        );
    }

    #[test]
    fn dockerfile_is_a_plain_file_name() {
        accepts(
            "dockerfile",
            &strs(&["x.docker", "cross-aarch64-linux-gnu.docker", "a b.docker"]),
        );
        refuses(
            "dockerfile",
            &strs(&[
                "",
                "x",
                ".docker",
                ".x.docker",
                "../x.docker",
                "a/x.docker",
                "/x.docker",
                "x.dockerfile",
                "a\nb.docker",
            ]),
        );
    }

    #[test]
    fn env_names_and_values() {
        accepts(
            "env",
            &[serde_json::json!({"PKG_CONFIG_LIBDIR": "/x", "_A1": "", "b": "x y\nz"})],
        );
        let bad = ["1A", "A-B", "", "A=B", "A B", "Ä"];
        refuses("env", &bad.map(|k| serde_json::json!({ k: "v" })));
        refuses("env", &[serde_json::json!({"A": "a\u{0}b"})]);
    }

    #[test]
    fn paths_are_absolute_mountable_folders() {
        accepts(
            "paths",
            &[serde_json::json!([
                "/opt/x", "/opt/x y", "/opt/./x", "/a..b"
            ])],
        );
        for bad in [
            "rel", "", "..", "/a/../b", "/a/..", "/a:ro", "/a\u{0}", "./a",
        ] {
            refuses("paths", &[serde_json::json!(["/ok", bad])]);
        }
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let e = with("qemu", serde_json::json!("X".repeat(1 << 16)))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400 && e.contains("XXX..."), "{e}");
    }
}
