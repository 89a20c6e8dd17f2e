//! qemu-cross-cc: run cross compilers inside container images as if they
//! were installed on the host; a drop-in for QEMU's tests/docker/docker.py.

mod argparse;
mod argpaths;
mod binfmt;
mod cli;
mod commands;
mod compile;
mod dockerfile;
mod embedded;
mod engine;
mod ensure;
mod labels;
mod mounts;
mod passenv;
mod paths;
mod plugin;
mod session;
mod signals;
mod user;

fn main() {
    if let Err(e) = signals::install() {
        eprintln!("qemu-cross-cc: error: cannot install signal handlers: {e:#}");
        std::process::exit(1);
    }
    let code = cli::main(std::env::args_os().collect());
    signals::hold_if_terminating();
    std::process::exit(code);
}
