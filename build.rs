//! Embed the built-in plugins and dockerfiles so that an installed binary
//! works on its own.

use std::fmt::Write as _;
use std::path::Path;

fn list(dir: &str, ext: &str) -> Vec<(String, String)> {
    println!("cargo:rerun-if-changed={dir}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .map(|p| {
                    println!("cargo:rerun-if-changed={}", p.display());
                    (
                        p.file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default(),
                        p.display().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn main() {
    let mut out = String::new();
    for (name, dir, ext) in [
        ("PLUGINS", "plugins", "json"),
        ("DOCKERFILES", "dockerfiles", "docker"),
    ] {
        let _ = writeln!(out, "pub static {name}: &[(&str, &str)] = &[");
        for (file, path) in list(dir, ext) {
            let _ = writeln!(out, "    ({file:?}, include_str!({path:?})),");
        }
        let _ = writeln!(out, "];");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set")).join("embedded.rs");
    std::fs::write(dest, out).expect("cannot write embedded.rs");
}
