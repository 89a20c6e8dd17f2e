//! Dockerfile reading, `FROM qemu/...` inlining and the checksum that goes
//! into the `com.qemu.dockerfile-checksum` label.
//!
//! The checksum must be byte-identical to docker.py's so that an image built
//! by one tool is up to date for the other. docker.py reads the file in
//! Python text mode (universal newlines), splits it with `str.splitlines`,
//! drops lines that are blank by `str.strip` or start with `#`, replaces
//! `FROM qemu/NAME` by the preprocessed text of `NAME.docker` (with
//! `debian*user` read as `debian-bootstrap`), joins the rest with `\n` and
//! hashes the UTF-8 bytes with SHA-1. The Python string rules are reproduced
//! here exactly (their whitespace and line-break sets differ from Rust's).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha1::{Digest, Sha1};

use crate::embedded;

/// Where `FROM qemu/NAME` finds `NAME.docker`.
#[derive(Clone, Debug, Default)]
pub struct Library {
    /// Searched in order after the built-in dockerfiles.
    dirs: Vec<PathBuf>,
    /// Whether the dockerfiles compiled into the binary are searched first.
    builtin: bool,
}

/// A dockerfile found in the library.
#[derive(Clone, Debug)]
pub struct Found {
    pub text: String,
    /// The directory it came from (None for built-in ones).
    pub dir: Option<PathBuf>,
}

impl Library {
    /// The standard search order: the built-in dockerfiles, then each of
    /// `extra` (from `--dockerfiles-dir` and `QEMU_CROSS_CC_DOCKERFILES`), then
    /// the user's config dir.
    pub fn standard(extra: &[PathBuf]) -> Library {
        let mut dirs: Vec<PathBuf> = extra.to_vec();
        if let Some(d) = crate::state::paths::config_dir() {
            dirs.push(d.join("dockerfiles"));
        }
        Library {
            dirs,
            builtin: true,
        }
    }

    /// A library of just these directories.
    #[cfg(test)]
    pub fn of_dirs(dirs: Vec<PathBuf>) -> Library {
        Library {
            dirs,
            builtin: false,
        }
    }

    /// A copy that also searches `dir` last (the directory of the dockerfile
    /// being built, where its siblings usually live).
    pub fn with_fallback(&self, dir: Option<&Path>) -> Library {
        let mut lib = self.clone();
        if let Some(d) = dir {
            if !lib.dirs.iter().any(|x| x == d) {
                lib.dirs.push(d.to_path_buf());
            }
        }
        lib
    }

    /// The checksum of the built-in dockerfile `NAME.docker`, computed by
    /// build.rs: what `checksum` gives for its text in this library, since
    /// the built-in dockerfiles come first (those it inlines included).
    /// None when this library does not search them, or when it builds on
    /// one that is not built in.
    pub fn builtin_checksum(&self, name: &str) -> Option<&'static str> {
        self.builtin
            .then(|| embedded::dockerfile_checksum(&format!("{name}.docker")))
            .flatten()
    }

    pub fn search_path(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.builtin {
            out.push("built-in".to_string());
        }
        out.extend(self.dirs.iter().map(|d| d.display().to_string()));
        out
    }

    /// Find `NAME.docker`.
    pub fn find(&self, name: &str) -> Result<Found> {
        let file = format!("{name}.docker");
        if self.builtin {
            if let Some(text) = embedded::dockerfile(&file) {
                return Ok(Found {
                    text: normalize_newlines(text),
                    dir: None,
                });
            }
        }
        for dir in &self.dirs {
            let path = dir.join(&file);
            // Anything there is read (a FIFO or device is refused by name).
            if path.exists() {
                return Ok(Found {
                    text: read(&path)?,
                    dir: Some(dir.clone()),
                });
            }
        }
        bail!(
            "dockerfile {file} not found (searched: {}); add it to one of those \
             directories or pass --dockerfiles-dir DIR",
            self.search_path().join(", ")
        )
    }
}

/// The largest dockerfile read; a bigger one is refused, never truncated.
const DOCKERFILE_CAP: u64 = 4 << 20;

/// Read a dockerfile the way Python's text mode does: UTF-8, with `\r\n` and
/// `\r` turned into `\n`. Only a regular file of at most 4 MiB is read (a
/// FIFO would block, a device never ends).
pub fn read(path: &Path) -> Result<String> {
    let text = crate::state::safefs::read_config(path, DOCKERFILE_CAP)
        .with_context(|| format!("cannot read dockerfile {}", path.display()))?;
    Ok(normalize_newlines(&text))
}

pub use crate::image::pyrules::inlined_name;
use crate::image::pyrules::{FROM_QEMU, Line, normalize_newlines};
#[cfg(test)]
use crate::image::pyrules::{py_isspace, py_splitlines};

/// The preprocessed text that docker.py hashes.
pub fn preprocess(text: &str, lib: &Library) -> Result<String> {
    let mut out = String::new();
    let mut chain = Vec::new();
    preprocess_into(text, lib, &mut out, &mut chain)?;
    Ok(out)
}

fn preprocess_into(
    text: &str,
    lib: &Library,
    out: &mut String,
    chain: &mut Vec<String>,
) -> Result<()> {
    for line in crate::image::pyrules::lines(text) {
        let image = match line {
            Line::Kept(line) => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            Line::Inline(image) => image,
        };
        let name = inlined_name(image).to_string();
        if chain.contains(&name) {
            bail!(
                "FROM qemu/ chain loops: {} -> {name}; break the cycle",
                chain.join(" -> ")
            );
        }
        let found = lib
            .find(&name)
            .with_context(|| format!("inlining 'FROM qemu/{image}'"))?;
        chain.push(name);
        preprocess_into(&found.text, lib, out, chain)?;
        chain.pop();
    }
    Ok(())
}

pub fn bytes_checksum(bytes: &[u8]) -> String {
    let digest = Sha1::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of the `com.qemu.dockerfile-checksum` label.
pub fn checksum(text: &str, lib: &Library) -> Result<String> {
    Ok(bytes_checksum(preprocess(text, lib)?.as_bytes()))
}

/// Checksum of a file's bytes (the `com.qemu.FILE-checksum` labels).
pub fn file_checksum(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes_checksum(&bytes))
}

/// Every `qemu/NAME` image a dockerfile builds on, in order of appearance
/// (docker.py's `re.findall("FROM qemu\/(.*)")`: anywhere in a line).
pub fn qemu_sources(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        if let Some(pos) = line.find(FROM_QEMU) {
            out.push(line[pos + FROM_QEMU.len()..].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(py_splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\n\nb\n"), vec!["a", "", "b"]);
        assert_eq!(
            py_splitlines("a\u{2028}b\u{1c}c\u{b}d"),
            vec!["a", "b", "c", "d"]
        );
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
    }

    #[test]
    fn python_whitespace() {
        for c in ['\u{1f}', '\u{a0}', '\u{3000}', '\t'] {
            assert!(py_isspace(c));
        }
        assert!(!py_isspace('\u{200b}'));
    }

    #[test]
    fn debian_user_images_inline_bootstrap() {
        assert_eq!(inlined_name("debian-arm64-user"), "debian-bootstrap");
        assert_eq!(inlined_name("debian11"), "debian11");
    }

    #[test]
    fn sources_are_found_anywhere_in_a_line() {
        let df = "FROM qemu/a\nRUN x\n  FROM qemu/b AS c\n";
        assert_eq!(qemu_sources(df), vec!["a", "b AS c"]);
    }

    /// Checksums computed once with docker.py itself (see the file's header).
    #[test]
    fn checksums_match_docker_py_golden_values() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let golden = std::fs::read_to_string(root.join("checksums.txt")).unwrap();
        let lib = Library::of_dirs(vec![root.join("dockerfiles")]);
        let mut n = 0;
        for line in golden.lines().filter(|l| !l.starts_with('#')) {
            let (file, want) = line.split_once(' ').unwrap();
            let text = read(&root.join("dockerfiles").join(file)).unwrap();
            assert_eq!(checksum(&text, &lib).unwrap(), want, "{file}");
            n += 1;
        }
        assert!(n >= 10);
    }

    /// build.rs's checksum of every built-in dockerfile is the one computed
    /// at run time, with or without more dockerfile folders.
    #[test]
    fn precomputed_checksums_equal_the_run_time_ones() {
        let dir = tempfile::tempdir().unwrap();
        for (file, _) in embedded::DOCKERFILES {
            // A same-named file elsewhere does not replace a built-in one.
            std::fs::write(dir.path().join(file), "FROM other\n").unwrap();
        }
        let extra = [dir.path().to_path_buf()];
        for lib in [Library::standard(&[]), Library::standard(&extra)] {
            for (file, _) in embedded::DOCKERFILES {
                let name = file.trim_end_matches(".docker");
                let found = lib.find(name).unwrap();
                assert!(found.dir.is_none(), "{file}");
                let runtime = checksum(&found.text, &lib.with_fallback(None)).unwrap();
                assert_eq!(lib.builtin_checksum(name), Some(runtime.as_str()), "{file}");
            }
        }
        assert_eq!(
            embedded::DOCKERFILE_CHECKSUMS.len(),
            embedded::DOCKERFILES.len()
        );
        // A library without the built-in ones has none precomputed.
        let own = Library::of_dirs(extra.to_vec());
        assert_eq!(own.builtin_checksum("cross-aarch64-linux-gnu"), None);
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.docker");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("z.docker")).unwrap();
        let lib = Library::of_dirs(vec![dir.path().to_path_buf()]);
        for (name, kind) in [("f", "a FIFO"), ("z", "a character device")] {
            let e = format!("{:#}", lib.find(name).unwrap_err());
            assert!(
                e.contains(&format!("{name}.docker")) && e.contains(kind),
                "{e}"
            );
        }
        let big = dir.path().join("big.docker");
        std::fs::write(&big, vec![b'#'; DOCKERFILE_CAP as usize + 1]).unwrap();
        let e = format!("{:#}", read(&big).unwrap_err());
        assert!(e.contains("big.docker"), "{e}");
    }

    #[test]
    fn reading_normalizes_newlines_and_wants_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.docker");
        std::fs::write(&f, "FROM a\r\nRUN b\rRUN c\n").unwrap();
        assert_eq!(read(&f).unwrap(), "FROM a\nRUN b\nRUN c\n");
        std::fs::write(&f, b"FROM \xff\n").unwrap();
        let e = format!("{:#}", read(&f).unwrap_err());
        assert!(
            e.contains("dockerfile") && e.contains("not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn loops_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.docker"), "FROM qemu/b\n").unwrap();
        std::fs::write(dir.path().join("b.docker"), "FROM qemu/a\n").unwrap();
        let lib = Library::of_dirs(vec![dir.path().to_path_buf()]);
        let e = checksum("FROM qemu/a\n", &lib).unwrap_err();
        assert!(format!("{e:#}").contains("loops"), "{e:#}");
    }

    #[test]
    fn missing_inlined_dockerfile_names_the_search_path() {
        let lib = Library::of_dirs(vec![PathBuf::from("/nonexistent-qcc")]);
        let e = checksum("FROM qemu/zz\n", &lib).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("zz.docker not found"), "{msg}");
        assert!(msg.contains("/nonexistent-qcc"), "{msg}");
    }
}
