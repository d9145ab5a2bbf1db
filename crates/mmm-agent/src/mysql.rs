//! The real [`MysqlOps`]: 2.2.1's MySQL helper programs (spec §4.7, `Helpers/Actions.pm`)
//! done in process with mysql_async, every connect and query bounded (`mysql_timeout`),
//! every replication wait bounded (`sync_timeout`).
//!
//! - `sync_with_master`: wait until the local server has applied everything the peer had
//!   written (peer's SHOW MASTER STATUS if reachable, else the local Read_Master_Log_Pos),
//!   `MASTER_POS_WAIT(file, pos, timeout)`; NULL or -1 is a failure.
//! - `set_active_master`: (1) wait until the local server applied what the old master had
//!   (if reachable); (2) STOP SLAVE IO_THREAD and wait until everything received is
//!   applied, so no relay log is discarded unapplied; (3) wait until the **new** master
//!   applied everything from the old master (cenalulu's fix, spec §9.1 item 7); (4) STOP
//!   SLAVE, CHANGE MASTER using GTID (MariaDB `MASTER_USE_GTID=slave_pos` when the new
//!   master's gtid_binlog_state holds the local gtid_slave_pos; MySQL auto-position when
//!   gtid_mode=ON) else the new master's SHOW MASTER STATUS read after (3), always with the
//!   link settings ([`LINK`]: connect retry, heartbeat); START SLAVE. A replica that refuses
//!   the link settings is re-pointed without them (logged at ERROR). On a failure after (2)
//!   the slave threads are restarted on the old master.
//! - After `sync_with_master` with the peer unreachable: the catch-up from the most
//!   advanced survivor (`catchup.rs`: what a surviving slave got from the dead old master
//!   and this server did not is fetched through a temporary named connection).
//! - `deny_write`: read_only=1 (+ super_read_only=1 where it exists), then MMM's kill loop,
//!   which spares the agent and monitor accounts (2.2.1 spared only its own connection).
//! - The replication upkeep ([`MysqlServer::run_upkeep`], at start-up and every
//!   [`UPKEEP_INTERVAL`]): the local server's existing link gets the short connect retry and
//!   the heartbeat, GTID positioning where the server has it and the change is provably
//!   exact, and `slave_net_timeout` at most [`NET_TIMEOUT`]; crash-safety settings it cannot
//!   change (`relay_log_recovery`) are reported.
//!
//! **Relay logs are never discarded unapplied.** With GTID positioning (MariaDB
//! `slave_pos`, MySQL auto-position) a slave whose threads are both stopped throws its relay
//! log away when a thread starts again and fetches from the last *applied* transaction
//! (measured on MariaDB 10.11: `STOP SLAVE; START SLAVE` and `STOP SLAVE; START SLAVE
//! SQL_THREAD` both do; restarting the IO thread alone does not). If the master is gone,
//! what was received but not applied is lost on this server. So before anything stops the
//! SQL thread (a switch, an upkeep change, ADMIN_OFFLINE) the IO thread is stopped and the
//! SQL thread given `sync_timeout` to apply everything received; the upkeep changes nothing
//! when it cannot. Every replication change holds one lock, so a switch, an upkeep pass and
//! a writer's sync never interleave.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmm_common::config::{AgentHost, AgentSettings, ErrantPolicy};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

mod catchup;
mod semi_sync;

use crate::effects::{EffectFuture, MysqlOps};
use crate::error::EffectError;
use crate::flavor::{
    escape, gtid_state_holds, parse_gtid_pos, same_gtid_pos, ChangeMaster, Flavor, Position, LINK,
    NET_TIMEOUT,
};

/// Time between two passes of the replication upkeep ([`MysqlServer::run_upkeep`]); the
/// first runs when the agent starts. A pass that finds nothing to do costs one connection
/// and three reads.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(10);

/// IO-thread errors after which the upkeep starts the IO thread again (it stays stopped
/// otherwise): 1595 `ER_SLAVE_RELAY_LOG_WRITE_FAILURE` ("could not queue event from
/// master"), a transient failure to write what was received; the events are fetched again.
/// Errors that say the master cannot serve this slave (1236) are not among them.
const RESTARTABLE_IO_ERRORS: [u32; 1] = [1595];

/// Connect bound for servers whose answer is optional (see `connect_optional`): a healthy
/// server on the cluster's LAN answers in milliseconds.
const OPTIONAL_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Time between the kill loop's passes while write statements are spared.
const KILL_PASS_INTERVAL: Duration = Duration::from_millis(50);

/// Bound on reaching an optional server's TCP port (see `connect_optional`): a live host on
/// the LAN answers a SYN in well under a millisecond, even when its mysqld is busy (the
/// kernel answers); a cut-off or powered-off host never does, and TCP would only resend
/// its SYN after a second.
const REACH_TIMEOUT: Duration = Duration::from_millis(200);

/// How to reach one host's MySQL with the agent account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDb {
    /// Host name.
    pub name: String,
    /// `ip`.
    pub ip: String,
    /// `mysql_port`.
    pub port: u16,
    /// `agent_user`.
    pub user: String,
    /// `agent_password`.
    pub password: String,
    /// `replication_user` (used when this host becomes a slave's master).
    pub replication_user: String,
    /// `replication_password`.
    pub replication_password: String,
    /// `mysql_ssl_*` of the host (paths read on this agent's host).
    pub tls: mmm_common::mysql_tls::MysqlTls,
}

impl HostDb {
    fn from_host(h: &AgentHost) -> HostDb {
        let t = h.host.mysql_target();
        HostDb {
            name: h.host.name.clone(),
            ip: t.ip.to_string(),
            port: t.port,
            user: t.user,
            password: t.password,
            replication_user: h.replication.user.clone(),
            replication_password: h.replication.password.clone(),
            tls: t.tls,
        }
    }
}

/// The local server plus what is needed to reach the others.
#[derive(Debug, Clone)]
pub struct MysqlServer {
    /// `this`.
    this: String,
    /// Every host, configuration order.
    hosts: Vec<HostDb>,
    /// `host-><this>->peer`.
    peer: Option<String>,
    /// `max_kill_retries`.
    max_kill_retries: u32,
    /// Accounts whose connections the kill loop spares: every host's `agent_user` (other
    /// agents read positions during a switch) and `monitor_user` when the agent's config
    /// knows it (the monitor's long-lived check connections never write).
    spared_users: Vec<String>,
    /// Connect/query bound.
    timeout: Duration,
    /// Replication wait bound.
    sync_timeout: Duration,
    /// `semi_sync` (`mysql/semi_sync.rs`).
    semi_sync: bool,
    /// `semi_sync_timeout`.
    semi_sync_timeout: Duration,
    /// Held by every change of the local server's replication (slave switch, upkeep,
    /// STOP/START SLAVE) and by the writer's sync, which an upkeep's short stop of the SQL
    /// thread would fail.
    repl_lock: Arc<tokio::sync::Mutex<()>>,
    /// What the upkeep already said or gave up on (it runs every few seconds and must not
    /// repeat itself or retry what the server refused).
    upkeep: Arc<Mutex<UpkeepMemory>>,
    /// `errant_transactions`: with `hold`, a promotion whose peer was not demoted cleanly
    /// stops the replication from the peer (issue 13, "cut the master-master loop first").
    errant_policy: ErrantPolicy,
    /// The replication from the peer was held at a promotion and not resumed since: the
    /// upkeep leaves the IO thread alone; `RESUME_PEER_LINK` starts it.
    peer_held: Arc<AtomicBool>,
}

/// The upkeep's memory across passes.
#[derive(Debug, Default)]
struct UpkeepMemory {
    /// Messages already logged once (notes that do not change).
    said: BTreeSet<String>,
    /// The last deferral or failure (logged again only when it changes).
    last_problem: Option<String>,
    /// Whether a pass has described the link (the first one that reaches the server logs
    /// its state at INFO).
    described: bool,
    /// The server refused the connect retry / heartbeat once: not tried again until the
    /// agent restarts.
    refused_link: bool,
    /// The server refused GTID positioning once.
    refused_gtid: bool,
    /// The server refused the `slave_net_timeout` change once.
    refused_net_timeout: bool,
    /// The server refused the semi-sync settings once.
    refused_semi_sync: bool,
    /// semi_sync: this writer has no semi-sync slave connected (`wait_no_slave` OFF until
    /// one is; `mysql/semi_sync.rs`).
    semi_sync_no_standby: bool,
}

/// What one upkeep pass found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upkeep {
    /// The server is not a slave: nothing to do.
    NotASlave,
    /// The link already has the wanted settings (or the ones the server accepts); the text
    /// describes it.
    Fine(String),
    /// Something was changed (`done`), and maybe some settings were refused.
    Changed {
        /// What was changed ("connect retry 60 → 1 s", …).
        done: Vec<String>,
        /// Statements the server refused, with its error.
        refused: Vec<String>,
    },
    /// Nothing changed now, for this reason; the next pass tries again.
    Deferred(String),
}

/// A slave status row, as far as the agent reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ReplStatus {
    /// `Master_Host`.
    master_host: String,
    /// `Slave_IO_Running`: `Yes`, `No` or `Connecting`.
    io: String,
    /// `Slave_SQL_Running`.
    sql: String,
    /// `Master_Log_File`: the master's binlog the IO thread reads.
    master_log_file: String,
    /// `Read_Master_Log_Pos`: received up to.
    read_pos: u64,
    /// `Relay_Master_Log_File`: the master's binlog the SQL thread applies.
    relay_master_log_file: String,
    /// `Exec_Master_Log_Pos`: applied up to.
    exec_pos: u64,
    /// `Connect_Retry`.
    connect_retry: Option<u64>,
    /// MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`); None elsewhere.
    using_gtid: Option<String>,
    /// MySQL `Auto_Position` (`0`/`1`); None on MariaDB.
    auto_position: Option<String>,
    /// `Last_SQL_Error`.
    last_sql_error: String,
    /// `Last_IO_Errno` (0 or absent: none).
    last_io_errno: u32,
    /// `Last_IO_Error`.
    last_io_error: String,
    /// `Master_Server_Id`: the server id of the master (kept after it died).
    master_server_id: Option<u32>,
}

impl ReplStatus {
    /// The IO thread runs (connected or trying to connect).
    fn io_running(&self) -> bool {
        self.io == "Yes" || self.io == "Connecting"
    }

    fn sql_running(&self) -> bool {
        self.sql == "Yes"
    }

    /// Everything received has been applied.
    fn all_applied(&self) -> bool {
        self.master_log_file.is_empty()
            || (self.relay_master_log_file == self.master_log_file
                && self.exec_pos >= self.read_pos)
    }

    /// Whether the link uses GTID positioning.
    fn uses_gtid(&self) -> bool {
        self.using_gtid.as_deref().is_some_and(|g| g != "No")
            || self.auto_position.as_deref() == Some("1")
    }

    fn positioning(&self) -> String {
        match (&self.using_gtid, &self.auto_position) {
            (Some(g), _) if g != "No" => format!("GTID ({})", g.to_ascii_lowercase()),
            (_, Some(a)) if a == "1" => "GTID (auto position)".to_string(),
            _ => "binlog position".to_string(),
        }
    }
}

/// A connection with its server's flavour.
struct Db {
    /// The connection.
    conn: Conn,
    /// The server flavour.
    flavor: Flavor,
    /// Query bound.
    timeout: Duration,
}

fn q_err(e: mysql_async::Error) -> EffectError {
    EffectError::Query(e.to_string())
}

/// A column as text (NULL → None).
fn col(row: &Row, name: &str) -> Option<String> {
    match row.get_opt::<Value, _>(name)?.ok()? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

impl Db {
    async fn query(&mut self, sql: &str) -> Result<Vec<Row>, EffectError> {
        self.query_within(sql, self.timeout).await
    }

    async fn query_within(&mut self, sql: &str, t: Duration) -> Result<Vec<Row>, EffectError> {
        match tokio::time::timeout(t, self.conn.query::<Row, _>(sql)).await {
            Ok(r) => r.map_err(q_err),
            Err(_) => Err(EffectError::Timeout {
                what: format!("query '{sql}'"),
                after: t,
            }),
        }
    }

    async fn exec(&mut self, sql: &str) -> Result<(), EffectError> {
        self.query(sql).await.map(|_| ())
    }

    async fn scalar(&mut self, sql: &str) -> Result<Option<String>, EffectError> {
        let rows = self.query(sql).await?;
        Ok(rows.first().and_then(|r| match r.as_ref(0) {
            Some(Value::NULL) | None => None,
            Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Some(Value::Int(i)) => Some(i.to_string()),
            Some(Value::UInt(u)) => Some(u.to_string()),
            Some(v) => Some(v.as_sql(true)),
        }))
    }

    /// The first row of SHOW SLAVE STATUS (None: not a slave).
    async fn repl_status(&mut self) -> Result<Option<ReplStatus>, EffectError> {
        let rows = self.query(self.flavor.show_slave_status()).await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let c = self.flavor.slave_columns();
        let num = |name: &str| col(r, name).and_then(|s| s.trim().parse::<u64>().ok());
        Ok(Some(ReplStatus {
            master_host: col(r, c.master_host).unwrap_or_default(),
            io: col(r, c.io_running).unwrap_or_default(),
            sql: col(r, c.sql_running).unwrap_or_default(),
            master_log_file: col(r, c.master_log_file).unwrap_or_default(),
            read_pos: num(c.read_pos).unwrap_or(0),
            relay_master_log_file: col(r, c.relay_master_log_file).unwrap_or_default(),
            exec_pos: num(c.exec_pos).unwrap_or(0),
            connect_retry: num("Connect_Retry"),
            using_gtid: col(r, "Using_Gtid"),
            auto_position: if self.flavor.is_mariadb() {
                None
            } else {
                col(r, "Auto_Position")
            },
            last_sql_error: col(r, "Last_SQL_Error").unwrap_or_default(),
            last_io_errno: col(r, "Last_IO_Errno")
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
            last_io_error: col(r, "Last_IO_Error").unwrap_or_default(),
            master_server_id: col(r, "Master_Server_Id").and_then(|s| s.trim().parse().ok()),
        }))
    }

    /// The first row of SHOW SLAVE STATUS: (master host, master log file, read pos).
    async fn slave_status(&mut self) -> Result<Option<(String, String, u64)>, EffectError> {
        Ok(self
            .repl_status()
            .await?
            .map(|s| (s.master_host, s.master_log_file, s.read_pos)))
    }

    /// With the IO thread stopped: waits (until `deadline`) until the SQL thread has applied
    /// everything the IO thread received, so that nothing received is discarded when the
    /// slave threads stop and start again (module doc). An error says why it did not.
    async fn drain_relay_log(&mut self, deadline: Instant) -> Result<(), EffectError> {
        let st = self
            .repl_status()
            .await?
            .ok_or_else(|| EffectError::Other("slave status vanished".into()))?;
        if st.all_applied() {
            return Ok(());
        }
        if !st.sql_running() {
            return Err(EffectError::Other(format!(
                "the SQL thread is not running (Slave_SQL_Running: {}{}): events received up to {}:{} are applied only up to {}:{}",
                st.sql,
                if st.last_sql_error.is_empty() {
                    String::new()
                } else {
                    format!(", Last_SQL_Error: {}", st.last_sql_error)
                },
                st.master_log_file,
                st.read_pos,
                st.relay_master_log_file,
                st.exec_pos
            )));
        }
        if self.flavor.mariadb_gtid() && st.uses_gtid() {
            // The relay log may end inside a transaction (the IO thread stopped, or its
            // master died, in the middle of one): every whole transaction applied is all
            // there is to apply; the rest is fetched again by GTID when the threads start.
            return self.wait_received_applied(deadline).await;
        }
        self.pos_wait(&st.master_log_file, st.read_pos, deadline)
            .await?;
        let st = self
            .repl_status()
            .await?
            .ok_or_else(|| EffectError::Other("slave status vanished".into()))?;
        if st.all_applied() {
            Ok(())
        } else {
            Err(EffectError::Other(format!(
                "events received up to {}:{} are applied only up to {}:{}",
                st.master_log_file, st.read_pos, st.relay_master_log_file, st.exec_pos
            )))
        }
    }

    /// Waits (until `deadline`, polling) until the SQL thread has applied everything the IO
    /// thread received (or the server is no longer a slave).
    async fn wait_all_applied(&mut self, deadline: Instant) -> Result<(), EffectError> {
        loop {
            let Some(st) = self.repl_status().await? else {
                return Ok(());
            };
            if self.flavor.mariadb_gtid() && st.uses_gtid() {
                // Its relay log may end inside a transaction the dead master never
                // finished sending: every whole transaction applied is all there is.
                return self.wait_received_applied(deadline).await;
            }
            if st.all_applied() {
                return Ok(());
            }
            if !st.sql_running() {
                return Err(EffectError::Other(format!(
                    "the new master's SQL thread is not running (events received up to {}:{} are applied only up to {}:{})",
                    st.master_log_file, st.read_pos, st.relay_master_log_file, st.exec_pos
                )));
            }
            if Instant::now() >= deadline {
                return Err(EffectError::Other(format!(
                    "the new master had not applied what it received (up to {}:{}, applied {}:{}) within the sync timeout",
                    st.master_log_file, st.read_pos, st.relay_master_log_file, st.exec_pos
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// With the master gone: waits (until `deadline`, polling) until the SQL thread has
    /// applied every transaction the IO thread received *whole*. A master that died while
    /// sending can leave the relay log ending inside a transaction (a slow link into the
    /// standby: seen on the testbed with a tc-limited standby); `Read_Master_Log_Pos` then
    /// points into a transaction that is never completed, and waiting for it can only time
    /// out (every retry of the failover did, for minutes). Such a transaction was not
    /// acknowledged with `semi_sync` (AFTER_SYNC acknowledges whole transactions); without
    /// it, the catch-up fetches it whole from a slave that has it. Done when everything
    /// received is applied; with MariaDB GTID when `gtid_current_pos` holds `Gtid_IO_Pos`
    /// (the last transaction received whole); otherwise when the SQL thread has read all
    /// of its relay log and its position stays put.
    async fn wait_received_applied(&mut self, deadline: Instant) -> Result<(), EffectError> {
        let own_id: u32 = self
            .scalar("SELECT @@global.server_id")
            .await?
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut last_exec: Option<(String, u64)> = None;
        loop {
            let Some(st) = self.repl_status().await? else {
                return Ok(());
            };
            if st.all_applied() {
                return Ok(());
            }
            if !st.sql_running() {
                return Err(EffectError::Other(format!(
                    "the SQL thread is not running (events received up to {}:{} are applied only up to {}:{})",
                    st.master_log_file, st.read_pos, st.relay_master_log_file, st.exec_pos
                )));
            }
            let rows = self.query("SHOW SLAVE STATUS").await?;
            let row = rows.first();
            let state = row
                .and_then(|r| col(r, "Slave_SQL_Running_State"))
                .unwrap_or_default();
            let whole = if self.flavor.mariadb_gtid() && st.uses_gtid() {
                let io_pos = row.and_then(|r| col(r, "Gtid_IO_Pos")).unwrap_or_default();
                let current = self
                    .scalar("SELECT @@global.gtid_current_pos")
                    .await?
                    .unwrap_or_default();
                !io_pos.is_empty() && catchup::ahead_of(&io_pos, &current, None, own_id).is_empty()
            } else {
                let exec = (st.relay_master_log_file.clone(), st.exec_pos);
                let idle =
                    state.contains("read all relay log") && last_exec.as_ref() == Some(&exec);
                last_exec = Some(exec);
                idle
            };
            if whole {
                tracing::warn!(
                    "The relay log ends inside a transaction the old master never finished sending (received up to {}:{}, applied every whole transaction up to {}:{}): it is not applied",
                    st.master_log_file,
                    st.read_pos,
                    st.relay_master_log_file,
                    st.exec_pos
                );
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(EffectError::Timeout {
                    what: format!(
                        "applying the relay log (received up to {}:{}, applied up to {}:{}, SQL thread: {state})",
                        st.master_log_file, st.read_pos, st.relay_master_log_file, st.exec_pos
                    ),
                    after: self.timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `@@global.slave_net_timeout` (seconds).
    async fn net_timeout(&mut self) -> Result<Option<u32>, EffectError> {
        let var = self.flavor.net_timeout_var();
        Ok(self
            .scalar(&format!("SELECT @@global.{var}"))
            .await?
            .and_then(|v| v.trim().parse().ok()))
    }

    /// The IO thread's heartbeat period in milliseconds (None: not readable here, e.g.
    /// MySQL with performance_schema off).
    async fn heartbeat_ms(&mut self) -> Option<u32> {
        let rows = self.query(self.flavor.heartbeat_query()).await.ok()?;
        let r = rows.first()?;
        let n = r.len().checked_sub(1)?;
        let v: f64 = match r.as_ref(n)? {
            Value::Bytes(b) => String::from_utf8_lossy(b).trim().parse().ok()?,
            Value::Double(d) => *d,
            Value::Float(f) => f64::from(*f),
            Value::Int(i) => *i as f64,
            Value::UInt(u) => *u as f64,
            _ => return None,
        };
        Some((v * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32)
    }

    /// SHOW MASTER STATUS: (file, position).
    async fn master_status(&mut self) -> Result<(String, u64), EffectError> {
        let rows = self.query(self.flavor.show_master_status()).await?;
        let r = rows
            .first()
            .ok_or_else(|| EffectError::Query("binary log is not enabled".into()))?;
        let file = col(r, "File").unwrap_or_default();
        let pos = col(r, "Position").and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((file, pos))
    }

    /// MASTER_POS_WAIT bounded by `deadline`; NULL and -1 are failures.
    async fn pos_wait(
        &mut self,
        file: &str,
        pos: u64,
        deadline: Instant,
    ) -> Result<(), EffectError> {
        if file.is_empty() {
            return Err(EffectError::Other("no binlog position to wait for".into()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let secs = (left.as_secs_f64().ceil() as u64).max(1);
        let sql = self.flavor.pos_wait(file, pos, secs);
        let rows = self
            .query_within(&sql, Duration::from_secs(secs) + self.timeout)
            .await?;
        let v = rows.first().and_then(|r| r.as_ref(0).cloned());
        match v {
            Some(Value::Int(n)) if n >= 0 => Ok(()),
            Some(Value::UInt(_)) => Ok(()),
            Some(Value::Bytes(b))
                if String::from_utf8_lossy(&b)
                    .parse::<i64>()
                    .is_ok_and(|n| n >= 0) =>
            {
                Ok(())
            }
            Some(Value::Int(-1)) => Err(EffectError::Timeout {
                what: format!("MASTER_POS_WAIT('{file}', {pos})"),
                after: Duration::from_secs(secs),
            }),
            Some(Value::Bytes(b)) if &b[..] == b"-1" => Err(EffectError::Timeout {
                what: format!("MASTER_POS_WAIT('{file}', {pos})"),
                after: Duration::from_secs(secs),
            }),
            _ => Err(EffectError::Other(format!(
                "MASTER_POS_WAIT('{file}', {pos}) returned NULL (slave SQL thread not running?)"
            ))),
        }
    }

    async fn close(self) {
        let _ = tokio::time::timeout(self.timeout, self.conn.disconnect()).await;
    }
}

/// The start of a statement MMM's kill loop spares on all passes but the last.
fn is_write_statement(info: &str) -> bool {
    let mut s = info.trim_start();
    if let Some(rest) = s.strip_prefix("/*") {
        if let Some(end) = rest.find("*/") {
            s = rest.get(end + 2..).unwrap_or("").trim_start();
        }
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "INSERT"
            | "UPDATE"
            | "DELETE"
            | "REPLACE"
            | "CREATE"
            | "DROP"
            | "ALTER"
            | "REPAIR"
            | "OPTIMIZE"
            | "ANALYZE"
            | "CHECK"
    )
}

impl MysqlServer {
    /// From the agent's settings.
    pub fn from_config(config: &AgentSettings) -> MysqlServer {
        MysqlServer {
            this: config.this().to_string(),
            hosts: config.hosts.iter().map(HostDb::from_host).collect(),
            peer: config.local.host.peer.clone(),
            max_kill_retries: config.max_kill_retries,
            spared_users: {
                let mut u: Vec<String> = config
                    .hosts
                    .iter()
                    .flat_map(|h| {
                        [
                            Some(h.host.mysql_account.user.clone()),
                            h.monitor_user.clone(),
                        ]
                    })
                    .flatten()
                    .filter(|u| !u.is_empty())
                    .collect();
                u.sort();
                u.dedup();
                u
            },
            timeout: config.ext.mysql_timeout,
            sync_timeout: config.ext.sync_timeout,
            semi_sync: config.ext.semi_sync,
            semi_sync_timeout: config.ext.semi_sync_timeout,
            repl_lock: Arc::new(tokio::sync::Mutex::new(())),
            upkeep: Arc::new(Mutex::new(UpkeepMemory::default())),
            errant_policy: config.ext.errant_transactions,
            peer_held: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Issue 13, "cut the master-master loop first": this server is about to take the
    /// writer role and its peer was not demoted cleanly (`why`: unreachable, or still
    /// writable), so the peer may hold transactions nobody else has. The IO thread from
    /// the peer stops (the relay log is kept: the SQL thread has applied it, and starting
    /// the IO thread alone later keeps it), before `read_only=0`; the monitor resumes it
    /// with `RESUME_PEER_LINK` once it found no errant transactions on the peer, or an
    /// operator accepted them. A failure is logged at ERROR and the promotion goes on
    /// (the old master is not there to send anything; the monitor still keeps it out).
    async fn hold_peer_link(&self, local: &mut Db, peer: &str, why: &str) {
        if self.errant_policy == ErrantPolicy::Accept {
            return;
        }
        let r = async {
            let Some(st) = local.repl_status().await? else {
                return Ok(false);
            };
            if st.io != "No" {
                let f = local.flavor;
                local.exec(f.stop_io_thread()).await?;
            }
            Ok::<_, EffectError>(true)
        }
        .await;
        match r {
            Ok(true) => {
                self.peer_held.store(true, Ordering::SeqCst);
                tracing::warn!(
                    peer,
                    "Replication from {peer} held: it was not demoted cleanly ({why}) and may hold transactions no other server has; it resumes when the monitor finds no errant transactions on {peer} or an operator accepts them (errant_transactions hold)"
                );
            }
            Ok(false) => {}
            Err(e) => tracing::error!(
                peer,
                "Could not hold the replication from {peer} ({why}): {e}; transactions only {peer} has may replicate into this server when it returns"
            ),
        }
    }

    fn host(&self, name: &str) -> Option<&HostDb> {
        self.hosts.iter().find(|h| h.name == name)
    }

    async fn connect(&self, h: &HostDb) -> Result<Db, EffectError> {
        self.connect_within(h, self.timeout).await
    }

    /// Connects to a server whose answer is only nice to have (the old master during a
    /// switch, the peer before taking the writer role): when it is down or cut off, the
    /// fallback (the local relay log) is used after [`OPTIONAL_CONNECT_TIMEOUT`] instead of
    /// the full `mysql_timeout`, which a failover would otherwise pay in write outage.
    ///
    /// A host that does not even answer a TCP SYN within [`REACH_TIMEOUT`] is given up on at
    /// once (a failover to the other master pays this twice: slaves, then the new master).
    /// The probe runs beside the real connect, so a reachable server costs nothing extra.
    async fn connect_optional(&self, h: &HostDb) -> Result<Db, EffectError> {
        let full = self.connect_within(h, self.timeout.min(OPTIONAL_CONNECT_TIMEOUT));
        tokio::pin!(full);
        let probe = tokio::time::timeout(
            REACH_TIMEOUT,
            tokio::net::TcpStream::connect((h.ip.as_str(), h.port)),
        );
        let unreachable = |reason: String| EffectError::Connect {
            host: format!("{}:{}", h.ip, h.port),
            user: h.user.clone(),
            reason,
        };
        tokio::select! {
            r = &mut full => return r,
            p = probe => match p {
                Ok(Ok(_reachable)) => {}
                Ok(Err(e)) => return Err(unreachable(e.to_string())),
                Err(_) => {
                    return Err(unreachable(format!(
                        "no answer to a TCP connect within {REACH_TIMEOUT:?}"
                    )))
                }
            },
        }
        full.await
    }

    async fn connect_within(&self, h: &HostDb, timeout: Duration) -> Result<Db, EffectError> {
        let cerr = |reason: String| EffectError::Connect {
            host: format!("{}:{}", h.ip, h.port),
            user: h.user.clone(),
            reason,
        };
        let opts = OptsBuilder::default()
            .ip_or_hostname(h.ip.clone())
            .tcp_port(h.port)
            .user(Some(h.user.clone()))
            .pass(Some(h.password.clone()))
            .prefer_socket(false);
        let opts = h.tls.apply(opts);
        let mut conn = match tokio::time::timeout(timeout, Conn::new(opts)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(cerr(e.to_string())),
            Err(_) => return Err(cerr(format!("connect timed out after {timeout:?}"))),
        };
        let version =
            match tokio::time::timeout(timeout, conn.query_first::<String, _>("SELECT VERSION()"))
                .await
            {
                Ok(Ok(v)) => v.unwrap_or_default(),
                Ok(Err(e)) => return Err(q_err(e)),
                Err(_) => return Err(cerr("SELECT VERSION() timed out".into())),
            };
        Ok(Db {
            conn,
            flavor: Flavor::from_version(&version),
            timeout: self.timeout,
        })
    }

    async fn local(&self) -> Result<Db, EffectError> {
        let h = self
            .host(&self.this)
            .ok_or_else(|| EffectError::Other(format!("No connection info for '{}'", self.this)))?;
        self.connect(h).await
    }

    /// `allow_write` on a connection to the local server (closed after).
    async fn allow_write_on(&self, mut db: Db) -> Result<(), EffectError> {
        let r = async {
            // semi_sync: the writer waits for the standby's acknowledgement from its
            // first write on (failures are logged; writes go on asynchronously).
            let _ = self.semi_sync_upkeep(&mut db, Some(true)).await;
            if Self::read_only(&mut db).await? {
                // On MySQL, read_only=0 also clears super_read_only.
                db.exec("SET GLOBAL read_only=0").await?;
            }
            Ok(())
        }
        .await;
        db.close().await;
        r
    }

    async fn read_only(db: &mut Db) -> Result<bool, EffectError> {
        let v = db.scalar("SELECT @@global.read_only").await?;
        Ok(v.as_deref() != Some("0"))
    }

    /// MMM's kill loop (spec §4.7): passes over SHOW PROCESSLIST kill every client thread
    /// but spare those in the middle of a write statement, which may finish; once a pass
    /// spares nothing, or `max_kill_retries` seconds have passed, a last pass kills them
    /// too. 2.2.1 slept a whole second between passes (up to `max_kill_retries` passes),
    /// so one INSERT in flight cost a switchover a second; here the passes come every
    /// [`KILL_PASS_INTERVAL`] within the same bound.
    async fn kill_clients(&self, db: &mut Db) -> Result<(), EffectError> {
        let own = db.conn.id();
        let give_up = Instant::now() + Duration::from_secs(u64::from(self.max_kill_retries));
        loop {
            let last = Instant::now() >= give_up;
            let rows = db.query("SHOW PROCESSLIST").await?;
            let mut spared = 0;
            for r in &rows {
                let id: u64 = col(r, "Id").and_then(|s| s.parse().ok()).unwrap_or(0);
                let user = col(r, "User").unwrap_or_default();
                let command = col(r, "Command").unwrap_or_default();
                if id == 0
                    || id == u64::from(own)
                    || user == "system user"
                    || self.spared_users.contains(&user)
                {
                    continue;
                }
                if command.starts_with("Binlog Dump") || command == "Daemon" {
                    continue;
                }
                let info = col(r, "Info").unwrap_or_default();
                if !last && is_write_statement(&info) {
                    spared += 1;
                    continue;
                }
                // The thread may have ended meanwhile: a failed KILL is not an error.
                if let Err(e) = db.exec(&format!("KILL {id}")).await {
                    tracing::debug!("KILL {id}: {e}");
                }
            }
            if spared == 0 || last {
                break;
            }
            tokio::time::sleep(KILL_PASS_INTERVAL).await;
        }
        Ok(())
    }

    async fn set_active_master_inner(&self, new: &str) -> Result<String, EffectError> {
        if new.is_empty() {
            return Err(EffectError::Other("Name of new master is missing".into()));
        }
        if new == self.this {
            return Err(EffectError::Other(
                "New master is equal to local host!?".into(),
            ));
        }
        let new_host = self
            .host(new)
            .ok_or_else(|| EffectError::Other(format!("Unknown host {new}")))?
            .clone();
        let _repl = self.repl_lock.lock().await;
        let deadline = Instant::now() + self.sync_timeout;
        let mut local = self.local().await?;
        let (master_ip, _, _) = local
            .slave_status()
            .await?
            .ok_or_else(|| EffectError::Other("Invalid master host in show slave status".into()))?;
        let old = self.hosts.iter().find(|h| h.ip == master_ip).cloned();
        if old.as_ref().is_some_and(|o| o.name == new) {
            local.close().await;
            return Ok("OK: We are already a slave of the new master".into());
        }
        let result = self
            .switch(&mut local, old.as_ref(), &new_host, deadline)
            .await;
        if result.is_err() {
            // Leave replication running on the old master rather than stopped.
            let start = local.flavor.start_slave();
            let _ = local.exec(start).await;
        }
        local.close().await;
        result
    }

    async fn switch(
        &self,
        local: &mut Db,
        old: Option<&HostDb>,
        new: &HostDb,
        deadline: Instant,
    ) -> Result<String, EffectError> {
        // (1) What the old master had, if it is reachable.
        let mut old_db = match old {
            Some(o) => self.connect_optional(o).await.ok(),
            None => None,
        };
        let old_pos = match old_db.as_mut() {
            Some(d) => d.master_status().await.ok(),
            None => None,
        };
        if let Some((f, p)) = &old_pos {
            local.pos_wait(f, *p, deadline).await?;
        }
        if let Some(d) = old_db {
            d.close().await;
        }
        // (2) Stop receiving, apply everything received.
        local.exec(local.flavor.stop_io_thread()).await?;
        local.drain_relay_log(deadline).await?;
        // (3) The new master applies everything it received from the old master.
        let mut new_db = self.connect(new).await?;
        if let Some((nm_host, _, _)) = new_db.slave_status().await? {
            if old.is_some_and(|o| o.ip == nm_host) {
                match &old_pos {
                    Some((f, p)) => new_db.pos_wait(f, *p, deadline).await?,
                    // The old master is gone: the new master applies what it received.
                    // Judged from its slave status, not by MASTER_POS_WAIT on the received
                    // coordinates: after a catch-up (`catchup.rs`) re-pointed its link, they
                    // name another server's binlog and would never be reached.
                    None => new_db.wait_all_applied(deadline).await?,
                }
            }
        }
        // (4) Re-point, with the link settings; a replica that refuses them is re-pointed
        // without them (each CHANGE MASTER is one statement: applied whole or not at all).
        let position = self.choose_position(local, &mut new_db).await?;
        new_db.close().await;
        let net = local
            .net_timeout()
            .await
            .ok()
            .flatten()
            .unwrap_or(NET_TIMEOUT);
        local.exec(local.flavor.stop_slave()).await?;
        let mut target = ChangeMaster {
            host: new.ip.clone(),
            port: new.port,
            user: new.replication_user.clone(),
            password: new.replication_password.clone(),
            position: position.clone(),
            link: Some(LINK.for_net_timeout(net)),
        };
        if let Err(e) = local.exec(&local.flavor.change_master(&target)).await {
            target.link = None;
            local.exec(&local.flavor.change_master(&target)).await?;
            tracing::error!(
                to = %new.name,
                "the server refused the connect retry / heartbeat settings ({e}): replicating from {} without them, so a master that comes back may be picked up only after the server's own connect retry",
                new.name
            );
        }
        local.exec(local.flavor.start_slave()).await?;
        let how = match position {
            Position::File { file, pos } => format!("{file}:{pos}"),
            Position::MariaGtid => "GTID (slave_pos)".into(),
            Position::MySqlAutoPosition => "GTID (auto position)".into(),
        };
        tracing::info!(to = %new.name, "slave now replicates from {} at {how}", new.name);
        Ok(format!("OK: Changed master to {} at {how}", new.name))
    }

    async fn choose_position(
        &self,
        local: &mut Db,
        new_db: &mut Db,
    ) -> Result<Position, EffectError> {
        match (local.flavor, new_db.flavor) {
            (Flavor::MariaDb { gtid: true }, Flavor::MariaDb { gtid: true }) => {
                let slave_pos = local
                    .scalar("SELECT @@gtid_slave_pos")
                    .await?
                    .unwrap_or_default();
                let binlog = new_db
                    .scalar("SELECT @@gtid_binlog_state")
                    .await?
                    .unwrap_or_default();
                if gtid_state_holds(&binlog, &slave_pos) {
                    return Ok(Position::MariaGtid);
                }
                if !parse_gtid_pos(&slave_pos).is_empty() {
                    // The old master sent this slave transactions that never reached the
                    // new master (it died or froze between the two). Switching by GTID
                    // fails (the new master lacks them) and by binlog position breaks
                    // replication later (they reach the new master when the old one comes
                    // back, and again from there to this slave: duplicate key) or skips
                    // the new master's own transactions. Refuse: the slave stays on the old
                    // master, and the monitor's retries switch it once the new master has
                    // them.
                    return Err(EffectError::Other(format!(
                        "this slave has transactions the new master lacks (slave at GTID {slave_pos}, new master at {binlog}): not switching, it would repeat or skip transactions; replication stays on the old master until the new master has them"
                    )));
                }
                tracing::warn!(
                    "no GTID position on this slave yet (new master {binlog:?}): switching by binlog position"
                );
            }
            (Flavor::MariaDb { .. }, _) | (_, Flavor::MariaDb { .. }) => {
                tracing::warn!(
                    "no GTID on both ends (this server: {:?}, new master: {:?}): switching by binlog position",
                    local.flavor,
                    new_db.flavor
                );
            }
            _ => {
                let on = |v: Option<String>| v.as_deref() == Some("ON");
                let l = on(local
                    .scalar("SELECT @@global.gtid_mode")
                    .await
                    .ok()
                    .flatten());
                let n = on(new_db
                    .scalar("SELECT @@global.gtid_mode")
                    .await
                    .ok()
                    .flatten());
                if l && n {
                    return Ok(Position::MySqlAutoPosition);
                }
            }
        }
        let (file, pos) = new_db.master_status().await?;
        Ok(Position::File { file, pos })
    }
}

/// What an upkeep pass wants to change on the local link.
#[derive(Debug, Default)]
struct LinkPlan {
    /// Set the connect retry and the heartbeat.
    link: bool,
    /// Turn on GTID positioning (checked again once the threads are stopped).
    gtid: bool,
    /// Lower `slave_net_timeout` from the first value to the second.
    net_timeout: Option<(u32, u32)>,
    /// What differs from the wanted settings, for the log.
    found: Vec<String>,
}

/// Why GTID positioning is not turned on now (the pre-check's reasons carry no positions,
/// so a reason that persists is logged once).
type NotGtid = String;

impl MysqlServer {
    /// The replication upkeep: one pass now, then one every [`UPKEEP_INTERVAL`] until
    /// `shutdown` resolves. A pass in progress is finished first (it may have stopped the
    /// slave threads and must start them again).
    pub async fn run_upkeep(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let _ = self.upkeep_pass().await;
            let next = tokio::time::Instant::now() + UPKEEP_INTERVAL;
            // Between passes, a writer without a semi-sync slave looks for its standby's
            // return every FOLLOW_INTERVAL (mysql/semi_sync.rs).
            loop {
                let now = tokio::time::Instant::now();
                if now >= next {
                    break;
                }
                let until = if self.memory().semi_sync_no_standby {
                    (now + semi_sync::FOLLOW_INTERVAL).min(next)
                } else {
                    next
                };
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep_until(until) => {}
                }
                if until < next {
                    let _ = self.semi_sync_follow().await;
                }
            }
        }
    }

    /// One upkeep pass, logged: the local server's replication link gets [`LINK`], GTID
    /// positioning where it is provably exact, and `slave_net_timeout` ≤ [`NET_TIMEOUT`]
    /// (module doc). Relay logs are applied before the SQL thread stops; when they cannot
    /// be, nothing changes (`Deferred`).
    pub async fn upkeep_pass(&self) -> Result<Upkeep, EffectError> {
        let r = async {
            let _repl = self.repl_lock.lock().await;
            let mut db = self.local().await?;
            let _ = self.semi_sync_upkeep(&mut db, None).await;
            let r = self.upkeep_on(&mut db).await;
            db.close().await;
            r
        }
        .await;
        self.log_upkeep(&r);
        r
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, UpkeepMemory> {
        // A panic while the guard was held cannot leave the memory inconsistent (plain
        // flags and strings): take it anyway.
        self.upkeep.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs `text` at WARN the first time it is seen.
    fn warn_once(&self, text: String) {
        if self.memory().said.insert(text.clone()) {
            tracing::warn!("{text}");
        }
    }

    fn log_upkeep(&self, r: &Result<Upkeep, EffectError>) {
        let mut mem = self.memory();
        let problem = match r {
            Ok(Upkeep::NotASlave) => {
                if !mem.described {
                    mem.described = true;
                    tracing::info!("Replication: this server is not a slave; no link to keep up");
                }
                None
            }
            Ok(Upkeep::Fine(text)) => {
                if !mem.described {
                    mem.described = true;
                    tracing::info!("Replication link: {text}");
                }
                None
            }
            Ok(Upkeep::Changed { done, refused }) => {
                mem.described = true;
                if !done.is_empty() {
                    tracing::info!("Replication link fixed up: {}", done.join("; "));
                }
                for e in refused {
                    tracing::error!(
                        "Replication link: the server refused {e}; not tried again until the agent restarts"
                    );
                }
                None
            }
            Ok(Upkeep::Deferred(why)) => Some(why.clone()),
            Err(e) => Some(format!("replication upkeep failed: {e}")),
        };
        if problem != mem.last_problem {
            if let Some(p) = &problem {
                tracing::warn!("{p}");
            }
            mem.last_problem = problem;
        }
    }

    async fn upkeep_on(&self, db: &mut Db) -> Result<Upkeep, EffectError> {
        let Some(st) = db.repl_status().await? else {
            return Ok(Upkeep::NotASlave);
        };
        self.crash_safety_notes(db).await;
        if st.io == "No"
            && st.sql_running()
            && RESTARTABLE_IO_ERRORS.contains(&st.last_io_errno)
            && !self.peer_held.load(Ordering::SeqCst)
        {
            // The IO thread stopped on a relay-log write failure (seen on MariaDB 10.11 right
            // after a master's link healed). Restarting the IO thread alone keeps the relay
            // log (module doc) and fetches again from what was received: what MariaDB does
            // by itself for network errors.
            let f = db.flavor;
            db.exec(f.start_io_thread()).await?;
            tracing::warn!(
                "Replication IO thread had stopped with error {} ({}); restarted it",
                st.last_io_errno,
                st.last_io_error
            );
            return Ok(Upkeep::Changed {
                done: vec![format!(
                    "IO thread restarted after error {}",
                    st.last_io_errno
                )],
                refused: Vec::new(),
            });
        }
        let plan = self.plan_link(db, &st).await?;
        if plan.found.is_empty() {
            return Ok(Upkeep::Fine(self.describe(db, &st).await));
        }
        let f = db.flavor;
        let (io_was, sql_was) = (st.io_running(), st.sql_running());
        if !sql_was && !st.all_applied() {
            // Nothing would apply the relay log: leave the threads alone.
            return Ok(Upkeep::Deferred(format!(
                "Replication link not fixed up yet ({}): the relay log must be applied first, but the SQL thread is not running (Slave_SQL_Running: {}{})",
                plan.found.join(", "),
                st.sql,
                if st.last_sql_error.is_empty() {
                    String::new()
                } else {
                    format!(", Last_SQL_Error: {}", st.last_sql_error)
                }
            )));
        }
        if io_was {
            db.exec(f.stop_io_thread()).await?;
        }
        // From here on every path starts again the threads that ran.
        let result = self.change_stopped_link(db, &st, sql_was, &plan).await;
        let restart = f.restart_threads(io_was, sql_was);
        if let Some(q) = restart {
            if let Err(e) = db.exec(q).await {
                return Err(EffectError::Other(format!(
                    "'{q}' failed after the replication link change ({e}): replication is stopped"
                )));
            }
        }
        result
    }

    /// How the link is set up now (the first pass logs it).
    async fn describe(&self, db: &mut Db, st: &ReplStatus) -> String {
        let var = db.flavor.net_timeout_var();
        let net = db.net_timeout().await.ok().flatten();
        let hb = db.heartbeat_ms().await;
        format!(
            "replicating from {} by {}, IO thread {}, connect retry {} s, heartbeat {}, {var} {}",
            st.master_host,
            st.positioning(),
            st.io,
            st.connect_retry
                .map_or_else(|| "?".to_string(), |r| r.to_string()),
            hb.map_or_else(
                || "?".to_string(),
                |h| format!("{}.{:03} s", h / 1000, h % 1000)
            ),
            net.map_or_else(|| "?".to_string(), |n| format!("{n} s"))
        )
    }

    /// What differs from the wanted link (settings the server refused before are left out).
    async fn plan_link(&self, db: &mut Db, st: &ReplStatus) -> Result<LinkPlan, EffectError> {
        let (refused_link, refused_gtid, refused_net) = {
            let m = self.memory();
            (m.refused_link, m.refused_gtid, m.refused_net_timeout)
        };
        let mut plan = LinkPlan::default();
        let var = db.flavor.net_timeout_var();
        let net = db.net_timeout().await?;
        let effective_net = match net {
            Some(n) if n > NET_TIMEOUT && !refused_net => {
                plan.net_timeout = Some((n, NET_TIMEOUT));
                plan.found.push(format!("{var} {n} s"));
                NET_TIMEOUT
            }
            Some(n) => n,
            None => NET_TIMEOUT,
        };
        let want = LINK.for_net_timeout(effective_net);
        if !refused_link {
            if let Some(r) = st
                .connect_retry
                .filter(|r| *r != u64::from(want.connect_retry))
            {
                plan.link = true;
                plan.found.push(format!("connect retry {r} s"));
            }
            // An unreadable heartbeat (MySQL without performance_schema) is set along with
            // the retry, never on its own (it would be "changed" at every pass).
            if let Some(h) = db
                .heartbeat_ms()
                .await
                .filter(|h| h.abs_diff(want.heartbeat_ms) > 1)
            {
                plan.link = true;
                plan.found
                    .push(format!("heartbeat {}.{:03} s", h / 1000, h % 1000));
            }
        }
        if !refused_gtid && !st.uses_gtid() {
            match self.gtid_check(db, st, false).await {
                Ok(_) => {
                    plan.gtid = true;
                    plan.found.push("binlog-position replication".to_string());
                }
                Err(why) => self.warn_once(format!(
                    "Replication from {} stays positional (not crash-safe, docs/operations.md): {why}",
                    st.master_host
                )),
            }
        }
        Ok(plan)
    }

    /// Whether the link may switch to GTID positioning without repeating or skipping a
    /// transaction. MariaDB: this server's `gtid_slave_pos` must equal what the master's
    /// binlog holds at the coordinates applied here (`BINLOG_GTID_POS`); an empty
    /// `gtid_slave_pos` (nothing with a GTID applied yet) is set to that first (`Ok(Some)`).
    /// MySQL: `gtid_mode=ON` on both ends. `stable`: the slave threads are stopped.
    async fn gtid_check(
        &self,
        db: &mut Db,
        st: &ReplStatus,
        stable: bool,
    ) -> Result<Option<String>, NotGtid> {
        if db.flavor == (Flavor::MariaDb { gtid: false }) {
            return Err("this MariaDB version has no GTID (10.0.2 and later have)".into());
        }
        let master = self
            .hosts
            .iter()
            .find(|h| h.ip == st.master_host)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "its master {} is not a host of the configuration, so the GTID position cannot be checked",
                    st.master_host
                )
            })?;
        let mut m = self.connect_optional(&master).await.map_err(|e| {
            format!(
                "its master {} cannot be asked for its GTID position ({e}); tried again later",
                master.name
            )
        })?;
        let r = if db.flavor.is_mariadb() {
            if !m.flavor.mariadb_gtid() {
                Err(format!("its master {} has no GTID", master.name))
            } else {
                mariadb_gtid_check(db, &mut m, st, stable).await
            }
        } else {
            let on = |v: Option<String>| v.as_deref() == Some("ON");
            let q = "SELECT @@global.gtid_mode";
            if !on(db.scalar(q).await.ok().flatten()) {
                Err("gtid_mode is not ON on this server".into())
            } else if !on(m.scalar(q).await.ok().flatten()) {
                Err(format!("gtid_mode is not ON on its master {}", master.name))
            } else {
                Ok(None)
            }
        };
        m.close().await;
        r
    }

    /// Once per agent run: crash-safety settings the agent cannot change (they need a
    /// restart of the server), reported with the fix.
    async fn crash_safety_notes(&self, db: &mut Db) {
        if let Ok(Some(v)) = db.scalar("SELECT @@global.relay_log_recovery").await {
            if v == "0" || v.eq_ignore_ascii_case("OFF") {
                self.warn_once(
                    "relay_log_recovery is off: after a crash this server may stop replicating on a cut relay log (1595) or, positional, re-apply a transaction (1062); put relay_log_recovery = 1 in my.cnf (docs/operations.md)".to_string(),
                );
            }
        }
        if db.flavor.mariadb_gtid() {
            let q = "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA='mysql' AND TABLE_NAME='gtid_slave_pos'";
            if let Ok(Some(engine)) = db.scalar(q).await {
                if !engine.eq_ignore_ascii_case("InnoDB") {
                    self.warn_once(format!(
                        "mysql.gtid_slave_pos uses {engine}: the GTID position is not stored with the transactions it records, so a crash can repeat one; ALTER TABLE mysql.gtid_slave_pos ENGINE=InnoDB"
                    ));
                }
            }
        }
    }

    /// With the IO thread stopped: applies the relay log, stops the SQL thread, makes the
    /// changes of `plan`. The caller starts the threads again.
    async fn change_stopped_link(
        &self,
        db: &mut Db,
        before: &ReplStatus,
        sql_was: bool,
        plan: &LinkPlan,
    ) -> Result<Upkeep, EffectError> {
        let f = db.flavor;
        if let Err(e) = db.drain_relay_log(Instant::now() + self.sync_timeout).await {
            return Ok(Upkeep::Deferred(format!(
                "Replication link not fixed up yet ({}): the relay log must be applied first, {e}",
                plan.found.join(", ")
            )));
        }
        if sql_was {
            db.exec(f.stop_sql_thread()).await?;
        }
        let st = db
            .repl_status()
            .await?
            .ok_or_else(|| EffectError::Other("slave status vanished".into()))?;
        let mut done = Vec::new();
        let mut refused = Vec::new();
        let mut gtid = false;
        if plan.gtid {
            match self.gtid_check(db, &st, true).await {
                Ok(None) => gtid = true,
                Ok(Some(pos)) => {
                    let q = format!("SET GLOBAL gtid_slave_pos = '{}'", escape(&pos));
                    match db.exec(&q).await {
                        Ok(()) => {
                            gtid = true;
                            done.push(format!(
                                "gtid_slave_pos set to '{pos}' (the master's GTID position at the coordinates applied here)"
                            ));
                        }
                        Err(e) => {
                            self.memory().refused_gtid = true;
                            refused.push(format!("'{q}' ({e})"));
                        }
                    }
                }
                Err(why) => {
                    // The pre-check passed with replication running, this one failed with
                    // it stopped: do not stop replication for it at every pass.
                    self.memory().refused_gtid = true;
                    self.warn_once(format!(
                        "Replication from {} stays positional (not crash-safe, docs/operations.md): {why}; not tried again until the agent restarts",
                        st.master_host
                    ));
                }
            }
        }
        if let Some((from, to)) = plan.net_timeout {
            let var = f.net_timeout_var();
            let q = format!("SET GLOBAL {var} = {to}");
            match db.exec(&q).await {
                Ok(()) => done.push(format!(
                    "{var} {from} → {to} s (put it in my.cnf too: a restarted server forgets it)"
                )),
                Err(e) => {
                    self.memory().refused_net_timeout = true;
                    refused.push(format!("'{q}' ({e})"));
                }
            }
        }
        let net = db.net_timeout().await.ok().flatten().unwrap_or(NET_TIMEOUT);
        let link = plan.link.then(|| LINK.for_net_timeout(net));
        let said = |link: bool, gtid: bool| {
            let mut v = Vec::new();
            if link {
                let was = |prefix: &str| {
                    plan.found
                        .iter()
                        .find_map(|x| x.strip_prefix(prefix))
                        .map(str::to_string)
                };
                let l = LINK.for_net_timeout(net);
                v.push(format!(
                    "connect retry {} → {} s, heartbeat {} → {}.{:03} s",
                    was("connect retry ").unwrap_or_else(|| "unchanged".into()),
                    l.connect_retry,
                    was("heartbeat ").unwrap_or_else(|| "?".into()),
                    l.heartbeat_ms / 1000,
                    l.heartbeat_ms % 1000
                ));
            }
            if gtid {
                v.push(format!("{} → GTID positioning", before.positioning()));
            }
            v
        };
        if let Some(q) = f.change_link(link, gtid) {
            match db.exec(&q).await {
                Ok(()) => done.extend(said(link.is_some(), gtid)),
                Err(e) if link.is_some() && gtid => {
                    // One refused setting must not cost the other: each on its own.
                    refused.push(format!("'{q}' ({e})"));
                    for (part, is_link) in [
                        (f.change_link(link, false), true),
                        (f.change_link(None, true), false),
                    ] {
                        let Some(part) = part else { continue };
                        match db.exec(&part).await {
                            Ok(()) => done.extend(said(is_link, !is_link)),
                            Err(e) => {
                                let mut m = self.memory();
                                if is_link {
                                    m.refused_link = true;
                                } else {
                                    m.refused_gtid = true;
                                }
                                refused.push(format!("'{part}' ({e})"));
                            }
                        }
                    }
                }
                Err(e) => {
                    {
                        let mut m = self.memory();
                        if link.is_some() {
                            m.refused_link = true;
                        } else {
                            m.refused_gtid = true;
                        }
                    }
                    refused.push(format!("'{q}' ({e})"));
                }
            }
        }
        Ok(Upkeep::Changed { done, refused })
    }
}

/// The MariaDB half of [`MysqlServer::gtid_check`]: `db` is the slave, `m` its master.
async fn mariadb_gtid_check(
    db: &mut Db,
    m: &mut Db,
    st: &ReplStatus,
    stable: bool,
) -> Result<Option<String>, NotGtid> {
    let text = |e: EffectError| e.to_string();
    // While the SQL thread runs, a (position, gtid_slave_pos) pair is consistent when
    // gtid_slave_pos did not change around the position's read; a few tries.
    for _ in 0..3 {
        let g1 = db
            .scalar("SELECT @@global.gtid_slave_pos")
            .await
            .map_err(text)?
            .unwrap_or_default();
        let st2 = if stable {
            st.clone()
        } else {
            db.repl_status()
                .await
                .map_err(text)?
                .ok_or_else(|| "it is no longer a slave".to_string())?
        };
        if !stable {
            let g2 = db
                .scalar("SELECT @@global.gtid_slave_pos")
                .await
                .map_err(text)?
                .unwrap_or_default();
            if g1 != g2 {
                continue;
            }
        }
        let at = m
            .scalar(&format!(
                "SELECT BINLOG_GTID_POS('{}', {})",
                escape(&st2.relay_master_log_file),
                st2.exec_pos
            ))
            .await
            .map_err(text)?;
        match at {
            None => {
                return Err(
                    "its master's binlog does not have the coordinates applied here (purged, or not an event boundary)"
                        .into(),
                )
            }
            Some(at) if same_gtid_pos(&g1, &at) => return Ok(None),
            Some(at) if g1.trim().is_empty() => return Ok(Some(at)),
            Some(at) if stable => {
                return Err(format!(
                    "gtid_slave_pos '{g1}' differs from the master's GTID position '{at}' at the coordinates applied here ({}:{}): set gtid_slave_pos by hand if one of them is wrong",
                    st2.relay_master_log_file, st2.exec_pos
                ))
            }
            Some(_) => continue,
        }
    }
    Err("gtid_slave_pos differs from the master's GTID position at the coordinates applied here (or replication moved on while they were read)".into())
}

impl MysqlOps for MysqlServer {
    fn may_write(&self) -> EffectFuture<'_, bool> {
        Box::pin(async move {
            let mut db = self.local().await?;
            let ro = Self::read_only(&mut db).await;
            db.close().await;
            Ok(!ro?)
        })
    }

    fn allow_write(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let db = self.local().await?;
            self.allow_write_on(db).await
        })
    }

    fn reassert_write(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let h = self.host(&self.this).ok_or_else(|| {
                EffectError::Other(format!("No connection info for '{}'", self.this))
            })?;
            let db = self
                .connect_within(h, self.timeout.min(OPTIONAL_CONNECT_TIMEOUT))
                .await?;
            self.allow_write_on(db).await
        })
    }

    fn deny_write(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let mut db = self.local().await?;
            let r = async {
                if !Self::read_only(&mut db).await? {
                    db.exec("SET GLOBAL read_only=1").await?;
                }
                if db.flavor.has_super_read_only() {
                    db.exec("SET GLOBAL super_read_only=1").await?;
                }
                self.kill_clients(&mut db).await?;
                // semi_sync: a read-only master does not wait for acknowledgements.
                let _ = self.semi_sync_upkeep(&mut db, Some(false)).await;
                Ok(())
            }
            .await;
            db.close().await;
            r
        })
    }

    fn sync_with_master<'a>(&'a self, failed: &'a [String]) -> EffectFuture<'a, ()> {
        Box::pin(async move {
            let peer_name = self
                .peer
                .clone()
                .ok_or_else(|| EffectError::Other("No peer defined".into()))?;
            let peer = self
                .host(&peer_name)
                .ok_or_else(|| {
                    EffectError::Other(format!("No connection info for peer '{peer_name}'"))
                })?
                .clone();
            // An upkeep pass must not stop the SQL thread under this wait.
            let _repl = self.repl_lock.lock().await;
            let deadline = Instant::now() + self.sync_timeout;
            let mut local = self.local().await?;
            // Whether the peer was demoted cleanly (reachable and read-only); if not, the
            // replication from it is held once this server caught up (hold_peer_link).
            let mut unclean = None;
            // The monitor found the peer failed (issue 14): no handshake is awaited from
            // it, as from an unreachable one (a frozen server accepts the TCP connect and
            // never answers; a cut host never answers the SYN).
            let reached = if failed.contains(&peer_name) {
                Err(EffectError::Other(
                    "the monitor found it failed (failed= in SET_STATUS)".into(),
                ))
            } else {
                self.connect_optional(&peer).await
            };
            let peer_pos = match reached {
                Ok(mut d) => {
                    let p = d.master_status().await.ok();
                    if p.is_none() {
                        unclean = Some("its master status could not be read".to_string());
                    } else if !matches!(Self::read_only(&mut d).await, Ok(true)) {
                        unclean = Some("it is still writable".to_string());
                    }
                    d.close().await;
                    p
                }
                Err(e) => {
                    tracing::info!(
                        "peer {peer_name} unreachable ({e}), waiting for the relay log only"
                    );
                    unclean = Some("unreachable".to_string());
                    None
                }
            };
            let peer_reachable = peer_pos.is_some();
            let r = async {
                match peer_pos {
                    Some((file, pos)) => local.pos_wait(&file, pos, deadline).await?,
                    None => {
                        local.slave_status().await?.ok_or_else(|| {
                            EffectError::Query("no slave status to sync with".into())
                        })?;
                        local.wait_received_applied(deadline).await?;
                    }
                }
                if !peer_reachable {
                    // The old master is gone: fetch what a survivor got from it and this
                    // server did not (never fails; logged).
                    self.catch_up(&mut local).await;
                }
                if let Some(why) = &unclean {
                    self.hold_peer_link(&mut local, &peer_name, why).await;
                }
                Ok(())
            }
            .await;
            local.close().await;
            r
        })
    }

    fn set_active_master<'a>(&'a self, new_master: &'a str) -> EffectFuture<'a, String> {
        Box::pin(self.set_active_master_inner(new_master))
    }

    fn master_host(&self) -> EffectFuture<'_, Option<String>> {
        Box::pin(async move {
            let mut db = self.local().await?;
            let s = db.slave_status().await;
            db.close().await;
            Ok(s?.map(|(h, _, _)| h).filter(|h| !h.is_empty()))
        })
    }

    fn resume_peer_link(&self) -> EffectFuture<'_, String> {
        Box::pin(async move {
            let _repl = self.repl_lock.lock().await;
            let mut db = self.local().await?;
            let r = async {
                let Some(st) = db.repl_status().await? else {
                    self.peer_held.store(false, Ordering::SeqCst);
                    return Ok("OK: This server is not a slave".to_string());
                };
                let held = self.peer_held.swap(false, Ordering::SeqCst);
                if st.io != "No" {
                    return Ok("OK: Replication from the peer was not held".to_string());
                }
                if !held && st.last_io_errno != 0 {
                    // Stopped by an error, not by the guard: the upkeep and the operator
                    // deal with it.
                    return Ok(format!(
                        "OK: Replication from the peer was not held (IO thread stopped with error {})",
                        st.last_io_errno
                    ));
                }
                let f = db.flavor;
                db.exec(f.start_io_thread()).await?;
                tracing::info!(
                    master = st.master_host.as_str(),
                    "Replication from {} resumed (RESUME_PEER_LINK)",
                    st.master_host
                );
                Ok("OK: Replication from the peer resumed".to_string())
            }
            .await;
            db.close().await;
            r
        })
    }

    fn start_slave(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let _repl = self.repl_lock.lock().await;
            let mut db = self.local().await?;
            let r = db.exec(db.flavor.start_slave()).await;
            db.close().await;
            r
        })
    }

    fn stop_slave(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let _repl = self.repl_lock.lock().await;
            let mut db = self.local().await?;
            let r = async {
                // Apply what was received before the SQL thread stops: with GTID the relay
                // log is discarded when the threads start again (module doc).
                db.exec(db.flavor.stop_io_thread()).await?;
                if let Err(e) = db
                    .drain_relay_log(Instant::now() + self.sync_timeout)
                    .await
                {
                    tracing::warn!(
                        "stopping replication with events not applied ({e}): they are fetched again from the master when replication starts"
                    );
                }
                db.exec(db.flavor.stop_slave()).await
            }
            .await;
            db.close().await;
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_write_statement;

    #[test]
    fn write_statements_are_recognised() {
        assert!(is_write_statement("insert into t values (1)"));
        assert!(is_write_statement("/* app */ UPDATE t SET a=1"));
        assert!(!is_write_statement("SELECT 1"));
        assert!(!is_write_statement(""));
    }
}
