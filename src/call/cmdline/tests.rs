//! Real command lines (libtool, CMake, Meson, kbuild, QEMU's build,
//! configure probes) and edge cases, with what the model says of each.

use super::options::{ASSEMBLER, DRIVER, LINKER, PREPROCESSOR};
use super::read::split_response;
use super::*;
use std::os::unix::ffi::OsStringExt;

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
    let cmd =
        parse_line("-Wp,-MD,dep.d,-I,../pinc -Xpreprocessor -include -Xpreprocessor x.h -c a.c");
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
