//! One model of a gcc command line.
//!
//! `parse` reads a compiler's arguments once, the way gcc's driver does:
//! response files (`@file`) are expanded first, in place and with
//! libiberty's quoting, then every word is matched against one option
//! table (`DRIVER`). What `-Wl,`/`-Xlinker` and `-Wa,`/`-Xassembler` pass on
//! is matched against the linker's and the assembler's own small tables,
//! and what `-Wp,`/`-Xpreprocessor` pass on against `DRIVER` as cc1 reads
//! it (there `-MD FILE` takes a file). Each meaning found is an `Arg`; the
//! questions the rest of the program asks (which files the call reads and
//! writes, which dependency files gcc writes, whether it only asks a
//! question, whether distcc may compile it elsewhere) are methods of
//! `CmdLine` over those, so that no other module needs to know an option.
//!
//! Paths are made absolute against the current directory lexically (`..`
//! drops the component before it), as mounts are.
//!
//! The model's types are here; the option tables are in `options`, the
//! reading (response files, then each word) in `read`, and the answers
//! (`CmdLine`'s methods) in `answers`.

use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::call::mounts::normalize;

mod answers;
mod options;
mod read;

pub use read::parse;

/// Response files nest at most this deep (an `@file` at a deeper level is
/// left as it is, as one that cannot be read).
pub const RESPONSE_DEPTH: usize = 8;

/// At most this many response files are read for one command line: a file
/// naming itself many times would otherwise be read exponentially often.
pub const RESPONSE_FILES: usize = 64;

/// Reads a response file for `parse`: its bytes, or why not (the caller
/// decides the size cap and which files are safe to open).
pub type Reader<'a> = dyn FnMut(&Path) -> Result<Vec<u8>, String> + 'a;

/// Which program an argument is meant for: the driver itself, or the
/// preprocessor, assembler or linker it passes `-Wp,`/`-Wa,`/`-Wl,` (or
/// `-Xpreprocessor`/`-Xassembler`/`-Xlinker`) words on to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Driver,
    Preprocessor,
    Assembler,
    Linker,
}

/// Where gcc stops: `-c`, `-S`, `-E`, `-M`/`-MM` (dependencies only), or
/// the default, linking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Link,
    Compile,
    Assemble,
    Preprocess,
    Deps,
}

/// A language gcc takes an input for: from `-x`, else from its suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lang {
    C,
    CHeader,
    /// Preprocessed C (`.i`, `-x cpp-output`).
    CPreprocessed,
    Cxx,
    CxxHeader,
    /// Preprocessed C++ (`.ii`, `-x c++-cpp-output`).
    CxxPreprocessed,
    ObjC,
    ObjCHeader,
    ObjCPreprocessed,
    ObjCxx,
    ObjCxxHeader,
    ObjCxxPreprocessed,
    /// `.s`, `-x assembler`.
    Asm,
    /// `.S`, `.sx`, `-x assembler-with-cpp`.
    AsmWithCpp,
    /// Another language gcc compiles (Fortran, Ada, D, Go...), by its
    /// `-x` name or a name for the family.
    Other(String),
    /// Anything else: an object, archive or shared library for the linker.
    Object,
}

impl Lang {
    /// What gcc takes a file with this name for.
    pub fn of_file(name: &Path) -> Lang {
        let Some(file) = name.file_name() else {
            return Lang::Object;
        };
        let file = file.as_bytes();
        let Some(dot) = file.iter().rposition(|&b| b == b'.') else {
            return Lang::Object;
        };
        match &file[dot + 1..] {
            b"c" => Lang::C,
            b"i" => Lang::CPreprocessed,
            b"ii" => Lang::CxxPreprocessed,
            b"m" => Lang::ObjC,
            b"mi" => Lang::ObjCPreprocessed,
            b"mm" | b"M" => Lang::ObjCxx,
            b"mii" => Lang::ObjCxxPreprocessed,
            b"h" => Lang::CHeader,
            b"cc" | b"cp" | b"cxx" | b"cpp" | b"CPP" | b"c++" | b"C" => Lang::Cxx,
            b"hh" | b"H" | b"hp" | b"hxx" | b"hpp" | b"HPP" | b"h++" | b"tcc" => Lang::CxxHeader,
            b"s" => Lang::Asm,
            b"S" | b"sx" => Lang::AsmWithCpp,
            b"f" | b"for" | b"ftn" | b"F" | b"FOR" | b"fpp" | b"FPP" | b"FTN" | b"f90" | b"f95"
            | b"f03" | b"f08" | b"F90" | b"F95" | b"F03" | b"F08" => Lang::Other("fortran".into()),
            b"go" => Lang::Other("go".into()),
            b"d" | b"di" | b"dd" => Lang::Other("d".into()),
            b"ads" | b"adb" => Lang::Other("ada".into()),
            _ => Lang::Object,
        }
    }

    /// The language `-x NAME` names; None for `-x none` (back to suffixes).
    pub fn of_x(name: &OsStr) -> Option<Lang> {
        Some(match name.as_bytes() {
            b"none" => return None,
            b"c" => Lang::C,
            b"c-header" => Lang::CHeader,
            b"cpp-output" => Lang::CPreprocessed,
            b"c++" => Lang::Cxx,
            b"c++-header" | b"c++-system-header" | b"c++-user-header" => Lang::CxxHeader,
            b"c++-cpp-output" => Lang::CxxPreprocessed,
            b"objective-c" => Lang::ObjC,
            b"objective-c-header" => Lang::ObjCHeader,
            b"objective-c-cpp-output" | b"objc-cpp-output" => Lang::ObjCPreprocessed,
            b"objective-c++" => Lang::ObjCxx,
            b"objective-c++-header" => Lang::ObjCxxHeader,
            b"objective-c++-cpp-output" => Lang::ObjCxxPreprocessed,
            b"assembler" => Lang::Asm,
            b"assembler-with-cpp" => Lang::AsmWithCpp,
            other => Lang::Other(String::from_utf8_lossy(other).into_owned()),
        })
    }

    /// Whether gcc runs the preprocessor on it (and so `-MD` writes a
    /// dependency file for it).
    pub fn is_preprocessed_here(&self) -> bool {
        matches!(
            self,
            Lang::C
                | Lang::CHeader
                | Lang::Cxx
                | Lang::CxxHeader
                | Lang::ObjC
                | Lang::ObjCHeader
                | Lang::ObjCxx
                | Lang::ObjCxxHeader
                | Lang::AsmWithCpp
        )
    }

    /// Whether it is a C or C++ source, plain or preprocessed (what distcc
    /// compiles elsewhere).
    pub fn is_c_or_cxx_source(&self) -> bool {
        matches!(
            self,
            Lang::C | Lang::Cxx | Lang::CPreprocessed | Lang::CxxPreprocessed
        )
    }
}

/// The order an include folder is searched in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeOrder {
    /// `-iquote`: for `#include "..."` only.
    Quote,
    /// `-I`.
    Bracket,
    /// `-isystem`.
    System,
    /// `-idirafter`.
    After,
}

/// A question gcc answers instead of compiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asks {
    /// `-print-prog-name=NAME`.
    ProgName,
    /// `-print-file-name=NAME`.
    FileName,
    SearchDirs,
    LibgccFileName,
    Sysroot,
    SysrootHeadersSuffix,
    MultiDirectory,
    MultiLib,
    MultiOsDirectory,
    Multiarch,
    /// `-dumpmachine`.
    Machine,
    /// `-dumpversion`.
    Version,
    /// `-dumpfullversion`.
    FullVersion,
    /// `-dumpspecs`.
    Specs,
    /// `--version`.
    VersionBanner,
    /// `--help`, `--help=...`, `--target-help`.
    Help,
}

/// A question on the command line, with the name it asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub asks: Asks,
    pub name: Option<OsString>,
}

/// What an option does besides its value, when that matters to a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// `-c`, `-S`, `-E`, `-M`, `-MM`.
    Stop(Mode),
    /// `-MD` (`system: true`) or `-MMD`: dependencies written on the side.
    WriteDeps {
        system: bool,
    },
    /// `-save-temps`: the intermediate files are kept.
    SaveTemps,
    /// Profiling or coverage (`-fprofile-*`, `--coverage`...).
    Profile,
    /// A file written beside the output (`-fstack-usage`, `-gsplit-dwarf`,
    /// `-fdump-*`, an assembler listing...).
    SideOutput,
    /// A compiler plugin (`-fplugin=`).
    Plugin,
    /// `-specs`: the driver's own rules are changed.
    Specs,
    /// `-B`: where the driver finds its programs.
    Prefix,
    /// `--sysroot`, `-isysroot`.
    Sysroot,
    /// `-fdirectives-only`.
    DirectivesOnly,
    /// `-dumpdir`, `-dumpbase`, `-dumpbase-ext`: how auxiliary outputs
    /// (default dependency files among them) are named.
    DumpDir,
    DumpBase,
    DumpBaseExt,
}

/// A path on the command line: as given, and absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathArg {
    pub given: PathBuf,
    pub path: PathBuf,
}

impl PathArg {
    fn new(given: &[u8], cwd: &Path) -> PathArg {
        let given = PathBuf::from(OsStr::from_bytes(given));
        let path = normalize(&given, cwd);
        PathArg { given, path }
    }

    /// `-`: standard input or output.
    pub fn is_stdio(&self) -> bool {
        self.given.as_os_str() == "-"
    }
}

/// What an argument is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A file to compile or link, and what gcc takes it for.
    Input { file: PathArg, lang: Lang },
    /// `-`: the source is read from stdin (its language from `-x`).
    Stdin { lang: Option<Lang> },
    /// `@file`: the index of the file in `CmdLine::response_files`.
    ResponseFile(usize),
    /// `-o FILE`.
    Output(PathArg),
    /// A name given to the dependency file: `-MF FILE`, or `-MD FILE`,
    /// `-MMD FILE`, `-MF FILE` passed to the preprocessor with `-Wp,`.
    Depfile(PathArg),
    /// `-MT TARGET` (`quoted: false`) or `-MQ TARGET`.
    DepTarget { target: OsString, quoted: bool },
    /// `-x LANG`; None for `-x none`.
    Language(Option<Lang>),
    /// An include folder. `in_sysroot` (`-I=dir`, `-I$SYSROOT/dir`): the
    /// folder is below the sysroot, and `dir.path` is its path there.
    IncludeDir {
        dir: PathArg,
        order: IncludeOrder,
        in_sysroot: bool,
    },
    /// `-L DIR` (`in_sysroot` as for include folders).
    LibraryDir { dir: PathArg, in_sysroot: bool },
    /// `-l NAME`.
    Library(OsString),
    /// Another file or folder read: `-include`, `-imacros`, `--sysroot`,
    /// `-specs`, `-T`, `-B`, `-fplugin=`, `-fprofile-use=`, a linker
    /// script... `option` names the option ("" for a file handed to the
    /// linker or assembler as it is).
    Reads { option: &'static str, path: PathArg },
    /// Another file written: `-aux-info`, the linker's `-Map`, an
    /// assembler listing...
    Writes { option: &'static str, path: PathArg },
    /// The value of an option this table does not know (`-fx=a/b`) that
    /// looks like a path (it has a `/`): perhaps read.
    MaybeReads(PathArg),
    /// A question gcc answers instead of compiling.
    Query(Query),
    /// A `-g` option: Some(level) when it sets one (`-g0`, `-g3`,
    /// `-ggdb1`), None when it asks for debug information at the level
    /// already set, else 2 (`-g`, `-ggdb`, `-gdwarf-4`).
    Debug(Option<u8>),
    /// A known option with a value that is not a path (`-D`, `-U`, `-z`,
    /// `--param`, `-soname`...).
    Value {
        option: &'static str,
        value: OsString,
    },
    /// A known option without a value (its effect, if any, is in `Arg`).
    Flag(&'static str),
    /// An option the tables do not know, taken as a flag (the tables know
    /// every gcc option that takes the next word as its value).
    Unknown(OsString),
}

/// One meaning found on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// The words it spans in `CmdLine::words`: one, or two for an option
    /// with its value in the next word (several arguments may share the
    /// words of one `-Wl,a,b,c`).
    pub words: Range<usize>,
    pub via: Via,
    pub kind: Kind,
    pub effect: Effect,
}

/// Where a word comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The command line itself, at this index.
    Argv(usize),
    /// A response file (its index in `CmdLine::response_files`), at this
    /// index among its words.
    File(usize, usize),
}

/// A word of the command line after response files are expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: OsString,
    pub origin: Origin,
    /// For an `@file` word: the index of the file in
    /// `CmdLine::response_files` (its words, when it was read, follow).
    pub response: Option<usize>,
}

/// A response file named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseFile {
    pub file: PathArg,
    /// The words read from it; or why it was not read, and then gcc takes
    /// `@file` as it is (a file name, which gcc reports missing).
    pub words: Result<Vec<OsString>, String>,
}

/// A command line, each argument classified once.
#[derive(Clone, Debug)]
pub struct CmdLine {
    /// The words, response files expanded in place (each `@file` word stays,
    /// followed by the file's words).
    pub words: Vec<Word>,
    /// What the words are, in command-line order.
    pub args: Vec<Arg>,
    pub response_files: Vec<ResponseFile>,
    /// The current directory the paths were made absolute against.
    pub cwd: PathBuf,
}

#[cfg(test)]
mod tests;
