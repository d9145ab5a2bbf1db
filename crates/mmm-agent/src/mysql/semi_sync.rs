//! The agent's side of `semi_sync 1`: it turns semi-synchronous replication on in its own
//! server (statements per flavour in `crate::semi_sync`), at start-up, on every upkeep pass
//! and when the writer role comes or goes.
//!
//! Who waits and who acknowledges (docs/data-safety.md "Semi-synchronous replication"):
//! - the master side (`rpl_semi_sync_master_enabled`) is on on the writer only (the server
//!   with `read_only=0`); a read-only master would otherwise make its own SQL thread wait
//!   for acknowledgements of the writer's transactions that it relays back;
//! - the slave side (`rpl_semi_sync_slave_enabled`) is on on the two masters only, never on
//!   a `mode slave` host: MariaDB and MySQL release a commit on the *first* acknowledgement
//!   (`wait_for_slave_count` = 1), so an acknowledgement from db3 would say nothing about
//!   the standby master. With the standby the only acknowledger, every acknowledged commit
//!   is in the standby's relay log (wait point AFTER_SYNC: before any client saw it);
//! - the slave side takes effect when the IO thread connects: the agent restarts the IO
//!   thread alone (the relay log is kept; restarting both threads would discard it on
//!   MariaDB with GTID).
//!
//! No standby to wait for: with the server's default `wait_no_slave=ON`, a writer with no
//! semi-sync slave connected at all (after a crash failover its only one, the old writer, is
//! dead) holds its first commits for the whole timeout before it falls back. The agent sets
//! it OFF on a writer without a semi-sync client and back ON within [`FOLLOW_INTERVAL`] of
//! one connecting: a standby that goes away while connected is still waited for, so an
//! acknowledgement keeps meaning "in the standby's relay log" whenever the monitor counts
//! the cluster as lossless (it never does without a connected client).
//!
//! A server without semi-sync, or one that refuses a setting, is reported at ERROR once;
//! the agent goes on with asynchronous replication and the monitor, which reads the servers'
//! semi-sync status itself, treats the cluster as not lossless.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Db, MysqlServer};
use crate::error::EffectError;
use crate::semi_sync::{SemiSyncKind, Side};

/// How often a writer without a semi-sync slave looks whether its standby is back.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// Bound on one such look (`semi_sync_follow`).
const FOLLOW_BOUND: Duration = Duration::from_secs(1);

impl MysqlServer {
    /// The server's semi-sync implementation, `None` (reported once) when it has none.
    async fn semi_sync_kind(&self, db: &mut Db) -> Result<Option<SemiSyncKind>, EffectError> {
        let version = db.scalar("SELECT VERSION()").await?.unwrap_or_default();
        let kind = SemiSyncKind::from_version(&version);
        if !kind.supported() {
            self.error_once(format!(
                "semi_sync is set, but this server ({version}) has no semi-synchronous replication: replication stays asynchronous and the monitor does not count on it (a crash failover may lose writes)"
            ));
            return Ok(None);
        }
        Ok(Some(kind))
    }

    /// Logs `text` at ERROR the first time it is seen.
    fn error_once(&self, text: String) {
        if self.memory().said.insert(text.clone()) {
            tracing::error!("{text}");
        }
    }

    /// The (name → value) rows of a `SHOW … VARIABLES/STATUS LIKE` query, names lower case.
    async fn name_values(
        db: &mut Db,
        query: &str,
    ) -> Result<BTreeMap<String, String>, EffectError> {
        let rows = db.query(query).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let name: String = r.get_opt(0)?.ok()?;
                let value: String = r.get_opt(1)?.ok()?;
                Some((name.to_ascii_lowercase(), value))
            })
            .collect())
    }

    /// MySQL: installs the plugin of `side` unless it is installed.
    async fn semi_sync_plugin(
        db: &mut Db,
        kind: SemiSyncKind,
        side: Side,
    ) -> Result<(), EffectError> {
        let (Some(name), Some(install)) = (kind.plugin_name(side), kind.install_plugin(side))
        else {
            return Ok(());
        };
        let q = format!(
            "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='{name}'"
        );
        if db.scalar(&q).await?.is_none() {
            db.exec(&install).await?;
            tracing::info!("semi_sync: installed plugin {name}");
        }
        Ok(())
    }

    /// Brings the local server's semi-sync settings to what its part needs (module doc):
    /// `writer` says whether it takes writes now (`None`: read `read_only`). Returns what
    /// was changed. Called under the replication lock.
    pub(super) async fn semi_sync_upkeep(
        &self,
        db: &mut Db,
        writer: Option<bool>,
    ) -> Result<Vec<String>, EffectError> {
        if !self.semi_sync || self.memory().refused_semi_sync {
            return Ok(Vec::new());
        }
        let Some(kind) = self.semi_sync_kind(db).await? else {
            return Ok(Vec::new());
        };
        let r = self.semi_sync_apply(db, kind, writer).await;
        if let Err(e @ EffectError::Query(_)) = &r {
            self.memory().refused_semi_sync = true;
            self.error_once(format!(
                "semi_sync: the server refused the semi-synchronous replication settings ({e}): replication stays asynchronous and the monitor does not count on it; not tried again until the agent restarts"
            ));
        }
        r
    }

    /// The writer's `wait_no_slave` (module doc, "No standby to wait for"): OFF while no
    /// semi-sync slave is connected to the writer, ON as soon as one is (and on a
    /// read-only master, where it does not matter, the server's default ON). `current` is
    /// the variable's value. Records whether the writer is waiting for its standby to come
    /// back ([`MysqlServer::semi_sync_follow`] then looks every [`FOLLOW_INTERVAL`]).
    async fn semi_sync_wait_no_slave(
        &self,
        db: &mut Db,
        kind: SemiSyncKind,
        writer: bool,
        current: &str,
    ) -> Result<Option<String>, EffectError> {
        let clients = if writer {
            Self::name_values(db, kind.status_query())
                .await?
                .get(&kind.clients_var().to_ascii_lowercase())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        } else {
            0
        };
        let want = !writer || clients > 0;
        // A server without the variable: nothing to follow.
        self.memory().semi_sync_no_standby = !want && !current.is_empty();
        let is_on = current == "1" || current.eq_ignore_ascii_case("ON");
        if is_on == want || current.is_empty() {
            return Ok(None);
        }
        db.exec(&kind.set_wait_no_slave(want)).await?;
        let var = kind.wait_no_slave_var();
        Ok(Some(if want {
            if writer {
                format!("a semi-sync slave (the standby master) is connected again: commits wait for its acknowledgement when it goes away ({var}=ON)")
            } else {
                format!("{var}=ON (read-only master)")
            }
        } else {
            format!("no semi-sync slave is connected to this writer (the standby master is down or not replicating): commits do not wait {} ms for one ({var}=OFF) until it is back; the monitor counts the cluster as not lossless meanwhile", self.semi_sync_timeout.as_millis())
        }))
    }

    /// While the writer has no semi-sync slave ([`MysqlServer::semi_sync_wait_no_slave`]):
    /// looks whether one connected and turns `wait_no_slave` back ON. Called every
    /// [`FOLLOW_INTERVAL`] by the upkeep loop, only in that state. It never waits for the
    /// replication lock (an effect holding it goes first; the next look comes 0.2 s later)
    /// and gives up after [`FOLLOW_BOUND`] (a hung local server must not hold the lock).
    pub(super) async fn semi_sync_follow(&self) -> Result<(), EffectError> {
        if !self.memory().semi_sync_no_standby {
            return Ok(());
        }
        let Ok(_repl) = self.repl_lock.try_lock() else {
            return Ok(());
        };
        let look = async {
            let mut db = self.local().await?;
            let r = self.semi_sync_upkeep(&mut db, None).await;
            db.close().await;
            r.map(|_| ())
        };
        tokio::time::timeout(FOLLOW_BOUND, look)
            .await
            .unwrap_or(Ok(()))
    }

    async fn semi_sync_apply(
        &self,
        db: &mut Db,
        kind: SemiSyncKind,
        writer: Option<bool>,
    ) -> Result<Vec<String>, EffectError> {
        let is_master = self.peer.is_some();
        if is_master {
            Self::semi_sync_plugin(db, kind, Side::Master).await?;
            Self::semi_sync_plugin(db, kind, Side::Slave).await?;
        }
        let vars = Self::name_values(db, kind.variables_query()).await?;
        let get = |v: String| vars.get(&v).cloned().unwrap_or_default();
        let on = |v: String| {
            let x = get(v);
            x == "1" || x.eq_ignore_ascii_case("ON")
        };
        let mut done = Vec::new();
        if is_master {
            let writer = match writer {
                Some(w) => w,
                None => !Self::read_only(db).await?,
            };
            let ms = self.semi_sync_timeout.as_millis().max(1).to_string();
            let want_master = [
                (kind.wait_point_var(), "AFTER_SYNC".to_string()),
                (kind.timeout_var(), ms),
            ];
            let stale = want_master
                .iter()
                .any(|(v, want)| !get(v.clone()).eq_ignore_ascii_case(want));
            if stale || on(kind.enabled_var(Side::Master)) != writer {
                for q in kind.master_settings(self.semi_sync_timeout, writer) {
                    db.exec(&q).await?;
                }
                done.push(format!(
                    "semi-sync master side {} (wait point AFTER_SYNC, timeout {} ms)",
                    if writer { "on" } else { "off" },
                    self.semi_sync_timeout.as_millis()
                ));
            }
            if let Some(change) = self
                .semi_sync_wait_no_slave(db, kind, writer, &get(kind.wait_no_slave_var()))
                .await?
            {
                done.push(change);
            }
        }
        // The slave side: on on the masters, off elsewhere (module doc).
        if on(kind.enabled_var(Side::Slave)) != is_master {
            db.exec(&kind.set_enabled(Side::Slave, is_master)).await?;
            done.push(format!(
                "semi-sync slave side {}",
                if is_master { "on" } else { "off" }
            ));
            // It takes effect when the IO thread connects: restart the IO thread alone,
            // which keeps the relay log.
            if let Some(st) = db.repl_status().await? {
                if st.io_running() {
                    let f = db.flavor;
                    db.exec(f.stop_io_thread()).await?;
                    db.exec(f.start_io_thread()).await?;
                    done.push("IO thread restarted for it (relay log kept)".into());
                }
            }
        }
        if !done.is_empty() {
            tracing::info!("semi_sync: {}", done.join("; "));
        }
        Ok(done)
    }
}
