//! The data-safety checker of the fault matrix (issue 7; spec §9.1 items 2, 3, 7, 8):
//!
//! - [`Sampler`]: every 50 ms during a run, for every database host, whether its server
//!   is writable (`read_only=0`) and whether the host holds the writer VIP. One thread per
//!   host sits in the host's network namespace (the VIP is read with `getifaddrs` there)
//!   and asks the server over its unix socket as root, each query bounded.
//! - [`Samples::violations`]: the invariants: never two writable servers that clients can
//!   reach (a host whose link the test cut is marked isolated), the writer VIP on at most
//!   one reachable host.
//! - [`check_data`]: afterwards, waits for the running servers to converge, then compares
//!   the rows themselves (not what replication reports) with the acknowledged writes:
//!   acknowledged rows missing per server, rows present on one server and not another,
//!   replication threads and their errors (1062 = a duplicate-key break).
//! - [`missing_per_server`] and [`wait_identical`] (issue 13's crash failover): acknowledged
//!   rows each server lacks right now, and every given server holding the very same load
//!   table (row count and a checksum over every column) with replication running.
//! - [`wait_same_rows`] and [`missing_ids`]: the same comparison for any table with an `id`
//!   column, without the replication verdict (e.g. while a master's peer is down).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use nix::sched::{setns, CloneFlags};

use crate::error::{io_err, Result, TestbedError};
use crate::testbed::Testbed;
use crate::workload::{WorkloadReport, LOAD_TABLE};

/// The sampling period.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(50);

/// Bound on one `SELECT @@read_only` of the sampler.
const SAMPLE_QUERY_TIMEOUT: Duration = Duration::from_millis(300);

/// A known value older than this is no longer carried over to a tick without a sample.
const CARRY_OVER: Duration = Duration::from_millis(500);

/// One observation of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The tick (multiples of [`SAMPLE_PERIOD`] since the sampler started).
    pub tick: u64,
    /// When it was taken.
    pub at: Instant,
    /// `Some(true)` read_only=0, `Some(false)` read_only=1, `None` no answer (down, hung).
    pub writable: Option<bool>,
    /// Whether the host has the writer VIP on an interface.
    pub has_vip: bool,
    /// Whether the test had cut the host off the network (clients cannot reach it).
    pub isolated: bool,
}

/// A broken invariant over a run of consecutive ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What: `two writable servers` or `writer VIP on two hosts`.
    pub what: &'static str,
    /// The hosts involved.
    pub hosts: Vec<String>,
    /// First and last tick's time (relative to the sampler's start).
    pub from: Duration,
    /// Last tick.
    pub to: Duration,
}

/// The 50 ms sampler; [`Sampler::stop`] returns the [`Samples`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    isolated: BTreeMap<String, Arc<AtomicBool>>,
    threads: Vec<(String, JoinHandle<Vec<Sample>>)>,
    started: Instant,
}

impl Sampler {
    /// Starts sampling `hosts` (database hosts) for `writer_vip`.
    pub fn start(tb: &Testbed, hosts: &[&str], writer_vip: Ipv4Addr) -> Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut isolated = BTreeMap::new();
        let mut threads = Vec::new();
        for h in hosts {
            let info = tb.host(h)?;
            let socket = info
                .socket
                .clone()
                .ok_or_else(|| TestbedError::NotADatabaseHost(h.to_string()))?;
            let path = format!("/run/netns/{}", info.netns);
            let ns = File::open(&path).map_err(io_err(format!("opening {path}")))?;
            let iso = Arc::new(AtomicBool::new(false));
            isolated.insert(h.to_string(), iso.clone());
            let s = stop.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sample-{h}"))
                .spawn(move || {
                    if setns(&ns, CloneFlags::CLONE_NEWNET).is_err() {
                        return Vec::new();
                    }
                    sample_host(socket, writer_vip, started, s, iso)
                })
                .map_err(io_err("spawning a sampler thread"))?;
            threads.push((h.to_string(), handle));
        }
        Ok(Sampler {
            stop,
            isolated,
            threads,
            started,
        })
    }

    /// Marks `host` as cut off (or reachable again): a cut-off host can hold the VIP and
    /// be writable without clients reaching it.
    pub fn set_isolated(&self, host: &str, isolated: bool) {
        if let Some(f) = self.isolated.get(host) {
            f.store(isolated, Ordering::Relaxed);
        }
    }

    /// Stops sampling.
    pub fn stop(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        let mut per_host = BTreeMap::new();
        for (h, t) in self.threads {
            per_host.insert(h, t.join().unwrap_or_default());
        }
        Samples {
            started: self.started,
            per_host,
        }
    }
}

/// One host's sampling loop (in the host's namespace). The VIP is looked at every tick in
/// a loop of its own, beside the `read_only` query: a query stuck on a hung (frozen)
/// server must not carry a VIP seen before the freeze over the ticks after the agent
/// removed it (issue 14: a failover finished within 0.5 s of the removal read as the VIP
/// on two hosts). Each tick's sample takes the latest query result (at or before its tick,
/// at most [`CARRY_OVER`] old).
fn sample_host(
    socket: PathBuf,
    vip: Ipv4Addr,
    started: Instant,
    stop: Arc<AtomicBool>,
    isolated: Arc<AtomicBool>,
) -> Vec<Sample> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let tick_of = |at: Instant| {
        (at.saturating_duration_since(started).as_millis() / SAMPLE_PERIOD.as_millis()) as u64
    };
    let new_interval = || {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::from_std(started), SAMPLE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick
    };
    // (tick, at, writable) of each query.
    let queries = async {
        let mut out: Vec<(u64, Instant, Option<bool>)> = Vec::new();
        let mut conn: Option<mysql_async::Conn> = None;
        let mut tick = new_interval();
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let at = Instant::now();
            if conn.is_none() {
                let opts = mysql_async::OptsBuilder::default()
                    .socket(Some(socket.to_string_lossy().into_owned()))
                    .prefer_socket(true)
                    .user(Some("root"));
                conn = tokio::time::timeout(SAMPLE_QUERY_TIMEOUT, mysql_async::Conn::new(opts))
                    .await
                    .ok()
                    .and_then(|r| r.ok());
            }
            let mut writable = None;
            if let Some(mut c) = conn.take() {
                match tokio::time::timeout(
                    SAMPLE_QUERY_TIMEOUT,
                    c.query_first::<u8, _>("SELECT @@global.read_only"),
                )
                .await
                {
                    Ok(Ok(Some(ro))) => {
                        writable = Some(ro == 0);
                        conn = Some(c);
                    }
                    _ => {
                        // Dropped: a hung server must not keep a stale connection.
                    }
                }
            }
            out.push((tick_of(at), at, writable));
        }
        out
    };
    // (tick, at, has_vip, isolated) every tick.
    let vips = async {
        let mut out: Vec<(u64, Instant, bool, bool)> = Vec::new();
        let mut tick = new_interval();
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let at = Instant::now();
            let iso = isolated.load(Ordering::Relaxed);
            out.push((tick_of(at), at, host_has_ip(vip), iso));
        }
        out
    };
    let (queries, vips) = rt.block_on(async { tokio::join!(queries, vips) });
    let mut out = Vec::with_capacity(vips.len());
    let mut next = 0;
    let mut last: Option<(Instant, Option<bool>)> = None;
    for (tick, at, has_vip, iso) in vips {
        while let Some(&(qt, qat, w)) = queries.get(next).filter(|q| q.0 <= tick) {
            let _ = qt;
            last = Some((qat, w));
            next += 1;
        }
        let writable = last
            .filter(|(qat, _)| at.saturating_duration_since(*qat) <= CARRY_OVER)
            .and_then(|(_, w)| w);
        out.push(Sample {
            tick,
            at,
            writable,
            has_vip,
            isolated: iso,
        });
    }
    out
}

/// Whether an interface of the current network namespace carries `ip`.
fn host_has_ip(ip: Ipv4Addr) -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|a| a.as_sockaddr_in().map(|s| s.ip()))
        .any(|a| a == ip)
}

/// What the sampler saw.
#[derive(Debug, Clone)]
pub struct Samples {
    /// When sampling began.
    pub started: Instant,
    /// Per host, in time order.
    pub per_host: BTreeMap<String, Vec<Sample>>,
}

/// The state of all hosts at one tick (a host without a sample at the tick carries its
/// previous one over for up to 500 ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickView {
    /// The tick.
    pub tick: u64,
    /// Per host: (writable, has_vip, isolated).
    pub hosts: BTreeMap<String, (Option<bool>, bool, bool)>,
}

impl Samples {
    /// The number of samples taken.
    pub fn len(&self) -> usize {
        self.per_host.values().map(Vec::len).sum()
    }

    /// Whether nothing was sampled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hosts' states tick by tick.
    pub fn ticks(&self) -> Vec<TickView> {
        let last = self
            .per_host
            .values()
            .filter_map(|v| v.last().map(|s| s.tick))
            .max()
            .unwrap_or(0);
        let mut idx: BTreeMap<&str, usize> = BTreeMap::new();
        let mut current: BTreeMap<&str, Option<Sample>> = BTreeMap::new();
        let mut out = Vec::new();
        for tick in 0..=last {
            let mut view = TickView {
                tick,
                hosts: BTreeMap::new(),
            };
            for (h, samples) in &self.per_host {
                let i = idx.entry(h.as_str()).or_insert(0);
                let cur = current.entry(h.as_str()).or_insert(None);
                while let Some(s) = samples.get(*i).filter(|s| s.tick <= tick) {
                    *cur = Some(*s);
                    *i += 1;
                }
                let tick_time = self.started + SAMPLE_PERIOD * tick as u32;
                if let Some(s) =
                    cur.filter(|s| tick_time.saturating_duration_since(s.at) <= CARRY_OVER)
                {
                    view.hosts
                        .insert(h.clone(), (s.writable, s.has_vip, s.isolated));
                } else {
                    view.hosts.insert(h.clone(), (None, false, false));
                }
            }
            out.push(view);
        }
        out
    }

    /// Every broken invariant: two reachable servers writable at the same tick; the writer
    /// VIP on two reachable hosts at the same tick. Consecutive ticks with the same hosts
    /// are merged into one violation.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out: Vec<Violation> = Vec::new();
        let mut open: BTreeMap<&'static str, Violation> = BTreeMap::new();
        // A host that held the VIP while writable keeps the clients' connections made
        // then until it is seen read-only or down: it "can receive VIP writes".
        let mut tainted: BTreeSet<String> = BTreeSet::new();
        for view in self.ticks() {
            let t = SAMPLE_PERIOD * view.tick as u32;
            for (h, (w, v, _)) in &view.hosts {
                if *w == Some(true) && *v {
                    tainted.insert(h.clone());
                } else if *w != Some(true) {
                    tainted.remove(h);
                }
            }
            let writable: Vec<String> = view
                .hosts
                .iter()
                .filter(|(h, (w, v, iso))| {
                    *w == Some(true) && !iso && (*v || tainted.contains(h.as_str()))
                })
                .map(|(h, _)| h.clone())
                .collect();
            let vip: Vec<String> = view
                .hosts
                .iter()
                .filter(|(_, (_, v, iso))| *v && !iso)
                .map(|(h, _)| h.clone())
                .collect();
            for (what, hosts) in [
                ("two writable servers", writable),
                ("writer VIP on two hosts", vip),
            ] {
                if hosts.len() >= 2 {
                    match open.get_mut(what) {
                        Some(v) if v.hosts == hosts => v.to = t,
                        _ => {
                            if let Some(v) = open.remove(what) {
                                out.push(v);
                            }
                            open.insert(
                                what,
                                Violation {
                                    what,
                                    hosts,
                                    from: t,
                                    to: t,
                                },
                            );
                        }
                    }
                } else if let Some(v) = open.remove(what) {
                    out.push(v);
                }
            }
        }
        out.extend(open.into_values());
        out
    }

    /// Runs of ticks where a reachable server was writable (read_only=0) without holding
    /// the writer VIP or the connections made through it (e.g. a crashed master restarted
    /// with `read_only=0` in its my.cnf): not a split brain by itself (no client reaches
    /// it through the VIP), but a trap for any client that connects to it directly.
    pub fn stray_writable(&self) -> Vec<Violation> {
        let mut out: Vec<Violation> = Vec::new();
        let mut open: BTreeMap<String, Violation> = BTreeMap::new();
        let mut tainted: BTreeSet<String> = BTreeSet::new();
        for view in self.ticks() {
            let t = SAMPLE_PERIOD * view.tick as u32;
            for (h, (w, v, iso)) in &view.hosts {
                if *w == Some(true) && *v {
                    tainted.insert(h.clone());
                } else if *w != Some(true) {
                    tainted.remove(h);
                }
                let stray = *w == Some(true) && !*v && !*iso && !tainted.contains(h);
                if stray {
                    open.entry(h.clone())
                        .and_modify(|x| x.to = t)
                        .or_insert(Violation {
                            what: "writable server without the VIP",
                            hosts: vec![h.clone()],
                            from: t,
                            to: t,
                        });
                } else if let Some(x) = open.remove(h) {
                    out.push(x);
                }
            }
        }
        out.extend(open.into_values());
        out
    }

    /// The hosts that held the writer VIP over the run, in order of the ticks (host, first
    /// seen, last seen), ignoring ticks where no host held it.
    pub fn vip_holders(&self) -> Vec<(String, Duration, Duration)> {
        let mut out: Vec<(String, Duration, Duration)> = Vec::new();
        for view in self.ticks() {
            let t = SAMPLE_PERIOD * view.tick as u32;
            for (h, (_, v, _)) in &view.hosts {
                if !*v {
                    continue;
                }
                match out.last_mut() {
                    Some(last) if &last.0 == h => last.2 = t,
                    _ => out.push((h.clone(), t, t)),
                }
            }
        }
        out
    }

    /// Time from `from` until a tick where `host` is writable and holds the VIP (None if
    /// it never was).
    pub fn writer_ready_after(&self, host: &str, from: Instant) -> Option<Duration> {
        let samples = self.per_host.get(host)?;
        samples
            .iter()
            .find(|s| s.at >= from && s.writable == Some(true) && s.has_vip)
            .map(|s| s.at.saturating_duration_since(from))
    }

    /// The longest run of ticks with no reachable writable server holding the VIP.
    pub fn longest_writerless(&self) -> Duration {
        let mut best = 0u64;
        let mut run = 0u64;
        for view in self.ticks() {
            let ok = view
                .hosts
                .values()
                .any(|(w, v, iso)| *w == Some(true) && *v && !iso);
            if ok {
                run = 0;
            } else {
                run += 1;
                best = best.max(run);
            }
        }
        SAMPLE_PERIOD * best as u32
    }
}

/// One server's rows and replication, after convergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    /// The host.
    pub host: String,
    /// Acknowledged ids it lacks.
    pub missing_acked: Vec<u64>,
    /// Ids some other checked server has and it lacks.
    pub missing_from_others: Vec<u64>,
    /// Its row count.
    pub rows: usize,
    /// Slave threads (IO, SQL) both running (or not a slave).
    pub threads_running: bool,
    /// `Last_SQL_Errno`/`Last_IO_Errno` and their errors when not 0.
    pub replication_errors: Vec<String>,
}

/// The checker's verdict.
#[derive(Debug, Clone)]
pub struct DataCheck {
    /// Per checked server.
    pub servers: Vec<ServerCheck>,
    /// Acknowledged ids missing on every checked server (lost for good).
    pub lost_everywhere: Vec<u64>,
    /// Rows of this load present that were never acknowledged (in doubt: allowed).
    pub unacked_present: usize,
    /// How long convergence took (None: it did not converge within the limit).
    pub converged_after: Option<Duration>,
}

impl DataCheck {
    /// Whether every checked server has the same rows, runs its threads without error,
    /// and no acknowledged write is missing anywhere.
    pub fn is_clean(&self) -> bool {
        self.servers.iter().all(|s| {
            s.missing_acked.is_empty()
                && s.missing_from_others.is_empty()
                && s.threads_running
                && s.replication_errors.is_empty()
        })
    }

    /// Whether the servers agree (same rows, threads running), whatever was lost.
    pub fn converged(&self) -> bool {
        self.servers.iter().all(|s| {
            s.missing_from_others.is_empty() && s.threads_running && s.replication_errors.is_empty()
        })
    }

    /// Acknowledged ids missing on at least one server.
    pub fn missing_acked(&self) -> BTreeSet<u64> {
        self.servers
            .iter()
            .flat_map(|s| s.missing_acked.iter().copied())
            .collect()
    }

    /// A readable account, one line per server.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for sv in &self.servers {
            s.push_str(&format!(
                "  {}: {} rows, {} acked missing{}, {} missing that others have{}, threads {}{}\n",
                sv.host,
                sv.rows,
                sv.missing_acked.len(),
                preview(&sv.missing_acked),
                sv.missing_from_others.len(),
                preview(&sv.missing_from_others),
                if sv.threads_running {
                    "running"
                } else {
                    "NOT running"
                },
                if sv.replication_errors.is_empty() {
                    String::new()
                } else {
                    format!(", errors: {}", sv.replication_errors.join("; "))
                }
            ));
        }
        s.push_str(&format!(
            "  lost everywhere: {}{}; unacknowledged rows present (in doubt): {}; converged: {}\n",
            self.lost_everywhere.len(),
            preview(&self.lost_everywhere),
            self.unacked_present,
            match self.converged_after {
                Some(d) => format!("after {:.1} s", d.as_secs_f64()),
                None => "NO".into(),
            }
        ));
        s
    }
}

fn preview(ids: &[u64]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = ids.iter().take(8).map(u64::to_string).collect();
    format!(
        " [{}{}]",
        shown.join(","),
        if ids.len() > 8 { ",…" } else { "" }
    )
}

/// A cheap fingerprint of the rows of `table` on `host` (`count/sum/xor` of `id`); `None`
/// when it cannot be read.
fn rows_fingerprint(tb: &Testbed, host: &str, table: &str) -> Option<String> {
    let rows = tb
        .query(
            host,
            &format!(
                "SELECT COUNT(*) AS n, COALESCE(SUM(id),0) AS s, COALESCE(BIT_XOR(id),0) AS x FROM {table}"
            ),
        )
        .ok()?;
    let r = rows.first()?;
    Some(format!(
        "{}/{}/{}",
        r.get("n").unwrap_or(""),
        r.get("s").unwrap_or(""),
        r.get("x").unwrap_or("")
    ))
}

/// A cheap fingerprint of a server's load table and its replication health.
fn fingerprint(tb: &Testbed, host: &str) -> Option<(String, bool)> {
    let fp = rows_fingerprint(tb, host, LOAD_TABLE)?;
    Some((fp, replication_ok(tb, host).0))
}

/// The `id`s of `table` on `host`.
pub fn row_ids(tb: &Testbed, host: &str, table: &str) -> Result<BTreeSet<u64>> {
    let rows = tb.query(host, &format!("SELECT id FROM {table} ORDER BY id"))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.at(0).and_then(|v| v.parse().ok()))
        .collect())
}

/// Waits (at most `limit`, polling every 100 ms) until `hosts` hold the same rows of
/// `table` (compared by `id`), whatever their replication threads say (a master whose peer
/// is down counts); returns the common fingerprint (`count/sum/xor` of `id`).
pub fn wait_same_rows(
    tb: &Testbed,
    hosts: &[&str],
    table: &str,
    limit: Duration,
) -> Result<String> {
    let start = Instant::now();
    loop {
        let fps: Vec<Option<String>> = hosts
            .iter()
            .map(|h| rows_fingerprint(tb, h, table))
            .collect();
        if let Some(Some(first)) = fps.first() {
            if fps.iter().all(|f| f.as_ref() == Some(first)) {
                return Ok(first.clone());
            }
        }
        if start.elapsed() > limit {
            return Err(TestbedError::Timeout {
                what: format!("{hosts:?} to hold the same rows of {table} (last: {fps:?})"),
                after: limit,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ids of `ids` (e.g. acknowledged writes) that `host`'s `table` lacks.
pub fn missing_ids(tb: &Testbed, host: &str, table: &str, ids: &BTreeSet<u64>) -> Result<Vec<u64>> {
    let present = row_ids(tb, host, table)?;
    Ok(ids.difference(&present).copied().collect())
}

/// How many of `acked` each of `hosts` lacks right now (no waiting); a server that cannot
/// be read is an error.
pub fn missing_per_server(
    tb: &Testbed,
    hosts: &[&str],
    acked: &BTreeSet<u64>,
) -> Result<Vec<(String, usize)>> {
    hosts
        .iter()
        .map(|h| Ok((h.to_string(), missing_ids(tb, h, LOAD_TABLE, acked)?.len())))
        .collect()
}

/// The load table's row count and a checksum of every column of every row
/// (`BIT_XOR(CRC32(...))`: the row order does not matter), as `count/checksum`.
pub fn load_checksum(tb: &Testbed, host: &str) -> Option<String> {
    let rows = tb
        .query(
            host,
            &format!(
                "SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CRC32(CONCAT_WS(',', id, at_ms))), 0) AS c FROM {LOAD_TABLE}"
            ),
        )
        .ok()?;
    let r = rows.first()?;
    Some(format!("{}/{}", r.get("n")?, r.get("c")?))
}

/// Waits (at most `limit`) until every one of `hosts` holds the same load table (row count
/// and [`load_checksum`], twice 100 ms apart) and runs its slave threads without error;
/// returns the common `count/checksum`, or the last difference seen.
pub fn wait_identical(tb: &Testbed, hosts: &[&str], limit: Duration) -> Result<String> {
    let start = Instant::now();
    let mut stable = 0;
    loop {
        let sums: Vec<Option<String>> = hosts.iter().map(|h| load_checksum(tb, h)).collect();
        let repl: Vec<(bool, Vec<String>)> = hosts.iter().map(|h| replication_ok(tb, h)).collect();
        let same = matches!(sums.first(), Some(Some(_)))
            && sums.windows(2).all(|w| w[0] == w[1])
            && repl.iter().all(|r| r.0);
        if same {
            stable += 1;
            if stable >= 2 {
                return Ok(sums[0].clone().unwrap_or_default());
            }
        } else {
            stable = 0;
        }
        if start.elapsed() > limit {
            let state: Vec<String> = hosts
                .iter()
                .zip(sums.iter().zip(repl.iter()))
                .map(|(h, (s, r))| {
                    format!(
                        "{h}: {} rows/checksum, replication {}{}",
                        s.as_deref().unwrap_or("unreadable"),
                        if r.0 { "ok" } else { "NOT ok" },
                        if r.1.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.1.join("; "))
                        }
                    )
                })
                .collect();
            return Err(TestbedError::Timeout {
                what: format!("identical load tables: {}", state.join(", ")),
                after: limit,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (threads running without error, the errors).
fn replication_ok(tb: &Testbed, host: &str) -> (bool, Vec<String>) {
    match tb.slave_status(host) {
        Ok(None) => (true, Vec::new()),
        Ok(Some(st)) => {
            let mut errors = Vec::new();
            for (no, text) in [
                ("Last_SQL_Errno", "Last_SQL_Error"),
                ("Last_IO_Errno", "Last_IO_Error"),
            ] {
                if let Some(e) = st.get(no).filter(|e| *e != "0") {
                    errors.push(format!("{no} {e}: {}", st.get(text).unwrap_or("")));
                }
            }
            let running = st.get("Slave_IO_Running") == Some("Yes")
                && st.get("Slave_SQL_Running") == Some("Yes");
            (running && errors.is_empty(), errors)
        }
        Err(e) => (false, vec![format!("SHOW SLAVE STATUS failed: {e}")]),
    }
}

/// Waits (at most `limit`) until `hosts` hold the same rows with replication healthy,
/// then compares every server's rows with `report`'s acknowledged writes.
pub fn check_data(
    tb: &Testbed,
    hosts: &[&str],
    report: &WorkloadReport,
    limit: Duration,
) -> Result<DataCheck> {
    let start = Instant::now();
    let mut converged_after = None;
    let mut stable = 0;
    loop {
        let fps: Vec<Option<(String, bool)>> = hosts.iter().map(|h| fingerprint(tb, h)).collect();
        let same = fps.iter().all(|f| f.is_some())
            && fps.windows(2).all(|w| match (&w[0], &w[1]) {
                (Some(a), Some(b)) => a.0 == b.0,
                _ => false,
            })
            && fps.iter().flatten().all(|f| f.1);
        if same {
            // Twice in a row 100 ms apart: nothing is still in flight.
            stable += 1;
            if stable >= 2 {
                converged_after = Some(start.elapsed());
                break;
            }
        } else {
            stable = 0;
        }
        if start.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let acked = report.acked_ids();
    let mut sets: Vec<(String, BTreeSet<u64>)> = Vec::new();
    for h in hosts {
        sets.push((h.to_string(), row_ids(tb, h, LOAD_TABLE)?));
    }
    let union: BTreeSet<u64> = sets.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    let mut servers = Vec::new();
    for (h, ids) in &sets {
        let (threads_running, replication_errors) = replication_ok(tb, h);
        servers.push(ServerCheck {
            host: h.clone(),
            missing_acked: acked.difference(ids).copied().collect(),
            missing_from_others: union.difference(ids).copied().collect(),
            rows: ids.len(),
            threads_running,
            replication_errors,
        });
    }
    let lost_everywhere = acked.difference(&union).copied().collect();
    let unacked_present = union
        .difference(&acked)
        .filter(|id| (report.first_id..report.end_id).contains(id))
        .count();
    Ok(DataCheck {
        servers,
        lost_everywhere,
        unacked_present,
        converged_after,
    })
}

/// Explains each lost acknowledged write: which server acknowledged it and how long
/// before `fault_at` (asynchronous replication loses what the crashed master had not
/// sent yet).
pub fn explain_losses(
    report: &WorkloadReport,
    lost: &BTreeSet<u64>,
    fault_at: Instant,
) -> Vec<String> {
    report
        .acks
        .iter()
        .filter(|a| lost.contains(&a.id))
        .map(|a| {
            let rel = if a.at <= fault_at {
                format!(
                    "{:.0} ms before the fault",
                    fault_at.duration_since(a.at).as_secs_f64() * 1000.0
                )
            } else {
                format!(
                    "{:.0} ms after the fault",
                    a.at.duration_since(fault_at).as_secs_f64() * 1000.0
                )
            };
            format!(
                "id {} acknowledged by server_id {} {rel}",
                a.id, a.server_id
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (writable, has_vip, isolated) per tick.
    type Ticks<'a> = &'a [(Option<bool>, bool, bool)];

    fn samples(per_host: &[(&str, Ticks)]) -> Samples {
        let started = Instant::now();
        Samples {
            started,
            per_host: per_host
                .iter()
                .map(|(h, v)| {
                    (
                        h.to_string(),
                        v.iter()
                            .enumerate()
                            .map(|(i, (w, vip, iso))| Sample {
                                tick: i as u64,
                                at: started + SAMPLE_PERIOD * i as u32,
                                writable: *w,
                                has_vip: *vip,
                                isolated: *iso,
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn clean_handover_has_no_violation() {
        let s = samples(&[
            (
                "db1",
                &[
                    (Some(true), true, false),
                    (Some(false), false, false),
                    (Some(false), false, false),
                ],
            ),
            (
                "db2",
                &[
                    (Some(false), false, false),
                    (Some(false), false, false),
                    (Some(true), true, false),
                ],
            ),
        ]);
        assert!(s.violations().is_empty());
        assert_eq!(s.longest_writerless(), SAMPLE_PERIOD);
        let holders: Vec<String> = s.vip_holders().into_iter().map(|h| h.0).collect();
        assert_eq!(holders, vec!["db1", "db2"]);
    }

    #[test]
    fn two_writers_are_found_and_merged() {
        let s = samples(&[
            (
                "db1",
                &[
                    (Some(true), true, false),
                    (Some(true), true, false),
                    (Some(true), false, false),
                    (None, false, false),
                ],
            ),
            (
                "db2",
                &[
                    (Some(false), false, false),
                    (Some(true), true, false),
                    (Some(true), true, false),
                    (Some(true), true, false),
                ],
            ),
        ]);
        let v = s.violations();
        assert_eq!(v.len(), 2, "{v:?}");
        let w = v
            .iter()
            .find(|v| v.what == "two writable servers")
            .expect("writers");
        assert_eq!((w.from, w.to), (SAMPLE_PERIOD, SAMPLE_PERIOD * 2));
        let vip = v
            .iter()
            .find(|v| v.what == "writer VIP on two hosts")
            .expect("vip");
        assert_eq!((vip.from, vip.to), (SAMPLE_PERIOD, SAMPLE_PERIOD));
    }

    #[test]
    fn a_restarted_writable_server_without_the_vip_is_stray_not_split() {
        let s = samples(&[
            (
                "db1",
                &[
                    (Some(true), true, false),
                    (None, false, false),
                    (Some(true), false, false),
                ],
            ),
            (
                "db2",
                &[
                    (Some(false), false, false),
                    (Some(true), true, false),
                    (Some(true), true, false),
                ],
            ),
        ]);
        assert!(s.violations().is_empty(), "{:?}", s.violations());
        let stray = s.stray_writable();
        assert_eq!(stray.len(), 1);
        assert_eq!(stray[0].hosts, vec!["db1".to_string()]);
    }

    #[test]
    fn a_writer_that_dropped_the_vip_but_stayed_writable_counts() {
        let s = samples(&[
            (
                "db1",
                &[
                    (Some(true), true, false),
                    (Some(true), false, false),
                    (Some(true), false, false),
                ],
            ),
            (
                "db2",
                &[
                    (Some(false), false, false),
                    (Some(true), true, false),
                    (Some(false), true, false),
                ],
            ),
        ]);
        let v = s.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].what, "two writable servers");
    }

    #[test]
    fn an_isolated_writer_does_not_count() {
        let s = samples(&[
            ("db1", &[(Some(true), true, true), (Some(true), true, true)]),
            (
                "db2",
                &[(Some(true), true, false), (Some(true), true, false)],
            ),
        ]);
        assert!(s.violations().is_empty());
    }
}
