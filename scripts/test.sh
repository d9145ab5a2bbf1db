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
# Root-only tests of the monitor's IO (real ICMP, a real MariaDB in a namespace of their own);
# ignored by default so that `cargo test -p mmm-mon` runs anywhere.
cargo test -p mmm-mon --test root_monitor -- --ignored --test-threads=1
