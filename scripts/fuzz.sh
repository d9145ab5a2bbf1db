#!/usr/bin/env bash
# Coverage-guided fuzzing on stable Rust: `bash scripts/fuzz.sh SECONDS [TARGET...]`
#
# Builds fuzz/afl (one binary per target of crates/mmm-fuzz: agent_protocol,
# control_protocol, config, status_file) with AFL++'s instrumentation (the flags cargo-afl
# uses: LLVM sanitizer coverage, trace-pc-guard and compare tracing, linked with the
# afl-compiler-rt.o of Debian's afl++ package; no nightly, no `cargo afl config --build`),
# then runs afl-fuzz on each target in turn for SECONDS, starting from fuzz/corpus/TARGET,
# and prints per target: executions, executions per second, corpus size, crashes, hangs.
# Crash inputs are copied to fuzz/crashes/TARGET/ (cargo test -p mmm-fuzz runs them). Exit
# status 1 when any target crashed.
#
# Needs: afl++ (`apt-get install afl++`; not needed by scripts/test.sh). Output under
# target/fuzz/ (its own target dir: the instrumented build would otherwise replace the
# normal one). MMM_FUZZ_MINIMIZE=1: afterwards, replace fuzz/corpus/TARGET with the
# afl-cmin minimisation of the corpus it had plus what the run found.
# Runs one afl-fuzz at a time (AFL_NO_AFFINITY: the machine may be shared).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck source=scripts/cargo-env.sh
. scripts/cargo-env.sh
say() { printf 'fuzz.sh: %s\n' "$*" >&2; }

SECONDS_PER_TARGET="${1:?usage: bash scripts/fuzz.sh SECONDS [TARGET...]}"
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(agent_protocol control_protocol config status_file)

RT=/usr/lib/afl/afl-compiler-rt.o
if ! command -v afl-fuzz >/dev/null || [ ! -f "$RT" ]; then
    say "needs AFL++ (afl-fuzz and $RT): apt-get install afl++"
    exit 2
fi

FUZZ_TARGET="$TARGET_DIR/fuzz"
export CARGO_TARGET_DIR="$FUZZ_TARGET"
export RUSTFLAGS="-C debug-assertions -C overflow_checks -C codegen-units=1 -C opt-level=3 \
-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 \
-C llvm-args=-sanitizer-coverage-trace-pc-guard -C llvm-args=-sanitizer-coverage-prune-blocks=0 \
-C llvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -C link-arg=$RT"
say "building fuzz/afl (instrumented, release) into $FUZZ_TARGET"
run_cargo build --release --manifest-path fuzz/afl/Cargo.toml --bins
unset RUSTFLAGS CARGO_TARGET_DIR

export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_SKIP_CRASHES=1 AFL_QUIET=1
stat() { sed -n "s/^$1 *: *//p" "$2"; }
printf '%-18s %14s %10s %8s %8s %6s\n' target executions exec/s corpus crashes hangs
failed=0
for t in "${TARGETS[@]}"; do
    bin="$FUZZ_TARGET/release/$t"
    out="$FUZZ_TARGET/out/$t"
    rm -rf "$out"
    mkdir -p "$out"
    afl-fuzz -i "fuzz/corpus/$t" -o "$out" -V "$SECONDS_PER_TARGET" -t 2000 -- "$bin" \
        >"$out.log" 2>&1 || { say "afl-fuzz $t failed:"; tail -20 "$out.log" >&2; failed=1; continue; }
    s="$out/default/fuzzer_stats"
    crashes="$(stat saved_crashes "$s")"
    printf '%-18s %14s %10s %8s %8s %6s\n' "$t" "$(stat execs_done "$s")" "$(stat execs_per_sec "$s")" \
        "$(stat corpus_count "$s")" "$crashes" "$(stat saved_hangs "$s")"
    if [ "${crashes:-0}" != 0 ]; then
        failed=1
        mkdir -p "fuzz/crashes/$t"
        for f in "$out"/default/crashes/id:*; do
            cp "$f" "fuzz/crashes/$t/$(sha1sum "$f" | cut -c1-16)"
        done
        say "$t: crash inputs copied to fuzz/crashes/$t/"
    fi
    if [ "${MMM_FUZZ_MINIMIZE:-}" = 1 ]; then
        min="$out/cmin"
        mkdir -p "$out/all"
        cp "fuzz/corpus/$t"/* "$out"/default/queue/id:* "$out/all/" 2>/dev/null || true
        if afl-cmin -i "$out/all" -o "$min" -t 2000 -- "$bin" >"$out/cmin.log" 2>&1; then
            rm -f "fuzz/corpus/$t"/*
            for f in "$min"/*; do cp "$f" "fuzz/corpus/$t/$(sha1sum "$f" | cut -c1-16)"; done
            say "$t: corpus minimised to $(ls "fuzz/corpus/$t" | wc -l) files"
        else
            say "$t: afl-cmin failed (corpus kept): $(tail -3 "$out/cmin.log")"
        fi
    fi
done
exit "$failed"
