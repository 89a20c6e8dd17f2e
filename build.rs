//! Embed the built-in plugins and dockerfiles so that an installed binary
//! works on its own, with the checksums of the built-in dockerfiles
//! computed here, once, instead of on every call.

use std::fmt::Write as _;
use std::path::Path;

use sha1::{Digest, Sha1};

// The run-time rules of the checksum, the same file (see its header).
#[allow(dead_code)]
#[path = "src/image/pyrules.rs"]
mod pyrules;

/// The preprocessed text of a built-in dockerfile, inlining only built-in
/// ones: None when it builds on one that is not built in (a user's), or
/// loops, whose checksum is then left to run time.
fn preprocess(
    text: &str,
    builtins: &[(String, String)],
    chain: &mut Vec<String>,
    out: &mut String,
) -> Option<()> {
    for line in pyrules::lines(&pyrules::normalize_newlines(text)) {
        match line {
            pyrules::Line::Kept(line) => {
                out.push_str(line);
                out.push('\n');
            }
            pyrules::Line::Inline(image) => {
                let name = pyrules::inlined_name(image).to_string();
                if chain.contains(&name) {
                    return None;
                }
                let file = format!("{name}.docker");
                let (_, path) = builtins.iter().find(|(f, _)| *f == file)?;
                let text = std::fs::read_to_string(path).ok()?;
                chain.push(name);
                preprocess(&text, builtins, chain, out)?;
                chain.pop();
            }
        }
    }
    Some(())
}

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
    // The `com.qemu.dockerfile-checksum` of each built-in dockerfile, as
    // `image::dockerfile::checksum` computes it with the built-in ones
    // searched first.
    let builtins = list("dockerfiles", "docker");
    let _ = writeln!(out, "pub static DOCKERFILE_CHECKSUMS: &[(&str, &str)] = &[");
    for (file, path) in &builtins {
        let text = std::fs::read_to_string(path).expect("cannot read a built-in dockerfile");
        let mut pre = String::new();
        if preprocess(&text, &builtins, &mut Vec::new(), &mut pre).is_some() {
            let sum: String = Sha1::digest(pre.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let _ = writeln!(out, "    ({file:?}, {sum:?}),");
        }
    }
    let _ = writeln!(out, "];");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set")).join("embedded.rs");
    std::fs::write(dest, out).expect("cannot write embedded.rs");
}
