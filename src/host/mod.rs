//! Facts about the host: the calling user, binfmt_misc handlers, ELF
//! executables.

pub mod binfmt;
pub mod elf;
pub mod user;
