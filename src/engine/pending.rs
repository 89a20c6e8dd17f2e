//! An engine command that runs in the background while the caller does
//! something else: no stdin, its stdout and stderr read by threads up to a
//! bound (the rest discarded, so it never blocks on a full pipe), awaited
//! with a time limit, and killed and reaped when dropped unawaited.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Pending {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// What a finished command said.
pub struct Answer {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Read at most `cap` bytes of `from` in a thread, discarding the rest.
fn read_capped(from: Option<impl Read + Send + 'static>, cap: u64) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut r) = from {
            // A read error ends the answer where it stopped; the exit status
            // says whether the command succeeded.
            let _ = r.by_ref().take(cap).read_to_end(&mut s);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
        s
    })
}

impl Pending {
    /// Start `cmd`, keeping at most `cap` bytes of each of its outputs.
    pub fn start(mut cmd: Command, cap: u64) -> std::io::Result<Pending> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = Some(read_capped(child.stdout.take(), cap));
        let stderr = Some(read_capped(child.stderr.take(), cap));
        Ok(Pending {
            child,
            stdout,
            stderr,
        })
    }

    /// Its answer once it exits; killed (and an error of kind `TimedOut`)
    /// when it has not within `timeout`.
    pub fn wait(mut self, timeout: Duration) -> std::io::Result<Answer> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                // Drop kills and reaps it; its readers are left to end
                // with the pipes.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {}s", timeout.as_secs_f64()),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let join =
            |h: Option<JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(Answer {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_none()) {
            // Already gone when this fails; the wait below reaps it either way.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn answers_are_kept_up_to_the_bound() {
        let a = Pending::start(sh("head -c 100000 /dev/zero; echo err >&2; exit 3"), 1000)
            .unwrap()
            .wait(Duration::from_secs(20))
            .unwrap();
        assert_eq!(a.status.code(), Some(3));
        assert_eq!(a.stdout.len(), 1000);
        assert_eq!(a.stderr, b"err\n");
    }

    #[test]
    fn a_command_past_its_limit_is_killed() {
        let start = Instant::now();
        let p = Pending::start(sh("exec sleep 30"), 100).unwrap();
        let pid = p.child.id();
        let e = p.wait(Duration::from_millis(100)).err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(10));
        // Reaped: no such process any more.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn dropped_unawaited_it_is_killed_and_reaped() {
        let p = Pending::start(sh("exec sleep 30"), 100).unwrap();
        let pid = p.child.id();
        drop(p);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
