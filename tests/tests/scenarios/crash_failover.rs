//! Crash failover under concurrent clients (issue 13; docs/data-safety.md,
//! docs/benchmarks.md "Crash failover"): the writer's mysqld killed -9 while 16 clients
//! write through the writer VIP, optionally with the standby's inbound link rate-limited
//! (tc `tbf`, [`mmm_tests::Testbed::limit_inbound`]) so that it lags or semi-sync falls
//! back. One function per run, shared by the CI test (`tests/tests/crash_failover.rs`)
//! and the benchmark (`tests/tests/bench_crash.rs`); each returns its figures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mmm_tests::checker::{missing_ids, missing_per_server, row_ids, wait_identical};
use mmm_tests::cluster::DB_HOSTS;
use mmm_tests::workload::LOAD_TABLE;

use super::Cluster;

/// The clients of issue 13's crash failover.
pub const CLIENTS: usize = 16;

/// The start of `show`'s line for a refused promotion.
pub const REFUSAL: &str = "# Warning: role writer was not given to";

/// What one run measured.
#[derive(Debug, Clone)]
pub struct CrashRun {
    /// The killed writer and its standby.
    pub old: String,
    pub standby: String,
    /// The inbound limit of the standby (kbit/s).
    pub limit_kbit: Option<u32>,
    /// The monitor's last semi-sync line before the kill (empty without `semi_sync`).
    pub semi_sync_before: String,
    /// Writes the old writer acknowledged.
    pub acked_by_old: usize,
    /// Writes acknowledged over the whole run.
    pub acked_total: usize,
    /// The new writer (None: the promotion was refused).
    pub new_writer: Option<String>,
    /// `show`'s refusal line, when refused.
    pub refused: Option<String>,
    /// Kill → writer VIP + read_only=0 on the new writer.
    pub failover: Option<Duration>,
    /// Acknowledged writes of the old writer missing on each survivor when the new writer
    /// took writes (or when the refusal was shown), the new writer first.
    pub missing_at_failover: Vec<(String, usize)>,
    /// Of those missing on the new writer, how many no survivor had at that moment.
    pub reached_no_survivor: usize,
    /// Longest gap between acknowledged writes after the kill.
    pub write_gap: Duration,
    /// Acknowledged writes missing on the server that lacks most at the end (after the
    /// old writer returned and replication settled).
    pub missing_at_end: usize,
    /// Every server's `count/checksum` of the load table at the end (identical), or the
    /// difference seen.
    pub identical: Result<String, String>,
    /// `show`'s line when the returning old writer was kept out for errant transactions,
    /// and how many of its rows the new writer lacks (the errant rows).
    pub kept_out: Option<(String, usize)>,
    /// Errant rows of the old writer found on another server while it was kept out.
    pub errant_leaked: usize,
    /// Sampler invariants broken (two writable servers reachable, two VIP holders).
    pub violations: usize,
}

impl CrashRun {
    /// Acknowledged writes missing on the new writer when it took writes.
    pub fn missing_on_new_writer(&self) -> Option<usize> {
        let w = self.new_writer.as_ref()?;
        self.missing_at_failover
            .iter()
            .find(|(h, _)| h == w)
            .map(|(_, n)| *n)
    }

    /// One line for the figures.
    pub fn line(&self) -> String {
        format!(
            "{} killed, standby {}{}: {} acked by it ({} in all); {}; missing at failover {:?} ({} reached no survivor); write gap {:.3} s; at the end {} missing, servers {}{}{}",
            self.old,
            self.standby,
            self.limit_kbit
                .map(|k| format!(" limited to {k} kbit/s"))
                .unwrap_or_default(),
            self.acked_by_old,
            self.acked_total,
            match (&self.new_writer, &self.refused) {
                (Some(w), _) => format!(
                    "promoted {w} in {:.3} s",
                    self.failover.unwrap_or_default().as_secs_f64()
                ),
                (None, Some(r)) => format!("promotion REFUSED: {r}"),
                _ => "no outcome".into(),
            },
            self.missing_at_failover,
            self.reached_no_survivor,
            self.write_gap.as_secs_f64(),
            self.missing_at_end,
            match &self.identical {
                Ok(sum) => format!("identical ({sum})"),
                Err(e) => format!("DIFFER: {e}"),
            },
            match &self.kept_out {
                Some((_, n)) => format!(
                    "; old writer kept out with {n} errant rows, {} of them on another server",
                    self.errant_leaked
                ),
                None => String::new(),
            },
            if self.violations > 0 {
                format!("; {} invariant violations", self.violations)
            } else {
                String::new()
            }
        )
    }
}

/// The monitor's last `semi_sync:` verdict line ("" without one).
fn last_semi_sync_line(c: &Cluster) -> String {
    let log = c.monitor_log().unwrap_or_default();
    log.lines()
        .rev()
        .find(|l| l.contains("semi_sync: "))
        .map(|l| {
            l.split_once("semi_sync: ")
                .map(|(_, r)| format!("semi_sync: {r}"))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Waits (at most `limit`) until the monitor's last verdict says lossless; false when it
/// did not.
pub fn wait_lossless(c: &Cluster, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if last_semi_sync_line(c).starts_with("semi_sync: every acknowledged write") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// `@@server_id` of `host`.
fn server_id(c: &Cluster, host: &str) -> u32 {
    c.query(host, "SELECT @@server_id AS s")
        .ok()
        .and_then(|r| {
            r.first()
                .and_then(|r| r.get("s"))
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or_else(|| panic!("server_id of {host}"))
}

/// One run: `CLIENTS` clients write for `load_for`, the writer's mysqld is killed -9;
/// waits for the promotion of the standby or (with `semi_sync`) the refusal in `show`;
/// measures what the survivors lack; lifts the limit, restarts the old writer (its
/// errant transactions, if any, accepted as the harness does), waits for a healthy
/// cluster and identical servers. Panics only on harness failures.
pub fn writer_crash(c: &mut Cluster, limit_kbit: Option<u32>, load_for: Duration) -> CrashRun {
    let old = c.writer().expect("a writer");
    let standby = Cluster::other_master(&old).to_string();
    let old_sid = server_id(c, &old);
    if let Some(k) = limit_kbit {
        c.limit_inbound(&standby, k).expect("limit the standby");
    }
    let run = c.begin_clients(
        &format!(
            "writer mysqld kill -9 under {CLIENTS} clients ({old}{})",
            limit_kbit
                .map(|k| format!(", standby {standby} limited to {k} kbit/s"))
                .unwrap_or_default()
        ),
        CLIENTS,
    );
    // This run's ids (Cluster::begin_clients moved the counter past them).
    let run_ids = c.next_id - 10_000_000..c.next_id;
    std::thread::sleep(load_for);
    let semi_sync_before = last_semi_sync_line(c);
    let t = Instant::now();
    let kill_ms = t.saturating_duration_since(run.load.started()).as_millis() as u64;
    c.mysql_kill9(&old).expect("kill -9");
    // The old writer's last acknowledgements reach the clients within moments; the
    // monitor cannot have promoted anyone yet (trap_period).
    std::thread::sleep(Duration::from_millis(150));
    let acked_at_kill: BTreeSet<u64> = run.load.acked_ids().into_iter().collect();

    let outcome = c.wait_until(
        Duration::from_secs(90),
        "a new writer or a refused promotion",
        |c| {
            if c.has_vip(&standby) && c.writable(&standby) {
                return Some(Ok(t.elapsed()));
            }
            let show = c.ctl(&["show"]);
            show.lines()
                .find(|l| l.starts_with(REFUSAL))
                .map(|l| Err(l.trim_start_matches("# ").to_string()))
        },
    );
    let survivors: Vec<&str> = DB_HOSTS.iter().copied().filter(|h| *h != old).collect();
    let mut order: Vec<&str> = vec![standby.as_str()];
    order.extend(survivors.iter().filter(|h| **h != standby));
    let missing_at_failover = missing_per_server(c, &order, &acked_at_kill).expect("rows");
    let on_writer = missing_ids(c, &standby, LOAD_TABLE, &acked_at_kill).unwrap_or_default();
    let elsewhere: BTreeSet<u64> = survivors
        .iter()
        .filter(|h| **h != standby)
        .flat_map(|h| row_ids(c, h, LOAD_TABLE).unwrap_or_default())
        .collect();
    let reached_no_survivor = on_writer
        .iter()
        .filter(|id| !elsewhere.contains(id))
        .count();
    let (new_writer, refused, failover) = match outcome {
        Ok(d) => (Some(standby.clone()), None, Some(d)),
        Err(line) => (None, Some(line), None),
    };

    if limit_kbit.is_some() {
        c.unlimit_inbound(&standby).expect("unlimit");
    }
    c.wait_state(&old, "HARD_OFFLINE", Duration::from_secs(30));
    if refused.is_some() {
        // Nobody takes writes until the old writer is back (it gets its role back).
        c.mysql_start(&old).expect("restart the old writer");
    }
    // The load stops once writes are acknowledged again (the write gap closed), so that
    // the recovery below is not slowed down by 16 clients.
    let _ = run.load.wait_acks(20, Duration::from_secs(30));
    let report = run.load.stop();
    let samples = run.sampler.stop();
    let violations = samples.violations().len();
    let write_gap = report.longest_gap_after(t).len();
    println!("  load: {}", report.summary());
    let acked = report.acked_ids();
    let (kept_out, errant_leaked) = if refused.is_none() {
        c.mysql_start(&old).expect("restart the old writer");
        kept_out(c, &old, run_ids, kill_ms)
    } else {
        (None, 0)
    };
    c.wait_healthy(Duration::from_secs(120));
    c.wait_replication_healthy(Duration::from_secs(60));
    let identical =
        wait_identical(c, &DB_HOSTS, Duration::from_secs(60)).map_err(|e| e.to_string());
    let missing_at_end = missing_per_server(c, &DB_HOSTS, &acked)
        .expect("rows")
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let acked_by_old = report
        .acks
        .iter()
        .filter(|a| a.server_id == old_sid)
        .count();
    if acked_by_old != acked_at_kill.len() {
        println!(
            "  note: {acked_by_old} writes acknowledged by {old} in the report, {} in the snapshot 150 ms after the kill",
            acked_at_kill.len()
        );
    }
    CrashRun {
        old,
        standby,
        limit_kbit,
        semi_sync_before,
        acked_by_old,
        acked_total: report.acks.len(),
        new_writer,
        refused,
        failover,
        missing_at_failover,
        reached_no_survivor,
        write_gap,
        missing_at_end,
        identical,
        kept_out,
        errant_leaked,
        violations,
    }
}

/// Waits until the returning `old` writer is ONLINE or kept out for errant transactions.
/// Kept out: its errant rows (those the writer lacks), 2 s later none of them on another
/// server; returns `show`'s line with their count, and how many leaked.
fn kept_out(
    c: &Cluster,
    old: &str,
    ids: std::ops::Range<u64>,
    kill_ms: u64,
) -> (Option<(String, usize)>, usize) {
    let prefix = format!("Warning: host {old} is kept out: ");
    let start = Instant::now();
    let line = loop {
        if let Ok(s) = c.show() {
            if let Some(l) = s.comments.iter().find(|l| l.starts_with(&prefix)) {
                break l.clone();
            }
            if s.state(old) == "ONLINE" {
                return (None, 0);
            }
        }
        if start.elapsed() > Duration::from_secs(120) {
            println!("  note: {old} neither ONLINE nor kept out 120 s after its restart");
            return (None, 0);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(2));
    let writer = c
        .writer()
        .unwrap_or_else(|| Cluster::other_master(old).to_string());
    // Only rows sent before the kill can be the old writer's: with AFTER_SYNC the new
    // writer's own commits waiting for their acknowledgement are on its slaves (and on the
    // returned old master, its semi-sync slave) before they are visible on it.
    let before = |h: &str| -> BTreeSet<u64> {
        c.query(
            h,
            &format!(
                "SELECT id FROM {LOAD_TABLE} WHERE id >= {} AND id < {} AND at_ms <= {}",
                ids.start, ids.end, kill_ms
            ),
        )
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.at(0).and_then(|v| v.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
    };
    let errant: BTreeSet<u64> = before(old).difference(&before(&writer)).copied().collect();
    let on_others: Vec<(&str, Vec<u64>)> = DB_HOSTS
        .iter()
        .copied()
        .filter(|h| *h != old && *h != writer)
        .map(|h| (h, before(h).intersection(&errant).copied().collect()))
        .collect();
    let leaked = on_others.iter().map(|(_, ids)| ids.len()).sum();
    if leaked > 0 {
        println!("  note: errant rows of {old} on other servers: {on_others:?}");
    }
    (Some((line, errant.len())), leaked)
}
