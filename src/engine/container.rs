//! Running containers: the one-shot `run --rm` every caller uses, labelled
//! so that a signal, `clean` and the orphan sweep find what it started.

use std::ffi::OsString;

use anyhow::Result;

use crate::engine::Engine;
use crate::engine::labels;
use crate::signals::CleanupGuard;

/// While the guard lives, a signal removes the containers labelled with
/// the instance `label`.
pub fn removed_on_signal(engine: &Engine, label: &str) -> CleanupGuard {
    let (kind, label) = (engine.kind(), label.to_string());
    CleanupGuard::new(move || Engine::new(kind).remove_instance(&label))
}

/// `ENGINE run --rm --label INSTANCE=UUID [user options] ARGS...`; returns
/// the container's exit status. Unless `keep`, a signal meanwhile removes the
/// container. The container also carries the caller's uid and identity, so
/// that one created by a caller killed before it started is found and
/// removed later (see `orphans`). `env` are variables that `ARGS` name with
/// `-e NAME` only: their values travel in the engine client's environment,
/// never on a command line that `ps` shows to every user.
pub fn run(
    engine: &Engine,
    args: Vec<OsString>,
    keep: bool,
    stdout: Option<std::process::Stdio>,
    as_user: bool,
    env: &[(String, OsString)],
) -> Result<i32> {
    let label = uuid::Uuid::new_v4().simple().to_string();
    let mut full: Vec<OsString> = vec![
        "run".into(),
        "--rm".into(),
        "--label".into(),
        format!("{}={label}", labels::INSTANCE).into(),
    ];
    full.extend(
        crate::engine::orphans::label_args()
            .into_iter()
            .map(OsString::from),
    );
    if as_user {
        full.extend(engine.user_args().into_iter().map(OsString::from));
    }
    full.extend(args);
    let guard = (!keep).then(|| removed_on_signal(engine, &label));
    let mut cmd = engine.command(&full);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(s) = stdout {
        cmd.stdout(s);
    }
    let code = engine.run_command(cmd)?;
    if code >= 125 && guard.is_some() {
        // The engine itself failed: a container may be left behind.
        engine.remove_instance(&label);
    }
    Ok(code)
}
