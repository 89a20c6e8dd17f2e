//! The option tables: gcc's driver (and cc1's, for `-Wp,`), the linker's
//! and the assembler's, each grouped on first use by the byte after `-`.

use std::sync::OnceLock;

use super::*;

/// How an option's value comes.
#[derive(Clone, Copy)]
pub(super) enum Form {
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
pub(super) enum Val {
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

pub(super) struct Opt {
    pub(super) name: &'static str,
    pub(super) form: Form,
    pub(super) val: Val,
    pub(super) effect: Effect,
}

pub(super) const fn o(name: &'static str, form: Form, val: Val) -> Opt {
    Opt {
        name,
        form,
        val,
        effect: Effect::None,
    }
}

pub(super) const fn e(name: &'static str, form: Form, val: Val, effect: Effect) -> Opt {
    Opt {
        name,
        form,
        val,
        effect,
    }
}

pub(super) const fn flag(name: &'static str, effect: Effect) -> Opt {
    e(name, Form::Flag, Val::None, effect)
}

pub(super) const fn ask(name: &'static str, asks: Asks) -> Opt {
    o(name, Form::Flag, Val::Query(asks))
}

use Form::{Either, EqOrNext, Joined, Next};

/// gcc's options, as the driver reads them (and, with `PREPROCESSOR`
/// first, as cc1 reads what `-Wp,` passes on). An option matches its exact
/// name first, else the longest name it begins with; options not here
/// are flags (gcc has no other option that takes the next word).
#[rustfmt::skip]
pub(super) static DRIVER: &[Opt] = &[
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
pub(super) static PREPROCESSOR: &[Opt] = &[
    e("-MD", Next, Val::Depfile, Effect::WriteDeps { system: true }),
    e("-MMD", Next, Val::Depfile, Effect::WriteDeps { system: false }),
];

/// GNU ld's options that take a value (`-Wl,`, `-Xlinker`), and a few
/// flags that begin like its one-letter options. ld takes its long options
/// with one dash or two; they are named here with one (a word with two is
/// looked up with one). A word that is no option is an input.
#[rustfmt::skip]
pub(super) static LINKER: &[Opt] = &[
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
pub(super) static ASSEMBLER: &[Opt] = &[
    o("-o", Either, Val::Writes),
    o("-I", Either, Val::Reads),
    e("--MD", EqOrNext, Val::Writes, Effect::SideOutput),
    o("-a", Joined, Val::Listing),
    o("--debug-prefix-map", EqOrNext, Val::Text),
    o("--defsym", EqOrNext, Val::Text),
];

/// How an option word matched: alone (its value, if any, is the next
/// word) or with its value from this byte on.
pub(super) enum Found {
    Alone,
    Attached(usize),
}

/// An option table, its options grouped (on first use) by the byte after
/// their leading `-`: a word is compared only with the few options that
/// begin like it, not with the whole table.
pub(super) struct Table {
    pub(super) opts: &'static [Opt],
    pub(super) groups: OnceLock<Vec<Vec<&'static Opt>>>,
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

pub(super) static DRIVER_TABLE: Table = Table::new(DRIVER);
pub(super) static PREPROCESSOR_TABLE: Table = Table::new(PREPROCESSOR);
pub(super) static LINKER_TABLE: Table = Table::new(LINKER);
pub(super) static ASSEMBLER_TABLE: Table = Table::new(ASSEMBLER);
pub(super) static NO_TABLE: Table = Table::new(&[]);

/// The option `word` is: its exact name first, else the longest name it
/// begins with (for the forms that take an attached value).
pub(super) fn find(tables: &[&'static Table], word: &[u8]) -> Option<(&'static Opt, Found)> {
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
