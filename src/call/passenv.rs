//! The environment a compiler gets: a documented allow-list of the caller's
//! variables, never the whole environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use crate::call::mounts::MountSet;

/// Variables passed by exact name.
const NAMES: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "TZ",
    "SOURCE_DATE_EPOCH",
    "DEPENDENCIES_OUTPUT",
    "SUNPRO_DEPENDENCIES",
    "CPATH",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "OBJC_INCLUDE_PATH",
    "LIBRARY_PATH",
    "GCC_COLORS",
    "GCC_URLS",
    "TERM_URLS",
    "TERM",
];

/// Variables passed by prefix.
const PREFIXES: &[&str] = &["LC_", "PKG_CONFIG_", "CCACHE_"];

/// The names `QEMU_CROSS_CC_PASSENV` adds (separated by spaces, commas or
/// colons; a trailing `*` matches a prefix).
fn user_names() -> Vec<String> {
    std::env::var("QEMU_CROSS_CC_PASSENV")
        .unwrap_or_default()
        .split([' ', ',', ':', '\t', '\n'])
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn allowed(name: &str, extra: &[String]) -> bool {
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p)) || named(name, extra)
}

/// Whether `patterns` name `name` (`NAME`, or `PREFIX*` for a prefix).
fn named(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|e| match e.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => e == name,
    })
}

/// The caller's variables that `patterns` name (a project's `passenv`), to
/// be set for the tools like a plugin's `env`. `TMPDIR` keeps its own rule;
/// values that are not UTF-8 are left out.
pub fn caller_values(patterns: &[String]) -> Vec<(String, String)> {
    if patterns.is_empty() {
        return Vec::new();
    }
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != "TMPDIR" && named(k, patterns))
        .collect()
}

/// The variables to set in the container: the plugin's defaults, then the
/// caller's allowed variables (which win). `TMPDIR` passes only when the
/// container can write there.
pub fn compiler_env(
    plugin_env: &BTreeMap<String, String>,
    mounts: &MountSet,
) -> Vec<(String, OsString)> {
    let extra = user_names();
    let mut env: BTreeMap<String, OsString> = plugin_env
        .iter()
        .map(|(k, v)| (k.clone(), OsString::from(v)))
        .collect();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k == "TMPDIR" {
            if mounts.covers(Path::new(&v), true) {
                env.insert(k.to_string(), v);
            }
        } else if allowed(k, &extra) {
            env.insert(k.to_string(), v);
        }
    }
    env.into_iter().collect()
}

/// The file named by a make-dependency variable (`DEPENDENCIES_OUTPUT="file
/// target"`), which the compiler writes.
pub fn dependency_outputs() -> Vec<String> {
    ["DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter_map(|s| s.split_whitespace().next().map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let extra = vec!["FOO".to_string(), "BAR_*".to_string()];
        for ok in [
            "LANG",
            "LC_ALL",
            "PKG_CONFIG_PATH",
            "CCACHE_DIR",
            "FOO",
            "BAR_X",
            "SOURCE_DATE_EPOCH",
        ] {
            assert!(allowed(ok, &extra), "{ok}");
        }
        for no in [
            "PATH",
            "HOME",
            "LD_PRELOAD",
            "FOOD",
            "SSH_AUTH_SOCK",
            "TMPDIR",
        ] {
            assert!(!allowed(no, &extra), "{no}");
        }
    }
}
