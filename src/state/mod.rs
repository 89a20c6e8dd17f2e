//! Private state: the per-user folders and files the tool keeps, and the
//! checks that make it trust nothing it did not just create.

pub mod paths;
pub mod safefs;
