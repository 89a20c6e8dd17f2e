//! Dependency files written by the compiler (`-MD`, `-MMD`, `-MF`,
//! `-Wp,-MD,FILE`, `DEPENDENCIES_OUTPUT`, `SUNPRO_DEPENDENCIES`) name the
//! image's system headers (`/usr/s390x-linux-gnu/include/stdio.h`), which do
//! not exist on the host: make and ninja would then rebuild everything on
//! every run. After the compiler exits, each depfile it wrote is rewritten to
//! name only files the host sees at the same path: the ones under the
//! call's mounts (the project). Headers of the image are dropped, as a
//! native `-MMD` drops system headers; the image's own changes are covered
//! by its checksum (a rebuilt image retires its sessions).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::mounts::{self, MountSet};

/// The depfiles a command line asks the compiler to write.
pub fn wanted(args: &[OsString], cwd: &Path, env_outputs: &[String]) -> Vec<PathBuf> {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let mut files = Vec::new();
    let mut md = false;
    let mut explicit = false;
    let mut output = None;
    let mut source = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        match a {
            "-MD" | "-MMD" => md = true,
            "-MF" => {
                if let Some(f) = args.get(i) {
                    files.push(PathBuf::from(f));
                    explicit = true;
                    i += 1;
                }
            }
            "-o" => {
                output = args.get(i).map(PathBuf::from);
                i += 1;
            }
            // Options whose value is not a source file.
            "-MT" | "-MQ" | "-x" | "-I" | "-D" | "-U" | "-include" | "-isystem" | "-L" => i += 1,
            _ => {
                if let Some(f) = a.strip_prefix("-MF") {
                    files.push(PathBuf::from(f));
                    explicit = true;
                } else if let Some(list) = a.strip_prefix("-Wp,") {
                    let parts: Vec<&str> = list.split(',').collect();
                    if let [opt, f, ..] = parts[..] {
                        if opt == "-MD" || opt == "-MMD" {
                            files.push(PathBuf::from(f));
                            explicit = true;
                        }
                    }
                } else if let Some(o) = a.strip_prefix("-o") {
                    output = Some(PathBuf::from(o));
                } else if !a.starts_with('-') && source.is_none() {
                    source = Some(PathBuf::from(a));
                }
            }
        }
    }
    if md && !explicit {
        // gcc's default: the output with its suffix replaced by `.d`, else
        // the source's base name with `.d`, in the current directory.
        let default = match (&output, &source) {
            (Some(o), _) => Some(o.with_extension("d")),
            (None, Some(s)) => s.file_name().map(|n| Path::new(n).with_extension("d")),
            _ => None,
        };
        files.extend(default);
    }
    files.extend(
        env_outputs
            .iter()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    );
    files
        .into_iter()
        .map(|f| mounts::normalize(&f, cwd))
        .collect()
}

/// Rewrite the depfiles among `files` that were written since `since`, so
/// that they name only what the host sees at the same path. Best effort: a
/// depfile it cannot read or write is left as the compiler wrote it.
pub fn rewrite(files: &[PathBuf], since: SystemTime, cwd: &Path, visible: &MountSet) {
    for f in files {
        let fresh = std::fs::metadata(f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if !fresh {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let keep = |p: &str| {
            let path = mounts::normalize(Path::new(&unescape(p)), cwd);
            visible.covering(&path).is_some()
        };
        if let Some(new) = filter(&text, keep) {
            if new != text {
                let _ = write_keeping_mtime(f, &new);
            }
        }
    }
}

/// Replace the file's contents; its modification time stays the one the
/// compiler gave it (make compares it with the object's).
fn write_keeping_mtime(path: &Path, text: &str) -> std::io::Result<()> {
    let mtime = std::fs::metadata(path)?.modified()?;
    std::fs::write(path, text)?;
    let f = std::fs::File::options().write(true).open(path)?;
    f.set_modified(mtime)
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

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn depfile_names_follow_gcc() {
        let cwd = Path::new("/w/b");
        assert_eq!(
            wanted(&os(&["-c", "x.c", "-MD", "-o", "obj/x.o"]), cwd, &[]),
            vec![PathBuf::from("/w/b/obj/x.d")]
        );
        assert_eq!(
            wanted(&os(&["-c", "../s/x.c", "-MMD"]), cwd, &[]),
            vec![PathBuf::from("/w/b/x.d")]
        );
        assert_eq!(
            wanted(&os(&["-c", "x.c", "-MD", "-MF", "d/x.dep"]), cwd, &[]),
            vec![PathBuf::from("/w/b/d/x.dep")]
        );
        assert_eq!(
            wanted(&os(&["-c", "x.c", "-Wp,-MD,.x.o.d"]), cwd, &[]),
            vec![PathBuf::from("/w/b/.x.o.d")]
        );
        assert_eq!(
            wanted(&os(&["-c", "x.c"]), cwd, &["deps.mk".into()]),
            vec![PathBuf::from("/w/b/deps.mk")]
        );
        assert!(wanted(&os(&["-c", "x.c"]), cwd, &[]).is_empty());
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
}
