//! Dependency files written by the compiler (`-MD`, `-MMD`, `-MF`,
//! `-Wp,-MD,FILE`, `DEPENDENCIES_OUTPUT`, `SUNPRO_DEPENDENCIES`) name the
//! image's system headers (`/usr/s390x-linux-gnu/include/stdio.h`), which do
//! not exist on the host: make and ninja would then rebuild everything on
//! every run. After the compiler exits, each depfile it wrote is rewritten to
//! name only files the host sees at the same path: the ones under the
//! call's mounts (the project). Headers of the image are dropped, as a
//! native `-MMD` drops system headers; the image's own changes are covered
//! by its checksum (a rebuilt image retires its sessions).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::call::cmdline::CmdLine;
use crate::call::mounts::{self, MountSet};

/// The depfiles a call writes: those `cmd` asks gcc for (see
/// `CmdLine::depfiles`), and the files `DEPENDENCIES_OUTPUT` and
/// `SUNPRO_DEPENDENCIES` name (`env_outputs`).
pub fn wanted(cmd: &CmdLine, env_outputs: &[String]) -> Vec<PathBuf> {
    let mut files = cmd.depfiles();
    files.extend(
        env_outputs
            .iter()
            .filter(|s| !s.is_empty())
            .map(|f| mounts::normalize(Path::new(f), &cmd.cwd)),
    );
    files
}

/// The largest depfile rewritten (a kernel object's is well under 1 MiB).
const CAP: u64 = 64 << 20;

/// Rewrite the depfiles among `files` that were written since `since`, so
/// that they name only what the host sees at the same path. Only regular
/// files are rewritten: a depfile sent to `/dev/stdout`, a FIFO, a socket or
/// `/proc/self/fd/N` is the caller's own stream and passes through as the
/// compiler wrote it. Best effort: a depfile that cannot be rewritten is
/// left exactly as the compiler wrote it (`QEMU_CROSS_CC_DEBUG` says why).
pub fn rewrite(files: &[PathBuf], since: SystemTime, cwd: &Path, visible: &MountSet) {
    for f in files {
        if let Err(e) = rewrite_one(f, since, cwd, visible) {
            crate::diag::debug(format!(
                "depfile {} left as the compiler wrote it: {e}",
                f.display()
            ));
        }
    }
}

fn rewrite_one(f: &Path, since: SystemTime, cwd: &Path, visible: &MountSet) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if f.starts_with("/dev") || f.starts_with("/proc") {
        return Ok(());
    }
    // lstat: a link (to a pipe or anywhere else) is not followed.
    let Ok(meta) = std::fs::symlink_metadata(f) else {
        return Ok(());
    };
    if !meta.is_file() || meta.modified()? < since {
        return Ok(());
    }
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(f)?;
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(opened.len().min(CAP) as usize);
    file.take(CAP + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > CAP {
        return Err(std::io::Error::other("larger than 64 MiB"));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(());
    };
    let keep = |p: &str| {
        let path = mounts::normalize(Path::new(&unescape(p)), cwd);
        visible.covering(&path).is_some()
    };
    match filter(&text, keep) {
        Some(new) if new != text => replace_keeping_mtime(f, &new, &opened),
        _ => Ok(()),
    }
}

/// Replace the file's contents atomically: a new file beside it, with its
/// mode and the modification time the compiler gave it (make compares it
/// with the object's), renamed over it. On any failure the old file stays
/// whole and the new one is removed.
fn replace_keeping_mtime(path: &Path, text: &str, old: &std::fs::Metadata) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".qemu-cross-cc-dep")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    let f = tmp.as_file();
    f.set_permissions(old.permissions())?;
    f.set_modified(old.modified()?)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// make's escaping in dependency files: `\ ` for a space, `\#`, `$$`.
fn unescape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n)) if n == ' ' || n == '#' || n == '\\' => {
                out.push(n);
                chars.next();
            }
            ('$', Some('$')) => {
                out.push('$');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Split one logical line into words at unescaped blanks.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' | '\t' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The rule's colon: the first `:` that ends a word and is not part of a
/// word (targets never hold an unescaped one).
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let mut prev_backslash = false;
    for (i, c) in line.char_indices() {
        if c == ':' && !prev_backslash {
            let rest = &line[i + 1..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                return Some((&line[..i], rest));
            }
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    None
}

/// Keep the prerequisites `keep` accepts, in gcc's layout; rules whose
/// target was dropped (`-MP`'s phony header rules) go too. None when the
/// text is not a dependency file this understands.
fn filter(text: &str, keep: impl Fn(&str) -> bool) -> Option<String> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = String::with_capacity(text.len());
    for line in joined.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let (targets, prereqs) = split_rule(line)?;
        let targets = words(targets);
        if targets.is_empty() {
            return None;
        }
        let prereqs = words(prereqs);
        // `-MP`: `header.h:` with no prerequisites is a phony rule of a
        // header; it goes with the header.
        if prereqs.is_empty() && targets.len() == 1 && !keep(&targets[0]) {
            continue;
        }
        out.push_str(&targets.join(" "));
        out.push(':');
        for p in prereqs.iter().filter(|p| keep(p)) {
            out.push_str(" \\\n ");
            out.push_str(p);
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The depfiles of `args` run in `/w/b`.
    fn wanted_of(args: &[&str], env_outputs: &[String]) -> Vec<PathBuf> {
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        let cmd = crate::call::argpaths::command_line(&args, Path::new("/w/b"));
        wanted(&cmd, env_outputs)
    }

    #[test]
    fn depfile_names_follow_gcc() {
        assert_eq!(
            wanted_of(&["-c", "x.c", "-MD", "-o", "obj/x.o"], &[]),
            vec![PathBuf::from("/w/b/obj/x.d")]
        );
        assert_eq!(
            wanted_of(&["-c", "../s/x.c", "-MMD"], &[]),
            vec![PathBuf::from("/w/b/x.d")]
        );
        assert_eq!(
            wanted_of(&["-c", "x.c", "-MD", "-MF", "d/x.dep"], &[]),
            vec![PathBuf::from("/w/b/d/x.dep")]
        );
        assert_eq!(
            wanted_of(&["-c", "x.c", "-Wp,-MD,.x.o.d"], &[]),
            vec![PathBuf::from("/w/b/.x.o.d")]
        );
        assert_eq!(
            wanted_of(&["-c", "x.c"], &["deps.mk".into()]),
            vec![PathBuf::from("/w/b/deps.mk")]
        );
        assert!(wanted_of(&["-c", "x.c"], &[]).is_empty());
        // Both: the command line's first, then the variable's.
        assert_eq!(
            wanted_of(&["-MMD", "-c", "x.c"], &["deps.mk".into(), String::new()]),
            vec![PathBuf::from("/w/b/x.d"), PathBuf::from("/w/b/deps.mk")]
        );
    }

    #[test]
    fn image_headers_are_dropped() {
        let text = "x.o: x.c /usr/s390x-linux-gnu/include/stdio.h \\\n \
                    /w/b/my\\ h.h inc/a.h \\\n /usr/lib/gcc-cross/x/stddef.h\n\n\
                    /usr/s390x-linux-gnu/include/stdio.h:\n\ninc/a.h:\n";
        let keep = |p: &str| !p.starts_with("/usr/");
        let got = filter(text, keep).unwrap();
        assert_eq!(
            got,
            "x.o: \\\n x.c \\\n /w/b/my\\ h.h \\\n inc/a.h\ninc/a.h:\n"
        );
        assert_eq!(unescape("/w/b/my\\ h.h"), "/w/b/my h.h");
        assert_eq!(unescape("a$$b"), "a$b");
    }

    #[test]
    fn rewrite_uses_the_mounts_and_keeps_mtime() {
        let d = tempfile::tempdir().unwrap();
        let dep = d.path().join("x.d");
        std::fs::write(
            &dep,
            format!(
                "x.o: x.c {}/h.h /usr/s390x-linux-gnu/include/stdio.h\n",
                d.path().display()
            ),
        )
        .unwrap();
        let old = std::fs::metadata(&dep).unwrap().modified().unwrap();
        let mut set = MountSet::new();
        set.add(d.path().to_path_buf(), true);
        rewrite(
            std::slice::from_ref(&dep),
            SystemTime::UNIX_EPOCH,
            d.path(),
            &set,
        );
        let text = std::fs::read_to_string(&dep).unwrap();
        assert!(!text.contains("/usr/"), "{text}");
        assert!(text.contains("h.h") && text.contains("x.c"), "{text}");
        assert_eq!(std::fs::metadata(&dep).unwrap().modified().unwrap(), old);
    }

    #[test]
    fn not_a_depfile_is_left_alone() {
        assert!(filter("just text\n", |_| true).is_none());
    }

    /// A depfile on the caller's own stream (`-MF /dev/stdout | cat`) is
    /// never opened for reading: that would read the caller's pipe back.
    #[test]
    fn streams_pass_through() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("dep.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let link = d.path().join("dep.link");
        std::os::unix::fs::symlink("/dev/stdout", &link).unwrap();
        let set = MountSet::new();
        let files = [
            fifo,
            link,
            PathBuf::from("/dev/stdout"),
            PathBuf::from("/proc/self/fd/1"),
        ];
        let (tx, rx) = std::sync::mpsc::channel();
        let cwd = d.path().to_path_buf();
        std::thread::spawn(move || {
            rewrite(&files, SystemTime::UNIX_EPOCH, &cwd, &set);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("rewrite blocked on a stream");
    }

    /// A rewrite that cannot complete leaves the compiler's file whole.
    #[test]
    fn a_failed_rewrite_leaves_the_file_untouched() {
        let d = tempfile::tempdir().unwrap();
        let dep = d.path().join("x.d");
        let text = "x.o: x.c /usr/include/stdio.h\n";
        std::fs::write(&dep, text).unwrap();
        let meta = std::fs::metadata(&dep).unwrap();
        // The folder it would be written in is gone: the temporary file
        // cannot be made.
        let gone = d.path().join("gone/x.d");
        assert!(replace_keeping_mtime(&gone, "new", &meta).is_err());
        // A new file whose rename fails (onto a folder) is removed.
        let folder = d.path().join("sub");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("keep"), "").unwrap();
        assert!(replace_keeping_mtime(&folder, "new", &meta).is_err());
        assert_eq!(std::fs::read_to_string(&dep).unwrap(), text);
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn the_rewrite_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dep = d.path().join("x.d");
        std::fs::write(&dep, "x.o: x.c /usr/include/stdio.h\n").unwrap();
        std::fs::set_permissions(&dep, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mut set = MountSet::new();
        set.add(d.path().to_path_buf(), true);
        rewrite(
            std::slice::from_ref(&dep),
            SystemTime::UNIX_EPOCH,
            d.path(),
            &set,
        );
        assert_eq!(std::fs::read_to_string(&dep).unwrap(), "x.o: \\\n x.c\n");
        let mode = std::fs::metadata(&dep).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
