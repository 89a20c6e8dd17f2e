//! Diagnostics for `QEMU_CROSS_CC_DEBUG`: the compile path is otherwise
//! silent (configure scripts read the compiler's stderr).

/// Print a diagnostic when `QEMU_CROSS_CC_DEBUG` is set (the compile path
/// is otherwise silent).
pub fn debug(msg: impl std::fmt::Display) {
    if std::env::var_os("QEMU_CROSS_CC_DEBUG").is_some_and(|v| !v.is_empty()) {
        eprintln!("qemu-cross-cc: debug: {msg}");
    }
}
