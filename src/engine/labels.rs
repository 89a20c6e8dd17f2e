//! Container and image label names, shared with docker.py.

/// Set on every container this tool starts; its value identifies one
/// invocation (or one session), and `clean` removes everything carrying it.
pub const INSTANCE: &str = "com.qemu.instance.uuid";

/// The checksum of the preprocessed dockerfile an image was built from.
pub const DOCKERFILE_CHECKSUM: &str = "com.qemu.dockerfile-checksum";

/// The label recording the checksum of a file added with `--extra-files`;
/// docker.py uses the file argument exactly as given.
pub fn extra_file_checksum(file: &str) -> String {
    format!("com.qemu.{file}-checksum")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_docker_py() {
        assert_eq!(INSTANCE, "com.qemu.instance.uuid");
        assert_eq!(DOCKERFILE_CHECKSUM, "com.qemu.dockerfile-checksum");
        assert_eq!(
            extra_file_checksum("tests/x.tar"),
            "com.qemu.tests/x.tar-checksum"
        );
    }
}
