//! Errors callers branch on across the crate.

/// A command-line mistake: printed with the usage hint, exit status 2.
/// `command` is the subcommand, or `qemu-cross-cc` for the global options.
#[derive(Debug, thiserror::Error)]
pub struct UsageError {
    pub command: String,
    pub message: String,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.command == "qemu-cross-cc" {
            write!(f, "{} (see 'qemu-cross-cc help')", self.message)
        } else {
            write!(
                f,
                "{}: {} (see 'qemu-cross-cc {} --help')",
                self.command, self.message, self.command
            )
        }
    }
}
