//! The built-in plugins and dockerfiles, compiled in by build.rs, and the
//! dockerfiles' checksums it computed.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// A built-in dockerfile by file name.
pub fn dockerfile(file: &str) -> Option<&'static str> {
    DOCKERFILES
        .iter()
        .find(|(n, _)| *n == file)
        .map(|(_, t)| *t)
}

/// The checksum build.rs computed for a built-in dockerfile (by file
/// name), as `image::dockerfile::checksum` would with the built-in
/// dockerfiles searched first; None for one that builds on a dockerfile
/// that is not built in.
pub fn dockerfile_checksum(file: &str) -> Option<&'static str> {
    DOCKERFILE_CHECKSUMS
        .iter()
        .find(|(n, _)| *n == file)
        .map(|(_, c)| *c)
}
