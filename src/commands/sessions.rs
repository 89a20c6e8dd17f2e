//! `sessions`: list or stop warm toolchain sessions.

use anyhow::Result;
use clap::Parser;

use super::Ctx;
use crate::session::{self, Record};

#[derive(Debug, Parser)]
#[command(
    name = "qemu-cross-cc sessions",
    about = "List or stop warm toolchain sessions (long-lived containers that run the compilers)"
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List live sessions: target, image, root, age, calls (the default).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop the sessions of the given targets (or images), or all of them.
    Stop {
        /// Stop every session of this user.
        #[arg(long)]
        all: bool,
        /// Targets or image names whose sessions to stop.
        names: Vec<String>,
    },
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// Live sessions with their counters; records whose agent is gone are
/// removed.
fn live() -> Vec<(Record, session::Status)> {
    let mut out = Vec::new();
    for rec in session::records() {
        match session::status(&rec) {
            Some(st) => out.push((rec, st)),
            None => session::forget(&rec),
        }
    }
    out
}

pub fn run(_ctx: &Ctx, args: Args) -> Result<i32> {
    match args.action.unwrap_or(Action::List { json: false }) {
        Action::List { json } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let rows = live();
            if json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(r, st)| {
                        serde_json::json!({
                            "id": r.id, "target": r.target, "image": r.image, "root": r.root,
                            "engine": r.engine.join(" "), "container": r.container,
                            "age_seconds": now.saturating_sub(r.created), "calls": st.calls,
                            "active": st.active,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            if rows.is_empty() {
                println!("no live sessions");
                return Ok(0);
            }
            println!(
                "{:<24} {:<34} {:>6} {:>7}  {:<7} ROOT",
                "TARGET", "IMAGE", "AGE", "CALLS", "ENGINE"
            );
            for (r, st) in rows {
                println!(
                    "{:<24} {:<34} {:>6} {:>7}  {:<7} {}",
                    r.target.as_deref().unwrap_or("-"),
                    r.image,
                    age(now.saturating_sub(r.created)),
                    st.calls,
                    r.engine.last().map(String::as_str).unwrap_or("?"),
                    r.root.display()
                );
            }
            Ok(0)
        }
        Action::Stop { all, names } => {
            if !all && names.is_empty() {
                return Err(crate::argparse::UsageError {
                    command: "sessions".into(),
                    message: "stop needs target names or --all".into(),
                }
                .into());
            }
            let mut n = 0;
            for rec in session::records() {
                let picked = all
                    || names
                        .iter()
                        .any(|x| Some(x.as_str()) == rec.target.as_deref() || *x == rec.image);
                if picked {
                    session::stop(&rec);
                    n += 1;
                }
            }
            println!("stopped {n} sessions");
            Ok(0)
        }
    }
}
