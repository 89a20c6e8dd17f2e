//! `shims --dir DIR [TARGET...]`: symbolic links named after every tool of
//! every target (`aarch64-linux-gnu-gcc`...), pointing at this binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::plugin::{Plugin, Registry};

#[derive(Debug, Parser)]
#[command(
    name = "qemu-cross-cc shims",
    about = "Create (or remove) the per-target tool links, e.g. aarch64-linux-gnu-gcc"
)]
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

pub fn run(args: Args) -> Result<i32> {
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
    for p in plugins {
        for name in p.shim_names() {
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
    Ok(0)
}
