#!/bin/bash
# The whole test suite, as CI runs it (as root, on Debian/Ubuntu): set up the
# real engines (idempotent, see setup-engines.sh), then every test: unit
# tests, command-line tests, and the engine tests for docker and podman.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: run as root: the engine tests start engines, register binfmt handlers and use a second user" >&2
    exit 1
fi
tests/setup-engines.sh
cargo test --no-fail-fast -- --test-threads="${QCC_TEST_THREADS:-4}"
