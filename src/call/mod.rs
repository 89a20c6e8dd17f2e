//! One tool call, fully resolved before anything runs: the arguments'
//! paths and the mounts they need (`argpaths`, `mounts`), the environment
//! that passes (`passenv`), the request itself (`request`), and the
//! depfiles rewritten after it (`depfiles`).

pub mod argpaths;
pub mod cmdline;
pub mod depfiles;
pub mod mounts;
pub mod passenv;
pub mod request;
