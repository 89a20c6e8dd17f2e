//! `build`: build an image from a dockerfile unless its checksum label says
//! it is up to date.

use std::path::PathBuf;

use anyhow::Result;

use crate::commands::Command;
use crate::commands::argparse::{Arity, Matches, Opt, Spec, UsageError};
use crate::context::Ctx;
use crate::image::dockerfile;
use crate::image::{self, Job};

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "build an image unless its dockerfile checksum label is current",
    run,
);

pub const SPEC: Spec = Spec {
    name: "build",
    about: "Build an image out of a dockerfile. Args: -t <tag> -f <dockerfile>, or a target name",
    opts: &[
        Opt {
            names: &["--include-executable", "-e"],
            dest: "include_executable",
            arity: Arity::One,
            metavar: "EXE",
            help: "Copy this binary (and its libraries) into the image",
            required: false,
        },
        Opt {
            names: &["--skip-binfmt"],
            dest: "skip_binfmt",
            arity: Arity::Flag,
            metavar: "",
            help: "Skip binfmt entry check (used for testing)",
            required: false,
        },
        Opt {
            names: &["--extra-files"],
            dest: "extra_files",
            arity: Arity::Many,
            metavar: "FILE",
            help: "Files copied into the build context (for ADD), recorded in checksum labels",
            required: false,
        },
        super::ADD_CURRENT_USER,
        Opt {
            names: &["--registry", "-r"],
            dest: "registry",
            arity: Arity::One,
            metavar: "REGISTRY",
            help: "cache from registry",
            required: false,
        },
        Opt {
            names: &["-t"],
            dest: "tag",
            arity: Arity::One,
            metavar: "TAG",
            help: "Image Tag",
            required: false,
        },
        Opt {
            names: &["-f"],
            dest: "dockerfile",
            arity: Arity::One,
            metavar: "DOCKERFILE",
            help: "Dockerfile name",
            required: false,
        },
    ],
    positionals: &[],
    epilog: "examples:\n  qemu-cross-cc build -t qemu/debian-x -f dockerfiles/debian-x.docker --add-current-user\n  \
             qemu-cross-cc build aarch64-linux-gnu --no-cache",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let mut extra = m.extra.clone();
    let usage = |message: &str| UsageError {
        command: "build".into(),
        message: message.into(),
    };
    let mut job = match (m.value("dockerfile"), m.value("tag")) {
        (Some(path), Some(tag)) => {
            let path = PathBuf::from(path);
            let text = dockerfile::read(&path)?;
            let library = ctx.library.with_fallback(path.parent());
            let mut job = Job::new(tag.to_string(), text, library);
            job.path = Some(path);
            job
        }
        (Some(_), None) => return Err(usage("-t TAG is required with -f").into()),
        (None, _) => {
            let plugins = crate::target::plugin::Registry::load()?;
            let Some(pos) = extra.iter().position(|a| plugins.find(a).is_some()) else {
                return Err(usage("give -t TAG -f DOCKERFILE, or a target name").into());
            };
            let plugin = plugins.get(&extra.remove(pos))?;
            let engine = ctx.engine()?;
            // The images it builds on first, then the target's own.
            crate::target::ensure::ensure_bases(engine, plugin, &ctx.library, None)?;
            let mut job = crate::target::ensure::job_for(plugin, &ctx.library)?;
            if let Some(tag) = m.value("tag") {
                job.tag = tag.to_string();
            }
            job
        }
    };
    job.quiet = m.flag("quiet");
    job.user = m.flag("user");
    job.registry = m.value("registry").map(String::from);
    job.include_executable = m.value("include_executable").map(String::from);
    job.skip_binfmt = m.flag("skip_binfmt");
    job.extra_files = m
        .list("extra_files")
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    job.engine_args = std::mem::take(&mut extra);
    let engine = ctx.engine()?;
    image::build(engine, job)
}
