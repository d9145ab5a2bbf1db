//! Crash-failover benchmarks of issue 13 (docs/benchmarks.md "Crash failover"): they print
//! figures per run and a summary (median and range) and assert nothing but the harness.
//! Ignored by the normal test run; run them with release binaries:
//!
//! ```text
//! cargo build --release -p mmm-mon -p mmm-agent -p mmm-control
//! MMM_BIN_DIR=target/release MMM_BENCH_CRASH_RUNS=20 \
//!   cargo test --release -p mmm-tests --test bench_crash -- --ignored --nocapture --test-threads=1
//! ```
//!
//! - `bench_crash_semi_sync`: `semi_sync 1`, 16 clients, the writer's mysqld killed -9;
//!   `MMM_BENCH_CRASH_RUNS` runs (default 20) on the plain bridge, then as many with the
//!   standby's inbound link limited to `MMM_BENCH_CRASH_KBIT` kbit/s (default 2000, tc tbf);
//!   `MMM_BENCH_CRASH_SERIES=plain` or `=limited` runs one series only.
//! - `bench_crash_async`: the same without `semi_sync`, standby limited so that it lags.
//!
//! Subnets 171 and 173.

mod scenarios;

use std::time::Duration;

use scenarios::crash_failover::{wait_lossless, writer_crash, CrashRun};
use scenarios::{fast, Cluster};

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// "median (min–max)" of `v`.
fn spread(mut v: Vec<f64>, unit: &str, digits: usize) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    format!(
        "{med:.digits$}{unit} ({:.digits$}–{:.digits$})",
        v[0],
        v[v.len() - 1]
    )
}

fn summary(label: &str, runs: &[CrashRun]) {
    let promoted: Vec<&CrashRun> = runs.iter().filter(|r| r.new_writer.is_some()).collect();
    let refused = runs.iter().filter(|r| r.refused.is_some()).count();
    let lost: Vec<usize> = promoted
        .iter()
        .filter_map(|r| r.missing_on_new_writer())
        .collect();
    println!("summary: [{label}] {} runs", runs.len());
    println!(
        "  promoted {} (acknowledged rows missing on the new writer per run: {:?}), refused {refused}",
        promoted.len(),
        lost
    );
    println!(
        "  acknowledged by the old writer: {}",
        spread(runs.iter().map(|r| r.acked_by_old as f64).collect(), "", 0)
    );
    println!(
        "  failover: {}",
        spread(
            promoted
                .iter()
                .filter_map(|r| r.failover.map(|d| d.as_secs_f64()))
                .collect(),
            " s",
            2
        )
    );
    println!(
        "  write gap (promoted runs): {}",
        spread(
            promoted.iter().map(|r| r.write_gap.as_secs_f64()).collect(),
            " s",
            2
        )
    );
    println!(
        "  reached no survivor (of those missing on the new writer): {:?}",
        promoted
            .iter()
            .map(|r| r.reached_no_survivor)
            .collect::<Vec<_>>()
    );
    println!(
        "  old writer kept out for errant transactions: {} runs (errant rows {:?}, leaked {})",
        runs.iter().filter(|r| r.kept_out.is_some()).count(),
        runs.iter()
            .filter_map(|r| r.kept_out.as_ref().map(|k| k.1))
            .collect::<Vec<_>>(),
        runs.iter().map(|r| r.errant_leaked).sum::<usize>()
    );
    println!(
        "  missing at the end: {}; servers identical at the end: {} of {}; invariant violations: {}",
        runs.iter().map(|r| r.missing_at_end).sum::<usize>(),
        runs.iter().filter(|r| r.identical.is_ok()).count(),
        runs.len(),
        runs.iter().map(|r| r.violations).sum::<usize>()
    );
    for r in runs.iter().filter_map(|r| r.refused.as_ref()).take(2) {
        println!("  refusal: {r}");
    }
}

fn series(c: &mut Cluster, label: &str, n: u32, limit: Option<u32>, semi: bool) -> Vec<CrashRun> {
    let mut runs = Vec::new();
    for i in 0..n {
        if semi && !wait_lossless(c, Duration::from_secs(30)) {
            println!("  note: semi-sync not lossless 30 s before run {i}");
        }
        let r = writer_crash(c, limit, Duration::from_secs(3));
        println!("figure: [{label}] run {}/{n}: {}", i + 1, r.line());
        if !r.semi_sync_before.is_empty() {
            println!("  before the kill: {}", r.semi_sync_before);
        }
        runs.push(r);
    }
    summary(label, &runs);
    runs
}

#[test]
#[ignore]
fn bench_crash_semi_sync() {
    let n = env_or("MMM_BENCH_CRASH_RUNS", 20);
    let kbit = env_or("MMM_BENCH_CRASH_KBIT", 2000);
    let mut o = fast(171);
    o.label = "semi-sync";
    // Every run crashes one of the masters: flap detection (3 in an hour) would hold the
    // fourth returning master in AWAITING_RECOVERY.
    o.flap_count = Some(0);
    o.common_directives.push("semi_sync 1".into());
    let which = std::env::var("MMM_BENCH_CRASH_SERIES").unwrap_or_else(|_| "plain,limited".into());
    let mut c = Cluster::start(o);
    if which.contains("plain") {
        series(&mut c, "semi-sync, plain bridge", n, None, true);
    }
    if which.contains("limited") {
        series(
            &mut c,
            &format!("semi-sync, standby limited to {kbit} kbit/s"),
            n,
            Some(kbit),
            true,
        );
    }
}

#[test]
#[ignore]
fn bench_crash_async() {
    let n = env_or("MMM_BENCH_CRASH_RUNS", 20);
    let kbit = env_or("MMM_BENCH_CRASH_KBIT", 2000);
    let mut o = fast(173);
    o.flap_count = Some(0);
    let mut c = Cluster::start(o);
    series(
        &mut c,
        &format!("async, standby limited to {kbit} kbit/s"),
        n,
        Some(kbit),
        false,
    );
}
