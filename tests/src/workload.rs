//! The write-load clients of the fault matrix (issue 7; spec §8, §9.1): an application
//! that writes client-numbered rows through the writer VIP at a steady rate, as the `app`
//! account (data privileges only: no SUPER, no READ_ONLY ADMIN, so `read_only=1` refuses
//! it, docs/grants.md), from a host of the testbed (normally the monitor host).
//!
//! [`WorkloadOptions::clients`] concurrent clients (default 1; issue 13's crash failover
//! uses 16), each on its own connection with its own ledger of acknowledged rows: client
//! `k` of `n` writes the ids `first_id + k`, `first_id + k + n`, ... in order.
//!
//! Every acknowledged write is recorded (id, client, time, the server that acknowledged it). A
//! failed connection is retried at once with a short connect timeout; a write whose
//! outcome is unknown (the connection broke or timed out while it ran) is "in doubt":
//! never counted as acknowledged, never reused. The longest gap between acknowledged
//! writes measures the outage; an outage still running when the load stops counts too.
//!
//! ```no_run
//! # use mmm_tests::{Testbed, TestbedOptions, workload::{Workload, WorkloadOptions}};
//! # let tb = Testbed::up(TestbedOptions::new(60))?;
//! mmm_tests::workload::create_table(&tb, "db1")?;
//! let load = Workload::start(&tb, "monitor", tb.vip(188), WorkloadOptions::default())?;
//! // ... inject a fault ...
//! let report = load.stop();
//! println!("{}", report.summary());
//! # Ok::<(), mmm_tests::TestbedError>(())
//! ```

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use nix::sched::{setns, CloneFlags};

use crate::error::{io_err, Result, TestbedError};
use crate::mariadb::PASSWORD;
use crate::testbed::Testbed;

/// The database and table the load writes to.
pub const LOAD_TABLE: &str = "mmm_test.mt_load";

/// The application account (docs/grants.md): data privileges only.
pub const APP_USER: &str = "app";

/// Creates [`LOAD_TABLE`] on `master` as root (it replicates to every other server).
/// `id` is the client's number, `at_ms` the client's send time in ms since the load began.
pub fn create_table(tb: &Testbed, master: &str) -> Result<()> {
    tb.query(
        master,
        &format!(
            "CREATE TABLE IF NOT EXISTS {LOAD_TABLE} (id BIGINT UNSIGNED PRIMARY KEY, \
             at_ms BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB"
        ),
    )?;
    Ok(())
}

/// How the load behaves.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// One write is started every `period` (when the previous one is done).
    pub period: Duration,
    /// Bound on a connection attempt.
    pub connect_timeout: Duration,
    /// Bound on one write; past it the write is in doubt and the connection dropped.
    pub query_timeout: Duration,
    /// The first client number (runs on one cluster use disjoint ranges).
    pub first_id: u64,
    /// Concurrent clients, each with its own connection (at least 1).
    pub clients: usize,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            period: Duration::from_millis(10),
            connect_timeout: Duration::from_millis(200),
            query_timeout: Duration::from_millis(1500),
            first_id: 1,
            clients: 1,
        }
    }
}

/// One acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The client's number (the row's primary key).
    pub id: u64,
    /// Which of the concurrent clients wrote it (0-based).
    pub client: usize,
    /// When the acknowledgement arrived.
    pub at: Instant,
    /// `@@server_id` of the server that acknowledged it.
    pub server_id: u32,
}

/// Why a write was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (timeout, refused, access denied...).
    Connect(String),
    /// The server refused the write with an error: it did not happen (e.g. 1290 read-only).
    Refused { id: u64, code: u16, message: String },
    /// The outcome is unknown (connection lost or timed out during the write).
    InDoubt { id: u64, reason: String },
}

/// A pause between acknowledged writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The last acknowledgement before it (or the load's start).
    pub from: Instant,
    /// The next acknowledgement (or the load's end, if none came).
    pub to: Instant,
    /// Whether the load ended inside it.
    pub open: bool,
}

impl Gap {
    /// Its length.
    pub fn len(&self) -> Duration {
        self.to.saturating_duration_since(self.from)
    }

    /// Whether it has zero length.
    pub fn is_empty(&self) -> bool {
        self.len().is_zero()
    }
}

/// What the load did, from [`Workload::stop`].
#[derive(Debug, Clone)]
pub struct WorkloadReport {
    /// When the load began and ended.
    pub started: Instant,
    /// When it stopped.
    pub stopped: Instant,
    /// Every acknowledged write in order.
    pub acks: Vec<Ack>,
    /// Every failure with its time.
    pub failures: Vec<(Instant, Failure)>,
    /// Writes attempted (acknowledged, refused or in doubt).
    pub attempts: u64,
    /// The client numbers this load used: `first_id..end_id`.
    pub first_id: u64,
    /// One past the last number used.
    pub end_id: u64,
}

impl WorkloadReport {
    /// The acknowledged ids.
    pub fn acked_ids(&self) -> BTreeSet<u64> {
        self.acks.iter().map(|a| a.id).collect()
    }

    /// Client `k`'s ledger: the ids it saw acknowledged, in order.
    pub fn client_ledger(&self, k: usize) -> Vec<u64> {
        self.acks
            .iter()
            .filter(|a| a.client == k)
            .map(|a| a.id)
            .collect()
    }

    /// How many clients acknowledged at least one write.
    pub fn clients_acked(&self) -> usize {
        self.acks
            .iter()
            .map(|a| a.client)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Ids whose write is in doubt (may or may not exist on the servers).
    pub fn in_doubt_ids(&self) -> BTreeSet<u64> {
        self.failures
            .iter()
            .filter_map(|(_, f)| match f {
                Failure::InDoubt { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The gaps between consecutive acknowledgements (and the start/end), in time order.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut out = Vec::with_capacity(self.acks.len() + 1);
        let mut prev = self.started;
        for a in &self.acks {
            out.push(Gap {
                from: prev,
                to: a.at,
                open: false,
            });
            prev = a.at;
        }
        out.push(Gap {
            from: prev,
            to: self.stopped,
            open: true,
        });
        out
    }

    /// The longest gap over the whole run (the outage; an outage still running at the end
    /// counts). The start-up gap before the first acknowledgement counts too.
    pub fn longest_gap(&self) -> Gap {
        self.longest_gap_after(self.started)
    }

    /// The longest gap that ends after `t` (e.g. the fault's injection time), so gaps
    /// that ended before the fault do not count.
    pub fn longest_gap_after(&self, t: Instant) -> Gap {
        self.gaps()
            .into_iter()
            .filter(|g| g.to > t)
            .max_by_key(|g| g.len())
            .unwrap_or(Gap {
                from: t,
                to: self.stopped,
                open: true,
            })
    }

    /// Acknowledged writes per second over the run.
    pub fn rate(&self) -> f64 {
        let secs = self
            .stopped
            .saturating_duration_since(self.started)
            .as_secs_f64();
        if secs > 0.0 {
            self.acks.len() as f64 / secs
        } else {
            0.0
        }
    }

    /// The server ids that acknowledged writes, with the time of their first and last ack.
    pub fn servers(&self) -> Vec<(u32, Instant, Instant, usize)> {
        let mut out: Vec<(u32, Instant, Instant, usize)> = Vec::new();
        for a in &self.acks {
            match out.last_mut() {
                Some(last) if last.0 == a.server_id => {
                    last.2 = a.at;
                    last.3 += 1;
                }
                _ => out.push((a.server_id, a.at, a.at, 1)),
            }
        }
        out
    }

    /// One line: counts, rate, longest gap.
    pub fn summary(&self) -> String {
        let g = self.longest_gap();
        let refused = self
            .failures
            .iter()
            .filter(|(_, f)| matches!(f, Failure::Refused { .. }))
            .count();
        let connect = self
            .failures
            .iter()
            .filter(|(_, f)| matches!(f, Failure::Connect(_)))
            .count();
        format!(
            "{} acked of {} attempts ({:.0}/s), {} refused, {} in doubt, {} failed connects, longest gap {:.3} s{}",
            self.acks.len(),
            self.attempts,
            self.rate(),
            refused,
            self.in_doubt_ids().len(),
            connect,
            g.len().as_secs_f64(),
            if g.open { " (still open at the end)" } else { "" }
        )
    }
}

/// A running load; [`Workload::stop`] ends it and returns the report.
pub struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    last_ack: Arc<Mutex<Option<Instant>>>,
    /// Every acknowledged id so far, in order (for checks while the load runs).
    acked_ids: Arc<Mutex<Vec<u64>>>,
    handle: Option<JoinHandle<WorkloadReport>>,
    started: Instant,
}

impl Workload {
    /// Starts writing to `vip`:3306 from `host`'s network namespace.
    pub fn start(
        tb: &Testbed,
        host: &str,
        vip: Ipv4Addr,
        opts: WorkloadOptions,
    ) -> Result<Workload> {
        let path = format!("/run/netns/{}", tb.host(host)?.netns);
        let ns = File::open(&path).map_err(io_err(format!("opening {path}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let last_ack = Arc::new(Mutex::new(None));
        let acked_ids = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let (s, a, l) = (stop.clone(), acked.clone(), last_ack.clone());
        let ids = acked_ids.clone();
        let handle = std::thread::Builder::new()
            .name(format!("load-{host}"))
            .spawn(move || {
                if let Err(e) = setns(&ns, CloneFlags::CLONE_NEWNET) {
                    let now = Instant::now();
                    return WorkloadReport {
                        started,
                        stopped: now,
                        acks: Vec::new(),
                        failures: vec![(now, Failure::Connect(format!("setns: {e}")))],
                        attempts: 0,
                        first_id: 0,
                        end_id: 0,
                    };
                }
                run(vip, opts, started, s, a, l, ids)
            })
            .map_err(io_err("spawning the load thread"))?;
        Ok(Workload {
            stop,
            acked,
            last_ack,
            acked_ids,
            handle: Some(handle),
            started,
        })
    }

    /// Acknowledged writes so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// When the latest acknowledgement arrived.
    pub fn last_ack(&self) -> Option<Instant> {
        self.last_ack.lock().ok().and_then(|g| *g)
    }

    /// The ids acknowledged so far (the load keeps running).
    pub fn acked_ids(&self) -> Vec<u64> {
        self.acked_ids.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// When the load began.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits (at most `limit`) until `n` more writes are acknowledged than now.
    pub fn wait_acks(&self, n: u64, limit: Duration) -> Result<()> {
        let target = self.acked() + n;
        let start = Instant::now();
        while self.acked() < target {
            if start.elapsed() > limit {
                return Err(TestbedError::Timeout {
                    what: format!("{n} acknowledged writes"),
                    after: limit,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Stops the load (the write in flight finishes or times out) and returns the report.
    pub fn stop(mut self) -> WorkloadReport {
        self.finish()
    }

    fn finish(&mut self) -> WorkloadReport {
        self.stop.store(true, Ordering::Relaxed);
        let now = Instant::now();
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            _ => WorkloadReport {
                started: self.started,
                stopped: now,
                acks: Vec::new(),
                failures: vec![(now, Failure::Connect("the load thread panicked".into()))],
                attempts: 0,
                first_id: 0,
                end_id: 0,
            },
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.finish();
        }
    }
}

/// The load thread's body (already in the host's namespace): one task per client on a
/// single-threaded runtime (so every connection is made from this namespace), their
/// ledgers merged in time order.
fn run(
    vip: Ipv4Addr,
    opts: WorkloadOptions,
    started: Instant,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    last_ack: Arc<Mutex<Option<Instant>>>,
    acked_ids: Arc<Mutex<Vec<u64>>>,
) -> WorkloadReport {
    let clients = opts.clients.max(1);
    let mut report = WorkloadReport {
        started,
        stopped: started,
        acks: Vec::new(),
        failures: Vec::new(),
        attempts: 0,
        first_id: opts.first_id,
        end_id: opts.first_id,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let now = Instant::now();
            report.stopped = now;
            report
                .failures
                .push((now, Failure::Connect(format!("tokio runtime: {e}"))));
            return report;
        }
    };
    let shared = Shared {
        vip,
        started,
        stop,
        acked,
        last_ack,
        acked_ids,
    };
    let ledgers = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|k| tokio::spawn(client(k, clients, opts.clone(), shared.clone())))
            .collect();
        let mut out = Vec::with_capacity(clients);
        for t in tasks {
            if let Ok(l) = t.await {
                out.push(l);
            }
        }
        out
    });
    for l in ledgers {
        report.acks.extend(l.acks);
        report.failures.extend(l.failures);
        report.attempts += l.attempts;
        report.end_id = report.end_id.max(l.end_id);
    }
    report.acks.sort_by_key(|a| a.at);
    report.failures.sort_by_key(|f| f.0);
    report.stopped = Instant::now();
    report
}

/// What the clients share: where to write, when the load began, the live counters.
#[derive(Clone)]
struct Shared {
    vip: Ipv4Addr,
    started: Instant,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    last_ack: Arc<Mutex<Option<Instant>>>,
    acked_ids: Arc<Mutex<Vec<u64>>>,
}

/// One client's ledger.
struct Ledger {
    acks: Vec<Ack>,
    failures: Vec<(Instant, Failure)>,
    attempts: u64,
    end_id: u64,
}

/// Client `k` of `n`: writes ids `first_id + k + i*n` until told to stop.
async fn client(k: usize, n: usize, opts: WorkloadOptions, sh: Shared) -> Ledger {
    let mut l = Ledger {
        acks: Vec::new(),
        failures: Vec::new(),
        attempts: 0,
        end_id: opts.first_id,
    };
    let mut next_id = opts.first_id + k as u64;
    let mut conn: Option<(mysql_async::Conn, u32)> = None;
    let mut tick = tokio::time::interval(opts.period.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !sh.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (mut c, server_id) = match conn.take() {
            Some(c) => c,
            None => match connect(sh.vip, &opts).await {
                Ok(c) => c,
                Err(e) => {
                    l.failures.push((Instant::now(), Failure::Connect(e)));
                    continue;
                }
            },
        };
        let id = next_id;
        next_id += n as u64;
        l.end_id = id + 1;
        l.attempts += 1;
        let at_ms = sh.started.elapsed().as_millis() as u64;
        let sql = format!("INSERT INTO {LOAD_TABLE} (id, at_ms) VALUES ({id}, {at_ms})");
        match tokio::time::timeout(opts.query_timeout, c.query_drop(sql)).await {
            Ok(Ok(())) => {
                let at = Instant::now();
                l.acks.push(Ack {
                    id,
                    client: k,
                    at,
                    server_id,
                });
                sh.acked.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut g) = sh.last_ack.lock() {
                    *g = Some(at);
                }
                if let Ok(mut g) = sh.acked_ids.lock() {
                    g.push(id);
                }
                conn = Some((c, server_id));
            }
            Ok(Err(mysql_async::Error::Server(e))) => {
                l.failures.push((
                    Instant::now(),
                    Failure::Refused {
                        id,
                        code: e.code,
                        message: e.message.clone(),
                    },
                ));
                // The server answered: the write did not happen. A read-only server
                // will refuse the next one too; reconnect (the VIP may have moved).
                drop(c);
            }
            Ok(Err(e)) => {
                l.failures.push((
                    Instant::now(),
                    Failure::InDoubt {
                        id,
                        reason: e.to_string(),
                    },
                ));
            }
            Err(_) => {
                l.failures.push((
                    Instant::now(),
                    Failure::InDoubt {
                        id,
                        reason: format!("no answer within {:?}", opts.query_timeout),
                    },
                ));
            }
        }
    }
    if let Some((c, _)) = conn {
        let _ = tokio::time::timeout(Duration::from_millis(500), c.disconnect()).await;
    }
    l
}

/// A connection as `app` to `vip`, and the `@@server_id` behind it.
async fn connect(
    vip: Ipv4Addr,
    opts: &WorkloadOptions,
) -> std::result::Result<(mysql_async::Conn, u32), String> {
    let o = mysql_async::OptsBuilder::default()
        .ip_or_hostname(vip.to_string())
        .tcp_port(3306)
        .user(Some(APP_USER))
        .pass(Some(PASSWORD))
        .prefer_socket(false);
    let bound = opts.connect_timeout + opts.query_timeout;
    let fut = async {
        let mut c = tokio::time::timeout(opts.connect_timeout, mysql_async::Conn::new(o))
            .await
            .map_err(|_| format!("connect timed out after {:?}", opts.connect_timeout))?
            .map_err(|e| e.to_string())?;
        let id: Option<u32> = c
            .query_first("SELECT @@server_id")
            .await
            .map_err(|e| e.to_string())?;
        Ok((c, id.unwrap_or(0)))
    };
    tokio::time::timeout(bound, fut)
        .await
        .map_err(|_| format!("connect + server_id timed out after {bound:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(start: Instant, acks_ms: &[u64], stop_ms: u64) -> WorkloadReport {
        WorkloadReport {
            started: start,
            stopped: start + Duration::from_millis(stop_ms),
            acks: acks_ms
                .iter()
                .enumerate()
                .map(|(i, ms)| Ack {
                    id: i as u64 + 1,
                    client: 0,
                    at: start + Duration::from_millis(*ms),
                    server_id: 1,
                })
                .collect(),
            failures: vec![],
            attempts: acks_ms.len() as u64,
            first_id: 1,
            end_id: acks_ms.len() as u64 + 1,
        }
    }

    #[test]
    fn longest_gap_between_acks() {
        let t = Instant::now();
        let r = report(t, &[10, 20, 500, 510], 520);
        let g = r.longest_gap();
        assert_eq!(g.len(), Duration::from_millis(480));
        assert!(!g.open);
    }

    #[test]
    fn an_outage_running_at_the_end_counts() {
        let t = Instant::now();
        let r = report(t, &[10, 20], 2000);
        let g = r.longest_gap();
        assert_eq!(g.len(), Duration::from_millis(1980));
        assert!(g.open);
        let none = report(t, &[], 300);
        assert_eq!(none.longest_gap().len(), Duration::from_millis(300));
    }

    #[test]
    fn gap_after_a_time_ignores_earlier_gaps() {
        let t = Instant::now();
        let r = report(t, &[10, 900, 910, 1100, 1110], 1120);
        let g = r.longest_gap_after(t + Duration::from_millis(905));
        assert_eq!(g.len(), Duration::from_millis(190));
    }
}
