#!/usr/bin/env bash
# The README's test command: installs the system packages, builds once, checks style and
# runs every test (unit tests, protocol tests on loopback, and the testbed tests with real
# MariaDB servers in network namespaces). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
