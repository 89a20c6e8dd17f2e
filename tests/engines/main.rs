//! Tests against the real engines (docker and podman, started by
//! tests/setup-engines.sh). Every test runs once per engine and is named
//! after it (`docker::build_twice`, `podman::build_twice`); a subset also
//! runs through `sudo -n docker` (`sudo-docker::build_twice`, see
//! `sudo_docker`).
//!
//! A custom harness (libtest-mimic) so that the run can build shared fixture
//! images once and remove everything it created at the end.

mod agent_faults;
mod baremetal;
mod core;
mod distcc;
mod glibc;
mod hardening;
mod leaks;
mod libraries;
mod projects;
mod remote;
mod runner;
mod sessions;
mod sudo_docker;
mod support;
mod targets;
mod windows;

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

use support::{Eng, T};

/// Tests that must not overlap with any other (they remove every labelled
/// container) take this for writing; all others for reading.
static GATE: RwLock<()> = RwLock::new(());

/// A test body: gets its engine.
pub type TestFn = fn(Eng) -> ();

/// How a test shares the machine.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

fn run_caught(f: impl FnOnce() + std::panic::UnwindSafe) -> Result<(), Failed> {
    std::panic::catch_unwind(f).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "test panicked".into());
        Failed::from(msg)
    })
}

/// Each finished test: its name, the time it waited for the gate, the time
/// it ran. Printed at the end (the slowest first) to show where a run's
/// time goes.
static TIMES: Mutex<Vec<(String, Duration, Duration)>> = Mutex::new(Vec::new());

/// One test's times, recorded when it ends, by failing too.
struct Timing {
    name: String,
    waited: Duration,
    started: Instant,
}

impl Drop for Timing {
    fn drop(&mut self) {
        let record = (
            std::mem::take(&mut self.name),
            self.waited,
            self.started.elapsed(),
        );
        TIMES.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }
}

/// Run `f` under the gate, and record how long it waited and ran.
fn timed(name: String, mode: Mode, f: impl FnOnce()) {
    let asked = Instant::now();
    let _guard = match mode {
        Mode::Shared => Guard::Read(GATE.read().unwrap_or_else(|e| e.into_inner())),
        Mode::Exclusive => Guard::Write(GATE.write().unwrap_or_else(|e| e.into_inner())),
    };
    let _timing = Timing {
        name,
        waited: asked.elapsed(),
        started: Instant::now(),
    };
    f();
}

/// The slowest tests and the sums, on stderr (after libtest's summary).
fn report_times(wall: Duration) {
    let mut times = std::mem::take(&mut *TIMES.lock().unwrap_or_else(|e| e.into_inner()));
    if times.is_empty() {
        return;
    }
    times.sort_by_key(|t| std::cmp::Reverse(t.2));
    let ran: Duration = times.iter().map(|t| t.2).sum();
    let waited: Duration = times.iter().map(|t| t.1).sum();
    eprintln!(
        "engine tests: {} ran in {:.0} s of wall time, {:.0} s of test time, {:.0} s waiting for a test that runs alone; the slowest:",
        times.len(),
        wall.as_secs_f64(),
        ran.as_secs_f64(),
        waited.as_secs_f64()
    );
    for (name, wait, run) in times.iter().take(25) {
        eprintln!(
            "  {:7.1} s  {name} (waited {:.1} s)",
            run.as_secs_f64(),
            wait.as_secs_f64()
        );
    }
}

/// A test named `name`, run under the gate as `mode` says and timed; with
/// its mode, for the ordering.
fn trial(
    name: String,
    mode: Mode,
    f: impl FnOnce() + Send + std::panic::UnwindSafe + 'static,
) -> (Mode, Trial) {
    let test = Trial::test(name.clone(), move || run_caught(|| timed(name, mode, f)));
    (mode, test)
}

#[allow(dead_code)]
enum Guard<'a> {
    Read(std::sync::RwLockReadGuard<'a, ()>),
    Write(std::sync::RwLockWriteGuard<'a, ()>),
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for eng in Eng::ALL {
        for (name, f, mode) in core::TESTS
            .iter()
            .chain(targets::TESTS)
            .chain(sessions::TESTS)
            .chain(agent_faults::TESTS)
            .chain(hardening::TESTS)
            .chain(libraries::TESTS)
            .chain(glibc::TESTS)
            .chain(windows::TESTS)
            .chain(baremetal::TESTS)
            .chain(projects::TESTS)
            .chain(leaks::TESTS)
            .chain(runner::TESTS)
            .chain(distcc::TESTS)
            .chain(remote::TESTS)
        {
            let f = *f;
            trials.push(trial(format!("{eng}::{name}"), *mode, move || f(eng)));
        }
    }
    // The subset through sudo docker.
    let from = |tests: &'static [(&'static str, TestFn, Mode)], names: &[&str]| {
        let picked: Vec<_> = tests.iter().filter(|(n, ..)| names.contains(n)).collect();
        assert_eq!(picked.len(), names.len(), "a sudo-docker test is missing");
        picked
    };
    for (name, f, mode) in from(core::TESTS, sudo_docker::FROM_CORE)
        .into_iter()
        .chain(from(sessions::TESTS, sudo_docker::FROM_SESSIONS))
        .chain(sudo_docker::TESTS)
    {
        let (eng, f) = (Eng::SudoDocker, *f);
        trials.push(trial(format!("{eng}::{name}"), *mode, move || f(eng)));
    }
    // The slow per-target builds, interleaved by engine.
    for (i, target) in targets::TARGETS.iter().enumerate() {
        for eng in Eng::ALL {
            trials.push(trial(
                format!("{eng}::target::{}", target.name),
                Mode::Shared,
                move || targets::target_builds_and_runs(eng, &targets::TARGETS[i]),
            ));
        }
    }
    // Make sure the run exists before tests start in parallel (listing the
    // tests creates nothing).
    if !args.list {
        let _ = support::run();
        let _ = T::new(Eng::Docker, "start", false);
    }
    // The tests that must run alone go first, while nothing else runs: one
    // queued behind a long test would hold every other thread idle until
    // that test ends (a waiting writer blocks new readers).
    let (alone, shared): (Vec<_>, Vec<_>) = trials
        .into_iter()
        .partition(|(mode, _)| *mode == Mode::Exclusive);
    let trials = alone.into_iter().chain(shared).map(|(_, t)| t).collect();
    let wall = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    if !args.list {
        report_times(wall.elapsed());
        support::cleanup();
    }
    conclusion.exit();
}
