//! `cc`: compile with the compiler of an image, in the current directory.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;

use crate::call::request::{self, Request};
use crate::commands::Command;
use crate::commands::argparse::{Arity, Matches, Opt, Spec};
use crate::compile;
use crate::context::Ctx;

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "compile with an image's compiler in the current directory",
    run,
);

pub const SPEC: Spec = Spec {
    name: "cc",
    about: "Compile sources with cc in images",
    opts: &[
        Opt {
            names: &["--image", "-i"],
            dest: "image",
            arity: Arity::One,
            metavar: "IMAGE",
            help: "The image in which to run cc",
            required: true,
        },
        Opt {
            names: &["--cc"],
            dest: "cc",
            arity: Arity::One,
            metavar: "CC",
            help: "The compiler executable to call (default: cc)",
            required: false,
        },
        Opt {
            names: &["--source-path", "-s"],
            dest: "paths",
            arity: Arity::Many,
            metavar: "PATH",
            help: "Extra paths to (ro) mount into container for reading sources",
            required: false,
        },
    ],
    positionals: &[],
    epilog: "example: qemu-cross-cc cc -i qemu/debian-x --cc aarch64-linux-gnu-gcc -s ../src -- -c ../src/a.c -o a.o",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let mut argv: &[String] = &m.extra;
    if argv.first().map(String::as_str) == Some("--") {
        argv = &argv[1..];
    }
    let image = m.value("image").unwrap_or_default();
    let program = OsString::from(m.value("cc").unwrap_or("cc"));
    let sources: Vec<PathBuf> = m
        .list("paths")
        .unwrap_or_default()
        .iter()
        .map(PathBuf::from)
        .collect();
    let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let cmd = request::command_line(&args)?;
    let req = Request::new(
        image,
        program,
        args,
        &cmd,
        &sources,
        &Default::default(),
        m.flag("quiet"),
    )?;
    compile::run_image_tool(ctx, &req)
}
