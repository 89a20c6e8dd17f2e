//! Reading a command line: response files expanded in place first (at
//! most `RESPONSE_DEPTH` deep and `RESPONSE_FILES` in all), then each word
//! classified against the option tables.

use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::call::mounts::normalize;

use super::options::*;
use super::*;

/// Classify `argv` (the arguments after the program name) run in `cwd`.
/// Response files are read with `read`, at most `RESPONSE_DEPTH` deep and
/// `RESPONSE_FILES` in all; one that is not read stays as gcc leaves it.
pub fn parse(argv: &[OsString], cwd: &Path, read: &mut Reader) -> CmdLine {
    let mut cmd = CmdLine {
        words: Vec::new(),
        args: Vec::new(),
        response_files: Vec::new(),
        cwd: cwd.to_path_buf(),
    };
    let origins: Vec<Origin> = (0..argv.len()).map(Origin::Argv).collect();
    let mut reads = 0;
    expand(argv, &origins, 0, cwd, &mut (read, &mut reads), &mut cmd);
    cmd.args = classify(&cmd.words, &cmd.response_files, cwd);
    cmd
}

/// Expand `words` into `cmd.words`, reading response files with
/// `read.0` and counting the reads in `read.1`.
pub(super) fn expand(
    words: &[OsString],
    origins: &[Origin],
    depth: usize,
    cwd: &Path,
    read: &mut (&mut Reader, &mut usize),
    cmd: &mut CmdLine,
) {
    for (word, &origin) in words.iter().zip(origins) {
        let b = word.as_bytes();
        if b.len() < 2 || b[0] != b'@' {
            cmd.words.push(Word {
                text: word.clone(),
                origin,
                response: None,
            });
            continue;
        }
        let file = PathArg::new(&b[1..], cwd);
        let index = cmd.response_files.len();
        let body = if depth >= RESPONSE_DEPTH {
            Err(format!(
                "response files nest more than {RESPONSE_DEPTH} deep"
            ))
        } else if *read.1 >= RESPONSE_FILES {
            Err(format!("more than {RESPONSE_FILES} response files"))
        } else {
            *read.1 += 1;
            (read.0)(&file.path).map(|bytes| split_response(&bytes))
        };
        cmd.response_files.push(ResponseFile {
            file,
            words: body.clone(),
        });
        cmd.words.push(Word {
            text: word.clone(),
            origin,
            response: Some(index),
        });
        if let Ok(inner) = body {
            let origins: Vec<Origin> = (0..inner.len()).map(|i| Origin::File(index, i)).collect();
            expand(&inner, &origins, depth + 1, cwd, read, cmd);
        }
    }
}

/// The words of a response file, as libiberty's `buildargv` splits them:
/// at unquoted white space; `'...'` and `"..."` quote; a backslash takes
/// the next character as it is, inside quotes too.
pub fn split_response(body: &[u8]) -> Vec<OsString> {
    let mut words = Vec::new();
    let mut it = body.iter().copied().peekable();
    loop {
        while it.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if it.peek().is_none() {
            return words;
        }
        let mut word = Vec::new();
        let (mut squote, mut dquote) = (false, false);
        while let Some(c) = it.next() {
            match c {
                c if c.is_ascii_whitespace() && !squote && !dquote => break,
                b'\\' => {
                    if let Some(n) = it.next() {
                        word.push(n);
                    }
                }
                b'\'' if !dquote => squote = !squote,
                b'"' if !squote => dquote = !dquote,
                c => word.push(c),
            }
        }
        words.push(OsString::from_vec(word));
    }
}

/// A word (or a part of one, for `-Wl,A,B`) being classified.
pub(super) struct Piece<'a> {
    text: &'a [u8],
    words: Range<usize>,
    /// An `@file` that was not read: a standalone one is a response file.
    unread: Option<usize>,
}

pub(super) struct Classifier<'a> {
    cwd: &'a Path,
    args: Vec<Arg>,
    /// The language `-x` set for the inputs after it.
    lang: Option<Lang>,
    preprocessor: Vec<Piece<'a>>,
    assembler: Vec<Piece<'a>>,
    linker: Vec<Piece<'a>>,
}

pub(super) fn classify(words: &[Word], files: &[ResponseFile], cwd: &Path) -> Vec<Arg> {
    let mut c = Classifier {
        cwd,
        args: Vec::new(),
        lang: None,
        preprocessor: Vec::new(),
        assembler: Vec::new(),
        linker: Vec::new(),
    };
    let mut driver = Vec::new();
    for (i, w) in words.iter().enumerate() {
        match w.response {
            Some(r) if files[r].words.is_ok() => c.args.push(Arg {
                words: i..i + 1,
                via: Via::Driver,
                kind: Kind::ResponseFile(r),
                effect: Effect::None,
            }),
            unread => driver.push(Piece {
                text: w.text.as_bytes(),
                words: i..i + 1,
                unread,
            }),
        }
    }
    c.run(&driver, Via::Driver);
    let passed = [
        (std::mem::take(&mut c.preprocessor), Via::Preprocessor),
        (std::mem::take(&mut c.assembler), Via::Assembler),
        (std::mem::take(&mut c.linker), Via::Linker),
    ];
    for (pieces, via) in passed {
        c.run(&pieces, via);
    }
    let mut args = c.args;
    args.sort_by_key(|a| a.words.start);
    args
}

impl<'a> Classifier<'a> {
    /// The tables for `via`'s words, the first one looked at first.
    fn tables(via: Via) -> [&'static Table; 2] {
        match via {
            Via::Driver => [&DRIVER_TABLE, &NO_TABLE],
            Via::Preprocessor => [&PREPROCESSOR_TABLE, &DRIVER_TABLE],
            Via::Assembler => [&ASSEMBLER_TABLE, &NO_TABLE],
            Via::Linker => [&LINKER_TABLE, &NO_TABLE],
        }
    }

    fn push(&mut self, words: Range<usize>, via: Via, kind: Kind, effect: Effect) {
        self.args.push(Arg {
            words,
            via,
            kind,
            effect,
        });
    }

    fn run(&mut self, pieces: &[Piece<'a>], via: Via) {
        let mut i = 0;
        while i < pieces.len() {
            let p = &pieces[i];
            i += 1;
            let b = p.text;
            if let (Via::Driver, Some(r)) = (via, p.unread) {
                self.push(p.words.clone(), via, Kind::ResponseFile(r), Effect::None);
            } else if b == b"-" && via == Via::Driver {
                let lang = self.lang.clone();
                self.push(p.words.clone(), via, Kind::Stdin { lang }, Effect::None);
            } else if b.len() > 1 && b[0] == b'-' {
                i += self.option(pieces, i - 1, via);
            } else if b.is_empty() {
                self.push(
                    p.words.clone(),
                    via,
                    Kind::Unknown(OsString::new()),
                    Effect::None,
                );
            } else if via == Via::Driver {
                let file = PathArg::new(b, self.cwd);
                let lang = self
                    .lang
                    .clone()
                    .unwrap_or_else(|| Lang::of_file(&file.given));
                self.push(
                    p.words.clone(),
                    via,
                    Kind::Input { file, lang },
                    Effect::None,
                );
            } else {
                let path = PathArg::new(b, self.cwd);
                self.push(
                    p.words.clone(),
                    via,
                    Kind::Reads { option: "", path },
                    Effect::None,
                );
            }
        }
    }

    /// Classify the option at `pieces[at]`; the number of further pieces
    /// it takes (1 when its value is the next one).
    fn option(&mut self, pieces: &[Piece<'a>], at: usize, via: Via) -> usize {
        let p = &pieces[at];
        let b = p.text;
        let key = match b.strip_prefix(b"-") {
            Some(one) if via == Via::Linker && one.starts_with(b"-") => one,
            _ => b,
        };
        let Some((opt, found)) = find(&Self::tables(via), key) else {
            self.unknown(p, via);
            return 0;
        };
        let (value, words, taken) = match (opt.form, found) {
            (Form::Flag, _) => (None, p.words.clone(), 0),
            (_, Found::Attached(from)) => (Some(&key[from..]), p.words.clone(), 0),
            (_, Found::Alone) => match pieces.get(at + 1) {
                Some(next) => (Some(next.text), p.words.start..next.words.end, 1),
                // At the end: gcc says the value is missing.
                None => (None, p.words.clone(), 0),
            },
        };
        match (value, opt.val) {
            (Some(v), _) => self.valued(opt, v, words, via),
            (None, Val::Query(asks)) if matches!(opt.form, Form::Flag) => {
                let q = Kind::Query(Query { asks, name: None });
                self.push(words, via, q, opt.effect)
            }
            (None, _) => self.push(words, via, Kind::Flag(opt.name), opt.effect),
        }
        taken
    }

    fn unknown(&mut self, p: &Piece<'a>, via: Via) {
        let b = p.text;
        // `-fx=a/b`: perhaps a path.
        let guess = b
            .iter()
            .position(|&c| c == b'=')
            .map(|eq| &b[eq + 1..])
            .filter(|v| v.contains(&b'/'));
        let kind = match guess {
            Some(v) => Kind::MaybeReads(PathArg::new(v, self.cwd)),
            None => Kind::Unknown(OsStr::from_bytes(b).to_os_string()),
        };
        self.push(p.words.clone(), via, kind, Effect::None);
    }

    fn valued(&mut self, opt: &'static Opt, v: &'a [u8], words: Range<usize>, via: Via) {
        let text = || OsStr::from_bytes(v).to_os_string();
        let path = |v: &[u8]| PathArg::new(v, self.cwd);
        let kind = match opt.val {
            Val::None => Kind::Flag(opt.name),
            Val::Text => Kind::Value {
                option: opt.name,
                value: text(),
            },
            Val::Lang => {
                let lang = Lang::of_x(OsStr::from_bytes(v));
                if via == Via::Driver {
                    self.lang = lang.clone();
                }
                Kind::Language(lang)
            }
            Val::Output => Kind::Output(path(v)),
            Val::Depfile => Kind::Depfile(path(v)),
            Val::DepTarget { quoted } => Kind::DepTarget {
                target: text(),
                quoted,
            },
            Val::Include(order) => {
                let (dir, in_sysroot) = self.maybe_in_sysroot(v);
                Kind::IncludeDir {
                    dir,
                    order,
                    in_sysroot,
                }
            }
            Val::LibraryDir => {
                let (dir, in_sysroot) = self.maybe_in_sysroot(v);
                Kind::LibraryDir { dir, in_sysroot }
            }
            Val::Library => Kind::Library(text()),
            Val::Reads => Kind::Reads {
                option: opt.name,
                path: path(v),
            },
            Val::Writes => Kind::Writes {
                option: opt.name,
                path: path(v),
            },
            Val::Pass { to, list } => {
                self.pass(to, list, v, words);
                return;
            }
            Val::Query(asks) => Kind::Query(Query {
                asks,
                name: Some(text()),
            }),
            Val::Debug => match debug_level(v) {
                Some(level) => Kind::Debug(level),
                None => Kind::Value {
                    option: opt.name,
                    value: text(),
                },
            },
            Val::Listing => match v.iter().position(|&c| c == b'=') {
                Some(eq) => {
                    let path = path(&v[eq + 1..]);
                    return self.push(
                        words,
                        via,
                        Kind::Writes { option: "-a", path },
                        Effect::SideOutput,
                    );
                }
                None => Kind::Flag("-a"),
            },
        };
        self.push(words, via, kind, opt.effect);
    }

    /// `=dir` and `$SYSROOT/dir` name a folder below the sysroot.
    fn maybe_in_sysroot(&self, v: &[u8]) -> (PathArg, bool) {
        let rest = v.strip_prefix(b"=").or_else(|| v.strip_prefix(b"$SYSROOT"));
        match rest {
            Some(rest) => {
                let given = PathBuf::from(OsStr::from_bytes(rest));
                let path = normalize(&given, Path::new("/"));
                (PathArg { given, path }, true)
            }
            None => (PathArg::new(v, self.cwd), false),
        }
    }

    fn pass(&mut self, to: Via, list: bool, v: &'a [u8], words: Range<usize>) {
        let parts: Vec<&'a [u8]> = if list {
            v.split(|&c| c == b',').filter(|p| !p.is_empty()).collect()
        } else {
            vec![v]
        };
        let queue = match to {
            Via::Preprocessor => &mut self.preprocessor,
            Via::Assembler => &mut self.assembler,
            // The table passes words to these three only.
            Via::Linker | Via::Driver => &mut self.linker,
        };
        queue.extend(parts.into_iter().map(|text| Piece {
            text,
            words: words.clone(),
            unread: None,
        }));
    }
}

/// The debug level a `-g` option's attached text sets: Some(Some(n)) for
/// a level, Some(None) for debug information at the current level (else
/// 2), None for a `-g` option that sets no level (`-gz`, `-gno-...`,
/// `-gcolumn-info`, `-gdwarf64`, `-gbtf`...).
pub(super) fn debug_level(v: &[u8]) -> Option<Option<u8>> {
    let level = |rest: &[u8]| match rest {
        b"" => Some(None),
        [d @ b'0'..=b'3'] => Some(Some(d - b'0')),
        _ => None,
    };
    if let Some(l) = level(v) {
        return Some(l);
    }
    if let Some(version) = v.strip_prefix(b"dwarf-") {
        return version.iter().all(u8::is_ascii_digit).then_some(None);
    }
    for format in [
        &b"gdb"[..],
        b"dwarf",
        b"stabs+",
        b"stabs",
        b"xcoff+",
        b"xcoff",
        b"vms",
        b"coff",
    ] {
        if let Some(rest) = v.strip_prefix(format) {
            return level(rest);
        }
    }
    None
}

/// gcc's name for an auxiliary output of `name`: its last suffix (after
/// the last `.` of its last component, even a leading one) replaced by
/// `ext` (`out/x.o` gives `out/x.d`, `x` gives `x.d`, `.x` gives `.d`).
pub(super) fn with_suffix(name: &Path, ext: &str) -> PathBuf {
    let b = name.as_os_str().as_bytes();
    let start = b.iter().rposition(|&c| c == b'/').map_or(0, |s| s + 1);
    let end = b[start..]
        .iter()
        .rposition(|&c| c == b'.')
        .map_or(b.len(), |d| start + d);
    let mut out = b[..end].to_vec();
    out.push(b'.');
    out.extend_from_slice(ext.as_bytes());
    PathBuf::from(OsString::from_vec(out))
}

/// An input's base name without its last suffix (gcc's `%b`).
pub(super) fn base_name(file: &Path) -> Vec<u8> {
    let name = file.file_name().map_or(&[][..], |n| n.as_bytes());
    let end = name.iter().rposition(|&c| c == b'.').unwrap_or(name.len());
    name[..end].to_vec()
}
