//! Diagnostics for `QEMU_CROSS_CC_DEBUG`: the compile path is otherwise
//! silent (configure scripts read the compiler's stderr).

/// Print a diagnostic when `QEMU_CROSS_CC_DEBUG` is set (the compile path
/// is otherwise silent).
pub fn debug(msg: impl std::fmt::Display) {
    if std::env::var_os("QEMU_CROSS_CC_DEBUG").is_some_and(|v| !v.is_empty()) {
        eprintln!("qemu-cross-cc: debug: {msg}");
    }
}

/// When the call started, if `QEMU_CROSS_CC_TIMINGS` is set (see `timing`).
static TIMINGS: std::sync::OnceLock<Option<std::time::Instant>> = std::sync::OnceLock::new();

/// Start the clock of `timing` (the program's first step).
pub fn start_timings() {
    TIMINGS.get_or_init(|| {
        std::env::var_os("QEMU_CROSS_CC_TIMINGS")
            .is_some_and(|v| !v.is_empty())
            .then(std::time::Instant::now)
    });
}

/// Under `QEMU_CROSS_CC_TIMINGS` (for the overhead benchmark's breakdown),
/// print how long after the program's start a step of the call ended.
pub fn timing(step: &str) {
    if let Some(Some(start)) = TIMINGS.get() {
        eprintln!(
            "qemu-cross-cc: timing: {step} {}",
            start.elapsed().as_micros()
        );
    }
}
