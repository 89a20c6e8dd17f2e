//! One tool call, fully resolved before anything runs: the command line,
//! read once for what each argument is (`cmdline`), the paths it reads and
//! writes and the mounts they need (`argpaths`, `mounts`), the environment
//! that passes (`passenv`), the request itself (`request`), and the
//! depfiles rewritten after it (`depfiles`).

pub mod argpaths;
pub mod cmdline;
pub mod depfiles;
pub mod mounts;
pub mod passenv;
pub mod request;
