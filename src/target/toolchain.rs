//! Toolchain files for build systems: a CMake toolchain file, a Meson cross
//! file and shell variables, naming the target's links (shims) on the host,
//! its exported sysroot (see `sysroot`) and its runner (`<target>-run`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::target::plugin::Plugin;

/// What Meson and CMake call the target's machine.
#[derive(Debug, PartialEq, Eq)]
pub struct Machine {
    pub cpu_family: &'static str,
    pub cpu: &'static str,
    pub big_endian: bool,
}

/// The machine of a target, from its triplet's first word.
pub fn machine(target: &str) -> Result<Machine> {
    let arch = target.split('-').next().unwrap_or("");
    let m = |cpu_family, cpu, big_endian| Machine {
        cpu_family,
        cpu,
        big_endian,
    };
    Ok(match arch {
        "aarch64" => m("aarch64", "aarch64", false),
        "arm" => m("arm", "armv7", false),
        "i686" | "i586" | "i386" => m("x86", "i686", false),
        "x86_64" => m("x86_64", "x86_64", false),
        "powerpc" => m("ppc", "ppc", true),
        "powerpc64" => m("ppc64", "ppc64", true),
        "powerpc64le" => m("ppc64", "ppc64le", false),
        "s390x" => m("s390x", "s390x", true),
        "riscv64" => m("riscv64", "riscv64", false),
        "mips" => m("mips", "mips", true),
        "mipsel" => m("mips", "mipsel", false),
        "mips64" => m("mips64", "mips64", true),
        "mips64el" => m("mips64", "mips64el", false),
        "alpha" => m("alpha", "alpha", false),
        "hppa" => m("parisc", "hppa", true),
        "m68k" => m("m68k", "m68k", true),
        "sh4" => m("sh4", "sh4", false),
        "sparc64" => m("sparc64", "sparc64", true),
        _ => bail!(
            "no CPU description for target {target}; write the toolchain file by hand from \
             'qemu-cross-cc toolchain aarch64-linux-gnu --meson'"
        ),
    })
}

/// What CMake and Meson call the target's operating system, from what
/// runs its programs: wine (Windows), semihosting (bare metal, no system)
/// or qemu-user (Linux).
pub fn system(plugin: &Plugin) -> (&'static str, &'static str) {
    match plugin.runs_with {
        crate::target::manifest::RunsWith::Wine => ("Windows", "windows"),
        crate::target::manifest::RunsWith::Semihosting => ("Generic", "none"),
        crate::target::manifest::RunsWith::Qemu => ("Linux", "linux"),
    }
}

/// Whether qemu-user runs the target's programs (and so reads
/// `QEMU_LD_PREFIX`).
fn under_qemu(plugin: &Plugin) -> bool {
    plugin.runs_with == crate::target::manifest::RunsWith::Qemu
}

/// The host paths a toolchain file names.
pub struct Paths {
    /// The folder holding the target's links.
    pub links: PathBuf,
    pub sysroot: PathBuf,
    /// The project file the tools must use wherever they are called from
    /// (`QEMU_CROSS_CC_PROJECT`), when there is one.
    pub project: Option<PathBuf>,
}

impl Paths {
    /// The paths for `plugin`: its links (in `links`, else found on PATH),
    /// its exported sysroot (made first if needed) and the current project
    /// file.
    pub fn of(ctx: &crate::context::Ctx, plugin: &Plugin, links: Option<&Path>) -> Result<Paths> {
        Ok(Paths {
            links: find_links(plugin, links)?,
            sysroot: crate::target::sysroot::ensure_exported(ctx, plugin)?,
            project: crate::target::project::current()?,
        })
    }

    fn tool(&self, plugin: &Plugin, tool: &str) -> Option<String> {
        (plugin.tools.contains_key(tool) || tool == "run")
            .then(|| self.links.join(format!("{}-{tool}", plugin.target)))
            .map(|p| p.display().to_string())
    }
}

/// The folder with the target's links: `dir` when given, else the folder of
/// the first `<target>-gcc` (or `-cc`) on PATH.
pub fn find_links(plugin: &Plugin, dir: Option<&Path>) -> Result<PathBuf> {
    let names = [
        format!("{}-gcc", plugin.target),
        format!("{}-cc", plugin.target),
    ];
    let candidates: Vec<PathBuf> = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => crate::host::path_dirs(),
    };
    for d in candidates {
        if names.iter().any(|n| d.join(n).exists()) {
            return std::path::absolute(&d).map_err(Into::into);
        }
    }
    bail!(
        "no {}-gcc link found {}; create them with 'qemu-cross-cc shims --dir DIR {}' and put DIR on PATH (or pass --links DIR)",
        plugin.target,
        match dir {
            Some(d) => format!("in {}", d.display()),
            None => "on PATH".into(),
        },
        plugin.target
    )
}

/// A quoted string for CMake.
fn cmake_str(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$")
    )
}

/// A quoted string for Meson.
fn meson_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A CMake toolchain file. The libraries are found in the exported
/// sysroot (`CMAKE_FIND_ROOT_PATH`); the compiler itself keeps its own
/// sysroot in the image (no `CMAKE_SYSROOT`, which would make CMake pass
/// `--sysroot=` to it).
pub fn cmake(plugin: &Plugin, p: &Paths) -> Result<String> {
    let m = machine(&plugin.target)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# CMake toolchain file for {} (qemu-cross-cc toolchain {} --cmake)",
        plugin.target, plugin.target
    );
    let (system, _) = system(plugin);
    let _ = writeln!(s, "set(CMAKE_SYSTEM_NAME {system})");
    let _ = writeln!(s, "set(CMAKE_SYSTEM_PROCESSOR {})", cmake_str(m.cpu));
    if system == "Linux" {
        let _ = writeln!(
            s,
            "set(CMAKE_LIBRARY_ARCHITECTURE {})",
            cmake_str(&crate::target::sysroot::multiarch(plugin))
        );
    }
    for (var, tool) in [
        ("CMAKE_C_COMPILER", "gcc"),
        ("CMAKE_CXX_COMPILER", "g++"),
        ("CMAKE_AR", "ar"),
        ("CMAKE_RANLIB", "ranlib"),
        ("CMAKE_STRIP", "strip"),
        ("CMAKE_NM", "nm"),
        ("CMAKE_OBJCOPY", "objcopy"),
        ("CMAKE_OBJDUMP", "objdump"),
        ("PKG_CONFIG_EXECUTABLE", "pkg-config"),
        ("CMAKE_RC_COMPILER", "windres"),
        ("CMAKE_CROSSCOMPILING_EMULATOR", "run"),
    ] {
        if let Some(path) = p.tool(plugin, tool) {
            let cache = if var.starts_with("CMAKE_C") && var.ends_with("COMPILER") {
                String::new()
            } else {
                " CACHE FILEPATH \"\"".to_string()
            };
            // The runner runs where ctest runs (a build folder maybe outside
            // the project): it is told the project file too.
            let value = match (&p.project, tool) {
                (Some(f), "run") => {
                    format!(
                        "env;{}={};{path}",
                        crate::target::project::PROJECT_VAR,
                        f.display()
                    )
                }
                _ => path,
            };
            let _ = writeln!(s, "set({var} {}{cache})", cmake_str(&value));
        }
    }
    if let Some(f) = &p.project {
        // Every call, also from folders outside the project (try_compile of
        // a build folder elsewhere), uses the project's image.
        let f = f.display().to_string();
        let _ = writeln!(
            s,
            "set(ENV{{{}}} {})",
            crate::target::project::PROJECT_VAR,
            cmake_str(&f)
        );
        let launcher = cmake_str(&format!("env;{}={f}", crate::target::project::PROJECT_VAR));
        for lang in ["C", "CXX"] {
            for kind in ["COMPILER", "LINKER"] {
                let _ = writeln!(s, "set(CMAKE_{lang}_{kind}_LAUNCHER {launcher})");
            }
        }
    }
    // What programs need to link and run under the runner (a bare-metal
    // target's C library and semihosting).
    let words = |v: &[String]| cmake_str(&v.join(" "));
    if !plugin.flags.compile.is_empty() {
        for lang in ["C", "CXX", "ASM"] {
            let _ = writeln!(
                s,
                "set(CMAKE_{lang}_FLAGS_INIT {})",
                words(&plugin.flags.compile)
            );
        }
    }
    if !plugin.flags.link.is_empty() {
        let _ = writeln!(
            s,
            "set(CMAKE_EXE_LINKER_FLAGS_INIT {})",
            words(&plugin.flags.link)
        );
    }
    let root = p.sysroot.display().to_string();
    let _ = writeln!(s, "set(CMAKE_FIND_ROOT_PATH {})", cmake_str(&root));
    if !under_qemu(plugin) {
        return Ok(s);
    }
    // ctest includes this file's settings before it runs the tests, so a
    // test that is a script starting target programs itself (through the
    // host's binfmt_misc handler) has qemu-user find their libraries.
    let _ = writeln!(
        s,
        "set(QEMU_CROSS_CC_CTEST_FILE \"${{CMAKE_BINARY_DIR}}/qemu-cross-cc-ctest.cmake\")"
    );
    let _ = writeln!(
        s,
        "file(WRITE \"${{QEMU_CROSS_CC_CTEST_FILE}}\" {})",
        cmake_str(&format!("set(ENV{{{LD_PREFIX}}} {})\n", cmake_str(&root)))
    );
    let _ = writeln!(
        s,
        "set_property(DIRECTORY \"${{CMAKE_SOURCE_DIR}}\" APPEND PROPERTY TEST_INCLUDE_FILES \
         \"${{QEMU_CROSS_CC_CTEST_FILE}}\")"
    );
    let _ = writeln!(s, "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)");
    for kind in ["LIBRARY", "INCLUDE", "PACKAGE"] {
        let _ = writeln!(s, "set(CMAKE_FIND_ROOT_PATH_MODE_{kind} ONLY)");
    }
    Ok(s)
}

/// A Meson cross file.
pub fn meson(plugin: &Plugin, p: &Paths) -> Result<String> {
    let m = machine(&plugin.target)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Meson cross file for {} (qemu-cross-cc toolchain {} --meson)",
        plugin.target, plugin.target
    );
    let _ = writeln!(s, "[binaries]");
    // With a project file, each program is started through `env` naming it:
    // Meson compiles its checks in /tmp, outside the project.
    let env_prefix = p.project.as_ref().map(|f| {
        format!(
            "{}, {}, ",
            meson_str("env"),
            meson_str(&format!(
                "{}={}",
                crate::target::project::PROJECT_VAR,
                f.display()
            ))
        )
    });
    for (key, tool) in [
        ("c", "gcc"),
        ("cpp", "g++"),
        ("ar", "ar"),
        ("strip", "strip"),
        ("nm", "nm"),
        ("objcopy", "objcopy"),
        ("ranlib", "ranlib"),
        ("pkgconfig", "pkg-config"),
        ("windres", "windres"),
        ("exe_wrapper", "run"),
    ] {
        if let Some(path) = p.tool(plugin, tool) {
            match &env_prefix {
                Some(pre) => {
                    let _ = writeln!(s, "{key} = [{pre}{}]", meson_str(&path));
                }
                None => {
                    let _ = writeln!(s, "{key} = {}", meson_str(&path));
                }
            }
        }
    }
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|f| meson_str(f)).collect();
        format!("[{}]", items.join(", "))
    };
    if !plugin.flags.compile.is_empty() || !plugin.flags.link.is_empty() {
        let _ = writeln!(s, "\n[built-in options]");
        for lang in ["c", "cpp"] {
            let _ = writeln!(s, "{lang}_args = {}", list(&plugin.flags.compile));
            // Meson does not pass a language's args to its links.
            let link: Vec<String> = plugin
                .flags
                .compile
                .iter()
                .chain(&plugin.flags.link)
                .cloned()
                .collect();
            let _ = writeln!(s, "{lang}_link_args = {}", list(&link));
        }
    }
    let _ = writeln!(s, "\n[properties]");
    let _ = writeln!(
        s,
        "sys_root = {}",
        meson_str(&p.sysroot.display().to_string())
    );
    let _ = writeln!(s, "\n[host_machine]");
    let _ = writeln!(s, "system = {}", meson_str(system(plugin).1));
    let _ = writeln!(s, "cpu_family = {}", meson_str(m.cpu_family));
    let _ = writeln!(s, "cpu = {}", meson_str(m.cpu));
    let _ = writeln!(
        s,
        "endian = {}",
        meson_str(if m.big_endian { "big" } else { "little" })
    );
    Ok(s)
}

/// The variable that tells qemu-user where the target's root is: for a
/// program started through the host's binfmt_misc handler, the export.
pub const LD_PREFIX: &str = "QEMU_LD_PREFIX";

/// The variables of the target's tools: what `--env` exports and what
/// `exec --host` sets.
pub fn vars(plugin: &Plugin, p: &Paths) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (var, tool) in [
        ("CC", "gcc"),
        ("CXX", "g++"),
        ("CPP", "cpp"),
        ("AR", "ar"),
        ("AS", "as"),
        ("LD", "ld"),
        ("NM", "nm"),
        ("RANLIB", "ranlib"),
        ("STRIP", "strip"),
        ("OBJCOPY", "objcopy"),
        ("OBJDUMP", "objdump"),
        ("READELF", "readelf"),
        ("PKG_CONFIG", "pkg-config"),
        ("WINDRES", "windres"),
        ("CROSS_RUNNER", "run"),
    ] {
        if let Some(path) = p.tool(plugin, tool) {
            out.push((var, path));
        }
    }
    let sysroot = p.sysroot.display().to_string();
    out.push(("HOST", plugin.target.clone()));
    out.push(("CROSS_COMPILE", format!("{}-", plugin.target)));
    out.push(("CROSS_SYSROOT", sysroot.clone()));
    // Target programs that scripts start (make check, ctest, meson test)
    // run through binfmt_misc; qemu-user finds their libraries here.
    if under_qemu(plugin) {
        out.push((LD_PREFIX, sysroot));
    }
    if let Some(f) = &p.project {
        out.push((crate::target::project::PROJECT_VAR, f.display().to_string()));
    }
    out
}

/// Shell assignments (`eval "$(qemu-cross-cc toolchain T --env)"`).
pub fn env(plugin: &Plugin, p: &Paths) -> String {
    let mut s = String::new();
    for (var, value) in vars(plugin, p) {
        let _ = writeln!(s, "export {var}={}", shell_words::quote(&value));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::plugin::Registry;

    fn paths() -> Paths {
        Paths {
            links: PathBuf::from("/opt/x bin"),
            sysroot: PathBuf::from("/c/s390x"),
            project: None,
        }
    }

    #[test]
    fn every_builtin_target_has_a_machine() {
        for p in Registry::load().unwrap().iter() {
            machine(&p.target).unwrap();
        }
        assert!(machine("s390x-linux-gnu").unwrap().big_endian);
        assert!(machine("vax-linux-gnu").is_err());
    }

    #[test]
    fn files_name_links_sysroot_and_runner() {
        let reg = Registry::load().unwrap();
        let p = reg.get("s390x-linux-gnu").unwrap();
        let c = cmake(p, &paths()).unwrap();
        assert!(c.contains("set(CMAKE_C_COMPILER \"/opt/x bin/s390x-linux-gnu-gcc\")"));
        assert!(c.contains("CMAKE_CROSSCOMPILING_EMULATOR \"/opt/x bin/s390x-linux-gnu-run\""));
        assert!(c.contains("set(CMAKE_FIND_ROOT_PATH \"/c/s390x\")"));
        let m = meson(p, &paths()).unwrap();
        assert!(m.contains("exe_wrapper = '/opt/x bin/s390x-linux-gnu-run'"));
        assert!(m.contains("cpu_family = 's390x'") && m.contains("endian = 'big'"));
        let e = env(p, &paths());
        assert!(
            e.contains("export CC='/opt/x bin/s390x-linux-gnu-gcc'"),
            "{e}"
        );
        assert!(e.contains("export HOST=s390x-linux-gnu"));
        assert!(e.contains("export QEMU_LD_PREFIX=/c/s390x"), "{e}");
        assert!(
            c.contains(
                "file(WRITE \"${QEMU_CROSS_CC_CTEST_FILE}\" \"set(ENV{QEMU_LD_PREFIX} \\\"/c/s390x\\\")\n\")"
            ),
            "{c}"
        );
        assert!(c.contains("APPEND PROPERTY TEST_INCLUDE_FILES"), "{c}");
        assert!(c.contains("set(CMAKE_SYSTEM_NAME Linux)") && m.contains("system = 'linux'"));

        // Windows: its system, windres, no qemu-user prefix.
        let w = reg.get("x86_64-w64-mingw32").unwrap();
        let c = cmake(w, &paths()).unwrap();
        assert!(c.contains("set(CMAKE_SYSTEM_NAME Windows)"), "{c}");
        assert!(c.contains("CMAKE_RC_COMPILER \"/opt/x bin/x86_64-w64-mingw32-windres\""));
        assert!(c.contains("CMAKE_CROSSCOMPILING_EMULATOR \"/opt/x bin/x86_64-w64-mingw32-run\""));
        assert!(!c.contains("QEMU_LD_PREFIX") && !c.contains("CMAKE_LIBRARY_ARCHITECTURE"));
        let m = meson(w, &paths()).unwrap();
        assert!(
            m.contains("system = 'windows'") && m.contains("windres = "),
            "{m}"
        );
        let e = env(w, &paths());
        assert!(
            !e.contains("QEMU_LD_PREFIX") && e.contains("export WINDRES="),
            "{e}"
        );

        // Bare metal: Generic / none, and the flags programs need.
        let b = reg.get("arm-none-eabi").unwrap();
        let c = cmake(b, &paths()).unwrap();
        assert!(c.contains("set(CMAKE_SYSTEM_NAME Generic)"), "{c}");
        assert!(
            c.contains("set(CMAKE_EXE_LINKER_FLAGS_INIT \"--specs=rdimon.specs\")"),
            "{c}"
        );
        let m = meson(reg.get("riscv64-unknown-elf").unwrap(), &paths()).unwrap();
        assert!(
            m.contains("system = 'none'") && m.contains("c_link_args = ['--specs=picolibc.specs'"),
            "{m}"
        );
    }
}
