#!/usr/bin/env bash
# The README's test command (CI runs it through .ci/run):
#
#   sudo bash scripts/test.sh
#
# 1. scripts/deps.sh: the system packages (C toolchain, MariaDB, iproute2, dpkg-dev, lintian…).
# 2. As the user who ran sudo (or as root when run as root; scripts/cargo-env.sh): cargo fmt
#    --check, clippy -D warnings, a cargo check of the fuzz harness (fuzz/afl), the build of
#    every target, the doc tests, and the test
#    executables (`cargo test --no-run`); target/ stays that user's.
# 3. As root: every test executable, from its package's directory as `cargo test` does
#    (unit tests, protocol tests on loopback, the testbed tests with real MariaDB servers in
#    network namespaces), then the root-only monitor tests that are ignored by default.
# 4. The Debian packages (scripts/package.sh, scripts/test-packages.sh): build, lintian, install,
#    the seed's walkthrough with the installed binaries, purge. MMM_TEST_SKIP_PACKAGES=1 skips it.
#
# Every test executable runs even when an earlier one failed; the exit status is 1 if any
# step failed. Timing (2 cores, from scratch): see README.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: must run as root (the testbed creates network namespaces): sudo bash scripts/test.sh" >&2
    exit 1
fi
export CARGO_TERM_COLOR=never
bash scripts/deps.sh
# shellcheck source=scripts/cargo-env.sh
. scripts/cargo-env.sh
echo "test.sh: $(describe_build)"

step() { printf '\n=== test.sh: %s (%s)\n' "$*" "$(date +%T)"; }

step "cargo fmt --check"
run_cargo fmt --all -- --check
step "cargo clippy"
run_cargo clippy --workspace --all-targets -- -D warnings
step "fuzz harness (cargo check; scripts/fuzz.sh builds and runs it with AFL++)"
run_cargo check --manifest-path fuzz/afl/Cargo.toml --bins --target-dir "$TARGET_DIR"
step "cargo build"
run_cargo build --workspace --all-targets
step "doc tests"
run_cargo test --workspace --doc
step "test executables"
list="$(mktemp)"
trap 'rm -f "$list"' EXIT
# One line per test executable: manifest path, target kind/name, executable.
run_cargo test --workspace --no-run --message-format=json \
    | jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
             | [.manifest_path, (.target.kind[0] + "/" + .target.name), .executable] | @tsv' >"$list"
[ -s "$list" ] || { echo "test.sh: cargo listed no test executable" >&2; exit 1; }

failed=()
run_test() { # MANIFEST NAME EXE ARGS…
    local manifest="$1" name="$2" exe="$3"
    shift 3
    step "$(basename "$(dirname "$manifest")") $name $*"
    if ! (cd "$(dirname "$manifest")" && CARGO_MANIFEST_DIR="$(dirname "$manifest")" "$exe" "$@"); then
        failed+=("$name $*")
    fi
}
while IFS=$'\t' read -r manifest name exe; do
    run_test "$manifest" "$name" "$exe" --test-threads=2
done <"$list"
# Root-only tests of the monitor's IO (real ICMP, a real MariaDB in a namespace of their
# own); ignored by default so that `cargo test -p mmm-mon` runs anywhere.
while IFS=$'\t' read -r manifest name exe; do
    if [ "$name" = test/root_monitor ]; then
        run_test "$manifest" "$name" "$exe" --ignored --test-threads=1
    fi
done <"$list"

if [ "${MMM_TEST_SKIP_PACKAGES:-0}" != 1 ]; then
    step "Debian packages"
    bash scripts/test-packages.sh || failed+=("scripts/test-packages.sh")
fi

if [ ${#failed[@]} -gt 0 ]; then
    printf '\ntest.sh: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
printf '\ntest.sh: all passed (%s)\n' "$(date +%T)"
