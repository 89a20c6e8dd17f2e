//! The Python string rules of docker.py's dockerfile checksum, with no
//! dependency but `std`: `build.rs` includes this file too, to precompute
//! the checksums of the built-in dockerfiles with the very code the program
//! uses at run time (see `dockerfile.rs`).

/// Python's `str.isspace`.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines` line boundaries.
fn py_is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\u{b}'
            | '\u{c}'
            | '\r'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Python's `str.splitlines()` (without keepends).
pub fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if py_is_line_break(c) {
            lines.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The dockerfile name that `FROM qemu/NAME` refers to.
pub fn inlined_name(image: &str) -> &str {
    if image.starts_with("debian") && image.ends_with("user") {
        "debian-bootstrap"
    } else {
        image
    }
}

pub const FROM_QEMU: &str = "FROM qemu/";

/// A line of a dockerfile as the checksum sees it.
pub enum Line<'a> {
    /// Kept as it is.
    Kept(&'a str),
    /// `FROM qemu/IMAGE`: replaced by the preprocessed text of the
    /// dockerfile `inlined_name(IMAGE)`.
    Inline(&'a str),
}

/// The lines docker.py keeps (not blank by `str.strip`, not starting with
/// `#`), with the `FROM qemu/` ones told apart.
pub fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    py_splitlines(text)
        .into_iter()
        .filter(|line| !(line.chars().all(py_isspace) || line.starts_with('#')))
        .map(|line| match line.strip_prefix(FROM_QEMU) {
            Some(image) => Line::Inline(image),
            None => Line::Kept(line),
        })
}

/// Python's text mode: `\r\n` and `\r` read as `\n`.
pub fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}
