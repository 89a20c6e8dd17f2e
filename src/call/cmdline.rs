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

use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::call::mounts::normalize;

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

// ---------------------------------------------------------------------------
// The option table.

/// How an option's value comes.
#[derive(Clone, Copy)]
enum Form {
    /// No value.
    Flag,
    /// In the next word only.
    Next,
    /// Attached only, possibly empty (`-Wl,LIST`, `-g3`, `-print-file-name=X`).
    Joined,
    /// Attached (`-Ifoo`) or, when nothing is attached, the next word (`-I foo`).
    Either,
    /// The next word (`--sysroot DIR`) or after `=` (`--sysroot=DIR`).
    EqOrNext,
}

/// What an option's value is.
#[derive(Clone, Copy)]
enum Val {
    None,
    Text,
    Lang,
    Output,
    Depfile,
    DepTarget {
        quoted: bool,
    },
    Include(IncludeOrder),
    LibraryDir,
    Library,
    Reads,
    Writes,
    /// Words for another program: one (`-Xlinker W`) or a comma list (`-Wl,A,B`).
    Pass {
        to: Via,
        list: bool,
    },
    Query(Asks),
    Debug,
    /// An assembler listing (`-a[cdhlmns]*[=FILE]`).
    Listing,
}

struct Opt {
    name: &'static str,
    form: Form,
    val: Val,
    effect: Effect,
}

const fn o(name: &'static str, form: Form, val: Val) -> Opt {
    Opt {
        name,
        form,
        val,
        effect: Effect::None,
    }
}

const fn e(name: &'static str, form: Form, val: Val, effect: Effect) -> Opt {
    Opt {
        name,
        form,
        val,
        effect,
    }
}

const fn flag(name: &'static str, effect: Effect) -> Opt {
    e(name, Form::Flag, Val::None, effect)
}

const fn ask(name: &'static str, asks: Asks) -> Opt {
    o(name, Form::Flag, Val::Query(asks))
}

use Form::{Either, EqOrNext, Joined, Next};

/// gcc's options, as the driver reads them (and, with `PREPROCESSOR`
/// first, as cc1 reads what `-Wp,` passes on). An option matches its exact
/// name first, else the longest name it begins with; options not here
/// are flags (gcc has no other option that takes the next word).
#[rustfmt::skip]
static DRIVER: &[Opt] = &[
    // Where gcc stops.
    flag("-c", Effect::Stop(Mode::Compile)),
    flag("--compile", Effect::Stop(Mode::Compile)),
    flag("-S", Effect::Stop(Mode::Assemble)),
    flag("--assemble", Effect::Stop(Mode::Assemble)),
    flag("-E", Effect::Stop(Mode::Preprocess)),
    flag("--preprocess", Effect::Stop(Mode::Preprocess)),
    flag("-M", Effect::Stop(Mode::Deps)),
    flag("-MM", Effect::Stop(Mode::Deps)),
    // Dependency files.
    flag("-MD", Effect::WriteDeps { system: true }),
    flag("-MMD", Effect::WriteDeps { system: false }),
    o("-MF", Either, Val::Depfile),
    o("-MT", Either, Val::DepTarget { quoted: false }),
    o("-MQ", Either, Val::DepTarget { quoted: true }),
    flag("-MP", Effect::None),
    flag("-MG", Effect::None),
    // Inputs and outputs.
    o("-o", Either, Val::Output),
    o("--output", EqOrNext, Val::Output),
    o("-x", Either, Val::Lang),
    o("--language", EqOrNext, Val::Lang),
    // Include folders and files.
    o("-I", Either, Val::Include(IncludeOrder::Bracket)),
    o("--include-directory", EqOrNext, Val::Include(IncludeOrder::Bracket)),
    flag("-I-", Effect::None),
    o("-iquote", Either, Val::Include(IncludeOrder::Quote)),
    o("-isystem", Either, Val::Include(IncludeOrder::System)),
    o("-cxx-isystem", Either, Val::Include(IncludeOrder::System)),
    o("-idirafter", Either, Val::Include(IncludeOrder::After)),
    o("--include-directory-after", EqOrNext, Val::Include(IncludeOrder::After)),
    o("-include", Either, Val::Reads),
    o("--include", EqOrNext, Val::Reads),
    o("-imacros", Either, Val::Reads),
    o("--imacros", EqOrNext, Val::Reads),
    o("-iprefix", Either, Val::Reads),
    o("--include-prefix", EqOrNext, Val::Reads),
    // Folders below the -iprefix (else gcc's own), and multilib names.
    o("-iwithprefix", Either, Val::Text),
    o("-iwithprefixbefore", Either, Val::Text),
    o("--include-with-prefix", EqOrNext, Val::Text),
    o("--include-with-prefix-after", EqOrNext, Val::Text),
    o("--include-with-prefix-before", EqOrNext, Val::Text),
    o("-imultilib", Either, Val::Text),
    o("-imultiarch", Either, Val::Text),
    e("-isysroot", Either, Val::Reads, Effect::Sysroot),
    e("--sysroot", EqOrNext, Val::Reads, Effect::Sysroot),
    o("-iplugindir=", Joined, Val::Reads),
    // Macros and assertions.
    o("-D", Either, Val::Text),
    o("--define-macro", EqOrNext, Val::Text),
    o("-U", Either, Val::Text),
    o("--undefine-macro", EqOrNext, Val::Text),
    flag("-undef", Effect::None),
    o("-A", Either, Val::Text),
    o("--assert", EqOrNext, Val::Text),
    // The driver's programs and rules.
    e("-B", Either, Val::Reads, Effect::Prefix),
    e("--prefix", EqOrNext, Val::Reads, Effect::Prefix),
    e("-specs", EqOrNext, Val::Reads, Effect::Specs),
    e("--specs", EqOrNext, Val::Reads, Effect::Specs),
    o("-wrapper", Next, Val::Text),
    // Linking.
    o("-L", Either, Val::LibraryDir),
    o("--library-directory", EqOrNext, Val::LibraryDir),
    o("-l", Either, Val::Library),
    o("-T", Either, Val::Reads),
    o("-Ttext", EqOrNext, Val::Text),
    o("-Tdata", EqOrNext, Val::Text),
    o("-Tbss", EqOrNext, Val::Text),
    o("-u", Either, Val::Text),
    o("--force-link", EqOrNext, Val::Text),
    o("-e", Either, Val::Text),
    o("--entry", EqOrNext, Val::Text),
    flag("-export-dynamic", Effect::None),
    o("-z", Either, Val::Text),
    o("-h", Either, Val::Text),
    o("-R", Either, Val::Reads),
    o("-G", Either, Val::Text),
    // Words for the other programs.
    o("-Wl,", Joined, Val::Pass { to: Via::Linker, list: true, }),
    o("-Xlinker", Next, Val::Pass { to: Via::Linker, list: false, }),
    o("--for-linker", EqOrNext, Val::Pass { to: Via::Linker, list: false, }),
    o("-Wa,", Joined, Val::Pass { to: Via::Assembler, list: true, }),
    o("-Xassembler", Next, Val::Pass { to: Via::Assembler, list: false, }),
    o("--for-assembler", EqOrNext, Val::Pass { to: Via::Assembler, list: false, }),
    o("-Wp,", Joined, Val::Pass { to: Via::Preprocessor, list: true, }),
    o("-Xpreprocessor", Next, Val::Pass { to: Via::Preprocessor, list: false, }),
    // Compiler options with a value.
    o("--param", EqOrNext, Val::Text),
    o("--dump", EqOrNext, Val::Text),
    e("-aux-info", EqOrNext, Val::Writes, Effect::SideOutput),
    e("-dumpbase", Next, Val::Text, Effect::DumpBase),
    e("--dumpbase", EqOrNext, Val::Text, Effect::DumpBase),
    e("-dumpbase-ext", Next, Val::Text, Effect::DumpBaseExt),
    e("-dumpdir", Next, Val::Text, Effect::DumpDir),
    e("--dumpdir", EqOrNext, Val::Text, Effect::DumpDir),
    o("-fdebug-prefix-map=", Joined, Val::Text),
    o("-fmacro-prefix-map=", Joined, Val::Text),
    o("-ffile-prefix-map=", Joined, Val::Text),
    e("-fplugin=", Joined, Val::Reads, Effect::Plugin),
    e("-fplugin-arg-", Joined, Val::Text, Effect::Plugin),
    // Profiling and coverage (profiles are read at compile time with
    // -fprofile-use, written by the program at run time otherwise).
    e("-fprofile-", Joined, Val::Text, Effect::Profile),
    e("-fprofile-use=", Joined, Val::Reads, Effect::Profile),
    e("-fprofile-dir=", Joined, Val::Reads, Effect::Profile),
    flag("-fauto-profile", Effect::Profile),
    e("-fauto-profile=", Joined, Val::Reads, Effect::Profile),
    flag("-ftest-coverage", Effect::Profile),
    flag("--coverage", Effect::Profile),
    // Files written beside the output.
    flag("-save-temps", Effect::SaveTemps),
    flag("--save-temps", Effect::SaveTemps),
    e("-save-temps=", Joined, Val::Text, Effect::SaveTemps),
    e("-fdump-", Joined, Val::Text, Effect::SideOutput),
    flag("-fstack-usage", Effect::SideOutput),
    flag("-fcallgraph-info", Effect::SideOutput),
    e("-fcallgraph-info=", Joined, Val::Text, Effect::SideOutput),
    flag("-gsplit-dwarf", Effect::SideOutput),
    flag("-gtoggle", Effect::None),
    flag("-fdirectives-only", Effect::DirectivesOnly),
    // Debug information (its level is read from the value).
    o("-g", Joined, Val::Debug),
    // Questions.
    o("-print-prog-name=", Joined, Val::Query(Asks::ProgName)),
    o("--print-prog-name", EqOrNext, Val::Query(Asks::ProgName)),
    o("-print-file-name=", Joined, Val::Query(Asks::FileName)),
    o("--print-file-name", EqOrNext, Val::Query(Asks::FileName)),
    ask("-print-search-dirs", Asks::SearchDirs),
    ask("--print-search-dirs", Asks::SearchDirs),
    ask("-print-libgcc-file-name", Asks::LibgccFileName),
    ask("--print-libgcc-file-name", Asks::LibgccFileName),
    ask("-print-sysroot", Asks::Sysroot),
    ask("--print-sysroot", Asks::Sysroot),
    ask("-print-sysroot-headers-suffix", Asks::SysrootHeadersSuffix),
    ask("--print-sysroot-headers-suffix", Asks::SysrootHeadersSuffix),
    ask("-print-multi-directory", Asks::MultiDirectory),
    ask("--print-multi-directory", Asks::MultiDirectory),
    ask("-print-multi-lib", Asks::MultiLib),
    ask("--print-multi-lib", Asks::MultiLib),
    ask("-print-multi-os-directory", Asks::MultiOsDirectory),
    ask("--print-multi-os-directory", Asks::MultiOsDirectory),
    ask("-print-multiarch", Asks::Multiarch),
    ask("--print-multiarch", Asks::Multiarch),
    ask("-dumpmachine", Asks::Machine),
    ask("-dumpversion", Asks::Version),
    ask("-dumpfullversion", Asks::FullVersion),
    ask("-dumpspecs", Asks::Specs),
    ask("--version", Asks::VersionBanner),
    ask("--help", Asks::Help),
    o("--help=", Joined, Val::Query(Asks::Help)),
    ask("--target-help", Asks::Help),
];

/// cc1's own reading of what `-Wp,` passes on, before `DRIVER`.
#[rustfmt::skip]
static PREPROCESSOR: &[Opt] = &[
    e("-MD", Next, Val::Depfile, Effect::WriteDeps { system: true }),
    e("-MMD", Next, Val::Depfile, Effect::WriteDeps { system: false }),
];

/// GNU ld's options that take a value (`-Wl,`, `-Xlinker`), and a few
/// flags that begin like its one-letter options. ld takes its long options
/// with one dash or two; they are named here with one (a word with two is
/// looked up with one). A word that is no option is an input.
#[rustfmt::skip]
static LINKER: &[Opt] = &[
    o("-o", Either, Val::Writes),
    o("-output", EqOrNext, Val::Writes),
    o("-Map", EqOrNext, Val::Writes),
    o("-out-implib", EqOrNext, Val::Writes),
    o("-dependency-file", EqOrNext, Val::Writes),
    o("-T", Either, Val::Reads),
    o("-script", EqOrNext, Val::Reads),
    o("-dT", Either, Val::Reads),
    o("-default-script", EqOrNext, Val::Reads),
    o("-version-script", EqOrNext, Val::Reads),
    o("-dynamic-list", EqOrNext, Val::Reads),
    o("-retain-symbols-file", EqOrNext, Val::Reads),
    o("-R", Either, Val::Reads),
    o("-just-symbols", EqOrNext, Val::Reads),
    o("-rpath", EqOrNext, Val::Reads),
    o("-rpath-link", EqOrNext, Val::Reads),
    o("-sysroot", EqOrNext, Val::Reads),
    o("-plugin", EqOrNext, Val::Reads),
    o("-c", Either, Val::Reads),
    o("-mri-script", EqOrNext, Val::Reads),
    o("-L", Either, Val::LibraryDir),
    o("-library-path", EqOrNext, Val::LibraryDir),
    o("-l", Either, Val::Library),
    o("-library", EqOrNext, Val::Library),
    o("-soname", EqOrNext, Val::Text),
    o("-h", Either, Val::Text),
    o("-z", Either, Val::Text),
    o("-e", Either, Val::Text),
    o("-entry", EqOrNext, Val::Text),
    flag("-export-dynamic", Effect::None),
    o("-u", Either, Val::Text),
    o("-undefined", EqOrNext, Val::Text),
    o("-defsym", EqOrNext, Val::Text),
    o("-wrap", EqOrNext, Val::Text),
    o("-m", Either, Val::Text),
    o("-y", Either, Val::Text),
    o("-trace-symbol", EqOrNext, Val::Text),
    o("-Ttext", EqOrNext, Val::Text),
    o("-Tdata", EqOrNext, Val::Text),
    o("-Tbss", EqOrNext, Val::Text),
    o("-Ttext-segment", EqOrNext, Val::Text),
    o("-Trodata-segment", EqOrNext, Val::Text),
    o("-Tldata-segment", EqOrNext, Val::Text),
    o("-section-start", EqOrNext, Val::Text),
    o("-hash-style", EqOrNext, Val::Text),
    o("-plugin-opt", EqOrNext, Val::Text),
    o("-image-base", EqOrNext, Val::Text),
    o("-exclude-libs", EqOrNext, Val::Text),
    o("-A", Either, Val::Text),
    o("-b", Either, Val::Text),
    o("-format", EqOrNext, Val::Text),
    o("-F", Either, Val::Text),
    o("-f", Either, Val::Text),
    o("-G", Either, Val::Text),
    o("-dynamic-linker", EqOrNext, Val::Text),
    o("-I", Either, Val::Text),
    o("-require-defined", EqOrNext, Val::Text),
    o("-export-dynamic-symbol", EqOrNext, Val::Text),
    o("-oformat", EqOrNext, Val::Text),
    o("-orphan-handling", EqOrNext, Val::Text),
    o("-compress-debug-sections", EqOrNext, Val::Text),
    flag("-omagic", Effect::None),
    flag("-call_shared", Effect::None),
    flag("-check-sections", Effect::None),
    flag("-cref", Effect::None),
    flag("-copy-dt-needed-entries", Effect::None),
    flag("-ctf-variables", Effect::None),
];

/// GNU as's options that matter here (`-Wa,`, `-Xassembler`).
#[rustfmt::skip]
static ASSEMBLER: &[Opt] = &[
    o("-o", Either, Val::Writes),
    o("-I", Either, Val::Reads),
    e("--MD", EqOrNext, Val::Writes, Effect::SideOutput),
    o("-a", Joined, Val::Listing),
    o("--debug-prefix-map", EqOrNext, Val::Text),
    o("--defsym", EqOrNext, Val::Text),
];

/// How an option word matched: alone (its value, if any, is the next
/// word) or with its value from this byte on.
enum Found {
    Alone,
    Attached(usize),
}

/// An option table, its options grouped (on first use) by the byte after
/// their leading `-`: a word is compared only with the few options that
/// begin like it, not with the whole table.
struct Table {
    opts: &'static [Opt],
    groups: OnceLock<Vec<Vec<&'static Opt>>>,
}

impl Table {
    const fn new(opts: &'static [Opt]) -> Table {
        Table {
            opts,
            groups: OnceLock::new(),
        }
    }

    /// The options that could match `word`, in table order (every name
    /// has at least two bytes: see the tests).
    fn candidates(&self, word: &[u8]) -> &[&'static Opt] {
        let groups = self.groups.get_or_init(|| {
            let mut groups: Vec<Vec<&'static Opt>> = vec![Vec::new(); 256];
            for opt in self.opts {
                if let Some(&b) = opt.name.as_bytes().get(1) {
                    groups[usize::from(b)].push(opt);
                }
            }
            groups
        });
        word.get(1).map_or(&[], |&b| &groups[usize::from(b)])
    }
}

static DRIVER_TABLE: Table = Table::new(DRIVER);
static PREPROCESSOR_TABLE: Table = Table::new(PREPROCESSOR);
static LINKER_TABLE: Table = Table::new(LINKER);
static ASSEMBLER_TABLE: Table = Table::new(ASSEMBLER);
static NO_TABLE: Table = Table::new(&[]);

/// The option `word` is: its exact name first, else the longest name it
/// begins with (for the forms that take an attached value).
fn find(tables: &[&'static Table], word: &[u8]) -> Option<(&'static Opt, Found)> {
    for table in tables {
        let exact = table
            .candidates(word)
            .iter()
            .find(|opt| opt.name.as_bytes() == word);
        if let Some(&opt) = exact {
            let found = match opt.form {
                Form::Joined => Found::Attached(word.len()),
                _ => Found::Alone,
            };
            return Some((opt, found));
        }
    }
    let mut best: Option<(&'static Opt, Found)> = None;
    for table in tables {
        for &opt in table.candidates(word) {
            let name = opt.name.as_bytes();
            let at = match opt.form {
                Form::Joined | Form::Either if word.starts_with(name) => name.len(),
                Form::EqOrNext if word.starts_with(name) && word.get(name.len()) == Some(&b'=') => {
                    name.len() + 1
                }
                _ => continue,
            };
            if best.as_ref().is_none_or(|(b, _)| b.name.len() < name.len()) {
                best = Some((opt, Found::Attached(at)));
            }
        }
        if best.is_some() {
            break;
        }
    }
    best
}

// ---------------------------------------------------------------------------
// Parsing.

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
fn expand(
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
struct Piece<'a> {
    text: &'a [u8],
    words: Range<usize>,
    /// An `@file` that was not read: a standalone one is a response file.
    unread: Option<usize>,
}

struct Classifier<'a> {
    cwd: &'a Path,
    args: Vec<Arg>,
    /// The language `-x` set for the inputs after it.
    lang: Option<Lang>,
    preprocessor: Vec<Piece<'a>>,
    assembler: Vec<Piece<'a>>,
    linker: Vec<Piece<'a>>,
}

fn classify(words: &[Word], files: &[ResponseFile], cwd: &Path) -> Vec<Arg> {
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
fn debug_level(v: &[u8]) -> Option<Option<u8>> {
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
fn with_suffix(name: &Path, ext: &str) -> PathBuf {
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
fn base_name(file: &Path) -> Vec<u8> {
    let name = file.file_name().map_or(&[][..], |n| n.as_bytes());
    let end = name.iter().rposition(|&c| c == b'.').unwrap_or(name.len());
    name[..end].to_vec()
}

// ---------------------------------------------------------------------------
// Answers.

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
const DISTCC_SOURCES: &[&str] = &["c", "cc", "cpp", "cxx", "cp", "c++", "C", "i", "ii"];

fn dedup(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for p in paths {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CWD: &str = "/w/build";

    fn words(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    /// The response files the table's lines name.
    fn reader(path: &Path) -> Result<Vec<u8>, String> {
        match path.to_str() {
            Some("/w/build/CMakeFiles/x.dir/objects1.rsp") => {
                Ok(b"CMakeFiles/x.dir/a.c.o CMakeFiles/x.dir/b.c.o\n".to_vec())
            }
            Some("/w/build/meson.rsp") => Ok(b"-I'../inc dir' -DX=\"a b\" -c\n".to_vec()),
            _ => Err("No such file or directory".into()),
        }
    }

    fn parse_line(line: &str) -> CmdLine {
        parse(&words(line), Path::new(CWD), &mut reader)
    }

    struct Case {
        /// Where the line comes from.
        what: &'static str,
        line: &'static str,
        /// The inputs as given.
        inputs: &'static [&'static str],
        /// Everything written, absolute.
        written: &'static [&'static str],
        depfiles: &'static [&'static str],
        includes: &'static [&'static str],
        /// Some of what is read (absolute).
        reads: &'static [&'static str],
        mode: Mode,
        queries: &'static [Asks],
        /// Ok, or a part of the reason distcc does not take it.
        plain: Result<(), &'static str>,
    }

    const CASES: &[Case] = &[
        Case {
            what: "libtool --mode=compile (PIC object)",
            line: "-DHAVE_CONFIG_H -I. -I.. -g -O2 -MT libfoo_la-foo.lo -MD -MP \
                   -MF .deps/libfoo_la-foo.Tpo -c ../src/foo.c -fPIC -DPIC \
                   -o .libs/libfoo_la-foo.o",
            inputs: &["../src/foo.c"],
            written: &[
                "/w/build/.deps/libfoo_la-foo.Tpo",
                "/w/build/.libs/libfoo_la-foo.o",
            ],
            depfiles: &["/w/build/.deps/libfoo_la-foo.Tpo"],
            includes: &["/w/build", "/w"],
            reads: &["/w/src/foo.c"],
            mode: Mode::Compile,
            queries: &[],
            plain: Ok(()),
        },
        Case {
            what: "libtool --mode=link (shared library)",
            line: "-shared -fPIC -DPIC .libs/libfoo_la-foo.o -Wl,-rpath -Wl,/opt/foo/lib \
                   -O2 -Wl,-soname -Wl,libfoo.so.1 \
                   -Wl,-version-script -Wl,.libs/libfoo.ver -o .libs/libfoo.so.1.0.0",
            inputs: &[".libs/libfoo_la-foo.o"],
            written: &["/w/build/.libs/libfoo.so.1.0.0"],
            depfiles: &[],
            includes: &[],
            reads: &["/opt/foo/lib", "/w/build/.libs/libfoo.ver"],
            mode: Mode::Link,
            queries: &[],
            plain: Err("libfoo_la-foo.o is not a C or C++ source"),
        },
        Case {
            what: "CMake (Makefile/Ninja generator) compile",
            line: "-DFOO -I/w/src/include -O3 -DNDEBUG -MD -MT CMakeFiles/x.dir/a.c.o \
                   -MF CMakeFiles/x.dir/a.c.o.d -o CMakeFiles/x.dir/a.c.o -c /w/src/a.c",
            inputs: &["/w/src/a.c"],
            written: &[
                "/w/build/CMakeFiles/x.dir/a.c.o.d",
                "/w/build/CMakeFiles/x.dir/a.c.o",
            ],
            depfiles: &["/w/build/CMakeFiles/x.dir/a.c.o.d"],
            includes: &["/w/src/include"],
            reads: &["/w/src/a.c"],
            mode: Mode::Compile,
            queries: &[],
            plain: Ok(()),
        },
        Case {
            what: "CMake link with a response file and an import library",
            line: "-O3 -DNDEBUG -Wl,--out-implib,libx.dll.a \
                   @CMakeFiles/x.dir/objects1.rsp -o x -lm",
            inputs: &["CMakeFiles/x.dir/a.c.o", "CMakeFiles/x.dir/b.c.o"],
            written: &["/w/build/libx.dll.a", "/w/build/x"],
            depfiles: &[],
            includes: &[],
            reads: &["/w/build/CMakeFiles/x.dir/objects1.rsp"],
            mode: Mode::Link,
            queries: &[],
            plain: Err("@CMakeFiles/x.dir/objects1.rsp keeps it local"),
        },
        Case {
            what: "Meson compile",
            line: "-Isubprojects/foo/include -Isrc/x.p -Isrc -I../src \
                   -fdiagnostics-color=always -D_FILE_OFFSET_BITS=64 -Wall -Winvalid-pch \
                   -O0 -g -MD -MQ src/x.p/a.c.o -MF src/x.p/a.c.o.d -o src/x.p/a.c.o -c ../src/a.c",
            inputs: &["../src/a.c"],
            written: &["/w/build/src/x.p/a.c.o.d", "/w/build/src/x.p/a.c.o"],
            depfiles: &["/w/build/src/x.p/a.c.o.d"],
            includes: &[
                "/w/build/subprojects/foo/include",
                "/w/build/src/x.p",
                "/w/build/src",
                "/w/src",
            ],
            reads: &["/w/src/a.c"],
            mode: Mode::Compile,
            queries: &[],
            plain: Ok(()),
        },
        Case {
            what: "kbuild (Linux arm64) compile",
            line: "-Wp,-MMD,arch/arm64/kernel/.setup.o.d -nostdinc -I./arch/arm64/include \
                   -I./arch/arm64/include/generated -I./include -I./include/uapi \
                   -include ./include/linux/compiler-version.h -include ./include/linux/kconfig.h \
                   -D__KERNEL__ -mlittle-endian -fmacro-prefix-map=./= -std=gnu11 \
                   -fshort-wchar -funsigned-char -fno-common -fno-PIE -mgeneral-regs-only \
                   -fstack-protector-strong -DKBUILD_MODNAME=\"setup\" \
                   -DKBUILD_BASENAME=\"setup\" -c -o arch/arm64/kernel/setup.o \
                   arch/arm64/kernel/setup.c",
            inputs: &["arch/arm64/kernel/setup.c"],
            written: &[
                "/w/build/arch/arm64/kernel/.setup.o.d",
                "/w/build/arch/arm64/kernel/setup.o",
            ],
            depfiles: &["/w/build/arch/arm64/kernel/.setup.o.d"],
            includes: &[
                "/w/build/arch/arm64/include",
                "/w/build/arch/arm64/include/generated",
                "/w/build/include",
                "/w/build/include/uapi",
            ],
            reads: &[
                "/w/build/include/linux/compiler-version.h",
                "/w/build/include/linux/kconfig.h",
            ],
            mode: Mode::Compile,
            queries: &[],
            plain: Ok(()),
        },
        Case {
            what: "QEMU (meson + ninja) compile",
            line: "-m64 -mcx16 -Ilibqemuutil.a.p -I. -I.. -Iqapi -Itrace \
                   -I/usr/include/glib-2.0 -fdiagnostics-color=auto -Wall -Winvalid-pch \
                   -Werror -std=gnu11 -O2 -g -fstack-protector-strong \
                   -fzero-call-used-regs=used-gpr -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 \
                   -iquote . -iquote /w/qemu -iquote /w/qemu/include -isystem ../linux-headers \
                   -isystem linux-headers -pthread -D_GNU_SOURCE -fno-strict-aliasing -fPIE \
                   -MD -MQ libqemuutil.a.p/util_osdep.c.o -MF libqemuutil.a.p/util_osdep.c.o.d \
                   -o libqemuutil.a.p/util_osdep.c.o -c ../util/osdep.c",
            inputs: &["../util/osdep.c"],
            written: &[
                "/w/build/libqemuutil.a.p/util_osdep.c.o.d",
                "/w/build/libqemuutil.a.p/util_osdep.c.o",
            ],
            depfiles: &["/w/build/libqemuutil.a.p/util_osdep.c.o.d"],
            includes: &[
                "/w/build/libqemuutil.a.p",
                "/w/build",
                "/w",
                "/w/build/qapi",
                "/w/build/trace",
                "/usr/include/glib-2.0",
                "/w/build",
                "/w/qemu",
                "/w/qemu/include",
                "/w/linux-headers",
                "/w/build/linux-headers",
            ],
            reads: &["/w/util/osdep.c"],
            mode: Mode::Compile,
            queries: &[],
            plain: Ok(()),
        },
        Case {
            what: "QEMU link",
            line: "-m64 -o qemu-img qemu-img.p/qemu-img.c.o -Wl,--as-needed \
                   -Wl,--no-undefined -pie -Wl,--whole-archive libblock.fa \
                   -Wl,--no-whole-archive -Wl,-z,relro -Wl,-z,now -fstack-protector-strong \
                   -Wl,--start-group libqemuutil.a -lm -Wl,--end-group",
            inputs: &["qemu-img.p/qemu-img.c.o", "libblock.fa", "libqemuutil.a"],
            written: &["/w/build/qemu-img"],
            depfiles: &[],
            includes: &[],
            reads: &["/w/build/libblock.fa"],
            mode: Mode::Link,
            queries: &[],
            plain: Err("qemu-img.c.o is not a C or C++ source"),
        },
        Case {
            what: "configure: link test",
            line: "-o conftest -g -O2 conftest.c -lm",
            inputs: &["conftest.c"],
            written: &["/w/build/conftest"],
            depfiles: &[],
            includes: &[],
            reads: &["/w/build/conftest.c"],
            mode: Mode::Link,
            queries: &[],
            plain: Err("not a compile"),
        },
        Case {
            what: "configure: preprocessor test",
            line: "-E conftest.c",
            inputs: &["conftest.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Preprocess,
            queries: &[],
            plain: Err("-E keeps it local"),
        },
        Case {
            what: "libtool: which linker",
            line: "-print-prog-name=ld",
            inputs: &[],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Link,
            queries: &[Asks::ProgName],
            plain: Err("not a compile"),
        },
        Case {
            what: "libtool: search paths",
            line: "-m64 -print-search-dirs",
            inputs: &[],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Link,
            queries: &[Asks::SearchDirs],
            plain: Err("not a compile"),
        },
        Case {
            what: "configure: version probes",
            line: "-v --version -dumpmachine -dumpversion",
            inputs: &[],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Link,
            queries: &[Asks::VersionBanner, Asks::Machine, Asks::Version],
            plain: Err("not a compile"),
        },
        Case {
            what: "source from stdin",
            line: "-x c -c - -o out.o",
            inputs: &[],
            written: &["/w/build/out.o"],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-x c keeps it local"),
        },
        Case {
            what: "preprocessed to stdout, depfile to stdout",
            line: "-E -x c - -o - -MD -MF /dev/stdout",
            inputs: &[],
            written: &["/dev/stdout"],
            depfiles: &["/dev/stdout"],
            includes: &[],
            reads: &[],
            mode: Mode::Preprocess,
            queries: &[],
            plain: Err("-E keeps it local"),
        },
        Case {
            what: "a response file that cannot be read",
            line: "@missing.rsp -c a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &["/w/build/missing.rsp", "/w/build/a.c"],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("@missing.rsp keeps it local"),
        },
        Case {
            what: "a response file with quoting",
            line: "@meson.rsp a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &["/w/inc dir"],
            reads: &["/w/build/meson.rsp"],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("@meson.rsp keeps it local"),
        },
        Case {
            what: "sysroot-relative include and library folders",
            line: "--sysroot=/sr -I=/usr/include/foo -isystem $SYSROOT/inc -L=/lib/x -c a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &["/sr"],
            mode: Mode::Compile,
            queries: &[],
            plain: Ok(()),
        },
        Case {
            what: "a linker map through -Xlinker and -Wl,",
            line: "-Xlinker -Map -Xlinker out.map -Wl,-Map=../maps/x.map a.o -o x",
            inputs: &["a.o"],
            written: &["/w/build/out.map", "/w/maps/x.map", "/w/build/x"],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Link,
            queries: &[],
            plain: Err("a.o is not a C or C++ source"),
        },
        Case {
            what: "temporaries kept",
            line: "-save-temps=obj -c a.c -o obj/a.o",
            inputs: &["a.c"],
            written: &["/w/build/obj/a.o"],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-save-temps=obj keeps it local"),
        },
        Case {
            what: "profiling",
            line: "-fprofile-generate -c a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-fprofile-generate keeps it local"),
        },
        Case {
            what: "profile feedback read from a folder",
            line: "-fprofile-use=../prof -c a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &["/w/prof"],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-fprofile-use=../prof keeps it local"),
        },
        Case {
            what: "macro debug information",
            line: "-O2 -g3 -c a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-g3 keeps it local"),
        },
        Case {
            what: "a stack usage file beside the object",
            line: "-fstack-usage -c a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-fstack-usage keeps it local"),
        },
        Case {
            what: "an assembler listing",
            line: "-c a.c -Wa,-adhln=../lst/a.lst",
            inputs: &["a.c"],
            written: &["/w/lst/a.lst"],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("-Wa,-adhln=../lst/a.lst keeps it local"),
        },
        Case {
            what: "two sources",
            line: "-c a.c b.cc -MD",
            inputs: &["a.c", "b.cc"],
            written: &[],
            depfiles: &["/w/build/a.d", "/w/build/b.d"],
            includes: &[],
            reads: &[],
            mode: Mode::Compile,
            queries: &[],
            plain: Err("2 sources"),
        },
        Case {
            what: "options gcc matches before their one-letter prefixes",
            line: "-undef -export-dynamic -iwithprefix inc -imultilib m32 -Ttext 0x100 a.c",
            inputs: &["a.c"],
            written: &[],
            depfiles: &[],
            includes: &[],
            reads: &[],
            mode: Mode::Link,
            queries: &[],
            plain: Err("not a compile"),
        },
    ];

    /// The include folders on the host, in order (not those below the
    /// sysroot).
    fn include_dirs(cmd: &CmdLine) -> Vec<&Path> {
        cmd.args
            .iter()
            .filter_map(|a| match &a.kind {
                Kind::IncludeDir {
                    dir,
                    in_sysroot: false,
                    ..
                } => Some(dir.path.as_path()),
                _ => None,
            })
            .collect()
    }

    fn strs(paths: &[&Path]) -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    fn owned(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn real_command_lines() {
        for c in CASES {
            let cmd = parse_line(c.line);
            let what = c.what;
            let inputs: Vec<String> = cmd
                .inputs()
                .iter()
                .map(|(f, _)| f.given.display().to_string())
                .collect();
            assert_eq!(inputs, c.inputs, "inputs: {what}");
            let mut written = owned(&cmd.written_paths());
            written.sort();
            let mut want: Vec<&str> = c.written.to_vec();
            want.sort();
            assert_eq!(written, want, "written: {what}");
            assert_eq!(owned(&cmd.depfiles()), c.depfiles, "depfiles: {what}");
            assert_eq!(strs(&include_dirs(&cmd)), c.includes, "includes: {what}");
            let reads = owned(&cmd.read_paths());
            for r in c.reads {
                assert!(reads.iter().any(|x| x == r), "{what}: {r} not in {reads:?}");
            }
            assert_eq!(cmd.mode(), c.mode, "mode: {what}");
            let asks: Vec<Asks> = cmd.queries().iter().map(|q| q.asks).collect();
            assert_eq!(asks, c.queries, "queries: {what}");
            match (cmd.plain_compile(), c.plain) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(want)) => assert!(e.contains(want), "{what}: {e}"),
                (got, want) => panic!("plain compile: {what}: {got:?}, want {want:?}"),
            }
        }
    }

    /// Each name checked with gcc 12.2 (Debian 12): `gcc ARGS; ls`.
    #[test]
    fn default_depfile_names_follow_gcc_12() {
        for (line, want) in [
            ("-MD -c t.c -o x", &["x.d"][..]),
            ("-MD -c t.c -o obj/x.y.o", &["obj/x.y.d"]),
            ("-MD -c t.c -o .x", &[".d"]),
            ("-MD -c t.c -o o/.x", &["o/.d"]),
            ("-MD -c t.c -o x.", &["x.d"]),
            ("-MD -c t.c -o a.b/x", &["a.b/x.d"]),
            ("-MMD -c t.c -ox", &["x.d"]),
            ("-MD -c ../s/t.c", &["t.d"]),
            ("-MD -c t.c u.c", &["t.d", "u.d"]),
            ("-MD -S t.c u.c", &["t.d", "u.d"]),
            ("-MD -E t.c", &["t.d"]),
            ("-MD -E t.c -o -", &["-.d"]),
            ("-MD -E t.c -o out.i", &["out.d"]),
            ("-MD -c -x c -", &["-.d"]),
            ("-MD -c -x c - -o x", &["x.d"]),
            ("-MD t.c", &["a-t.d"]),
            ("-MD t.c u.c", &["a-t.d", "a-u.d"]),
            ("-MD t.c u.o", &["a-t.d"]),
            ("-MD t.c -o prog", &["prog.d"]),
            ("-MD -M t.c", &["a-t.d"]),
            ("-M t.c -o out", &["out"]),
            ("-M -MD t.c -o out", &["out", "out.d"]),
            ("-MM t.c -MF dep -o out", &["dep"]),
            ("-MD -c t.i", &[]),
            ("-MD -c a.s", &[]),
            ("-MD -c s.S", &["s.d"]),
            ("-MD -c -x c t.i", &["t.d"]),
            ("-MD -c t.c -MF y.d -MF z.d", &["z.d"]),
            ("-MD -c t.c -MF b.d -Wp,-MD,a.d", &["a.d"]),
            ("-MD -c t.c -Wp,-MD,a.d -MF b.d", &["a.d"]),
            ("-c t.c -Wp,-MMD,kb.d,-MP -o x.o", &["kb.d"]),
            ("-c t.c -Wp,-MF,x.d -MD", &["x.d"]),
            ("-c t.c -Wp,-MF,x.d", &[]),
            ("-c t.c -MF x.d", &[]),
            ("-MD -c t.c -o x.o -save-temps", &["x.d"]),
            ("-c -MD t.c -dumpbase foo.c", &["foo.c.d"]),
            ("-c -MD t.c -dumpbase foo.c -dumpbase-ext .c", &["foo.d"]),
            ("-c -MD t.c -dumpdir d-", &["d-t.d"]),
            ("-MD t.c -dumpdir d-", &["d-t.d"]),
            ("-MD t.c -o p -dumpdir d-", &["p.d"]),
            ("-c -MD t.c -o /dev/null", &["/dev/null.d"]),
        ] {
            let cmd = parse_line(line);
            let want: Vec<String> = want
                .iter()
                .map(|w| {
                    normalize(Path::new(w), Path::new(CWD))
                        .display()
                        .to_string()
                })
                .collect();
            assert_eq!(owned(&cmd.depfiles()), want, "{line}");
        }
    }

    #[test]
    fn default_depfiles_written_elsewhere_are_outputs() {
        let written = |line: &str| owned(&parse_line(line).written_paths());
        assert_eq!(written("-MD -c t.c -o /dev/null"), ["/dev/null"]);
        assert_eq!(written("-MD -c ../t.c -o ../o/t.o"), ["/w/o/t.o"]);
        assert!(written("-MD -c ../t.c").is_empty());
        assert_eq!(written("-MD -c t.c -dumpdir ../d/"), ["/w/d/t.d"]);
    }

    #[test]
    fn values_attached_and_separate() {
        let cmd = parse_line(
            "-I inc -Iinc2 -isystem/s -o out -MFdep -MTt -D X=1 -DY -x c++ a.c -x none b.c \
             -xc d.x --sysroot /sr -specs=my.specs -l m -lz -L lib -Llib2 --param=a=1 \
             --include-directory=inc3 --output=o2",
        );
        let kinds: Vec<&Kind> = cmd.args.iter().map(|a| &a.kind).collect();
        let p = |s: &str| PathArg::new(s.as_bytes(), Path::new(CWD));
        assert_eq!(
            kinds,
            vec![
                &Kind::IncludeDir {
                    dir: p("inc"),
                    order: IncludeOrder::Bracket,
                    in_sysroot: false
                },
                &Kind::IncludeDir {
                    dir: p("inc2"),
                    order: IncludeOrder::Bracket,
                    in_sysroot: false
                },
                &Kind::IncludeDir {
                    dir: p("/s"),
                    order: IncludeOrder::System,
                    in_sysroot: false
                },
                &Kind::Output(p("out")),
                &Kind::Depfile(p("dep")),
                &Kind::DepTarget {
                    target: "t".into(),
                    quoted: false
                },
                &Kind::Value {
                    option: "-D",
                    value: "X=1".into()
                },
                &Kind::Value {
                    option: "-D",
                    value: "Y".into()
                },
                &Kind::Language(Some(Lang::Cxx)),
                &Kind::Input {
                    file: p("a.c"),
                    lang: Lang::Cxx
                },
                &Kind::Language(None),
                &Kind::Input {
                    file: p("b.c"),
                    lang: Lang::C
                },
                &Kind::Language(Some(Lang::C)),
                &Kind::Input {
                    file: p("d.x"),
                    lang: Lang::C
                },
                &Kind::Reads {
                    option: "--sysroot",
                    path: p("/sr")
                },
                &Kind::Reads {
                    option: "-specs",
                    path: p("my.specs")
                },
                &Kind::Library("m".into()),
                &Kind::Library("z".into()),
                &Kind::LibraryDir {
                    dir: p("lib"),
                    in_sysroot: false
                },
                &Kind::LibraryDir {
                    dir: p("lib2"),
                    in_sysroot: false
                },
                &Kind::Value {
                    option: "--param",
                    value: "a=1".into()
                },
                &Kind::IncludeDir {
                    dir: p("inc3"),
                    order: IncludeOrder::Bracket,
                    in_sysroot: false
                },
                &Kind::Output(p("o2")),
            ]
        );
        // Separate values span two words.
        assert_eq!(cmd.args[0].words, 0..2);
        assert_eq!(cmd.args[1].words, 2..3);
        assert_eq!(cmd.output(), Some(&p("o2")));
    }

    #[test]
    fn unknown_options_with_path_values_may_be_read() {
        let cmd = parse_line("-fx-map=../m/a -fdebug-prefix-map=/a=/b -ffoo=bar -Wfoo -c a.c");
        let maybe: Vec<&Kind> = cmd
            .args
            .iter()
            .filter(|a| matches!(a.kind, Kind::MaybeReads(_)))
            .map(|a| &a.kind)
            .collect();
        assert_eq!(
            maybe,
            vec![&Kind::MaybeReads(PathArg::new(b"../m/a", Path::new(CWD)))]
        );
        assert!(cmd.read_paths().contains(&PathBuf::from("/w/m/a")));
        assert!(!cmd.read_paths().iter().any(|p| p.starts_with("/b")));
    }

    #[test]
    fn linker_words_are_read_as_ld_does() {
        let cmd = parse_line(
            "a.o -Wl,--version-script=v.map,-T,../ld/x.ld -Xlinker -rpath-link \
             -Xlinker /opt/l -Wl,-soname,libx.so.1,-z,relro,--whole-archive,libs/y.a \
             -Wl,-Map,m.map -Wl,--dependency-file=deps.d",
        );
        let reads = owned(&cmd.read_paths());
        for r in [
            "/w/build/v.map",
            "/w/ld/x.ld",
            "/opt/l",
            "/w/build/libs/y.a",
        ] {
            assert!(reads.iter().any(|x| x == r), "{r} not in {reads:?}");
        }
        assert!(
            !reads
                .iter()
                .any(|x| x.ends_with("libx.so.1") || x.ends_with("relro"))
        );
        let mut written = owned(&cmd.written_paths());
        written.sort();
        assert_eq!(written, ["/w/build/deps.d", "/w/build/m.map"]);
        let vias: Vec<Via> = cmd.args.iter().map(|a| a.via).collect();
        assert_eq!(vias[0], Via::Driver);
        assert!(vias[1..].iter().all(|v| *v == Via::Linker), "{vias:?}");
    }

    #[test]
    fn preprocessor_words_are_read_as_cc1_does() {
        let cmd = parse_line(
            "-Wp,-MD,dep.d,-I,../pinc -Xpreprocessor -include -Xpreprocessor x.h -c a.c",
        );
        assert_eq!(owned(&cmd.depfiles()), ["/w/build/dep.d"]);
        assert_eq!(strs(&include_dirs(&cmd)), ["/w/pinc"]);
        assert!(cmd.read_paths().contains(&PathBuf::from("/w/build/x.h")));
        // cc1's -MD names the file; the driver's own -MD is still a flag.
        assert_eq!(parse_line("-MD dep.c -c").inputs().len(), 1);
    }

    #[test]
    fn queries() {
        let cmd = parse_line("-m64 -print-file-name=libc.so");
        assert_eq!(
            cmd.queries(),
            vec![&Query {
                asks: Asks::FileName,
                name: Some("libc.so".into())
            }]
        );
        assert!(cmd.only_asks());
        assert!(!cmd.changes_search());
        let cmd = parse_line("--print-prog-name ld -B /opt/bin/");
        assert_eq!(cmd.queries()[0].name, Some("ld".into()));
        assert!(cmd.changes_search());
        assert!(!parse_line("-print-prog-name=ld a.c").only_asks());
        assert!(!parse_line("-print-prog-name=ld @x").only_asks());
        assert!(!parse_line("-c a.c").only_asks());
        // -dumpbase and -dumpdir are no questions.
        assert!(
            parse_line("-dumpbase x -dumpdir y -c a.c")
                .queries()
                .is_empty()
        );
    }

    #[test]
    fn debug_levels() {
        for (line, level) in [
            ("-c a.c", 0),
            ("-g", 2),
            ("-g1", 1),
            ("-g3 -g", 3),
            ("-g -g0", 0),
            ("-g3 -g0", 0),
            ("-ggdb3", 3),
            ("-gdwarf-4", 2),
            ("-gdwarf-4 -g3", 3),
            ("-g0 -gz", 0),
            ("-gz", 0),
            ("-gno-column-info", 0),
            ("-gcolumn-info -g", 2),
            ("-gsplit-dwarf", 0),
            ("-gdwarf64", 0),
            ("-gtoggle", 2),
            ("-g -gtoggle", 0),
        ] {
            assert_eq!(parse_line(line).debug_level().0, level, "{line}");
        }
        assert!(parse_line("-g3 -g0 -c a.c").plain_compile().is_ok());
    }

    #[test]
    fn explicit_depfile_args() {
        let args = |line: &str| -> Vec<String> {
            parse_line(line)
                .explicit_depfile_args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            args("-MD -c a.c -o out/x.o"),
            ["-MF", "out/x.d", "-MQ", "out/x.o"]
        );
        assert_eq!(args("-MMD -MF d -c a.c -oy.o"), ["-MQ", "y.o"]);
        assert_eq!(args("-MD -c a.c -o x"), ["-MF", "x.d", "-MQ", "x"]);
        assert_eq!(args("-MD -c a.c -o .x"), ["-MF", ".d", "-MQ", ".x"]);
        // gcc adds its own target when only -Wp, names one.
        assert_eq!(
            args("-MD -Wp,-MT,t -c a.c -o x.o"),
            ["-MF", "x.d", "-MQ", "x.o"]
        );
        assert_eq!(args("-MD -Wp,-MD,d -c a.c -o x.o"), ["-MQ", "x.o"]);
        for none in [
            "-c a.c -o x.o",
            "-MD -c a.c",
            "-MD -MT t -MF d -c a.c -o x.o",
            "-Wp,-MMD,d -c a.c -o x.o",
        ] {
            assert!(args(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn distcc_semantics_kept() {
        for ok in [
            "-c a.c",
            "-O2 -g -c src/a.c -o out/a.o",
            "-c -I inc -DX=1 a.cpp -MD -MF a.d",
            "-c -include cfg.h a.c",
            "-Wp,-MMD,a.d -fPIC -c a.c",
            "--sysroot /sr -c a.c",
            "-A pred=ans -c a.c",
        ] {
            assert_eq!(parse_line(ok).plain_compile(), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("a.c -o a", "not a compile"),
            ("-E a.c", "-E"),
            ("-c -M a.c", "-M"),
            ("-c -x c -", "-x"),
            ("-c -xc a.c", "-xc"),
            ("-c a.c b.c", "2 sources"),
            ("-c a.s", "not a C"),
            ("-c a.CPP", "not a C"),
            ("-c @args", "@args"),
            ("-c -save-temps a.c", "-save-temps"),
            ("-c -fprofile-use a.c", "-fprofile-use"),
            ("-c -S a.c", "-S"),
            ("-c -g3 a.c", "-g3"),
            ("-c -ggdb3 a.c", "-ggdb3"),
            ("-c --coverage a.c", "--coverage"),
            ("-c -fplugin=x.so a.c", "-fplugin"),
            ("-c -specs=x a.c", "-specs"),
            ("-c -B /x a.c", "-B /x"),
            ("-c -fdump-tree-all a.c", "-fdump"),
            ("-c -gsplit-dwarf -g a.c", "-gsplit-dwarf"),
            ("-c -aux-info x.aux a.c", "-aux-info"),
        ] {
            let e = parse_line(bad).plain_compile().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(parse_line("-g -c a.c").has_debug_info());
        assert!(!parse_line("-c a.c").directives_only());
        assert!(parse_line("-fdirectives-only -c a.c").directives_only());
    }

    #[test]
    fn non_utf8_words() {
        let bad = |s: &[u8]| OsString::from_vec(s.to_vec());
        let argv = vec![
            "-c".into(),
            bad(b"src/\xff.c"),
            bad(b"-I/inc/\xfe"),
            "-o".into(),
            bad(b"out/\xfd.o"),
            bad(b"-f\xfc"),
        ];
        let cmd = parse(&argv, Path::new(CWD), &mut reader);
        assert_eq!(
            cmd.inputs()[0].0.path,
            PathBuf::from(OsString::from_vec(b"/w/build/src/\xff.c".to_vec()))
        );
        assert_eq!(cmd.inputs()[0].1, &Lang::C);
        assert_eq!(
            include_dirs(&cmd),
            [Path::new(OsStr::from_bytes(b"/inc/\xfe"))]
        );
        assert_eq!(
            cmd.written_paths(),
            [PathBuf::from(OsString::from_vec(
                b"/w/build/out/\xfd.o".to_vec()
            ))]
        );
        assert!(matches!(cmd.args.last().unwrap().kind, Kind::Unknown(_)));
        assert_eq!(
            cmd.plain_compile(),
            Err("an argument is not valid UTF-8".into())
        );
    }

    #[test]
    fn response_files_split_as_libiberty_does() {
        let split = |s: &str| -> Vec<String> {
            split_response(s.as_bytes())
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(split("  a b\n\tc  "), ["a", "b", "c"]);
        assert_eq!(split("'a b' \"c d\" e\\ f"), ["a b", "c d", "e f"]);
        assert_eq!(split("'it\\'s' \"say \\\"x\\\"\""), ["it's", "say \"x\""]);
        assert_eq!(split("a'b'c \"\""), ["abc", ""]);
        assert_eq!(split("'unterminated q"), ["unterminated q"]);
        assert!(split(" \n ").is_empty());
    }

    #[test]
    fn response_files_expand_in_place() {
        let mut read = |p: &Path| -> Result<Vec<u8>, String> {
            match p.to_str() {
                Some("/w/build/a.rsp") => Ok(b"-o @b.rsp -I x".to_vec()),
                Some("/w/build/b.rsp") => Ok(b"out.o".to_vec()),
                _ => Err("nope".into()),
            }
        };
        let cmd = parse(&words("-c @a.rsp a.c"), Path::new(CWD), &mut read);
        // The output is the word after -o once b.rsp is expanded.
        assert_eq!(cmd.output().unwrap().given, Path::new("out.o"));
        assert_eq!(cmd.response_files.len(), 2);
        assert_eq!(cmd.words[4].origin, Origin::File(1, 0));
        assert_eq!(strs(&include_dirs(&cmd)), ["/w/build/x"]);
        assert_eq!(cmd.inputs().len(), 1);
        // An unread one given as a value is the value, as gcc takes it.
        let cmd = parse(&words("-o @c.rsp a.c"), Path::new(CWD), &mut read);
        assert_eq!(cmd.output().unwrap().given, Path::new("@c.rsp"));
        assert!(cmd.read_paths().contains(&PathBuf::from("/w/build/c.rsp")));
    }

    #[test]
    fn response_files_are_bounded() {
        // A file naming itself: read at most RESPONSE_DEPTH deep.
        let mut reads = 0;
        let mut read = |_: &Path| -> Result<Vec<u8>, String> {
            reads += 1;
            Ok(b"@self.rsp -DX".to_vec())
        };
        let cmd = parse(&words("@self.rsp"), Path::new(CWD), &mut read);
        assert_eq!(reads, RESPONSE_DEPTH);
        assert!(cmd.response_files.last().unwrap().words.is_err());
        // Many times: at most RESPONSE_FILES in all.
        let mut reads = 0;
        let mut read = |_: &Path| -> Result<Vec<u8>, String> {
            reads += 1;
            Ok(b"@s @s @s @s".to_vec())
        };
        parse(&words("@s"), Path::new(CWD), &mut read);
        assert_eq!(reads, RESPONSE_FILES);
    }

    #[test]
    fn the_table_has_no_duplicates() {
        for table in [DRIVER, PREPROCESSOR, LINKER, ASSEMBLER] {
            for (i, a) in table.iter().enumerate() {
                assert!(
                    !table[i + 1..].iter().any(|b| b.name == a.name),
                    "{} twice",
                    a.name
                );
                // `Table` groups the options by their second byte.
                assert!(
                    a.name.len() >= 2 && a.name.starts_with('-'),
                    "{} is no option name",
                    a.name
                );
            }
        }
    }
}
