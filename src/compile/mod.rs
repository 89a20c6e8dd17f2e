//! The compile path: run one tool of a target (or `cc`'s compiler) inside
//! its image as if it were installed on the host.
//!
//! The command line is read once (see `cmdline`). The current directory is
//! mounted read-write at the same path, the paths the arguments reach are
//! mounted too (see `argpaths`), the tool runs as the calling user with no
//! network, and argv, stdin, stdout, stderr and the exit status pass through
//! untouched. Nothing of our own is printed on success.

pub mod ccache;
pub mod queries;

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::call::depfiles;
use crate::call::request::{self, Request};
use crate::context::Ctx;
use crate::diag::debug;
use crate::engine::container;
use crate::engine::{Engine, Kind};
use crate::session;
use crate::target::ensure;
use crate::target::plugin::Plugin;

/// Run the request in a fresh container (`run --rm`). The variables' values
/// travel in the engine client's environment, or in an env file where the
/// client loses its environment (`sudo`).
pub fn one_shot(engine: &Engine, req: &Request) -> Result<i32> {
    let file = (engine.kind() == Kind::SudoDocker)
        .then(|| env_file(&req.env))
        .transpose()?;
    let env: &[(String, OsString)] = if file.is_some() { &[] } else { &req.env };
    container::run(
        engine,
        req.run_args(file.as_ref().map(|f| f.path()))?,
        false,
        req.stdout_stdio()?,
        true,
        env,
    )
}

/// The variables as an engine env file (`NAME=VALUE` lines), private to the
/// user and removed when dropped.
fn env_file(env: &[(String, OsString)]) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let dir = crate::state::paths::runtime_dir()?;
    let mut f = tempfile::Builder::new()
        .prefix(".env")
        .tempfile_in(&dir)
        .map_err(|e| crate::state::safefs::io_error(e, "create a file in", &dir))?;
    for (k, v) in env {
        if v.as_bytes().contains(&b'\n') {
            bail!("cannot pass {k} to the container through sudo: its value holds a newline");
        }
        f.write_all(k.as_bytes())
            .and_then(|()| f.write_all(b"="))
            .and_then(|()| f.write_all(v.as_bytes()))
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|e| crate::state::safefs::io_error(e, "write", f.path()))?;
    }
    Ok(f)
}

/// Run the request: in a live session when one serves it (no engine call at
/// all), else start a session while the image is checked, else prepare the
/// image, start a session and run there, else run one-shot. `prepare`
/// ensures the image and returns its id; `checksum` is the one it must
/// carry (any, when empty).
fn run_with_sessions(
    ctx: &Ctx,
    req: &Request,
    target: Option<&str>,
    checksum: &str,
    prepare: impl FnOnce(&Engine) -> Result<Option<String>>,
) -> Result<i32> {
    // The runtime folder decides what runs: refuse one that is not ours.
    crate::state::paths::runtime_dir()?;
    let mut sessions = session::enabled();
    if sessions {
        match session::run_in_live(req, checksum, ctx.choice) {
            session::Live::Ran(code) => return Ok(code),
            // A session that serves this is only slow: it keeps its calls,
            // and this one runs one-shot instead of starting another.
            session::Live::Busy => sessions = false,
            session::Live::None => {}
        }
    }
    if sessions {
        // An image an earlier session ran: start a new session straight away.
        if let Some((engine, id)) = session::known_image(&req.image, checksum, ctx.choice) {
            engine.require_local()?;
            let image = session::Image::Ready(id);
            match session::start_and_run(&engine, req, checksum, image, target, ctx.choice) {
                Ok(Some(code)) => return Ok(code),
                // No session can serve this call (see below): one-shot.
                Ok(None) => sessions = false,
                Err(e) => debug(format!("no session from the known image ({e:#})")),
            }
        }
    }
    let engine = ctx.local_engine()?;
    if sessions {
        // The usual case of a build's first call: the image is up to date.
        // Its check runs while the session starts, instead of before.
        if let Some(check) = engine.start_image_check(&req.image) {
            let image = session::Image::Checking(check);
            match session::start_and_run(engine, req, checksum, image, target, ctx.choice) {
                Ok(Some(code)) => return Ok(code),
                Ok(None) => sessions = false,
                Err(e) => debug(format!("no session before the image is ensured ({e:#})")),
            }
        }
    }
    let image_id = prepare(engine)?;
    if let (true, Some(id)) = (sessions, image_id) {
        let image = session::Image::Ready(id);
        match session::start_and_run(engine, req, checksum, image, target, ctx.choice) {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => debug("no session serves this call; running one-shot"),
            Err(e) => debug(format!("no session ({e:#}); running one-shot")),
        }
    }
    one_shot(engine, req)
}

/// A tool of a target, called through its link (or as the target's cc):
/// a query answered on the host (`-print-prog-name=ld`), a plain compile
/// sent to distcc servers when the project names some, a query whose
/// answer names image paths (mapped into the exported sysroot), or a call
/// run in the target's image. `passed` gives the global options as
/// variables, for the calls distcc makes back to this program.
pub fn run_tool(
    ctx: &Ctx,
    plugin: &Plugin,
    tool: &str,
    argv0: &std::ffi::OsStr,
    args: Vec<OsString>,
    passed: impl FnOnce() -> crate::distcc::client::Passed,
) -> Result<i32> {
    let program = plugin
        .tools
        .get(tool)
        .with_context(|| format!("target {} has no tool '{tool}'", plugin.target))?;
    let compiler = crate::target::plugin::COMPILERS.contains(&tool);
    let cmd = request::command_line(&args)?;
    if compiler {
        if let Some(link) = queries::answer(plugin, &cmd, argv0) {
            println!("{}", link.display());
            return Ok(0);
        }
        if let Some(code) = crate::distcc::client::route(ctx, plugin, tool, &args, &cmd, passed) {
            return Ok(code);
        }
    }
    let path_query = compiler && queries::asks_image_paths(&cmd);
    let cached = compiler && !path_query && ccache::wanted(plugin, &cmd)?;
    let req = plugin_request(plugin, program.into(), args, &cmd)?;
    crate::diag::timing("request");
    if path_query {
        return queries::run_path_query(ctx, plugin, req);
    }
    if cached {
        return run_cached(ctx, plugin, req);
    }
    run_plugin_tool(ctx, plugin, &req)
}

/// A compile through ccache in the image, with the cache folder of the
/// image's checksum (see `ccache`).
fn run_cached(ctx: &Ctx, plugin: &Plugin, mut req: Request) -> Result<i32> {
    let want = ensure::wanted_checksum(plugin, &ctx.library)?;
    crate::diag::timing("checksum");
    let dir = ccache::folder(&plugin.target, &want)?;
    debug(format!("compiling through ccache, cache {}", dir.display()));
    ccache::wrap(&mut req, dir);
    run_plugin_request(ctx, plugin, &req, &want)
}

/// `program args` (read as `cmd`) in the target's image, with the
/// plugin's extra paths mounted and its variables set.
pub fn plugin_request(
    plugin: &Plugin,
    program: OsString,
    args: Vec<OsString>,
    cmd: &crate::call::cmdline::CmdLine,
) -> Result<Request> {
    let sources: Vec<std::path::PathBuf> = plugin.paths.iter().map(Into::into).collect();
    Request::new(
        &plugin.image,
        program,
        args,
        cmd,
        &sources,
        &plugin.env,
        false,
    )
}

/// A plugin tool: ensure the target's image, then run.
pub fn run_plugin_tool(ctx: &Ctx, plugin: &Plugin, req: &Request) -> Result<i32> {
    // Configuration errors (a missing dockerfile) come before any engine call.
    let want = ensure::wanted_checksum(plugin, &ctx.library)?;
    crate::diag::timing("checksum");
    run_plugin_request(ctx, plugin, req, &want)
}

/// A plugin tool whose image must have the dockerfile checksum `want`.
fn run_plugin_request(ctx: &Ctx, plugin: &Plugin, req: &Request, want: &str) -> Result<i32> {
    with_depfiles(req, || {
        run_with_sessions(ctx, req, Some(&plugin.target), want, |engine| {
            ensure::ensure(engine, plugin, &ctx.library, want).map(Some)
        })
    })
}

/// Run, then make the depfiles the call wrote name only what the host sees
/// (see `depfiles`).
fn with_depfiles(req: &Request, run: impl FnOnce() -> Result<i32>) -> Result<i32> {
    // File times can lag the clock by a tick; rewriting is idempotent.
    let since = SystemTime::now() - Duration::from_secs(2);
    let code = run()?;
    depfiles::rewrite(&req.depfiles, since, &req.cwd, &req.mounts);
    Ok(code)
}

/// A tool of a given image (`cc -i IMAGE`): no dockerfile to check, but
/// the image must exist (no registry is assumed).
pub fn run_image_tool(ctx: &Ctx, req: &Request) -> Result<i32> {
    with_depfiles(req, || {
        run_with_sessions(ctx, req, None, "", |engine| {
            match engine.image_id(&req.image)? {
                Some(id) => Ok(Some(id)),
                None => bail!(
                    "image {} does not exist; build it first (qemu-cross-cc build -t {} -f DOCKERFILE)",
                    req.image,
                    req.image
                ),
            }
        })
    })
}
