//! Just enough ELF: whether a file is a program with an interpreter
//! (dynamically linked), in every class and byte order.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Whether the ELF file at `path` has an interpreter (PT_INTERP); None when
/// it is not an ELF file.
pub fn is_dynamic(path: &Path) -> Option<bool> {
    let f = File::open(path).ok()?;
    let mut head = [0u8; 64];
    f.read_exact_at(&mut head, 0).ok()?;
    dynamic(&f, &head)
}

/// `head` is the first 64 bytes of `f`.
pub fn dynamic(f: &File, head: &[u8]) -> Option<bool> {
    if head.len() < 52 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let big = head[5] == 2;
    let n = |o: usize, len: usize| -> u64 {
        let b = &head[o..o + len];
        let fold = |acc: u64, x: &u8| (acc << 8) | u64::from(*x);
        if big {
            b.iter().fold(0, fold)
        } else {
            b.iter().rev().fold(0, fold)
        }
    };
    let (phoff, phentsize, phnum) = match head[4] {
        1 => (n(0x1c, 4), n(0x2a, 2), n(0x2c, 2)),
        2 if head.len() >= 64 => (n(0x20, 8), n(0x36, 2), n(0x38, 2)),
        _ => return None,
    };
    if phentsize < 4 || phnum * phentsize > 1 << 16 {
        return None;
    }
    let mut table = vec![0u8; usize::try_from(phnum * phentsize).ok()?];
    f.read_exact_at(&mut table, phoff).ok()?;
    let interp = table.chunks(usize::try_from(phentsize).ok()?).any(|ph| {
        let t = [ph[0], ph[1], ph[2], ph[3]];
        let p_type = if big {
            u32::from_be_bytes(t)
        } else {
            u32::from_le_bytes(t)
        };
        p_type == 3
    });
    Some(interp)
}
