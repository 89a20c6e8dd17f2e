#!/bin/bash
# From a fresh Debian/Ubuntu machine, as root: set up docker and podman,
# build qemu-cross-cc, install its aarch64 shims and cross-compile a program
# with them, then run it under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "quickstart: install Rust first (https://rustup.rs)" >&2; exit 1; }
tests/setup-engines.sh
cargo build --release --quiet
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$PWD/target/$host/release/qemu-cross-cc"
"$bin" shims --dir "$PWD/target/shims" aarch64-linux-gnu
export PATH="$PWD/target/shims:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/hello.c" <<'C'
#include <stdio.h>
int main(void) { printf("hello from %s\n", __aarch64__ ? "aarch64" : "?"); return 0; }
C
cd "$work"
echo "quickstart: aarch64-linux-gnu-gcc -O2 -static hello.c -o hello (the first call builds the image)"
aarch64-linux-gnu-gcc -O2 -static hello.c -o hello
file hello
qemu-aarch64-static ./hello
