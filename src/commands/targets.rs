//! `targets`: every known target with its image, the image's state and the
//! tools it provides.

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};
use crate::context::Ctx;
use crate::target::ensure;
use crate::target::plugin::Registry;

pub const COMMAND: Command = Command::clap(
    "targets",
    "list targets, their images and tools",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(about = "List targets: name, image, image state, tools")]
pub struct Args {
    /// Print JSON (one object per target) instead of a table.
    #[arg(long)]
    json: bool,
    /// Do not query the engine for image states.
    #[arg(long)]
    offline: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let reg = Registry::load()?;
    let engine = if args.offline {
        None
    } else {
        ctx.engine().ok()
    };
    let mut rows = Vec::new();
    for p in reg.iter() {
        let state = match engine {
            Some(e) => match ensure::image_state(e, p, &ctx.library) {
                Ok(s) => s.to_string(),
                Err(err) => format!("error: {err:#}"),
            },
            None => "unknown".to_string(),
        };
        rows.push((p, state));
    }
    if args.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, state)| {
                serde_json::json!({
                    "target": p.target,
                    "image": p.image,
                    "state": state,
                    "origin": p.origin(),
                    "qemu": p.qemu,
                    "sysroot": p.sysroot,
                    "tools": p.tools,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let w_t = rows
        .iter()
        .map(|(p, _)| p.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let w_i = rows
        .iter()
        .map(|(p, _)| p.image.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let w_s = rows.iter().map(|(_, s)| s.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<w_t$}  {:<w_i$}  {:<w_s$}  TOOLS",
        "TARGET", "IMAGE", "STATE"
    );
    for (p, state) in &rows {
        let tools: Vec<&str> = p.tools.keys().map(String::as_str).collect();
        println!(
            "{:<w_t$}  {:<w_i$}  {:<w_s$}  {}",
            p.target,
            p.image,
            state,
            tools.join(" ")
        );
    }
    Ok(0)
}
