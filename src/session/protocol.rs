//! The client/agent wire format: length-prefixed frames on a unix stream
//! socket, JSON but for a run request, whose bytes (argv, cwd, environment)
//! go as they are in a binary frame (`encode_run`). The run request carries
//! the caller's stdin, stdout and stderr as SCM_RIGHTS, so the compiler
//! writes straight to them.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes; the agent refuses other versions.
pub const VERSION: u32 = 5;

/// How long a client waits for the agent's first answer to a request (a
/// run's `Accepted`, a status, a shutdown's `Bye`), and for its request to
/// be taken: a live agent answers within milliseconds, a frozen one
/// (paused container) never, though the kernel completes the connect. A
/// run has no handshake before it: the agent answers `Accepted` before it
/// starts anything, and starts the program only when that answer reached a
/// caller still connected (see `agent.rs`); a caller that got no answer in
/// time hangs up and may run the program elsewhere. One that got it waits
/// for the program however long it takes.
pub const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest request the agent reads: a command line and environment
/// (at most the kernel's argument limit, a quarter of an unlimited stack's
/// 24 MiB cap, with four bytes of length for each string) fit with room
/// to spare.
pub const REQUEST_CAP: usize = 32 << 20;

/// The largest reply a client reads (they are a few dozen bytes).
pub const REPLY_CAP: usize = 64 << 10;

/// A frame's buffer grows with the bytes that really arrive, from at most
/// this much: a peer announcing a large frame and sending nothing costs
/// nothing.
const FIRST_ALLOCATION: usize = 64 << 10;

/// From the client.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Run a program; carries three descriptors. The agent answers
    /// `Accepted` and then `Exit` or `NotStarted`, or why it takes no call
    /// (`Refused`, `Stale`, `Busy`). Sent as a binary frame (`encode_run`),
    /// never as JSON.
    #[serde(skip)]
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
    /// The agent takes the call and starts the program next; the caller
    /// waits for `Exit` or `NotStarted` from now on, however long it takes.
    Accepted,
    /// The program could not be started (after `Accepted`); the message was
    /// written to its stderr already.
    NotStarted(i32),
    /// The program ended: exit status, 128+N for a signal.
    Exit(i32),
    Status(Status),
    /// The request was refused (wrong protocol version).
    Refused(String),
    /// A mounted folder was removed on the host: this session cannot serve
    /// calls any more (nothing ran).
    Stale(String),
    /// The agent runs as many calls as it takes at once: this one goes
    /// elsewhere (nothing ran; the session stays).
    Busy,
    Bye,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub started: u64,
    pub calls: u64,
    pub active: u64,
}

/// A message as the body of a frame.
pub trait Message: Sized {
    fn encode(&self) -> Result<Vec<u8>>;
    fn decode(body: &[u8]) -> Result<Self>;
}

impl Message for Reply {
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }
    fn decode(body: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(body)?)
    }
}

impl Message for Request {
    fn encode(&self) -> Result<Vec<u8>> {
        match self {
            Request::Run(run) => Ok(encode_run(run)),
            other => Ok(serde_json::to_vec(other)?),
        }
    }
    fn decode(body: &[u8]) -> Result<Self> {
        match body.first() {
            Some(&RUN_TAG) => decode_run(body).map(Request::Run),
            _ => Ok(serde_json::from_slice(body)?),
        }
    }
}

/// The first byte of a run request's frame (a JSON frame starts with `"`
/// or `{`). Then, little-endian: the version (u32), the umask (u32), the
/// program and the cwd (each a u32 length and its bytes), the count of
/// arguments (u32) and each argument, the count of variables and each name
/// and value.
const RUN_TAG: u8 = 0;

fn encode_run(run: &Run) -> Vec<u8> {
    let strings = run.args.iter().map(Vec::len).sum::<usize>()
        + run
            .env
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + run.program.len()
        + run.cwd.len();
    let mut out = Vec::with_capacity(strings + 4 * (run.args.len() + 2 * run.env.len() + 6) + 1);
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    out.push(RUN_TAG);
    out.extend_from_slice(&run.version.to_le_bytes());
    out.extend_from_slice(&run.umask.to_le_bytes());
    bytes(&mut out, &run.program);
    bytes(&mut out, &run.cwd);
    out.extend_from_slice(&(run.args.len() as u32).to_le_bytes());
    for a in &run.args {
        bytes(&mut out, a);
    }
    out.extend_from_slice(&(run.env.len() as u32).to_le_bytes());
    for (k, v) in &run.env {
        bytes(&mut out, k.as_bytes());
        bytes(&mut out, v);
    }
    out
}

/// Reads a run frame's fields, never past its end.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            bail!("run request truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A count of items, each at least four bytes long: never more than
    /// what is left could hold (a count is not trusted to size a vector).
    fn count(&mut self) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > self.0.len() / 4 {
            bail!("run request truncated");
        }
        Ok(n)
    }
}

fn decode_run(body: &[u8]) -> Result<Run> {
    let mut f = Fields(body);
    f.take(1)?;
    let version = f.u32()?;
    if version != VERSION {
        // Another protocol: only its version is read, for the refusal.
        return Ok(Run {
            version,
            program: Vec::new(),
            args: Vec::new(),
            cwd: Vec::new(),
            env: Vec::new(),
            umask: 0,
        });
    }
    let umask = f.u32()?;
    let program = f.bytes()?.to_vec();
    let cwd = f.bytes()?.to_vec();
    // Preallocated up to a bound: each item is a vector of its own, so a
    // count near its limit would reserve several times the frame.
    const PREALLOCATED: usize = 4096;
    let n = f.count()?;
    let mut args = Vec::with_capacity(n.min(PREALLOCATED));
    for _ in 0..n {
        args.push(f.bytes()?.to_vec());
    }
    let n = f.count()?;
    let mut env = Vec::with_capacity(n.min(PREALLOCATED));
    for _ in 0..n {
        let k = std::str::from_utf8(f.bytes()?)
            .context("run request: a variable name that is not UTF-8")?
            .to_string();
        env.push((k, f.bytes()?.to_vec()));
    }
    if !f.0.is_empty() {
        bail!("run request: {} bytes after its end", f.0.len());
    }
    Ok(Run {
        version,
        program,
        args,
        cwd,
        env,
        umask,
    })
}

fn frame<T: Message>(msg: &T) -> Result<Vec<u8>> {
    let body = msg.encode()?;
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

/// Connect to a socket path of any length within `limit`. The connect does
/// not block: a listener whose backlog is full (a frozen agent with many
/// callers) makes it fail with EAGAIN, and it is tried again until the
/// limit, after which the error is `TimedOut`. The stream returned blocks.
pub fn connect_within(path: &Path, limit: std::time::Duration) -> std::io::Result<UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    short_path(path, |p| {
        let addr = UnixAddr::new(p)?;
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let deadline = std::time::Instant::now() + limit;
        loop {
            match connect(fd.as_raw_fd(), &addr) {
                Ok(()) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(nix::errno::Errno::EAGAIN) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the session agent takes no connection",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let stream = UnixStream::from(fd);
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
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
pub fn send<T: Message>(stream: &UnixStream, msg: &T, fds: &[RawFd]) -> Result<()> {
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

/// Receive one frame of at most `cap` bytes and any descriptors that came
/// with it. None at a clean end of stream.
pub fn recv<T: Message>(stream: &UnixStream, cap: usize) -> Result<Option<(T, Vec<OwnedFd>)>> {
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
    if len > cap {
        bail!("session frame too large ({len} bytes, at most {cap})");
    }
    let mut body = Vec::with_capacity(len.min(FIRST_ALLOCATION));
    r.take(len as u64)
        .read_to_end(&mut body)
        .context("cannot read from the session socket")?;
    if body.len() < len {
        bail!("session socket closed mid-frame");
    }
    let msg = T::decode(&body).context("bad frame on the session socket")?;
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
        let c = connect_within(&sock, std::time::Duration::from_secs(1)).unwrap();
        let (s, _) = l.accept().unwrap();
        send(&c, &Reply::Bye, &[]).unwrap();
        assert!(matches!(
            recv::<Reply>(&s, REQUEST_CAP).unwrap(),
            Some((Reply::Bye, _))
        ));
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
        let (got, fds) = recv::<Request>(&b, REQUEST_CAP).unwrap().unwrap();
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
            recv::<Reply>(&a, REQUEST_CAP).unwrap(),
            Some((Reply::Exit(3), _))
        ));
        drop(b);
        assert!(recv::<Reply>(&a, REQUEST_CAP).unwrap().is_none());
    }

    fn sample() -> Run {
        Run {
            version: VERSION,
            program: b"gcc".to_vec(),
            args: vec![b"-c".to_vec(), vec![0xff, b' ', b'$', 0], Vec::new()],
            cwd: b"/w".to_vec(),
            env: vec![("LANG".into(), b"C".to_vec()), ("E".into(), Vec::new())],
            umask: 0o27,
        }
    }

    fn decoded(body: &[u8]) -> Result<Run> {
        match Request::decode(body)? {
            Request::Run(r) => Ok(r),
            other => bail!("{other:?}"),
        }
    }

    #[test]
    fn a_run_frame_round_trips_its_bytes() {
        let run = sample();
        let body = encode_run(&run);
        assert_eq!(body[0], RUN_TAG);
        let got = decoded(&body).unwrap();
        assert_eq!(got.program, run.program);
        assert_eq!(got.args, run.args);
        assert_eq!(got.cwd, run.cwd);
        assert_eq!(got.env, run.env);
        assert_eq!((got.version, got.umask), (VERSION, 0o27));
        // Bytes as they are: far smaller than JSON integer arrays.
        assert!(body.len() < 100, "{}", body.len());
    }

    #[test]
    fn a_truncated_or_padded_run_frame_is_refused() {
        let body = encode_run(&sample());
        for n in 0..body.len() {
            assert!(Request::decode(&body[..n]).is_err(), "{n} bytes taken");
        }
        let mut long = body.clone();
        long.push(0);
        assert!(decoded(&long).is_err());
    }

    #[test]
    fn garbage_run_frames_are_refused_without_allocating_their_counts() {
        let mut head = vec![RUN_TAG];
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        // A program announced longer than the frame.
        let mut b = head.clone();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decoded(&b).is_err());
        // Four billion arguments announced, none there.
        let mut b = head.clone();
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decoded(&b).is_err());
        // A variable name that is not UTF-8.
        let mut b = head.clone();
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(0xff);
        b.extend_from_slice(&0u32.to_le_bytes());
        assert!(decoded(&b).is_err());
        // JSON cannot carry a run at all.
        assert!(Request::decode(br#"{"Run":{"version":4}}"#).is_err());
        assert!(Request::Run(sample()).encode().unwrap()[0] == RUN_TAG);
    }

    #[test]
    fn another_versions_run_frame_is_read_for_its_version_only() {
        let mut run = sample();
        run.version = VERSION + 1;
        let mut body = encode_run(&run);
        body.truncate(5);
        let got = decoded(&body).unwrap();
        assert_eq!(got.version, VERSION + 1);
        assert!(got.args.is_empty());
    }

    #[test]
    fn status_frames_are_plain_json() {
        // The frames other clients (tests, scripts) write by hand.
        assert_eq!(frame(&Request::Status).unwrap(), b"\x08\0\0\0\"Status\"");
        assert_eq!(frame(&Reply::Busy).unwrap()[4..], *b"\"Busy\"");
    }

    #[test]
    fn a_silent_peer_is_a_timeout_and_a_closed_one_is_not() {
        let short = Some(std::time::Duration::from_millis(50));
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(short).unwrap();
        let err = recv::<Reply>(&a, REQUEST_CAP).unwrap_err();
        assert!(timed_out(&err), "{err:#}");
        // Half a frame, then silence: still a timeout.
        (&b).write_all(&[9, 0]).unwrap();
        let err = recv::<Reply>(&a, REQUEST_CAP).unwrap_err();
        assert!(timed_out(&err), "{err:#}");
        // Half a frame, then the end: broken, not slow.
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(short).unwrap();
        (&b).write_all(&[9, 0, 0]).unwrap();
        drop(b);
        let err = recv::<Reply>(&a, REQUEST_CAP).unwrap_err();
        assert!(!timed_out(&err), "{err:#}");
    }

    /// A listener that accepts nothing, with a backlog of one.
    fn jammed(dir: &Path) -> (OwnedFd, std::path::PathBuf) {
        use nix::sys::socket::{
            AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
        };
        let path = dir.join("s.sock");
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        listen(&fd, Backlog::new(1).unwrap()).unwrap();
        (fd, path)
    }

    #[test]
    fn a_full_backlog_is_a_timeout_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let (_listener, path) = jammed(d.path());
        let limit = std::time::Duration::from_millis(200);
        // Fill the backlog (the kernel takes one more than it is told).
        let mut held = Vec::new();
        let err = loop {
            match connect_within(&path, limit) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 16, "the backlog never filled");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        let start = std::time::Instant::now();
        let err = connect_within(&path, limit).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // Nobody listening at all is not a timeout.
        let err = connect_within(&d.path().join("none.sock"), limit).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_frame_over_the_cap_is_refused_before_its_body() {
        let (a, b) = UnixStream::pair().unwrap();
        // Announces 1 GiB, sends nothing more: refused at once, no wait.
        (&b).write_all(&(1u32 << 30).to_le_bytes()).unwrap();
        let err = recv::<Reply>(&a, REQUEST_CAP).unwrap_err();
        assert!(format!("{err:#}").contains("too large"), "{err:#}");
        // A reply is held to its own, smaller cap.
        let big = Reply::Stale("x".repeat(REPLY_CAP));
        send(&b, &big, &[]).unwrap();
        assert!(recv::<Reply>(&a, REPLY_CAP).is_err());
    }

    #[test]
    fn an_announced_frame_that_never_comes_costs_only_what_arrives() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        (&b).write_all(&((REQUEST_CAP as u32) - 1).to_le_bytes())
            .unwrap();
        (&b).write_all(b"\"Sta").unwrap();
        let err = recv::<Request>(&a, REQUEST_CAP).unwrap_err();
        assert!(timed_out(&err), "{err:#}");
    }
}
