//! The client/agent wire format: length-prefixed JSON frames on a unix
//! stream socket. The first frame of a run carries the caller's stdin,
//! stdout and stderr as SCM_RIGHTS, so the compiler writes straight to them.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes; the agent refuses other versions.
pub const VERSION: u32 = 2;

/// How long a client waits for the agent to answer `Hello` (or a status or
/// shutdown request): a live agent answers within milliseconds, a frozen
/// one (paused container) never, though the kernel completes the connect.
pub const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Frames larger than this are refused (a command line is far smaller).
const MAX_FRAME: usize = 64 << 20;

/// From the client.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// The handshake: the agent answers `Ready` and serves the next frame.
    Hello,
    /// Run a program; carries three descriptors.
    Run(Run),
    /// Deliver a signal to the running program's process group.
    Signal(i32),
    /// Report counters.
    Status,
    /// End the agent (and so the container).
    Shutdown,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub version: u32,
    pub program: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub env: Vec<(String, Vec<u8>)>,
    pub umask: u32,
}

/// From the agent.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to `Hello`: the agent is alive and takes the next frame.
    Ready,
    /// The program runs (with this pid inside the container).
    Started(i32),
    /// The program could not be started; the message was written to its
    /// stderr already.
    NotStarted(i32),
    /// The program ended: exit status, 128+N for a signal.
    Exit(i32),
    Status(Status),
    /// The request was refused (wrong protocol version).
    Refused(String),
    /// A mounted folder was removed on the host: this session cannot serve
    /// calls any more (nothing ran).
    Stale(String),
    Bye,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub started: u64,
    pub calls: u64,
    pub active: u64,
}

fn frame<T: Serialize>(msg: &T) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(msg)?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Unix socket addresses hold at most 107 bytes; a longer path is reached
/// through the `/proc/self/fd` entry of its open folder.
fn short_path<T>(path: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let d = std::fs::File::open(dir)?;
    f(&Path::new(&format!("/proc/self/fd/{}", d.as_raw_fd())).join(name))
}

/// Connect to a socket path of any length.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    short_path(path, |p| UnixStream::connect(p))
}

/// Listen on a socket path of any length.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    short_path(path, |p| UnixListener::bind(p))
}

/// Whether `err` is a read or write that timed out (SO_RCVTIMEO or
/// SO_SNDTIMEO), as opposed to a closed or broken connection.
pub fn timed_out(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        if let Some(e) = c.downcast_ref::<nix::errno::Errno>() {
            return matches!(*e, nix::errno::Errno::EAGAIN | nix::errno::Errno::ETIMEDOUT);
        }
        c.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        })
    })
}

/// Send one frame, with `fds` attached to its first byte.
pub fn send<T: Serialize>(stream: &UnixStream, msg: &T, fds: &[RawFd]) -> Result<()> {
    let bytes = frame(msg)?;
    let mut sent = 0;
    let mut cmsg = Vec::new();
    if !fds.is_empty() {
        cmsg.push(ControlMessage::ScmRights(fds));
    }
    // MSG_NOSIGNAL: a peer gone away is an error here, not a SIGPIPE.
    while sent < bytes.len() {
        let iov = [IoSlice::new(&bytes[sent..])];
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => {
                sent += n;
                cmsg.clear();
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("cannot send to the session agent")),
        }
    }
    Ok(())
}

/// Receive one frame and any descriptors that came with it. None at a clean
/// end of stream.
pub fn recv<T: for<'de> Deserialize<'de>>(
    stream: &UnixStream,
) -> Result<Option<(T, Vec<OwnedFd>)>> {
    let mut head = [0u8; 4];
    let mut fds = Vec::new();
    // The first read may carry descriptors.
    let mut cmsg_buf = nix::cmsg_space!([RawFd; 3]);
    let got = {
        let mut iov = [IoSliceMut::new(&mut head)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("cannot read from the session socket")?;
        for c in msg.cmsgs().context("descriptors truncated")? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just gave us these descriptors.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        msg.bytes
    };
    if got == 0 {
        return Ok(None);
    }
    let mut r = stream;
    r.read_exact(&mut head[got..])
        .context("session socket closed mid-frame")?;
    let len = u32::from_le_bytes(head) as usize;
    if len > MAX_FRAME {
        bail!("session frame too large ({len} bytes)");
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .context("session socket closed mid-frame")?;
    let msg = serde_json::from_slice(&body).context("bad frame on the session socket")?;
    Ok(Some((msg, fds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn long_socket_paths_work() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let sock = deep.join("agent.sock");
        assert!(sock.as_os_str().len() > 108);
        let l = bind(&sock).unwrap();
        let c = connect(&sock).unwrap();
        let (s, _) = l.accept().unwrap();
        send(&c, &Reply::Bye, &[]).unwrap();
        assert!(matches!(recv::<Reply>(&s).unwrap(), Some((Reply::Bye, _))));
    }

    #[test]
    fn frames_and_descriptors_cross_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let run = Request::Run(Run {
            version: VERSION,
            program: b"gcc".to_vec(),
            args: vec![b"-c".to_vec(), vec![0xff, b' ', b'$']],
            cwd: b"/w".to_vec(),
            env: vec![("LANG".into(), b"C".to_vec())],
            umask: 0o22,
        });
        send(&a, &run, &[w.as_raw_fd(), w.as_raw_fd(), r.as_raw_fd()]).unwrap();
        let (got, fds) = recv::<Request>(&b).unwrap().unwrap();
        assert_eq!(fds.len(), 3);
        match got {
            Request::Run(r) => assert_eq!(r.args[1], vec![0xff, b' ', b'$']),
            other => panic!("{other:?}"),
        }
        // The passed write end really is the pipe.
        let mut f = std::fs::File::from(fds.into_iter().next().unwrap());
        f.write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        std::fs::File::from(r).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"x");
        send(&b, &Reply::Exit(3), &[]).unwrap();
        assert!(matches!(
            recv::<Reply>(&a).unwrap(),
            Some((Reply::Exit(3), _))
        ));
        drop(b);
        assert!(recv::<Reply>(&a).unwrap().is_none());
    }

    #[test]
    fn hello_and_ready_cross_a_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &Request::Hello, &[]).unwrap();
        assert!(matches!(
            recv::<Request>(&b).unwrap(),
            Some((Request::Hello, _))
        ));
        send(&b, &Reply::Ready, &[]).unwrap();
        assert!(matches!(
            recv::<Reply>(&a).unwrap(),
            Some((Reply::Ready, _))
        ));
        // The frames other clients (tests, scripts) write by hand.
        assert_eq!(frame(&Request::Hello).unwrap(), b"\x07\0\0\0\"Hello\"");
        assert_eq!(frame(&Request::Status).unwrap()[4..], *b"\"Status\"");
    }

    #[test]
    fn a_silent_peer_is_a_timeout_and_a_closed_one_is_not() {
        let short = Some(std::time::Duration::from_millis(50));
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(short).unwrap();
        let err = recv::<Reply>(&a).unwrap_err();
        assert!(timed_out(&err), "{err:#}");
        // Half a frame, then silence: still a timeout.
        (&b).write_all(&[9, 0]).unwrap();
        let err = recv::<Reply>(&a).unwrap_err();
        assert!(timed_out(&err), "{err:#}");
        // Half a frame, then the end: broken, not slow.
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(short).unwrap();
        (&b).write_all(&[9, 0, 0]).unwrap();
        drop(b);
        let err = recv::<Reply>(&a).unwrap_err();
        assert!(!timed_out(&err), "{err:#}");
    }
}
