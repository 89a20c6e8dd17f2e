//! qemu-cross-cc: run cross compilers inside container images as if they
//! were installed on the host; a drop-in for QEMU's tests/docker/docker.py.
//! Everything is in the library (`lib.rs`).

fn main() {
    qemu_cross_cc::main()
}
