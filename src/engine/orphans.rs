//! Containers nobody will clean up: created by a process that was killed
//! before it started them (`--rm` never fires for a container that never
//! ran), and session containers whose record was lost.
//!
//! Every container this tool starts carries the caller's uid and its owner
//! (boot id, pid namespace, pid and start time of the process that made it).
//! A *Created* container whose owner is gone is removed by the first call
//! that reaches the engine once a sweep is due (every
//! `QEMU_CROSS_CC_SWEEP_INTERVAL` seconds), by `clean` and by `sessions`.

use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::engine::pending::Pending;
use crate::engine::{Engine, Flavor};

/// The calling user's uid.
pub const UID_LABEL: &str = "com.qemu-cross-cc.uid";
/// The process that made the container.
pub const OWNER_LABEL: &str = "com.qemu-cross-cc.owner";

/// `boot id:pid namespace:pid:start time` of a process, as far as known.
fn identity_of(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces): the start
    // time is the 22nd field, the 20th after the closing parenthesis.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!(
        "{}:{}:{pid}:{start}",
        boot.trim(),
        ns.to_string_lossy()
            .trim_start_matches("pid:[")
            .trim_end_matches(']')
    ))
}

/// The labels that make a container traceable to this process.
pub fn label_args() -> Vec<String> {
    let mut v = vec![
        "--label".to_string(),
        format!("{UID_LABEL}={}", crate::host::user::uid()),
    ];
    if let Some(me) = identity_of(std::process::id()) {
        v.push("--label".into());
        v.push(format!("{OWNER_LABEL}={me}"));
    }
    v
}

/// Whether the owner recorded in a label is certainly gone: same boot and
/// pid namespace as this process, and no process with that pid and start
/// time. Anything it cannot tell counts as alive.
fn owner_gone(owner: &str) -> bool {
    let Some(me) = identity_of(std::process::id()) else {
        return false;
    };
    let mine: Vec<&str> = me.split(':').collect();
    let theirs: Vec<&str> = owner.split(':').collect();
    if theirs.len() != 4 || theirs[..2] != mine[..2] {
        return false;
    }
    let Ok(pid) = theirs[2].parse::<u32>() else {
        return false;
    };
    identity_of(pid).is_none_or(|now| now != owner)
}

/// Whether this process made the container.
pub fn made_here(c: &Container) -> bool {
    c.label(OWNER_LABEL).is_some()
        && c.label(OWNER_LABEL) == identity_of(std::process::id()).as_deref()
}

/// The containers of this user that carry `label` (`k` or `k=v`), in any
/// state, with their name, state and labels.
pub fn containers(engine: &Engine, label: &str) -> Result<Vec<Container>> {
    list(engine, &own(label))
}

/// The filters of this user's containers that carry `label`.
fn own(label: &str) -> [String; 2] {
    [
        format!("label={label}"),
        format!("label={UID_LABEL}={}", crate::host::user::uid()),
    ]
}

/// The container named `name`, whoever made it (names are the engine's,
/// not a user's).
pub fn named(engine: &Engine, name: &str) -> Result<Option<Container>> {
    // The filter matches parts of names too.
    Ok(list(engine, &[format!("name={name}")])?
        .into_iter()
        .find(|c| c.name == name))
}

fn list(engine: &Engine, filters: &[String]) -> Result<Vec<Container>> {
    let out = engine.output(list_args(engine, filters))?;
    parse_list(out.status, &out.stdout, &out.stderr)
}

/// `ps` of all containers that pass `filters`, one `Container` a line.
fn list_args<'a>(engine: &Engine, filters: &'a [String]) -> Vec<&'a str> {
    let format = match engine.flavor() {
        Flavor::Docker => "{{.ID}}\t{{.Names}}\t{{.State}}\t{{json .Labels}}",
        Flavor::Podman => "{{.ID}}\t{{.Names}}\t{{.State}}\t{{json .Labels}}",
    };
    let mut args = vec!["ps", "-a", "--no-trunc"];
    for f in filters {
        args.extend(["--filter", f.as_str()]);
    }
    args.extend(["--format", format]);
    args
}

fn parse_list(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Result<Vec<Container>> {
    if !status.success() {
        bail!(
            "listing containers failed: {}",
            String::from_utf8_lossy(stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(Container::parse)
        .collect())
}

/// One container as `ps` lists it.
#[derive(Clone, Debug)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub state: String,
    pub labels: BTreeMap<String, String>,
}

impl Container {
    fn parse(line: &str) -> Option<Container> {
        let mut f = line.splitn(4, '\t');
        let (id, name, state, labels) = (f.next()?, f.next()?, f.next()?, f.next()?);
        Some(Container {
            id: id.to_string(),
            name: name.to_string(),
            state: state_word(state),
            labels: parse_labels(labels),
        })
    }

    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }

    /// The pid of the process that made it (from its owner label).
    pub fn owner_pid(&self) -> Option<u32> {
        self.label(OWNER_LABEL)?.split(':').nth(2)?.parse().ok()
    }
}

/// The state as one lowercase word. docker prints it (`running`,
/// `created`, `paused`, `exited`); podman 4 prints its status instead (`Up 3
/// minutes ago`, `Exited (0) 2 seconds ago`, `Created`, `Initialized`).
fn state_word(s: &str) -> String {
    let first = s.split_whitespace().next().unwrap_or("").to_lowercase();
    if first == "up" {
        "running".into()
    } else {
        first
    }
}

/// podman prints the labels as a JSON object; docker as a JSON string
/// `k=v,k=v`.
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    match serde_json::from_str::<serde_json::Value>(s.trim()) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect(),
        Ok(serde_json::Value::String(s)) => s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Remove this user's containers that were created but never started by a
/// process that is gone. Returns how many.
pub fn sweep_created(engine: &Engine) -> Result<usize> {
    Ok(remove_dead(engine, containers(engine, OWNER_LABEL)?))
}

fn remove_dead(engine: &Engine, listed: Vec<Container>) -> usize {
    let dead: Vec<String> = listed
        .into_iter()
        // podman: `configured` and `initialized` never started either.
        .filter(|c| matches!(c.state.as_str(), "created" | "configured" | "initialized"))
        .filter(|c| c.label(OWNER_LABEL).is_some_and(owner_gone))
        .map(|c| c.id)
        .collect();
    engine.remove_containers(&dead);
    dead.len()
}

/// What a container list may print (some hundred bytes a container); a
/// list cut here misses the containers past it until the next sweep.
const LIST_CAP: u64 = 4 << 20;

/// `sweep_created` with its list asked in the background: started while
/// the engine is probed again, finished once it answered.
pub struct Sweep(Pending);

impl Sweep {
    /// The sweep, started when the engine is due for one (which marks it
    /// swept, see `Engine::sweep_due`).
    pub fn start_if_due(engine: &Engine) -> Option<Sweep> {
        if !engine.sweep_due() {
            return None;
        }
        let filters = own(OWNER_LABEL);
        let cmd = engine.command(list_args(engine, &filters));
        match Pending::start(cmd, LIST_CAP) {
            Ok(p) => Some(Sweep(p)),
            Err(e) => {
                crate::diag::debug(format!("cannot list containers to sweep: {e}"));
                None
            }
        }
    }

    /// Remove what the list shows to be orphaned. Returns how many.
    pub fn finish(self, engine: &Engine, timeout: Duration) -> Result<usize> {
        let a = self.0.wait(timeout)?;
        Ok(remove_dead(
            engine,
            parse_list(a.status, &a.stdout, &a.stderr)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_identity_is_alive_and_a_dead_pid_is_gone() {
        let me = identity_of(std::process::id()).unwrap();
        assert!(!owner_gone(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let them = identity_of(pid);
        child.wait().unwrap();
        if let Some(them) = them {
            assert!(owner_gone(&them));
        }
        // Another boot, or nonsense: cannot tell, so alive.
        assert!(!owner_gone("other-boot:1:1:1"));
        assert!(!owner_gone("garbage"));
    }

    #[test]
    fn states_of_both_engines_are_one_word() {
        assert_eq!(state_word("running"), "running");
        assert_eq!(state_word("Up 3 minutes ago"), "running");
        assert_eq!(state_word("Up Less than a second ago"), "running");
        assert_eq!(state_word("Exited (0) 2 seconds ago"), "exited");
        assert_eq!(state_word("Created"), "created");
        assert_eq!(state_word("Initialized"), "initialized");
        assert_eq!(state_word("Paused"), "paused");
        assert_eq!(state_word(""), "");
    }

    #[test]
    fn labels_of_both_engines_parse() {
        let d = parse_labels(r#""a=1,com.qemu-cross-cc.uid=0""#);
        assert_eq!(d.get(UID_LABEL).map(String::as_str), Some("0"));
        let p = parse_labels(r#"{"a":"1","com.qemu-cross-cc.uid":"0"}"#);
        assert_eq!(p.get("a").map(String::as_str), Some("1"));
    }
}
