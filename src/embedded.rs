//! The built-in plugins and dockerfiles, compiled in by build.rs.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// A built-in dockerfile by file name.
pub fn dockerfile(file: &str) -> Option<&'static str> {
    DOCKERFILES
        .iter()
        .find(|(n, _)| *n == file)
        .map(|(_, t)| *t)
}
