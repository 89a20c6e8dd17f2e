//! `shims --dir DIR [TARGET...]`: symbolic links named after every tool of
//! every target (`aarch64-linux-gnu-gcc`...), pointing at this binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};
use crate::context::Ctx;
use crate::target::plugin::{Plugin, Registry};

pub const COMMAND: Command = Command::clap(
    "shims",
    "create the per-target tool links (aarch64-linux-gnu-gcc...)",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(about = "Create (or remove) the per-target tool links, e.g. aarch64-linux-gnu-gcc")]
pub struct Args {
    /// The folder for the links (created if missing), e.g. ~/.local/bin.
    #[arg(long)]
    dir: PathBuf,
    /// Remove our links instead of creating them.
    #[arg(long)]
    remove: bool,
    /// Print nothing but problems.
    #[arg(long)]
    quiet: bool,
    /// Also write TARGET.cmake, TARGET.meson and TARGET.env (see
    /// 'qemu-cross-cc toolchain') beside the links; builds and exports each
    /// target's image.
    #[arg(long)]
    toolchain_files: bool,
    /// Only these targets (default: all).
    targets: Vec<String>,
}

/// Whether `link` is a symbolic link made by `shims` (it points at a file
/// named qemu-cross-cc, or at this very binary).
fn is_ours(link: &Path, exe: &Path) -> bool {
    let Ok(dest) = std::fs::read_link(link) else {
        return false;
    };
    dest.file_name().is_some_and(|n| n == "qemu-cross-cc")
        || std::fs::canonicalize(link).ok().as_deref() == Some(exe)
}

/// Whether a link name can only be a file directly inside the links folder:
/// not empty, no `/` or NUL, not `.` or `..`. Manifests are checked when
/// they are loaded; this keeps `shims` inside `--dir` whatever they say.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let reg = Registry::load()?;
    let plugins: Vec<&Plugin> = if args.targets.is_empty() {
        reg.iter().collect()
    } else {
        args.targets
            .iter()
            .map(|t| reg.get(t))
            .collect::<Result<_>>()?
    };
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find this program's own path")?;
    if !args.remove {
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("cannot create {}", args.dir.display()))?;
    }
    let (mut made, mut kept, mut removed, mut blocked) = (0, 0, 0, Vec::new());
    for p in &plugins {
        for name in p.shim_names() {
            if !is_plain_name(&name) {
                bail!(
                    "refusing the link name {name:?} of target {} ({}); fix the plugin manifest",
                    p.target,
                    p.origin()
                );
            }
            let link = args.dir.join(&name);
            let exists = link.symlink_metadata().is_ok();
            if args.remove {
                if exists && is_ours(&link, &exe) {
                    std::fs::remove_file(&link)
                        .with_context(|| format!("cannot remove {}", link.display()))?;
                    removed += 1;
                }
                continue;
            }
            if exists {
                if !is_ours(&link, &exe) {
                    eprintln!(
                        "qemu-cross-cc: not replacing {}: it exists and is not a qemu-cross-cc link",
                        link.display()
                    );
                    blocked.push(name);
                    continue;
                }
                if std::fs::read_link(&link).ok().as_deref() == Some(exe.as_path()) {
                    kept += 1;
                    continue;
                }
                std::fs::remove_file(&link)
                    .with_context(|| format!("cannot replace {}", link.display()))?;
            }
            std::os::unix::fs::symlink(&exe, &link)
                .with_context(|| format!("cannot create {}", link.display()))?;
            made += 1;
        }
    }
    if !args.quiet {
        if args.remove {
            println!("removed {removed} links from {}", args.dir.display());
        } else {
            println!(
                "{made} links created, {kept} already in place in {} (-> {})",
                args.dir.display(),
                exe.display()
            );
        }
    }
    if !blocked.is_empty() {
        bail!(
            "{} links not created because other files have those names ({}); move them away and rerun",
            blocked.len(),
            blocked.join(", ")
        );
    }
    if args.toolchain_files && !args.remove {
        for p in &plugins {
            write_toolchain_files(
                ctx,
                &*crate::target::project::apply(p)?,
                &args.dir,
                args.quiet,
            )?;
        }
    }
    Ok(0)
}

/// TARGET.cmake, TARGET.meson and TARGET.env in `dir`, naming the links there.
fn write_toolchain_files(ctx: &Ctx, plugin: &Plugin, dir: &Path, quiet: bool) -> Result<()> {
    for (kind, ext) in [("cmake", "cmake"), ("meson", "meson"), ("env", "env")] {
        let text = super::toolchain::text(ctx, plugin, kind, Some(dir))?;
        let file = dir.join(format!("{}.{ext}", plugin.target));
        std::fs::write(&file, text)
            .map_err(|e| crate::state::safefs::io_error(e, "write", &file))?;
        if !quiet {
            println!("wrote {}", file.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        for good in ["aarch64-linux-gnu-gcc", "x-linux-gnu-g++", "a-b-...", "..."] {
            assert!(is_plain_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "/", "../x", "a\0b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn builtin_link_names_are_plain() {
        let reg = Registry::load().unwrap();
        for name in reg.iter().flat_map(Plugin::shim_names) {
            assert!(is_plain_name(&name), "{name}");
        }
    }

    /// No manifest that loads can make a link outside the folder.
    #[test]
    fn manifests_with_escaping_link_names_are_refused() {
        let targets = ["..", ".", "", "a/b-c", "../x-y", "-", "x-linux-gnu"];
        let tools = ["cc", "..", ".", "", "/x", "a/b", "../../x", "x/.."];
        for target in targets {
            for tool in tools {
                let json = serde_json::json!({
                    "target": target, "image": "i", "dockerfile": "x.docker",
                    "qemu": "q", "sysroot": "/s", "tools": {"cc": "gcc", tool: "t"},
                });
                let Ok(p) = Plugin::parse(&json.to_string(), "m", None) else {
                    continue;
                };
                assert_eq!((target, tool), ("x-linux-gnu", "cc"));
                for name in p.shim_names() {
                    assert!(is_plain_name(&name), "{name}");
                }
            }
        }
    }
}
