#!/bin/bash
# The whole test suite, as CI runs it (as root, on Debian/Ubuntu): the style
# checks (rustfmt, clippy with warnings as errors), then set up the real
# engines (idempotent, see setup-engines.sh), then every test: unit tests,
# command-line tests, and the engine tests for docker, podman and sudo docker.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: run as root: the engine tests start engines, register binfmt handlers and use a second user" >&2
    exit 1
fi
cargo fmt --check
cargo clippy --all-targets -- -D warnings
tests/setup-engines.sh
cargo test --no-fail-fast -- --test-threads="${QCC_TEST_THREADS:-4}"
