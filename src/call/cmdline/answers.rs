//! What the rest of the program asks of a command line: the files it
//! reads and writes, the depfiles gcc writes, whether it only asks a
//! question, whether distcc may compile it elsewhere.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::call::mounts::normalize;

use super::read::{base_name, with_suffix};
use super::*;

impl CmdLine {
    /// The words `arg` spans.
    pub fn words_of(&self, arg: &Arg) -> &[Word] {
        &self.words[arg.words.clone()]
    }

    /// `arg`'s words as text, for messages.
    pub fn text_of(&self, arg: &Arg) -> String {
        let words: Vec<String> = self
            .words_of(arg)
            .iter()
            .map(|w| w.text.to_string_lossy().into_owned())
            .collect();
        words.join(" ")
    }

    fn driver(&self) -> impl Iterator<Item = &Arg> {
        self.args.iter().filter(|a| a.via == Via::Driver)
    }

    /// The files to compile or link, in order, with their languages.
    pub fn inputs(&self) -> Vec<(&PathArg, &Lang)> {
        self.driver()
            .filter_map(|a| match &a.kind {
                Kind::Input { file, lang } => Some((file, lang)),
                _ => None,
            })
            .collect()
    }

    /// Whether a source is read from stdin (`-`).
    pub fn reads_stdin(&self) -> bool {
        self.driver().any(|a| matches!(a.kind, Kind::Stdin { .. }))
    }

    /// The output (`-o`; the last one, as gcc takes).
    pub fn output(&self) -> Option<&PathArg> {
        self.driver()
            .filter_map(|a| match &a.kind {
                Kind::Output(o) => Some(o),
                _ => None,
            })
            .last()
    }

    /// Where gcc stops: `-M`/`-MM` before `-E` before `-S` before `-c`,
    /// wherever they are; else it links.
    pub fn mode(&self) -> Mode {
        let stops: Vec<Mode> = self
            .driver()
            .filter_map(|a| match a.effect {
                Effect::Stop(m) => Some(m),
                _ => None,
            })
            .collect();
        [Mode::Deps, Mode::Preprocess, Mode::Assemble, Mode::Compile]
            .into_iter()
            .find(|m| stops.contains(m))
            .unwrap_or(Mode::Link)
    }

    /// The questions asked (`-print-*`, `-dump*`, `--version`, `--help`).
    pub fn queries(&self) -> Vec<&Query> {
        self.driver()
            .filter_map(|a| match &a.kind {
                Kind::Query(q) => Some(q),
                _ => None,
            })
            .collect()
    }

    /// Whether the line is only questions: no input, no stdin, no response
    /// file (whose words could be anything).
    pub fn only_asks(&self) -> bool {
        !self.queries().is_empty()
            && self.inputs().is_empty()
            && !self.reads_stdin()
            && self.response_files.is_empty()
    }

    /// Whether an option changes where the driver finds its programs and
    /// files (`-B`, `-specs`, `--sysroot`, `-isysroot`): then its answers
    /// are not the toolchain's usual ones.
    pub fn changes_search(&self) -> bool {
        self.driver()
            .any(|a| matches!(a.effect, Effect::Prefix | Effect::Specs | Effect::Sysroot))
    }

    /// The files and folders the call reads from the host: inputs, include
    /// and library folders, files read by options and by the programs gcc
    /// runs, unknown options' path-like values, and response files.
    pub fn read_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for a in &self.args {
            let p = match &a.kind {
                Kind::Input { file, .. } => &file.path,
                Kind::IncludeDir {
                    dir,
                    in_sysroot: false,
                    ..
                }
                | Kind::LibraryDir {
                    dir,
                    in_sysroot: false,
                } => &dir.path,
                Kind::Reads { path, .. } | Kind::MaybeReads(path) => &path.path,
                Kind::ResponseFile(r) => &self.response_files[*r].file.path,
                _ => continue,
            };
            out.push(p.clone());
        }
        out.extend(self.response_files.iter().map(|r| r.file.path.clone()));
        dedup(out)
    }

    /// The files the call writes on the host: the output, every depfile
    /// named, files written by options or by the programs gcc runs (`-` is
    /// stdout and not listed), and a default depfile in a folder other
    /// than the output's and the current one (`-dumpdir`): one beside the
    /// output goes where the output goes (`-o /dev/null` writes
    /// `/dev/null.d`, a file of the container).
    pub fn written_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for a in &self.args {
            let p = match &a.kind {
                Kind::Output(p) if a.via == Via::Driver && !p.is_stdio() => p,
                Kind::Depfile(p) | Kind::Writes { path: p, .. } => p,
                _ => continue,
            };
            out.push(p.path.clone());
        }
        let output_dir = self.output().and_then(|o| o.path.parent());
        out.extend(self.depfiles().into_iter().filter(|d| {
            let dir = d.parent();
            dir != Some(self.cwd.as_path()) && dir != output_dir
        }));
        dedup(out)
    }

    fn deps_flags(&self) -> (bool, bool) {
        let md = self
            .driver()
            .any(|a| matches!(a.effect, Effect::WriteDeps { .. }));
        let m = self.mode() == Mode::Deps;
        (md, m)
    }

    fn last_value(&self, effect: Effect) -> Option<&OsStr> {
        self.driver()
            .filter(|a| a.effect == effect)
            .filter_map(|a| match &a.kind {
                Kind::Value { value, .. } => Some(value.as_os_str()),
                _ => None,
            })
            .last()
    }

    /// The explicit name of the dependency file: a name passed to the
    /// preprocessor (`-Wp,-MD,F`, `-Wp,-MMD,F`, `-Wp,-MF,F`) wins over
    /// `-MF` (gcc passes those after its own); the last of each counts.
    fn explicit_depfile(&self) -> Option<&PathArg> {
        let last = |via: Via| {
            self.args
                .iter()
                .filter(|a| a.via == via)
                .filter_map(|a| match &a.kind {
                    Kind::Depfile(p) => Some(p),
                    _ => None,
                })
                .next_back()
        };
        last(Via::Preprocessor).or_else(|| last(Via::Driver))
    }

    /// The dependency files gcc writes, absolute, as gcc 12 names them:
    ///
    /// - only when the preprocessor runs on an input (`.c`, `.S`..., not
    ///   `.i`, `.s` or objects);
    /// - an explicit name (`explicit_depfile`) when dependencies are made
    ///   (`-MD`, `-MMD`, `-M`, `-MM`, or `-Wp,-MD,F`);
    /// - else with `-MD`/`-MMD`: the output (`-o`) with its suffix replaced
    ///   by `.d` (`x.o` → `x.d`, `x` → `x.d`, `.x` → `.d`); without `-o`,
    ///   one per input: its base name without suffix and `.d`, in the
    ///   current directory (`-` for stdin), after the `-dumpdir` prefix
    ///   (when linking, `a-` by default: `gcc -MD t.c` writes `a-t.d`), or
    ///   `-dumpbase` (less `-dumpbase-ext`) instead of the base name;
    /// - with `-M`/`-MM` and no explicit name, the output `-o` itself too.
    ///
    /// `DEPENDENCIES_OUTPUT` and `SUNPRO_DEPENDENCIES` are the caller's.
    pub fn depfiles(&self) -> Vec<PathBuf> {
        let cpp_inputs: Vec<Option<&Path>> = self
            .driver()
            .filter_map(|a| match &a.kind {
                Kind::Input { file, lang } if lang.is_preprocessed_here() => {
                    Some(Some(file.given.as_path()))
                }
                Kind::Stdin { lang: Some(l) } if l.is_preprocessed_here() => Some(None),
                _ => None,
            })
            .collect();
        if cpp_inputs.is_empty() {
            return Vec::new();
        }
        let (md, m) = self.deps_flags();
        let via_cpp = self
            .args
            .iter()
            .any(|a| a.via == Via::Preprocessor && matches!(a.effect, Effect::WriteDeps { .. }));
        if let Some(f) = self.explicit_depfile() {
            return if md || m || via_cpp {
                vec![f.path.clone()]
            } else {
                Vec::new()
            };
        }
        let output = self.output();
        let mut files = Vec::new();
        if m {
            files.extend(output.filter(|o| !o.is_stdio()).map(|o| o.path.clone()));
        }
        if !md {
            return files;
        }
        if let Some(o) = output {
            files.push(normalize(&with_suffix(&o.given, "d"), &self.cwd));
            return dedup(files);
        }
        let linking = !self.driver().any(|a| {
            matches!(
                a.effect,
                Effect::Stop(Mode::Compile | Mode::Assemble | Mode::Preprocess)
            )
        });
        let prefix: Vec<u8> = match self.last_value(Effect::DumpDir) {
            Some(d) => d.as_bytes().to_vec(),
            None if linking => b"a-".to_vec(),
            None => Vec::new(),
        };
        let dumpbase = self.last_value(Effect::DumpBase).map(|b| {
            let b = b.as_bytes();
            match self.last_value(Effect::DumpBaseExt) {
                Some(ext) if b.ends_with(ext.as_bytes()) => b[..b.len() - ext.len()].to_vec(),
                _ => b.to_vec(),
            }
        });
        for input in cpp_inputs {
            let base = match (&dumpbase, input) {
                (Some(b), _) => b.clone(),
                (None, Some(file)) => base_name(file),
                (None, None) => b"-".to_vec(),
            };
            let mut name = prefix.clone();
            name.extend_from_slice(&base);
            name.extend_from_slice(b".d");
            files.push(normalize(Path::new(OsStr::from_bytes(&name)), &self.cwd));
        }
        dedup(files)
    }

    /// What to add when the preprocessing runs apart from the compile (distcc
    /// preprocesses here and compiles on a server):
    ///
    /// - the dependency file and its target made explicit
    ///   (`explicit_depfile_args`): distcc preprocesses without `-o`, so
    ///   `-MD` alone would write `x.d` naming `x.o` where the compiler, given
    ///   `-o out/y.o`, writes `out/y.d` naming `out/y.o`;
    /// - with debug information, `-fdirectives-only`: the local
    ///   preprocessing then expands no macros and the server's compiler
    ///   does, from the original text, so the columns in the debug
    ///   information are the source's. Fully preprocessed text moves every
    ///   token after a macro on its line (`typedef __SIZE_TYPE__ size_t;`),
    ///   and an object would depend on whether a server or the fallback
    ///   compiled it. The option also reaches the fallback, so every object
    ///   of the build is the same wherever it was compiled; against a build
    ///   without distcc, only the recorded options (`DW_AT_producer`)
    ///   differ.
    pub fn apart_args(&self) -> Vec<OsString> {
        let mut out = self.explicit_depfile_args();
        if self.has_debug_info() && !self.directives_only() {
            out.push("-fdirectives-only".into());
        }
        out
    }

    /// The arguments to add so that the dependency file's name and target
    /// no longer depend on `-o` (distcc preprocesses without it): with
    /// `-MD`/`-MMD` and an output, `-MF <output's .d>` unless a depfile is
    /// named, and `-MQ <output>` unless `-MT`/`-MQ` names a target (a
    /// target passed with `-Wp,` does not count: gcc adds its own then too).
    pub fn explicit_depfile_args(&self) -> Vec<OsString> {
        let (md, _) = self.deps_flags();
        let Some(output) = self.output().filter(|_| md) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.explicit_depfile().is_none() {
            out.push("-MF".into());
            out.push(with_suffix(&output.given, "d").into_os_string());
        }
        if !self
            .driver()
            .any(|a| matches!(a.kind, Kind::DepTarget { .. }))
        {
            out.push("-MQ".into());
            out.push(output.given.clone().into_os_string());
        }
        out
    }

    /// The debug level gcc ends with: each `-gN` sets it, `-g` (and
    /// `-ggdb`, `-gdwarf-N`...) sets 2 when it is 0, and `-gtoggle`
    /// (anywhere) turns it off, or on at 2. The argument that set it.
    pub fn debug_level(&self) -> (u8, Option<&Arg>) {
        let mut level = 0;
        let mut by = None;
        let mut toggle = false;
        for a in self.driver() {
            match (&a.kind, a.effect) {
                (Kind::Debug(Some(n)), _) => (level, by) = (*n, Some(a)),
                (Kind::Debug(None), _) if level == 0 => (level, by) = (2, Some(a)),
                (Kind::Flag("-gtoggle"), _) => toggle = !toggle,
                _ => {}
            }
        }
        if toggle {
            level = if level == 0 { 2 } else { 0 };
        }
        (level, by)
    }

    /// Whether the compile makes debug information.
    pub fn has_debug_info(&self) -> bool {
        self.debug_level().0 > 0
    }

    /// Whether `-fdirectives-only` is given.
    pub fn directives_only(&self) -> bool {
        self.driver().any(|a| a.effect == Effect::DirectivesOnly)
    }

    /// Whether this is a plain compile that distcc may run elsewhere: `-c`
    /// of one C or C++ source, none of `-E`, `-S`, `-M`/`-MM`, `-x`, stdin,
    /// a response file, `-save-temps`, profiling or coverage, a plugin,
    /// `-specs`, `-B`, a file written beside the object (`-fdump-*`,
    /// `-fstack-usage`, `-gsplit-dwarf`, `-aux-info`, an assembler
    /// listing), debug level 3 (macros, which a remote preprocessing cannot
    /// keep) or an argument that is not UTF-8. The error says why not.
    pub fn plain_compile(&self) -> Result<(), String> {
        if self.words.iter().any(|w| w.text.to_str().is_none()) {
            return Err("an argument is not valid UTF-8".into());
        }
        let mut sources = 0;
        for a in &self.args {
            let local = match (&a.kind, a.effect) {
                (_, Effect::Stop(m)) => m != Mode::Compile,
                (Kind::Stdin { .. } | Kind::Language(_) | Kind::ResponseFile(_), _) => true,
                (
                    _,
                    Effect::SaveTemps
                    | Effect::Profile
                    | Effect::SideOutput
                    | Effect::Plugin
                    | Effect::Specs
                    | Effect::Prefix,
                ) => true,
                (Kind::Input { file, lang }, _) if a.via == Via::Driver => {
                    let suffix = file.given.extension().and_then(OsStr::to_str);
                    if !lang.is_c_or_cxx_source()
                        || !suffix.is_some_and(|s| DISTCC_SOURCES.contains(&s))
                    {
                        return Err(format!("{} is not a C or C++ source", file.given.display()));
                    }
                    sources += 1;
                    false
                }
                _ => false,
            };
            if local {
                return Err(format!("{} keeps it local", self.text_of(a)));
            }
        }
        if let (3, Some(a)) = self.debug_level() {
            return Err(format!("{} keeps it local", self.text_of(a)));
        }
        match (self.mode(), sources) {
            (Mode::Compile, 1) => Ok(()),
            (Mode::Compile, n) => Err(format!("{n} sources")),
            _ => Err("not a compile (-c)".into()),
        }
    }
}

/// The suffixes distcc itself takes for C and C++ sources (its
/// `dcc_is_source`; gcc also takes `.CPP` for C++).
pub(super) const DISTCC_SOURCES: &[&str] = &["c", "cc", "cpp", "cxx", "cp", "c++", "C", "i", "ii"];

pub(super) fn dedup(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for p in paths {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}
