#!/bin/bash
# From a fresh Debian/Ubuntu machine, as root: set up docker and podman,
# build qemu-cross-cc, install the s390x shims (a target whose toolchain the
# set-up does not install on the host) and cross-compile a dynamically
# linked, big-endian program with them, then run it with the target's
# runner.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "quickstart: install Rust first (https://rustup.rs)" >&2; exit 1; }
tests/setup-engines.sh
cargo build --release --quiet
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$PWD/target/$host/release/qemu-cross-cc"
"$bin" shims --quiet --dir "$PWD/target/shims" s390x-linux-gnu
export PATH="$PWD/target/shims:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"; "$bin" sessions stop --all >/dev/null 2>&1 || true' EXIT
cat >"$work/hello.c" <<'C'
#include <stdio.h>
#include <stdint.h>
#include <string.h>
int main(void)
{
    uint32_t x = 1;
    unsigned char b[4];
    memcpy(b, &x, sizeof b);
    printf("hello from s390x, %s-endian\n", b[0] ? "little" : "big");
    return 0;
}
C
cd "$work"
echo "quickstart: s390x-linux-gnu-gcc -O2 hello.c -o hello (the first call builds the image)"
s390x-linux-gnu-gcc -O2 hello.c -o hello
file hello
echo "quickstart: s390x-linux-gnu-run ./hello"
s390x-linux-gnu-run ./hello
