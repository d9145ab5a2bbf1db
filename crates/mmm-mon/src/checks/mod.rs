//! Host checks (spec §3.3): one tokio task per (host, check), each with its own
//! `check_period` and `timeout` from its `<check>` section, sending every raw result to the
//! core at once as `Input::Check`. Trap periods, states and messages are the core's job.
//!
//! - The whole check is bounded by `timeout + 1 s` → `ERROR: Timeout` (2.2.1).
//! - Tasks are independent, so a hung host never delays another host's checks.
//! - While the network is down (spec §3.4) no check runs and no ERROR is reported.
//! - A failing ping check runs again after 0.1 s until it is OK again, resending its echo
//!   (and an ARP request, `arp_probe.rs`) every 0.1 s, so a healed link is seen at once.
//!   Its trap period counts from its first unanswered echo.
//! - The ping check of a `mode master` host runs every 0.1 s while it is OK (issue 14): a
//!   master whose link is cut (host gone, kernel panic, switch port) has an unanswered echo
//!   within 0.1 s of the cut, so its trap period starts at the failure and not up to one
//!   `check_period` later. Two hosts, ten echoes a second each: the slaves keep their
//!   `check_period`.
//! - A long-lived monitor connection per host ([`mysql::hold_connection`], a `SELECT SLEEP`
//!   of 1 s on a master, of 5 s on a slave) reports its loss
//!   as `Input::CheckConnLost` when the server cannot be reached again at once or stops
//!   answering, and makes that host's `mysql` check run immediately, so a stopped, crashed
//!   or hung mysqld is noticed when it happens, not at the next `check_period`.
//!
//! - A master also has a liveness connection ([`liveness`], issue 14): a `COM_PING` every
//!   0.1 s; one unanswered for 0.5 s while the host answers ICMP (a frozen mysqld) starts
//!   the `mysql` trap period at the moment that ping was sent, whatever `timeout`.
//!
//! - The MySQL checks of a host share long-lived connections ([`host_conns`], issue 14)
//!   instead of connecting and logging in at every run.
//!
//! Layout: `ping.rs` (ICMP echo), `arp_probe.rs` (ARP requests beside unanswered echoes),
//! `mysql.rs` (mysql, rep_threads, rep_backlog), `host_conns.rs` (their connections),
//! `disk_full.rs` (the `mysql` check's probe for writes waiting on a full disk),
//! `gtid.rs` (the errant-transaction comparison of the two masters, issue 13),
//! `semi_sync.rs` (with `semi_sync 1`: whether the standby master holds every acknowledged
//! write).

pub mod arp_probe;
pub mod disk_full;
pub mod gtid;
pub mod host_conns;
pub mod icmp_socket;
pub mod liveness;
pub mod mysql;
pub mod observed;
pub mod ping;
pub mod semi_sync;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mmm_common::config::{CheckConfig, MonitorSettings};
use mmm_common::state::HostMode;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, Instrument};

use crate::core::{CheckKind, CheckResult, CheckStatus, HostId, Input};
use host_conns::HostConns;
use mysql::MysqlTarget;
pub use observed::Observed;

/// How long a failing ping check pauses before it runs again (instead of `check_period`):
/// with the check's own resends ([`ping::ECHO_INTERVAL`]) an echo request is out every
/// 0.1 s while a host is unreachable, so a host whose link heals while it may still hold a
/// role that moved on is seen (and told) at once.
pub const FAILING_PING_RECHECK: Duration = ping::ECHO_INTERVAL;

/// How often the ping check of a `mode master` host runs while it is OK (module doc).
pub const MASTER_PING_INTERVAL: Duration = Duration::from_millis(100);

/// The held connection's `SELECT SLEEP` on a master: a hung master is noticed within this
/// plus the check timeout.
pub const MASTER_WATCH_SLEEP: Duration = Duration::from_secs(1);

/// A slave's held connection sleeps this long (issue 14). A stopped or crashed slave
/// closes the connection at once, whatever the sleep; a hung one is noticed by the held
/// connection or the periodic `mysql` check, whichever comes first, and the check (every
/// `check_period`, its failure back-dated to when it asked) comes first whenever
/// `check_period` is below this. With 200 slaves the monitor makes 40 round trips a second
/// for them instead of 200 at `check_period 1` (it slept `check_period` before).
pub const SLAVE_WATCH_SLEEP: Duration = Duration::from_secs(5);

/// Where check results go.
pub type InputFn = Arc<dyn Fn(Input) + Send + Sync>;

/// The wall clock in epoch seconds (for `checks` display).
pub fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What one check task needs about its host.
#[derive(Debug, Clone)]
pub struct CheckHost {
    /// Index in config order.
    pub id: HostId,
    /// Host name.
    pub name: String,
    /// The MySQL connection data (ip is also what `ping` pings).
    pub mysql: MysqlTarget,
    /// The connections its MySQL checks share.
    pub conns: Arc<HostConns>,
    /// `mode master` (its ping runs every [`MASTER_PING_INTERVAL`]).
    pub master: bool,
}

/// The check hosts of a config (config order).
pub fn check_hosts(config: &MonitorSettings) -> Vec<CheckHost> {
    config
        .hosts
        .iter()
        .enumerate()
        .map(|(id, h)| CheckHost {
            id: HostId(id),
            name: h.name.clone(),
            mysql: h.mysql_target(),
            conns: Arc::new(HostConns::new(h.mysql_target())),
            master: h.mode == HostMode::Master,
        })
        .collect()
}

/// Runs one check once, bounded by `timeout + 1 s`; a `rep_backlog` check records the
/// replication lag it saw in `observed`.
pub async fn run_check(
    kind: CheckKind,
    host: &CheckHost,
    cfg: &CheckConfig,
    observed: &Observed,
) -> String {
    let bound = cfg.timeout + Duration::from_secs(1);
    let work = async {
        match kind {
            CheckKind::Ping => ping::ping_check_addr(host.mysql.ip, ping::PING_TIMEOUT).await,
            CheckKind::Mysql => mysql::mysql_check(&host.conns, cfg.timeout).await,
            CheckKind::RepThreads => mysql::rep_threads_check(&host.conns, cfg.timeout).await,
            CheckKind::RepBacklog => {
                let (line, lag) =
                    mysql::rep_backlog_check_lag(&host.conns, cfg.timeout, cfg.max_backlog).await;
                observed.set_lag(host.id, lag);
                line
            }
        }
    };
    let line = tokio::time::timeout(bound, work).await;
    if line.is_err() && kind == CheckKind::RepBacklog {
        observed.set_lag(host.id, None);
    }
    line.unwrap_or_else(|_| "ERROR: Timeout".to_string())
}

fn check_config(config: &MonitorSettings, kind: CheckKind) -> CheckConfig {
    config
        .checks
        .get(kind.as_str())
        .cloned()
        .unwrap_or_default()
}

/// The running check tasks; dropping this stops them all.
pub struct CheckTasks {
    handles: Vec<JoinHandle<()>>,
}

impl Drop for CheckTasks {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

/// Waits until the network is up; `false` when the sender is gone.
async fn network_up(network: &mut watch::Receiver<bool>) -> bool {
    network.wait_for(|up| *up).await.is_ok()
}

/// Starts every (host, check) task and every host's connection watcher. The first round
/// starts at once (these are the initial checks of spec §3.3.3).
pub fn spawn(
    config: &MonitorSettings,
    sink: InputFn,
    network: watch::Receiver<bool>,
    observed: Arc<Observed>,
) -> CheckTasks {
    let mut handles = Vec::new();
    for host in check_hosts(config) {
        let wake_ping = Arc::new(Notify::new());
        let wake_mysql = Arc::new(Notify::new());
        for kind in CheckKind::ALL {
            let cfg = check_config(config, kind);
            let host = host.clone();
            let sink = sink.clone();
            let mut network = network.clone();
            let observed = observed.clone();
            let wake = match kind {
                CheckKind::Ping => Some(wake_ping.clone()),
                CheckKind::Mysql => Some(wake_mysql.clone()),
                _ => None,
            };
            // A debug span: at the default level it is off and costs nothing per poll (no
            // check logs above debug; with `debug 1` its fields are on every line).
            let span = tracing::debug_span!("check", host = %host.name, check = %kind);
            handles.push(tokio::spawn(
                async move {
                    loop {
                        if !network_up(&mut network).await {
                            return;
                        }
                        let started = std::time::Instant::now();
                        let line = run_check(kind, &host, &cfg, &observed).await;
                        observed.set_duration(host.id, kind, started.elapsed());
                        let wall = wall_now();
                        debug!("result: {line}");
                        let mut result = CheckResult::from_line(line);
                        if matches!(kind, CheckKind::Ping | CheckKind::Mysql)
                            && result.status == CheckStatus::Error
                        {
                            // Unreachable (ping) or not serving (mysql: a connect or query
                            // made when the check began went unanswered or failed) since
                            // the check began.
                            result = result.observed_failing_for(started.elapsed());
                        }
                        // A failing ping is re-checked every FAILING_PING_RECHECK: the host's recovery
                        // (a healed link) is seen at once, so a host that must drop its
                        // roles is told without waiting for the next check_period. A
                        // master's ping runs every MASTER_PING_INTERVAL (module doc).
                        let period = match (kind, result.status) {
                            (CheckKind::Ping, CheckStatus::Error) => {
                                cfg.check_period.min(FAILING_PING_RECHECK)
                            }
                            (CheckKind::Ping, _) if host.master => {
                                cfg.check_period.min(MASTER_PING_INTERVAL)
                            }
                            _ => cfg.check_period,
                        };
                        // 2.2.1 drops failures seen while the network is down.
                        if *network.borrow() || result.message.starts_with("OK") {
                            sink(Input::Check {
                                host: host.id,
                                check: kind,
                                result,
                                wall,
                            });
                        }
                        match &wake {
                            Some(w) => {
                                tokio::select! {
                                    _ = tokio::time::sleep(period) => {}
                                    _ = w.notified() => {}
                                }
                            }
                            None => tokio::time::sleep(period).await,
                        }
                    }
                }
                .instrument(span),
            ));
        }
        let cfg = check_config(config, CheckKind::Mysql);
        if host.master {
            let span = tracing::debug_span!("check", host = %host.name, check = "liveness");
            handles.push(tokio::spawn(
                liveness::watch_liveness(
                    host.clone(),
                    cfg.clone(),
                    sink.clone(),
                    wake_mysql.clone(),
                )
                .instrument(span),
            ));
        }
        let sink = sink.clone();
        let span = tracing::debug_span!("check", host = %host.name, check = "connection");
        handles.push(tokio::spawn(
            watch_connection(host, cfg, sink, wake_ping, wake_mysql).instrument(span),
        ));
    }
    if config.ext.semi_sync {
        let span = tracing::info_span!("semi_sync");
        handles.push(tokio::spawn(
            semi_sync::run(config.clone(), sink.clone()).instrument(span),
        ));
    }
    CheckTasks { handles }
}

/// The long-lived monitor connection of one host (DESIGN.md "Detection starts at the
/// failure"). When the server closes it, one reconnect is tried at once: if that fails too
/// (mysqld stopped or crashed) `CheckConnLost` is reported and the host's mysql check runs
/// now. A dropped connection that reconnects at once (the agent's deny_write kills client
/// threads) is not a failure. When the server stops answering (hung, link cut) the ping
/// check runs at once, then `CheckConnLost` is reported and the mysql check confirms or
/// clears it.
async fn watch_connection(
    host: CheckHost,
    cfg: CheckConfig,
    sink: InputFn,
    wake_ping: Arc<Notify>,
    wake_mysql: Arc<Notify>,
) {
    loop {
        let sleep = if host.master {
            MASTER_WATCH_SLEEP
        } else {
            SLAVE_WATCH_SLEEP
        };
        match mysql::hold_connection(&host.mysql, cfg.timeout, sleep).await {
            Ok(mysql::ConnEnd::Closed(why)) => {
                debug!("monitor connection lost: {why}");
                match mysql::connect(&host.mysql, cfg.timeout).await {
                    Ok(conn) => {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
                        continue;
                    }
                    // The server answered (e.g. `Too many connections`): it is not dead;
                    // the mysql check says what it is.
                    Err(e) if e.code.is_some() => {
                        debug!("reconnect refused by the server: {}", e.errstr);
                        wake_mysql.notify_one();
                    }
                    Err(e) => {
                        debug!("reconnect failed: {}", e.errstr);
                        sink(Input::CheckConnLost {
                            host: host.id,
                            silent_for: Duration::ZERO,
                        });
                        wake_mysql.notify_one();
                    }
                }
            }
            Ok(mysql::ConnEnd::Silent) => {
                let noticed = std::time::Instant::now();
                debug!(
                    "monitor connection silent for more than {:?}",
                    cfg.timeout + Duration::from_secs(1)
                );
                // A cut link also silences ping: run the ping check first, so that its
                // failure is timed from (almost) the same moment and the host is reported
                // with "ping: not OK" (then nothing waits on sends to an unreachable agent).
                wake_ping.notify_one();
                tokio::time::sleep(ping::PING_TIMEOUT + Duration::from_millis(100)).await;
                // The `SELECT SLEEP` should have returned `timeout` before it was noticed.
                sink(Input::CheckConnLost {
                    host: host.id,
                    silent_for: noticed.elapsed() + cfg.timeout,
                });
                wake_mysql.notify_one();
            }
            Err(e) => debug!("monitor connection not established: {}", e.errstr),
        }
        // Not connected: try again soon (the periodic checks report the failure).
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
