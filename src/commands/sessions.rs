//! `sessions`: list or stop warm toolchain sessions.
//!
//! Sessions are found through their records in the runtime folder and, so
//! that a lost record (`rm -rf` of the folder, a corrupt file) orphans
//! nothing, through their container labels as well.

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::commands::{self, Command};
use crate::context::Ctx;
use crate::engine::orphans::{self, Container};
use crate::session::{self, Record};

pub const COMMAND: Command = Command::clap(
    "sessions",
    "list or stop warm toolchain sessions",
    Args::command,
    |ctx, m| run(ctx, commands::args(m)?),
);

#[derive(Debug, Parser)]
#[command(
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

/// Live sessions with their counters (None for one that runs but is slow
/// to answer); records whose agent is gone are removed.
fn live() -> Vec<(Record, Option<session::Status>)> {
    let mut out = Vec::new();
    for rec in session::records() {
        match session::status(&rec) {
            session::Health::Live(st) => out.push((rec, Some(st))),
            session::Health::Slow => out.push((rec, None)),
            session::Health::Gone => session::forget(&rec),
        }
    }
    out
}

/// Session containers of this user in the engine that no live record
/// names (their record was lost). Created containers of killed callers
/// are swept on the way. Empty when no engine answers.
fn orphaned(ctx: &Ctx, known: &[String]) -> Vec<Container> {
    let Ok(engine) = ctx.engine() else {
        return Vec::new();
    };
    let _ = orphans::sweep_created(engine);
    let mine = session::runtime_label();
    orphans::containers(engine, session::SESSION_LABEL)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.label(session::RUNTIME_LABEL) == Some(mine.as_str()))
        // An exited one is on its way out (`--rm`).
        .filter(|c| {
            matches!(
                c.state.as_str(),
                "running" | "paused" | "created" | "configured"
            )
        })
        .filter(|c| !known.iter().any(|k| *k == c.name || *k == c.id))
        .collect()
}

fn note_engine_switch(ctx: &Ctx) {
    if let Some(s) = crate::engine::last_switch(ctx.choice) {
        eprintln!("qemu-cross-cc: note: {s}");
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    crate::state::paths::runtime_dir()?;
    match args.action.unwrap_or(Action::List { json: false }) {
        Action::List { json } => list(ctx, json),
        Action::Stop { all, names } => {
            if !all && names.is_empty() {
                return Err(crate::error::UsageError {
                    command: "sessions".into(),
                    message: "stop needs target names or --all".into(),
                }
                .into());
            }
            let picked = |target: Option<&str>, image: &str| {
                all || names
                    .iter()
                    .any(|x| Some(x.as_str()) == target || x == image)
            };
            let mut n = 0;
            let recs = session::records();
            let known: Vec<String> = recs.iter().map(|r| r.container.clone()).collect();
            for rec in recs {
                if picked(rec.target.as_deref(), &rec.image) {
                    session::stop(&rec);
                    n += 1;
                }
            }
            let lost: Vec<String> = orphaned(ctx, &known)
                .into_iter()
                .filter(|c| picked(c.label(session::TARGET_LABEL), ""))
                .map(|c| c.id)
                .collect();
            if let Ok(engine) = ctx.engine() {
                engine.remove_containers(&lost);
            }
            n += lost.len();
            println!("stopped {n} sessions");
            Ok(0)
        }
    }
}

fn list(ctx: &Ctx, json: bool) -> Result<i32> {
    let now = crate::host::unix_now();
    let rows = live();
    let known: Vec<String> = rows.iter().map(|(r, _)| r.container.clone()).collect();
    let lost = orphaned(ctx, &known);
    note_engine_switch(ctx);
    if json {
        let mut v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(r, st)| {
                serde_json::json!({
                    "id": r.id, "target": r.target, "image": r.image, "root": r.root,
                    "engine": r.engine.name(), "container": r.container,
                    "age_seconds": now.saturating_sub(r.created),
                    "calls": st.as_ref().map(|s| s.calls), "active": st.as_ref().map(|s| s.active),
                    "responding": st.is_some(), "orphaned": false,
                })
            })
            .collect();
        v.extend(lost.iter().map(|c| {
            serde_json::json!({
                "id": c.label(session::SESSION_LABEL), "target": c.label(session::TARGET_LABEL),
                "container": c.name, "state": c.state, "orphaned": true,
            })
        }));
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if rows.is_empty() && lost.is_empty() {
        println!("no live sessions");
        return Ok(0);
    }
    println!(
        "{:<24} {:<34} {:>6} {:>7}  {:<11} ROOT",
        "TARGET", "IMAGE", "AGE", "CALLS", "ENGINE"
    );
    for (r, st) in rows {
        println!(
            "{:<24} {:<34} {:>6} {:>7}  {:<11} {}",
            r.target.as_deref().unwrap_or("-"),
            r.image,
            age(now.saturating_sub(r.created)),
            st.map_or("slow".to_string(), |s| s.calls.to_string()),
            r.engine.name(),
            r.root.display()
        );
    }
    for c in lost {
        println!(
            "{:<24} {:<34} {:>6} {:>7}  {:<11} (record lost; 'sessions stop --all' ends it)",
            c.label(session::TARGET_LABEL).unwrap_or("-"),
            c.name,
            "-",
            "-",
            "?"
        );
    }
    Ok(0)
}
