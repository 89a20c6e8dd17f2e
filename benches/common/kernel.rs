//! The Linux kernel workload of the overhead benchmark: an arm64
//! `tinyconfig` build (467 objects, each a compiler call) through the shims against
//! the host's native `aarch64-linux-gnu-` toolchain, in pairs run in turn,
//! each build in a fresh build folder at the same path (so that the paths
//! the build embeds match), with `vmlinux` and every object compared.
//!
//! The source is Debian's `linux-source-6.1` package, fetched with
//! `apt-get download` into `target/bench-cache` on first use and unpacked
//! there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The package whose tarball holds the source, and the tarball's name in it.
const PACKAGE: &str = "linux-source-6.1";
const TARBALL: &str = "./usr/src/linux-source-6.1.tar.xz";

/// Host programs the kernel's build runs itself, with the Debian package
/// that has each.
const HOST_TOOLS: [(&str, &str); 8] = [
    ("make", "make"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("bc", "bc"),
    ("perl", "perl"),
    ("gcc", "gcc"),
    ("xz", "xz-utils"),
    ("dpkg-deb", "dpkg"),
];

/// Fixed build metadata, so that two builds of the same tree can be equal.
const BUILD_ENV: [(&str, &str); 4] = [
    ("KBUILD_BUILD_TIMESTAMP", "Thu Jan  1 00:00:00 UTC 2026"),
    ("KBUILD_BUILD_USER", "qcc-bench"),
    ("KBUILD_BUILD_HOST", "qcc-bench"),
    ("KBUILD_BUILD_VERSION", "1"),
];

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(prog)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// The host tools missing, as a line saying what to install; None when all
/// are there.
pub fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(prog, _)| !on_path(prog))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "the host lacks tools the kernel build needs: apt-get install {}",
            missing.join(" ")
        ))
    }
}

/// The unpacked source tree in `cache`, fetched and unpacked on first use;
/// Err is the one line saying why it cannot be had.
pub fn source(cache: &Path) -> Result<PathBuf, String> {
    let tree = cache.join(PACKAGE);
    if tree.join("Makefile").is_file() {
        return Ok(tree);
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let deb = match find_deb(cache) {
        Some(d) => d,
        None => {
            let st = Command::new("apt-get")
                .args(["download", PACKAGE])
                .current_dir(cache)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run apt-get: {e}"))?;
            match find_deb(cache) {
                Some(d) if st.success() => d,
                _ => {
                    return Err(format!(
                        "`apt-get download {PACKAGE}` failed (run `apt-get update` first)"
                    ));
                }
            }
        }
    };
    // Unpacked beside its final place and renamed, so that an interrupted
    // unpack is never taken for the source.
    let part = cache.join(format!("{PACKAGE}.part"));
    if part.exists() {
        std::fs::remove_dir_all(&part)
            .map_err(|e| format!("cannot remove {}: {e}", part.display()))?;
    }
    std::fs::create_dir_all(&part).map_err(|e| format!("cannot create {}: {e}", part.display()))?;
    let mut fsys = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let inner = fsys.stdout.take().ok_or("dpkg-deb: no output")?;
    let mut outer = Command::new("tar")
        .args(["-xO", TARBALL])
        .stdin(inner)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let xz = outer.stdout.take().ok_or("tar: no output")?;
    let unpacked = Command::new("tar")
        .args(["-xJ", "-C"])
        .arg(&part)
        .stdin(xz)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let ok = [
        fsys.wait().is_ok_and(|s| s.success()),
        outer.wait().is_ok_and(|s| s.success()),
        unpacked.success(),
    ];
    if ok.contains(&false) {
        return Err(format!("cannot unpack {TARBALL} from {}", deb.display()));
    }
    std::fs::rename(part.join(PACKAGE), &tree)
        .map_err(|e| format!("cannot move the unpacked source to {}: {e}", tree.display()))?;
    std::fs::remove_dir_all(&part).map_err(|e| format!("cannot remove {}: {e}", part.display()))?;
    Ok(tree)
}

fn find_deb(cache: &Path) -> Option<PathBuf> {
    let prefix = format!("{PACKAGE}_");
    std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with("_all.deb"))
        })
}

/// Configure (`tinyconfig`) and build `vmlinux` with `make -j2` in a fresh
/// `build` folder, the tools named `<cross>gcc` etc.; its wall time.
pub fn build(src: &Path, build: &Path, cross: &str, env: &[(&str, &str)]) -> Duration {
    let _ = std::fs::remove_dir_all(build);
    std::fs::create_dir_all(build).unwrap();
    let start = Instant::now();
    for goal in [&["tinyconfig"][..], &["-j2", "vmlinux"][..]] {
        let mut c = Command::new("make");
        c.arg("-s")
            .arg("-C")
            .arg(src)
            .arg(format!("O={}", build.display()))
            .arg("ARCH=arm64")
            .arg(format!("CROSS_COMPILE={cross}"))
            .args(goal)
            .envs(BUILD_ENV)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "kernel {goal:?} with {cross} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    start.elapsed()
}

/// How the build in `tree` compares with the one in `reference`: whether
/// `vmlinux` is byte-identical, and the objects (`*.o`) that differ or are
/// missing, out of how many.
pub struct Comparison {
    pub vmlinux_same: bool,
    pub objects: usize,
    pub differing: Vec<PathBuf>,
}

pub fn compare(reference: &Path, tree: &Path) -> Comparison {
    let same = |rel: &Path| match (
        std::fs::read(reference.join(rel)),
        std::fs::read(tree.join(rel)),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let mut objects = Vec::new();
    collect_objects(reference, Path::new(""), &mut objects);
    objects.sort();
    let differing: Vec<PathBuf> = objects.iter().filter(|o| !same(o)).cloned().collect();
    Comparison {
        vmlinux_same: same(Path::new("vmlinux")),
        objects: objects.len(),
        differing,
    }
}

fn collect_objects(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let Ok(ty) = e.file_type() else { continue };
        let r = rel.join(e.file_name());
        if ty.is_dir() {
            collect_objects(root, &r, out);
        } else if ty.is_file() && r.extension().is_some_and(|x| x == "o") {
            out.push(r);
        }
    }
}
