//! Facts about the engines remembered in `RUNTIME/engine.json`: which
//! engine `auto` found and where each engine runs its containers (checked
//! again after a minute), and whether an engine is rootless (for a day).
//! All are keyed by the variables that point an engine at another service.
//! Only engine kinds are stored, never commands.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Endpoint, Kind};

const ROOTLESS_TTL: u64 = 86_400;
/// A state file larger than this is not ours.
const MAX_BYTES: u64 = 256 << 10;

/// How long the detected engine is used without asking it again
/// (`QEMU_CROSS_CC_ENGINE_TTL`, seconds; default 60).
fn detect_ttl() -> u64 {
    std::env::var("QEMU_CROSS_CC_ENGINE_TTL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Switch {
    pub from: Kind,
    pub to: Kind,
    pub at: u64,
    pub why: String,
}

#[derive(Serialize, Deserialize)]
struct Detected {
    kind: Kind,
    verified: u64,
    #[serde(default)]
    switch: Option<Switch>,
}

#[derive(Default, Serialize, Deserialize)]
struct Facts {
    #[serde(default)]
    detected: BTreeMap<String, Detected>,
    #[serde(default)]
    rootless: BTreeMap<String, (bool, u64)>,
    /// When each engine was last swept for orphaned containers.
    #[serde(default)]
    swept: BTreeMap<String, u64>,
    /// Where each engine runs containers, and when it said so.
    #[serde(default)]
    endpoints: BTreeMap<String, (Endpoint, u64)>,
}

fn path() -> Option<PathBuf> {
    crate::state::paths::runtime_dir()
        .ok()
        .map(|d| d.join("engine.json"))
}

pub use crate::host::unix_now as now;

pub fn ago(at: u64) -> String {
    let s = now().saturating_sub(at);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

/// The facts, when the file is this user's own private file.
fn load() -> Facts {
    path()
        .and_then(|p| crate::state::safefs::read_state(&p, MAX_BYTES))
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort: a full or read-only runtime folder only costs probes.
fn save(f: &Facts) {
    if let (Some(p), Ok(b)) = (path(), serde_json::to_vec(f)) {
        let _ = crate::state::safefs::write_private(&p, &b);
    }
}

/// An engine as it is pointed now.
pub fn engine_key(kind: Kind) -> String {
    format!("{}|{}", kind.name(), super::endpoint::env_key())
}

fn fresh_endpoint(f: &mut Facts, kind: Kind) -> Option<Endpoint> {
    let (at, when) = f.endpoints.remove(&engine_key(kind))?;
    (now().saturating_sub(when) < detect_ttl()).then_some(at)
}

/// The remembered engine, whether it is still fresh, and where it runs
/// containers when that is known and fresh.
pub fn get_detected(key: &str) -> Option<(Kind, bool, Option<Endpoint>)> {
    let mut f = load();
    let d = f.detected.remove(key)?;
    Some((
        d.kind,
        now().saturating_sub(d.verified) < detect_ttl(),
        fresh_endpoint(&mut f, d.kind),
    ))
}

pub fn get_endpoint(kind: Kind) -> Option<Endpoint> {
    fresh_endpoint(&mut load(), kind)
}

pub fn set_endpoint(kind: Kind, at: &Endpoint) {
    let mut f = load();
    f.endpoints.insert(engine_key(kind), (at.clone(), now()));
    save(&f);
}

pub fn get_switch(key: &str) -> Option<Switch> {
    load().detected.remove(key)?.switch
}

/// Remember `kind` as verified now; a new switch replaces the last one,
/// which is kept otherwise.
pub fn set_detected(key: &str, kind: Kind, switch: Option<Switch>) {
    let mut f = load();
    let old = f.detected.remove(key).and_then(|d| d.switch);
    f.detected.insert(
        key.to_string(),
        Detected {
            kind,
            verified: now(),
            switch: switch.or(old),
        },
    );
    save(&f);
}

/// How long a call waits after a sweep of orphaned containers before it
/// sweeps again (`QEMU_CROSS_CC_SWEEP_INTERVAL`, seconds; default 600).
/// Longer than the detection's minute: an orphan holds only a name and a
/// layer, and podman's list costs the first call after each pause as much
/// as its probe.
fn sweep_interval() -> u64 {
    std::env::var("QEMU_CROSS_CC_SWEEP_INTERVAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600)
}

/// Whether `kind` is due for a sweep (see `sweep_interval`); marks it
/// swept.
pub fn sweep_due(kind: Kind) -> bool {
    let mut f = load();
    let at = f.swept.get(kind.name()).copied().unwrap_or(0);
    if now().saturating_sub(at) < sweep_interval() {
        return false;
    }
    f.swept.insert(kind.name().to_string(), now());
    save(&f);
    true
}

pub fn get_rootless(key: &str) -> Option<bool> {
    let (r, at) = load().rootless.remove(key)?;
    (now().saturating_sub(at) < ROOTLESS_TTL).then_some(r)
}

pub fn set_rootless(key: &str, r: bool) {
    let mut f = load();
    f.rootless.insert(key.to_string(), (r, now()));
    save(&f);
}
