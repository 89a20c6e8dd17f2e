//! ccache mode: a target's compiles run through the ccache of its image,
//! with the cache in a folder of the caller's cache mounted read-write.
//!
//! ccache on the host cannot use its direct mode for a cross compile: the
//! headers a source includes are the image's (`/usr/s390x-linux-gnu/...`),
//! which the host does not have, so every call is preprocessed again. Run
//! inside the image, ccache sees those headers at their real paths and hits
//! without preprocessing.
//!
//! The cache folder is `<cache>/ccache/<target>-<12 hex digits of the
//! image's dockerfile checksum>`: an image built from another dockerfile
//! (a changed dockerfile, other packages) starts with an empty cache and
//! never gets an object of the old one. Within one image, ccache's own
//! checks (the compiler's mtime and size, every header's contents) apply.
//!
//! Only compiles (`-c`) go through ccache; links, queries and
//! preprocessing run the compiler directly, as ccache itself would.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::call::cmdline::{CmdLine, Mode};
use crate::call::request::Request;
use crate::target::plugin::Plugin;

/// The variable that turns the mode on (1) or off (0) for one call; it
/// comes before the project file's `ccache`.
pub const VAR: &str = "QEMU_CROSS_CC_CCACHE";

/// The program run in the image.
const PROGRAM: &str = "ccache";

/// Whether this call of `plugin`'s compiler, read as `cmd`, goes through
/// ccache: it is a compile (`-c`), and `QEMU_CROSS_CC_CCACHE`, else the
/// project file, turns the mode on.
pub fn wanted(plugin: &Plugin, cmd: &CmdLine) -> Result<bool> {
    let on = match std::env::var_os(VAR).filter(|v| !v.is_empty()) {
        None => plugin.ccache,
        Some(v) => match v.to_str().and_then(crate::host::switch) {
            Some(on) => on,
            None => bail!(
                "{VAR} is '{}'; set it to 1 (compiles through ccache in the image) or 0 (off)",
                v.to_string_lossy()
            ),
        },
    };
    Ok(on && cmd.mode() == Mode::Compile && !cmd.only_asks() && !cmd.inputs().is_empty())
}

/// The name of the cache folder of `target`'s image with dockerfile
/// checksum `checksum`.
fn folder_name(target: &str, checksum: &str) -> String {
    let short = checksum.get(..12).unwrap_or(checksum);
    format!("{target}-{short}")
}

/// The cache folder of `target`'s image with dockerfile checksum
/// `checksum`: private to the caller (created 0700, or checked), its
/// symlinks resolved, as it is mounted.
pub fn folder(target: &str, checksum: &str) -> Result<PathBuf> {
    crate::state::paths::mounted_cache_folder(
        &crate::state::paths::cache_dir()?,
        "ccache",
        &folder_name(target, checksum),
    )
}

/// Make `req` run its compiler through ccache with the cache in `dir`:
/// `ccache COMPILER ARGS...`, `dir` mounted read-write and named by
/// `CCACHE_DIR` (the caller's own `CCACHE_DIR` names a host folder the
/// image does not see, so ours replaces it).
pub fn wrap(req: &mut Request, dir: PathBuf) {
    let compiler = std::mem::replace(&mut req.program, OsString::from(PROGRAM));
    req.args.insert(0, compiler);
    req.env.retain(|(k, _)| k != "CCACHE_DIR");
    req.env
        .push(("CCACHE_DIR".to_string(), dir.clone().into_os_string()));
    req.env.sort_by(|a, b| a.0.cmp(&b.0));
    req.mounts.add(dir, true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::mounts::MountSet;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    #[test]
    fn values() {
        use crate::host::switch;
        for on in ["1", "yes", "TRUE", "on"] {
            assert_eq!(switch(on), Some(true), "{on}");
        }
        for off in ["0", "no", "False", "off"] {
            assert_eq!(switch(off), Some(false), "{off}");
        }
        for bad in ["2", "y", "enable", " 1", ""] {
            assert_eq!(switch(bad), None, "{bad}");
        }
    }

    #[test]
    fn folder_follows_the_checksum() {
        assert_eq!(
            folder_name("s390x-linux-gnu", "0123456789abcdef0123"),
            "s390x-linux-gnu-0123456789ab"
        );
        assert_ne!(
            folder_name("t", "aaaaaaaaaaaa1"),
            folder_name("t", "aaaaaaaaaaab1")
        );
    }

    #[test]
    fn folder_is_private_and_never_a_planted_link() {
        let cache = tempfile::tempdir().unwrap();
        let folder_in =
            |c: &Path, n: &str| crate::state::paths::mounted_cache_folder(c, "ccache", n);
        let dir = folder_in(cache.path(), "t-abc").unwrap();
        assert_eq!(
            dir,
            std::fs::canonicalize(cache.path().join("ccache/t-abc")).unwrap()
        );
        let mode = std::fs::symlink_metadata(&dir).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);

        // A link planted where a folder would be is refused, not followed
        // (its target would be mounted read-write).
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), cache.path().join("ccache/t-link")).unwrap();
        let e = format!("{:#}", folder_in(cache.path(), "t-link").unwrap_err());
        assert!(e.contains("t-link") && !e.contains('\n'), "{e}");
        std::os::unix::fs::symlink(elsewhere.path(), cache.path().join("link")).unwrap();
        let root_link = cache.path().join("link");
        std::fs::remove_dir_all(cache.path().join("ccache")).unwrap();
        std::os::unix::fs::symlink(&root_link, cache.path().join("ccache")).unwrap();
        assert!(folder_in(cache.path(), "t-abc").is_err());

        // A folder others may write to is refused.
        let open = cache.path().join("open");
        std::fs::create_dir_all(open.join("ccache/t-abc")).unwrap();
        std::fs::set_permissions(
            open.join("ccache/t-abc"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        assert!(folder_in(&open, "t-abc").is_err());
    }

    #[test]
    fn wrap_runs_ccache_with_the_compiler_first() {
        let mut req = Request {
            image: "img".into(),
            program: "s390x-linux-gnu-gcc".into(),
            args: vec!["-c".into(), "a.c".into()],
            cwd: PathBuf::from("/w"),
            mounts: MountSet::new(),
            env: vec![
                ("CCACHE_DIR".into(), "/host/ccache".into()),
                ("LANG".into(), "C".into()),
            ],
            quiet: false,
            stdout_to: None,
            depfiles: Vec::new(),
        };
        wrap(&mut req, PathBuf::from("/c/ccache/t-abc"));
        assert_eq!(req.program, "ccache");
        assert_eq!(req.args, ["s390x-linux-gnu-gcc", "-c", "a.c"]);
        assert_eq!(
            req.env,
            [
                ("CCACHE_DIR".to_string(), OsString::from("/c/ccache/t-abc")),
                ("LANG".to_string(), OsString::from("C")),
            ]
        );
        assert!(
            req.mounts
                .covers(std::path::Path::new("/c/ccache/t-abc/x"), true)
        );
    }
}
