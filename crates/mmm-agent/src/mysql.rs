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
//!   master's gtid_binlog_pos covers the local gtid_slave_pos; MySQL auto-position when
//!   gtid_mode=ON) else the new master's SHOW MASTER STATUS read after (3); START SLAVE.
//!   On a failure after (2) the slave threads are restarted on the old master.
//! - `deny_write`: read_only=1 (+ super_read_only=1 where it exists), then MMM's kill loop,
//!   which spares the agent and monitor accounts (2.2.1 spared only its own connection).

use std::time::{Duration, Instant};

use mmm_common::config::{AgentHost, AgentSettings};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use crate::effects::{EffectFuture, MysqlOps};
use crate::error::EffectError;
use crate::flavor::{gtid_covers, parse_gtid_pos, ChangeMaster, Flavor, Position};

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

    /// The first row of SHOW SLAVE STATUS: (master host, master log file, read pos).
    async fn slave_status(&mut self) -> Result<Option<(String, String, u64)>, EffectError> {
        let rows = self.query(self.flavor.show_slave_status()).await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let (h, f, p) = self.flavor.slave_columns();
        Ok(Some((
            col(r, h).unwrap_or_default(),
            col(r, f).unwrap_or_default(),
            col(r, p).and_then(|s| s.parse().ok()).unwrap_or(0),
        )))
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
        let (_, file, pos) = local
            .slave_status()
            .await?
            .ok_or_else(|| EffectError::Other("slave status vanished".into()))?;
        local.pos_wait(&file, pos, deadline).await?;
        // (3) The new master applies everything it received from the old master.
        let mut new_db = self.connect(new).await?;
        if let Some((nm_host, nm_file, nm_pos)) = new_db.slave_status().await? {
            if old.is_some_and(|o| o.ip == nm_host) {
                match &old_pos {
                    Some((f, p)) => new_db.pos_wait(f, *p, deadline).await?,
                    None => new_db.pos_wait(&nm_file, nm_pos, deadline).await?,
                }
            }
        }
        // (4) Re-point.
        let position = self.choose_position(local, &mut new_db).await?;
        new_db.close().await;
        local.exec(local.flavor.stop_slave()).await?;
        let sql = local.flavor.change_master(&ChangeMaster {
            host: new.ip.clone(),
            port: new.port,
            user: new.replication_user.clone(),
            password: new.replication_password.clone(),
            position: position.clone(),
        });
        local.exec(&sql).await?;
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
            (Flavor::MariaDb, Flavor::MariaDb) => {
                let slave_pos = local
                    .scalar("SELECT @@gtid_slave_pos")
                    .await?
                    .unwrap_or_default();
                let binlog = new_db
                    .scalar("SELECT @@gtid_binlog_pos")
                    .await?
                    .unwrap_or_default();
                if gtid_covers(&binlog, &slave_pos) {
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
            (Flavor::MariaDb, _) | (_, Flavor::MariaDb) => {}
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
            let mut db = self.local().await?;
            let r = async {
                if Self::read_only(&mut db).await? {
                    // On MySQL, read_only=0 also clears super_read_only.
                    db.exec("SET GLOBAL read_only=0").await?;
                }
                Ok(())
            }
            .await;
            db.close().await;
            r
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
                self.kill_clients(&mut db).await
            }
            .await;
            db.close().await;
            r
        })
    }

    fn sync_with_master(&self) -> EffectFuture<'_, ()> {
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
            let deadline = Instant::now() + self.sync_timeout;
            let mut local = self.local().await?;
            let peer_pos = match self.connect_optional(&peer).await {
                Ok(mut d) => {
                    let p = d.master_status().await.ok();
                    d.close().await;
                    p
                }
                Err(e) => {
                    tracing::info!(
                        "peer {peer_name} unreachable ({e}), waiting for the relay log only"
                    );
                    None
                }
            };
            let r = async {
                let (file, pos) = match peer_pos {
                    Some(p) => p,
                    None => {
                        let (_, f, p) = local.slave_status().await?.ok_or_else(|| {
                            EffectError::Query("no slave status to sync with".into())
                        })?;
                        (f, p)
                    }
                };
                local.pos_wait(&file, pos, deadline).await
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

    fn start_slave(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let mut db = self.local().await?;
            let r = db.exec(db.flavor.start_slave()).await;
            db.close().await;
            r
        })
    }

    fn stop_slave(&self) -> EffectFuture<'_, ()> {
        Box::pin(async move {
            let mut db = self.local().await?;
            let r = db.exec(db.flavor.stop_slave()).await;
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
