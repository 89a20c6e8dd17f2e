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

use std::sync::RwLock;

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

fn trial(eng: Eng, name: &'static str, f: TestFn, mode: Mode) -> Trial {
    Trial::test(format!("{eng}::{name}"), move || {
        run_caught(|| {
            let _guard = match mode {
                Mode::Shared => Guard::Read(GATE.read().unwrap_or_else(|e| e.into_inner())),
                Mode::Exclusive => Guard::Write(GATE.write().unwrap_or_else(|e| e.into_inner())),
            };
            f(eng)
        })
    })
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
            trials.push(trial(eng, name, *f, *mode));
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
        trials.push(trial(Eng::SudoDocker, name, *f, *mode));
    }
    // The slow per-target builds, interleaved by engine.
    for (i, target) in targets::TARGETS.iter().enumerate() {
        for eng in Eng::ALL {
            trials.push(Trial::test(
                format!("{eng}::target::{}", target.name),
                move || {
                    run_caught(|| {
                        let _g = GATE.read().unwrap_or_else(|e| e.into_inner());
                        targets::target_builds_and_runs(eng, &targets::TARGETS[i]);
                    })
                },
            ));
        }
    }
    // Make sure the run exists before tests start in parallel (listing the
    // tests creates nothing).
    if !args.list {
        let _ = support::run();
        let _ = T::new(Eng::Docker, "start", false);
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if !args.list {
        support::cleanup();
    }
    conclusion.exit();
}
