//! Targets: the plugin manifests and their registry (`plugin`), the
//! project file (`project`), the target's image ensured before a call
//! (`ensure`), its exported sysroot (`sysroot`), the toolchain files for
//! build systems (`toolchain`) and the distcc host lists a project may name
//! (`distcc_hosts`).

pub mod distcc_hosts;
pub mod ensure;
pub mod manifest;
pub mod names;
pub mod plugin;
pub mod project;
pub mod registry;
pub mod sysroot;
pub mod toolchain;
