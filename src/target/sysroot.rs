//! A copy of a target's headers and libraries on the host, for build
//! systems that look for libraries themselves (CMake's `find_library` and
//! `find_package`, a host-side `pkg-config`): exported from the image into
//! the cache folder, keyed by the image and its checksum (a changed image
//! gets a new copy, the old one is removed; a project's derived image with
//! target packages has its own), made once under a lock.
//!
//! The folders keep their image paths below the export, so an image path
//! `P` is `EXPORT/P` on the host: the target's sysroot (`/usr/<triplet>`),
//! the cross gcc's own folder (`/usr/lib/gcc-cross/<triplet>`: libgcc, crt
//! files, its headers), and the multiarch folders that target packages fill
//! (`/usr/include`, `/usr/lib/<triplet>`).
//!
//! The export is also a root for qemu-user (`QEMU_LD_PREFIX`), so that a
//! target program that a host-side script starts through binfmt_misc finds
//! its dynamic linker and libraries: the linker at the path programs name
//! (`/lib/ld64.so.1`, `/lib64/...`) and the C library's shared objects in
//! the multiarch folder that the linker searches are links into the
//! sysroot where the image has no file there (see [`complete_root`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use nix::fcntl::Flock;

use crate::engine::Engine;
use crate::state::safefs;
use crate::target::plugin::Plugin;

/// Written last: an export without it is incomplete. The number is the
/// layout's: an export of an older layout is made again.
const COMPLETE: &str = ".qemu-cross-cc-complete-2";

/// Debian's multiarch name of a target (the folder of its packages'
/// libraries, `/usr/lib/<multiarch>`): from its Debian architecture when
/// the manifest has one (a user target `s390x-zlib-linux-gnu` that extends
/// s390x-linux-gnu is still `s390x-linux-gnu`), else from its triplet
/// (`i386-linux-gnu` for i686).
pub fn multiarch(plugin: &Plugin) -> String {
    let known = match plugin.debian_arch.as_deref() {
        Some("amd64") => Some("x86_64-linux-gnu"),
        Some("arm64") => Some("aarch64-linux-gnu"),
        Some("armel") => Some("arm-linux-gnueabi"),
        Some("armhf") => Some("arm-linux-gnueabihf"),
        Some("i386") => Some("i386-linux-gnu"),
        Some("mips64el") => Some("mips64el-linux-gnuabi64"),
        Some("mipsel") => Some("mipsel-linux-gnu"),
        Some("ppc64el") => Some("powerpc64le-linux-gnu"),
        Some("s390x") => Some("s390x-linux-gnu"),
        Some("riscv64") => Some("riscv64-linux-gnu"),
        Some("alpha") => Some("alpha-linux-gnu"),
        Some("hppa") => Some("hppa-linux-gnu"),
        Some("m68k") => Some("m68k-linux-gnu"),
        Some("mips") => Some("mips-linux-gnu"),
        Some("powerpc") => Some("powerpc-linux-gnu"),
        Some("ppc64") => Some("powerpc64-linux-gnu"),
        Some("sh4") => Some("sh4-linux-gnu"),
        Some("sparc64") => Some("sparc64-linux-gnu"),
        _ => None,
    };
    match (known, plugin.target.strip_prefix("i686-")) {
        (Some(m), _) => m.to_string(),
        (None, Some(rest)) if rest.starts_with("linux-") => format!("i386-{rest}"),
        _ => plugin.target.clone(),
    }
}

/// The image folders an export holds.
pub fn exported_paths(plugin: &Plugin) -> Vec<String> {
    vec![
        plugin.sysroot.clone(),
        format!("/usr/lib/gcc-cross/{}", plugin.target),
        // A compiler of the image's own architecture, or mingw-w64's.
        format!("/usr/lib/gcc/{}", plugin.target),
        "/usr/include".to_string(),
        format!("/usr/lib/{}", multiarch(plugin)),
    ]
}

/// The folder name of an image's exports: its tag, made a file name.
fn stem(image: &str) -> String {
    image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where the export of `image` with `checksum` is (or would be).
pub fn location(image: &str, checksum: &str) -> Result<PathBuf> {
    let short: String = checksum.chars().take(12).collect();
    Ok(crate::state::paths::cache_subdir("sysroots")?.join(format!("{}-{short}", stem(image))))
}

/// The export, when it exists and is complete.
pub fn existing(image: &str, checksum: &str) -> Option<PathBuf> {
    let dir = location(image, checksum).ok()?;
    dir.join(COMPLETE).exists().then_some(dir)
}

/// The target's image ensured (built if missing or stale) and exported:
/// what `sysroot` and the toolchain files use.
pub fn ensure_exported(ctx: &crate::context::Ctx, plugin: &Plugin) -> Result<PathBuf> {
    let want = crate::target::ensure::wanted_checksum(plugin, &ctx.library)?;
    if let Some(dir) = existing(&plugin.image, &want) {
        return Ok(dir);
    }
    let engine = ctx.engine()?;
    crate::target::ensure::ensure(engine, plugin, &ctx.library, &want)?;
    export(engine, plugin, &plugin.image, &want)
}

/// Export `image` (whose dockerfile checksum is `checksum`) unless that was
/// done already; returns the folder. Older exports of the image are removed.
pub fn export(engine: &Engine, plugin: &Plugin, image: &str, checksum: &str) -> Result<PathBuf> {
    let dir = location(image, checksum)?;
    if dir.join(COMPLETE).exists() {
        return Ok(dir);
    }
    let _lock = lock(image)?;
    if dir.join(COMPLETE).exists() {
        return Ok(dir);
    }
    let parent = dir.parent().context("sysroot folder has no parent")?;
    let tmp = tempfile::Builder::new()
        .prefix(".export")
        .tempdir_in(parent)
        .map_err(|e| safefs::io_error(e, "create a folder in", parent))?;
    let _removed_on_signal = crate::signals::TempDirGuard::new(tmp.path());
    copy_out(engine, image, &exported_paths(plugin), tmp.path())?;
    // Debian's images have merged /usr: `/lib` is `usr/lib`, and absolute
    // links such as libz.so -> /lib/<triplet>/libz.so.1 go through it.
    let lib = tmp.path().join("lib");
    if !lib.exists() {
        std::os::unix::fs::symlink("usr/lib", &lib)
            .map_err(|e| safefs::io_error(e, "create", &lib))?;
    }
    relativize_links(tmp.path(), tmp.path())?;
    complete_root(tmp.path(), &plugin.sysroot, &multiarch(plugin))?;
    File::create(tmp.path().join(COMPLETE))
        .map_err(|e| safefs::io_error(e, "write", &tmp.path().join(COMPLETE)))?;
    let staged = tmp.keep();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staged, &dir).map_err(|e| safefs::io_error(e, "create", &dir))?;
    remove_others(image, &dir);
    Ok(dir)
}

fn lock(image: &str) -> Result<Flock<File>> {
    crate::state::paths::cache_lock(&format!("sysroot-{}", stem(image)))
}

/// Copy `paths` out of a container of `image` (created, never started) into
/// `dest`, each at its own path below it. Paths the image lacks are skipped.
fn copy_out(engine: &Engine, image: &str, paths: &[String], dest: &Path) -> Result<()> {
    let label = uuid::Uuid::new_v4().simple().to_string();
    let mut args = vec![
        "create".to_string(),
        "--label".into(),
        format!("{}={label}", crate::engine::labels::INSTANCE),
    ];
    args.extend(crate::engine::orphans::label_args());
    args.extend([image.to_string(), "/bin/true".into()]);
    let _removed_on_signal = crate::engine::container::removed_on_signal(engine, &label);
    let out = engine.output(&args)?;
    if !out.status.success() {
        bail!(
            "cannot create a container of {image} to export its sysroot: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let result = paths
        .iter()
        .try_for_each(|p| copy_one(engine, &id, p, dest));
    engine.remove_containers(std::slice::from_ref(&id));
    result
}

/// `ENGINE cp ID:PATH - | tar -x` into `dest/PARENT`.
fn copy_one(engine: &Engine, id: &str, path: &str, dest: &Path) -> Result<()> {
    let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
    let into = dest.join(parent.strip_prefix("/").unwrap_or(parent));
    std::fs::create_dir_all(&into).map_err(|e| safefs::io_error(e, "create", &into))?;
    let mut cp = engine
        .command(["cp", &format!("{id}:{path}"), "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {} cp", engine.prog().join(" ")))?;
    let stdout = cp.stdout.take().context("no pipe from the engine")?;
    let tar = Command::new("tar")
        .args(["-x", "--no-same-owner", "--no-same-permissions", "-C"])
        .arg(&into)
        .stdin(stdout)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run tar (install it)")?;
    let cp_out = cp.wait_with_output()?;
    if !cp_out.status.success() {
        let err = String::from_utf8_lossy(&cp_out.stderr);
        // Engines word a missing path differently ("No such file or
        // directory", docker 20.10's "Could not find the file").
        let lower = err.to_lowercase();
        if ["no such file", "not found", "could not find"]
            .iter()
            .any(|w| lower.contains(w))
        {
            return Ok(());
        }
        bail!("exporting {path} from the image failed: {}", err.trim());
    }
    if !tar.status.success() {
        bail!(
            "unpacking {path} into {} failed: {}",
            into.display(),
            String::from_utf8_lossy(&tar.stderr).trim()
        );
    }
    Ok(())
}

/// Absolute symlinks in the export point at image paths: make them point
/// at the file they reach inside the export, by the shortest relative path
/// (`libz.so -> /lib/<triplet>/libz.so.1` becomes `libz.so.1`), so that they
/// resolve on the host and inside a container that mounts only their folder.
fn relativize_links(root: &Path, dir: &Path) -> Result<()> {
    let real_root =
        std::fs::canonicalize(root).map_err(|e| safefs::io_error(e, "resolve", root))?;
    let entries = std::fs::read_dir(dir).map_err(|e| safefs::io_error(e, "read", dir))?;
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            relativize_links(root, &path)?;
            continue;
        }
        if !ft.is_symlink() {
            continue;
        }
        let Ok(target) = std::fs::read_link(&path) else {
            continue;
        };
        let Ok(inside) = target.strip_prefix("/") else {
            continue;
        };
        let Some(parent) = path.parent() else {
            continue;
        };
        let reached = std::fs::canonicalize(real_root.join(inside))
            .ok()
            .filter(|r| r.starts_with(&real_root));
        let (Some(reached), Ok(from)) = (reached, std::fs::canonicalize(parent)) else {
            continue;
        };
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(relative(&from, &reached), &path)
            .map_err(|e| safefs::io_error(e, "create", &path))?;
    }
    Ok(())
}

/// Make the export `root` a root a target program can run in: for each
/// dynamic linker in the sysroot's `lib` (`ld*.so*`), a link at
/// `usr/lib/NAME` and `usr/lib64/NAME` (with `lib64 -> usr/lib64`), and for
/// each shared object there (`*.so.*`) a link in `usr/lib/<multiarch>`,
/// wherever the image has none. What the image has is never replaced.
fn complete_root(root: &Path, sysroot: &str, multiarch: &str) -> Result<()> {
    let real_root =
        std::fs::canonicalize(root).map_err(|e| safefs::io_error(e, "resolve", root))?;
    // A folder of the image that is a link leading out of the export is
    // never written through.
    let inside = |p: &Path| -> Result<PathBuf> {
        let real = std::fs::canonicalize(p).map_err(|e| safefs::io_error(e, "resolve", p))?;
        if !real.starts_with(&real_root) {
            bail!(
                "cannot complete the exported sysroot: {} leads out of it, to {}",
                p.display(),
                real.display()
            );
        }
        Ok(real)
    };
    let lib = root.join(sysroot.trim_start_matches('/')).join("lib");
    let entries = match std::fs::read_dir(&lib) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(safefs::io_error(e, "read", &lib)),
    };
    let real_lib = inside(&lib)?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let link = |dir: &Path, name: &str| -> Result<()> {
        let at = dir.join(name);
        if at.symlink_metadata().is_ok() {
            return Ok(());
        }
        // Each folder on the way is checked before anything is made in it.
        let mut made = root.to_path_buf();
        for part in dir.strip_prefix(root).unwrap_or(dir).components() {
            made.push(part);
            if made.symlink_metadata().is_err() {
                std::fs::create_dir(&made).map_err(|e| safefs::io_error(e, "create", &made))?;
            }
            inside(&made)?;
        }
        let from = inside(dir)?;
        std::os::unix::fs::symlink(relative(&from, &real_lib.join(name)), &at)
            .map_err(|e| safefs::io_error(e, "create", &at))
    };
    let lib64 = root.join("lib64");
    for name in &names {
        if is_dynamic_linker(name) {
            link(&root.join("usr/lib"), name)?;
            if lib64.symlink_metadata().is_err() {
                std::os::unix::fs::symlink("usr/lib64", &lib64)
                    .map_err(|e| safefs::io_error(e, "create", &lib64))?;
            }
            link(&root.join("usr/lib64"), name)?;
        } else if name.contains(".so.") {
            link(&root.join("usr/lib").join(multiarch), name)?;
        }
    }
    Ok(())
}

/// Whether a file name is a dynamic linker's (`ld64.so.1`,
/// `ld-linux-aarch64.so.1`, `ld.so.1`), not a library of `ld`'s own.
fn is_dynamic_linker(name: &str) -> bool {
    name.strip_prefix("ld").is_some_and(|rest| {
        rest.contains(".so")
            && (rest.starts_with('-') || rest.starts_with('.') || rest.starts_with("64."))
    })
}

/// The relative path from folder `from` to `to` (both absolute, resolved).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    rel
}

/// Remove the image's other (older) exports.
fn remove_others(image: &str, keep: &Path) {
    let Some(parent) = keep.parent() else { return };
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!("{}-", stem(image));
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let rest = name.strip_prefix(&prefix).unwrap_or("");
        if e.path() != keep && rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Map image paths in a compiler's answer (`-print-search-dirs`,
/// `-print-libgcc-file-name`, `-print-file-name=libc.so`,
/// `-print-sysroot`) to their place in the export, where it has them.
pub fn map_answer(answer: &str, export: &Path) -> String {
    let map = |word: &str| -> String {
        if !word.starts_with('/') {
            return word.to_string();
        }
        let inside = export.join(word.trim_start_matches('/'));
        if inside.exists() {
            // Keep a trailing slash as the compiler printed it.
            let mut s = inside.display().to_string();
            if word.ends_with('/') && !s.ends_with('/') {
                s.push('/');
            }
            s
        } else {
            word.to_string()
        }
    };
    answer
        .split_inclusive('\n')
        .map(|line| {
            let (body, nl) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            // `libraries: =/a/:/b/` lists, and plain paths.
            let (head, list) = match body.split_once(": =") {
                Some((h, l)) => (format!("{h}: ="), l),
                None => match body.split_once(": ") {
                    Some((h, l)) if !h.contains('/') => (format!("{h}: "), l),
                    _ => (String::new(), body),
                },
            };
            let mapped: Vec<String> = list.split(':').map(map).collect();
            format!("{head}{}{nl}", mapped.join(":"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_into_the_export() {
        let d = tempfile::tempdir().unwrap();
        let x = d.path();
        std::fs::create_dir_all(x.join("usr/lib/gcc-cross/t/12")).unwrap();
        std::fs::write(x.join("usr/lib/gcc-cross/t/12/libgcc.a"), "").unwrap();
        assert_eq!(
            map_answer("/usr/lib/gcc-cross/t/12/libgcc.a\n", x),
            format!("{}/usr/lib/gcc-cross/t/12/libgcc.a\n", x.display())
        );
        assert_eq!(
            map_answer("libraries: =/usr/lib/gcc-cross/t/12/:/nope/\n", x),
            format!(
                "libraries: ={}/usr/lib/gcc-cross/t/12/:/nope/\n",
                x.display()
            )
        );
        assert_eq!(map_answer("libfoo.a\n", x), "libfoo.a\n");
    }

    #[test]
    fn multiarch_names_come_from_the_debian_architecture() {
        let reg = crate::target::plugin::Registry::load().unwrap();
        let m = |t: &str| multiarch(reg.get(t).unwrap());
        assert_eq!(m("i686-linux-gnu"), "i386-linux-gnu");
        assert_eq!(m("arm-linux-gnueabihf"), "arm-linux-gnueabihf");
        assert_eq!(m("mips64el-linux-gnuabi64"), "mips64el-linux-gnuabi64");
        assert_eq!(m("x86_64-linux-gnu"), "x86_64-linux-gnu");
        assert_eq!(m("sparc64-linux-gnu"), "sparc64-linux-gnu");
        assert_eq!(m("i686-w64-mingw32"), "i686-w64-mingw32");
        // Every Linux built-in: its table entry is its own triplet (i686: i386).
        for p in reg.iter().filter(|p| p.debian_arch.is_some()) {
            let want = p.target.replacen("i686-", "i386-", 1);
            assert_eq!(multiarch(p), want, "{}", p.target);
        }
        // A user target named otherwise keeps its architecture's.
        let mut p = reg.get("s390x-linux-gnu").unwrap().clone();
        p.manifest.target = "s390x-zlib-linux-gnu".into();
        assert_eq!(multiarch(&p), "s390x-linux-gnu");
    }

    #[test]
    fn the_export_is_completed_as_a_root() {
        let d = tempfile::tempdir().unwrap();
        let x = d.path();
        let lib = x.join("usr/t-linux-gnu/lib");
        std::fs::create_dir_all(&lib).unwrap();
        for f in [
            "ld64.so.1",
            "libc.so.6",
            "libc.so",
            "libc.a",
            "crt1.o",
            "libm.so.6",
        ] {
            std::fs::write(lib.join(f), f).unwrap();
        }
        std::fs::create_dir_all(lib.join("gconv")).unwrap();
        // What the image has stays.
        std::fs::create_dir_all(x.join("usr/lib/t-linux-gnu")).unwrap();
        std::fs::write(x.join("usr/lib/t-linux-gnu/libm.so.6"), "own").unwrap();
        std::os::unix::fs::symlink("usr/lib", x.join("lib")).unwrap();
        complete_root(x, "/usr/t-linux-gnu", "t-linux-gnu").unwrap();
        let read = |p: &str| std::fs::read_to_string(x.join(p)).unwrap();
        assert_eq!(read("lib/ld64.so.1"), "ld64.so.1");
        assert_eq!(read("lib64/ld64.so.1"), "ld64.so.1");
        assert_eq!(read("lib/t-linux-gnu/libc.so.6"), "libc.so.6");
        assert_eq!(read("usr/lib/t-linux-gnu/libm.so.6"), "own");
        assert_eq!(
            std::fs::read_link(x.join("usr/lib/ld64.so.1")).unwrap(),
            PathBuf::from("../t-linux-gnu/lib/ld64.so.1")
        );
        for absent in [
            "usr/lib/t-linux-gnu/libc.so",
            "usr/lib/t-linux-gnu/crt1.o",
            "usr/lib/libc.so.6",
        ] {
            assert!(x.join(absent).symlink_metadata().is_err(), "{absent}");
        }
        // Done twice, it changes nothing.
        let listing = || {
            let mut all = Vec::new();
            let mut todo = vec![x.to_path_buf()];
            while let Some(d) = todo.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let p = e.path();
                    let link = std::fs::read_link(&p).ok();
                    if e.file_type().unwrap().is_dir() {
                        todo.push(p.clone());
                    }
                    all.push((p, link));
                }
            }
            all.sort();
            all
        };
        let before = listing();
        complete_root(x, "/usr/t-linux-gnu", "t-linux-gnu").unwrap();
        assert_eq!(listing(), before);
        // A folder of the image that leads out of the export is refused.
        let out = tempfile::tempdir().unwrap();
        std::fs::remove_dir_all(x.join("usr/lib/t-linux-gnu")).unwrap();
        std::os::unix::fs::symlink(out.path(), x.join("usr/lib/t-linux-gnu")).unwrap();
        let e = format!(
            "{:#}",
            complete_root(x, "/usr/t-linux-gnu", "t-linux-gnu").unwrap_err()
        );
        assert!(e.contains("leads out of it"), "{e}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
        assert!(is_dynamic_linker("ld-linux-aarch64.so.1") && is_dynamic_linker("ld.so.1"));
        assert!(!is_dynamic_linker("libc.so.6") && !is_dynamic_linker("ldscript.so"));
    }

    #[test]
    fn absolute_links_become_relative() {
        let d = tempfile::tempdir().unwrap();
        let x = d.path();
        std::fs::create_dir_all(x.join("usr/lib/t")).unwrap();
        std::fs::write(x.join("usr/lib/t/libz.so.1"), "z").unwrap();
        std::os::unix::fs::symlink("usr/lib", x.join("lib")).unwrap();
        std::os::unix::fs::symlink("/lib/t/libz.so.1", x.join("usr/lib/t/libz.so")).unwrap();
        std::fs::create_dir_all(x.join("usr/include")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/t/libz.so.1", x.join("usr/include/z")).unwrap();
        relativize_links(x, x).unwrap();
        assert_eq!(
            std::fs::read_link(x.join("usr/lib/t/libz.so")).unwrap(),
            PathBuf::from("libz.so.1")
        );
        assert_eq!(
            std::fs::read_link(x.join("usr/include/z")).unwrap(),
            PathBuf::from("../lib/t/libz.so.1")
        );
        assert_eq!(
            std::fs::read_to_string(x.join("usr/lib/t/libz.so")).unwrap(),
            "z"
        );
    }
}
