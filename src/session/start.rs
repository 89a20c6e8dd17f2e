//! Starting a session: one starter at a time per image and user, the
//! session's mounts (the build tree around the call, and what superseded
//! sessions covered), its container and the agent in it.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

use crate::call::argpaths::is_broad;
use crate::call::mounts::{self, MountSet};
use crate::call::request::Request;
use crate::engine::labels;
use crate::engine::{Choice, Engine, Flavor, ImageCheck};
use crate::signals;

use super::client::{CallError, Live, call, run_in_live, stop};
use super::protocol;
use super::record::{
    MountRecord, Record, container_name, exe_path_and_identity, forget, identity, is_static_elf,
    records, sessions_dir, set_key_link,
};
use super::{
    AGENT_COMMAND, AGENT_PATH, RUNTIME_LABEL, SESSION_LABEL, TARGET_LABEL, idle_seconds,
    runtime_label,
};

/// Where a session's read-write root should be: the top of the build tree
/// containing `cwd` (recursive make enters subfolders, which must share the
/// session), found by walking up while the parent still looks like part of
/// a build (Makefile, config.status...).
fn build_root(cwd: &Path) -> PathBuf {
    const MARKERS: &[&str] = &[
        "Makefile",
        "GNUmakefile",
        "makefile",
        "config.status",
        "config.log",
        "CMakeCache.txt",
        "build.ninja",
        "meson-private",
    ];
    let home = crate::host::user::home();
    let mut root = cwd.to_path_buf();
    while let Some(parent) = root.parent() {
        if is_broad(parent, home.as_deref()) || !MARKERS.iter().any(|m| parent.join(m).exists()) {
            break;
        }
        root = parent.to_path_buf();
    }
    root
}

/// The image a session starts from.
pub enum Image {
    /// Known to be up to date: its id.
    Ready(String),
    /// Checked while the container starts (an `image inspect` started just
    /// before): the start never pulls, and when the check finds the image
    /// missing or stale the container is removed and nothing is recorded,
    /// so that the caller ensures the image the usual way. This saves the
    /// first call of a build one engine call's time.
    Checking(ImageCheck),
}

impl Image {
    fn id(self, checksum: &str) -> Result<String> {
        match self {
            Image::Ready(id) => Ok(id),
            Image::Checking(check) => check
                .finish(checksum)
                .context("the image is missing or not up to date"),
        }
    }
}

/// Start a session for `req` (unless one appeared meanwhile) and run the
/// request in it. None when no session can serve it: sessions cannot work
/// here (the binary is not static), or the one that serves it is slow to
/// answer. Errors are for the caller to fall back on.
pub fn start_and_run(
    engine: &Engine,
    req: &Request,
    checksum: &str,
    image: Image,
    target: Option<&str>,
    choice: Choice,
) -> Result<Option<i32>> {
    let Some((exe_path, exe)) = exe_path_and_identity() else {
        return Ok(None);
    };
    if !is_static_elf(&exe_path) {
        crate::diag::debug("sessions need a statically linked qemu-cross-cc");
        return Ok(None);
    }
    let dir = sessions_dir()?;
    // One starter at a time per image and user; the others then find it.
    let lock_file = crate::state::safefs::open_private(
        &dir.join(format!(
            ".start-{}.lock",
            crate::image::dockerfile::bytes_checksum(req.image.as_bytes())
        )),
        OpenOptions::new().create(true).truncate(false).write(true),
    )?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("lock: {e}"))?;
    match run_in_live(req, checksum, choice) {
        Live::Ran(code) => return Ok(Some(code)),
        // Another caller's session came up and is slow: one-shot.
        Live::Busy => return Ok(None),
        Live::None => {}
    }

    // Short: the socket path must stay short (unix socket addresses).
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let sdir = crate::state::paths::runtime_subdir(&format!("sessions/{id}"))?;
    let _removed_on_signal = signals::TempDirGuard::new(&sdir);
    let root = build_root(&req.cwd);
    let mut set = req.mounts.clone();
    set.add(root.clone(), true);
    // The build tree's parent, read-only: out-of-tree builds usually keep
    // their sources beside the build folder (`../src`).
    let home = crate::host::user::home();
    if let Some(parent) = root.parent() {
        if !is_broad(parent, home.as_deref()) {
            set.add(parent.to_path_buf(), false);
        }
    }
    // Sessions of the same tree that did not cover this call: the new one
    // covers what they did too, and replaces them. Sessions that would have
    // served it but for a folder made again (`rm -rf build`) end too; they
    // run until now so that the new one can join their network (below).
    let all = records();
    let mut superseded: Vec<&Record> = Vec::new();
    let mut stale: Vec<&Record> = Vec::new();
    for r in all
        .iter()
        .filter(|r| r.compatible(&req.image, checksum, choice, &exe))
    {
        if !r.mounts_current() {
            if r.mount_set().covers_set(&req.mounts) {
                stale.push(r);
            }
        } else if r.root == root {
            superseded.push(r);
        }
    }
    for r in &superseded {
        for m in &r.mounts {
            set.add_alias(m.path.clone(), m.source.clone(), m.writable);
        }
    }
    let mut mounts = Vec::new();
    for m in set.iter() {
        let (dev, ino, born) =
            identity(&m.source).with_context(|| format!("cannot stat {}", m.source.display()))?;
        mounts.push(MountRecord {
            path: m.path.clone(),
            source: m.source.clone(),
            writable: m.writable,
            dev,
            ino,
            born,
        });
    }
    let mut rec = Record {
        id: id.clone(),
        engine: engine.kind(),
        image: req.image.clone(),
        // Known once the container runs (below).
        image_id: String::new(),
        checksum: checksum.to_string(),
        target: target.map(String::from),
        root,
        mounts,
        uid: crate::host::user::uid(),
        gid: crate::host::user::gid(),
        container: container_name(&id),
        created: crate::host::unix_now(),
        exe,
    };
    // From here on, a failure removes the container it started: a session
    // nobody can find must not idle on.
    let donor = network_donor(engine, &all);
    let pull_never = matches!(image, Image::Checking(_));
    let started = start_container(engine, &rec, &exe_path, &set, donor.as_deref(), pull_never)
        .and_then(|()| {
            rec.image_id = image.id(checksum)?;
            crate::state::safefs::write_private(
                &sdir.join("record.json"),
                &serde_json::to_vec_pretty(&rec)?,
            )
        });
    if let Err(e) = started {
        engine.remove_containers(std::slice::from_ref(&rec.container));
        forget(&rec);
        // They serve no call either way (see `client::try_one`).
        for r in stale {
            stop(r);
        }
        return Err(e);
    }
    // Only a hint: without it, calls find the session by its record.
    if let Err(e) = set_key_link(&rec) {
        crate::diag::debug(format!("{e:#}"));
    }
    drop(_lock);
    for r in superseded.into_iter().chain(stale) {
        stop(r);
    }
    match call(&rec, req) {
        Ok(code) => Ok(Some(code)),
        Err(CallError::Skip) => bail!("the new session is slow to answer"),
        Err(CallError::Retired) => bail!("the new session did not answer"),
        Err(CallError::Gone) => {
            stop(&rec);
            bail!("the new session did not accept the call")
        }
    }
}

/// A running session container of this engine whose network namespace a
/// new session joins instead of making its own: docker takes ~80 ms of a
/// ~190 ms start to make one (docs/performance.md), podman nothing worth
/// saving. Every session has no network but a loopback, so the joined one
/// has none either; it is shared only among this user's sessions (records
/// of this runtime folder), and its name comes from the record's id, never
/// from the record's text. An agent that takes a connection is running.
fn network_donor(engine: &Engine, records: &[Record]) -> Option<String> {
    if engine.flavor() != Flavor::Docker {
        return None;
    }
    records
        .iter()
        .filter(|r| r.engine == engine.kind())
        .take(3)
        .find(|r| protocol::connect_within(&r.socket(), Duration::from_millis(50)).is_ok())
        .map(|r| container_name(&r.id))
}

/// The files docker would otherwise take from the donor for a container
/// that joins its network (`/etc/hosts`, `/etc/resolv.conf`,
/// `/etc/hostname`): the donor's own, or, when the donor itself joined, the
/// files of the container that made the network. A start that races the
/// removal of that container's folder fails, so a joining session brings
/// its own (a loopback network: localhost only, no name server), written
/// in its new private folder (mounted like that folder) and read-only.
fn own_network_files(sdir: &Path, container: &str, z: &str) -> Result<Vec<OsString>> {
    let files: [(&str, String); 3] = [
        (
            "hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into(),
        ),
        ("resolv.conf", String::new()),
        ("hostname", format!("{container}\n")),
    ];
    let mut args = Vec::new();
    for (name, text) in files {
        let path = sdir.join(name);
        crate::state::safefs::write_private(&path, text.as_bytes())?;
        let mut vol = OsString::from(path.as_os_str());
        vol.push(format!(":/etc/{name}:ro{z}"));
        args.extend(["-v".into(), vol]);
    }
    Ok(args)
}

fn start_container(
    engine: &Engine,
    rec: &Record,
    exe: &Path,
    set: &MountSet,
    donor: Option<&str>,
    pull_never: bool,
) -> Result<()> {
    // A signal before the session is up removes its container.
    let _removed_on_signal = crate::engine::container::removed_on_signal(engine, &rec.id);
    let sdir = rec.dir();
    let selinux = mounts::selinux_enabled();
    let z = if selinux { ",z" } else { "" };
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "-d".into(),
        "--rm".into(),
        "--name".into(),
        rec.container.clone().into(),
        "--label".into(),
        format!("{}={}", labels::INSTANCE, rec.id).into(),
        "--label".into(),
        format!("{SESSION_LABEL}={}", rec.id).into(),
    ];
    args.extend(
        crate::engine::orphans::label_args()
            .into_iter()
            .map(OsString::from),
    );
    if let Some(t) = &rec.target {
        args.extend(["--label".into(), format!("{TARGET_LABEL}={t}").into()]);
    }
    args.extend([
        "--label".into(),
        format!("{RUNTIME_LABEL}={}", runtime_label()).into(),
    ]);
    args.extend(engine.user_args().into_iter().map(OsString::from));
    let network_at = args.len() + 1;
    args.extend([
        "--network".into(),
        "none".into(),
        // The calls' temporary folders (and the compilers' files in them)
        // on a tmpfs: an overlayfs /tmp makes each call's folder and its
        // removal cost ~0.15 ms (docs/performance.md). `exec`: builds run
        // scripts they write there.
        "--tmpfs".into(),
        "/tmp:rw,exec,nosuid,nodev,mode=1777".into(),
        "--entrypoint".into(),
        AGENT_PATH.into(),
    ]);
    if pull_never {
        // Not yet known to be here: a missing image must fail the start,
        // never be fetched from a registry.
        args.extend(["--pull".into(), "never".into()]);
    }
    let mut exe_vol = OsString::from(exe.as_os_str());
    exe_vol.push(format!(":{AGENT_PATH}:ro"));
    args.extend(["-v".into(), exe_vol]);
    let mut sock_vol = OsString::from(sdir.as_os_str());
    sock_vol.push(":");
    sock_vol.push(sdir.as_os_str());
    sock_vol.push(format!(":rw{z}"));
    args.extend(["-v".into(), sock_vol]);
    args.extend(set.volume_args(selinux)?.into_iter().map(OsString::from));
    args.push(rec.image.clone().into());
    args.push(AGENT_COMMAND.into());
    args.push("--socket".into());
    args.push(rec.socket().into_os_string());
    args.push("--idle".into());
    args.push(idle_seconds().to_string().into());
    for m in set.iter() {
        args.push("--mount".into());
        args.push(m.path.clone().into_os_string());
    }
    let run = |args: &[OsString]| {
        engine
            .command(args)
            .stdin(Stdio::null())
            .output()
            .context("cannot start a session container")
    };
    let mut out = None;
    if let Some(d) = donor {
        let mut joined = args.clone();
        joined[network_at] = format!("container:{d}").into();
        joined.splice(
            network_at + 1..network_at + 1,
            own_network_files(&sdir, &rec.container, z)?,
        );
        let o = run(&joined)?;
        if o.status.success() {
            out = Some(o);
        } else {
            // The donor ended meanwhile: a network of its own after all.
            crate::diag::debug(format!(
                "cannot join the network of {d}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            engine.remove_containers(std::slice::from_ref(&rec.container));
        }
    }
    let out = match out {
        Some(o) => o,
        None => run(&args)?,
    };
    if !out.status.success() {
        bail!(
            "starting a session container failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // The agent creates its socket within milliseconds of starting; check
    // now and then that the container still runs, so that an agent that
    // cannot start costs little.
    let started = Instant::now();
    let mut checked = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if protocol::connect_within(&rec.socket(), protocol::ANSWER_TIMEOUT).is_ok() {
            return Ok(());
        }
        if checked.elapsed() > Duration::from_millis(300) {
            checked = Instant::now();
            let o = engine
                .command(["ps", "-q", "--filter", &format!("name={}", rec.container)])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            if o.is_ok_and(|o| o.status.success() && o.stdout.is_empty()) {
                bail!("the session agent exited at once");
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    engine.remove_containers(std::slice::from_ref(&rec.container));
    bail!("the session agent did not start")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_root_climbs_through_makefiles() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("proj/build");
        std::fs::create_dir_all(top.join("sub/deeper")).unwrap();
        std::fs::write(top.join("Makefile"), "").unwrap();
        std::fs::write(top.join("sub/Makefile"), "").unwrap();
        assert_eq!(build_root(&top.join("sub/deeper")), top);
        assert_eq!(build_root(&top.join("sub")), top);
        assert_eq!(build_root(&top), top);
    }
}
