//! `update TAG`: add the qemu-user executable (and/or the current user) to an
//! existing image, keeping its labels.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::commands::Command;
use crate::commands::argparse::{Arity, Matches, Opt, Pos, Spec};
use crate::context::Ctx;
use crate::host::binfmt;

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "add a qemu-user executable or the current user to an image",
    run,
);

pub const SPEC: Spec = Spec {
    name: "update",
    about: "Update an image. Args: <tag> <actions>",
    opts: &[
        Opt {
            names: &["--executable"],
            dest: "executable",
            arity: Arity::One,
            metavar: "EXE",
            help: "Executable to copy",
            required: false,
        },
        super::ADD_CURRENT_USER,
    ],
    positionals: &[Pos {
        name: "tag",
        required: true,
        help: "Image Tag",
    }],
    epilog: "example: qemu-cross-cc update qemu/debian-arm64-user --executable ./build/qemu-aarch64",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let tag = m.positional(0).unwrap_or_default();
    let context = tempfile::Builder::new()
        .prefix("docker_update")
        .tempdir()
        .context("cannot create a temporary build context")?;
    let _removed_on_signal = crate::signals::TempDirGuard::new(context.path());
    let mut df = format!("FROM {tag}\n");

    if let Some(exe) = m.value("executable") {
        let b = binfmt::check(exe);
        if !b.enabled {
            println!("binfmt_misc not enabled, update disabled");
            return Ok(1);
        }
        if let Some(dest) = &b.interpreter {
            let dest = Path::new(dest);
            let parent = dest
                .parent()
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            let name = dest.file_name().map(|n| n.to_string_lossy().to_string());
            binfmt::copy_with_mkdir(Path::new(exe), context.path(), &parent, name.as_deref())?;
        }
        binfmt::copy_libs(exe, context.path())?;
        df.push_str("ADD . /\n");
    }
    if m.flag("user") {
        df.push('\n');
        df.push_str(&crate::image::add_user_line()?);
    }
    let mut f = std::fs::File::create(context.path().join("Dockerfile"))?;
    f.write_all(df.as_bytes())?;
    drop(f);

    let engine = ctx.engine()?;
    let context_arg = context.path().to_string_lossy().to_string();
    let cmd_args = ["-t", tag, context_arg.as_str()];
    let mut cmd = engine.build_command(cmd_args);
    if m.flag("quiet") {
        cmd.stdout(std::process::Stdio::null());
    }
    let code = engine.run_command(cmd)?;
    if code != 0 {
        anyhow::bail!("updating image {tag} failed: build exited with status {code}");
    }
    Ok(0)
}
