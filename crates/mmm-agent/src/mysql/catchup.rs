//! Catch-up from the most advanced survivor (issue 13): before a master takes the writer
//! role while its peer (the old active master) is unreachable, it fetches the transactions
//! that a surviving server received from the old master and it did not.
//!
//! MariaDB with GTID only (`MASTER_USE_GTID` on the local link). The local server's
//! `gtid_current_pos` is compared, per replication domain, with every other reachable
//! host's `gtid_binlog_pos` (what that host can serve); a host is ahead in a domain when its
//! last GTID there has a higher sequence number and was written by the old master (the
//! `Master_Server_Id` of the local link; a survivor's relay log counts while its SQL thread
//! runs). From the most advanced host first (every survivor is asked again after each
//! catch-up), the local link is stopped the relay-log-safe way (IO thread, relay log
//! applied, SQL thread), pointed at that host by GTID (`MASTER_USE_GTID=slave_pos`, one
//! CHANGE MASTER) and started; the agent polls until the local `gtid_current_pos` reaches
//! the host's position, an error of the slave threads, or `sync_timeout`; then the link is
//! pointed back at the old master (its address and the configuration's replication account,
//! as MMM leaves it; by GTID from the new `gtid_slave_pos`, so nothing is fetched twice when
//! it returns) and the threads that ran start again.
//!
//! (Not a named MariaDB multi-source connection, which would leave the MMM link untouched:
//! removing one needs `RELOAD` (`RESET SLAVE '…' ALL`), which the agent account does not
//! have, and one left behind starts with the server and applies the same transactions
//! beside the MMM link — the first testbed run of this code ended in a duplicate key.)
//!
//! Never blocks a failover: any failure or a survivor that does not deliver within the
//! bound is logged at ERROR and the writer role goes on with what this server has. What was
//! recovered, from which host, is logged at WARN.

use crate::flavor::triples as parse_gtids;
use std::time::{Duration, Instant};

use super::{col, Db, HostDb, MysqlServer};
use crate::error::EffectError;
use crate::flavor::{ChangeMaster, Flavor, Position, LINK, NET_TIMEOUT};

/// How often the catch-up looks at its progress.
const POLL: Duration = Duration::from_millis(20);

/// One GTID: (domain, server id, sequence number).
type Gtid = (u32, u32, u64);

/// The GTIDs of `survivor` (a host's `gtid_binlog_pos`) that are ahead of `own` (the local
/// `gtid_current_pos`): per domain, a higher sequence number (or a domain `own` lacks),
/// written by `old_master` when its server id is known, never by `own_server_id`.
pub fn ahead_of(
    survivor: &str,
    own: &str,
    old_master: Option<u32>,
    own_server_id: u32,
) -> Vec<Gtid> {
    let own = parse_gtids(own);
    parse_gtids(survivor)
        .into_iter()
        .filter(|&(d, srv, n)| {
            srv != own_server_id
                && old_master.is_none_or(|m| m == srv)
                && own
                    .iter()
                    .find(|(od, _, _)| *od == d)
                    .is_none_or(|&(_, _, on)| n > on)
        })
        .collect()
}

/// How many transactions `ahead` holds beyond `own` (sequence numbers are consecutive within
/// a domain).
pub fn count_ahead(ahead: &[Gtid], own: &str) -> u64 {
    let own = parse_gtids(own);
    ahead
        .iter()
        .map(|&(d, _, n)| {
            let base = own
                .iter()
                .find(|(od, _, _)| *od == d)
                .map_or(0, |&(_, _, on)| on);
            n.saturating_sub(base)
        })
        .sum()
}

/// Whether `pos` (a `gtid_current_pos`) has reached every GTID of `target` in its domain.
fn reached(pos: &str, target: &[Gtid]) -> bool {
    let pos = parse_gtids(pos);
    target
        .iter()
        .all(|&(d, _, n)| pos.iter().any(|&(pd, _, pn)| pd == d && pn >= n))
}

fn list(g: &[Gtid]) -> String {
    g.iter()
        .map(|(d, s, n)| format!("{d}-{s}-{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Per domain, the GTID with the higher sequence number of `a` and `b`.
pub fn merge_max(a: &str, b: &str) -> String {
    let mut out: Vec<Gtid> = Vec::new();
    for g in parse_gtids(a).into_iter().chain(parse_gtids(b)) {
        match out.iter_mut().find(|o| o.0 == g.0) {
            Some(o) if g.2 > o.2 => *o = g,
            Some(_) => {}
            None => out.push(g),
        }
    }
    list(&out)
}

/// A survivor's (position it can serve, `gtid_slave_pos`); None when unreadable.
async fn survivor_positions(db: &mut Db) -> Option<(String, String)> {
    let binlog = db
        .scalar("SELECT @@global.gtid_binlog_pos")
        .await
        .ok()?
        .unwrap_or_default();
    let slave = db
        .scalar("SELECT @@global.gtid_slave_pos")
        .await
        .ok()?
        .unwrap_or_default();
    let io = match db.query("SHOW SLAVE STATUS").await {
        Ok(rows) => rows.first().and_then(|r| {
            (col(r, "Slave_SQL_Running").as_deref() == Some("Yes"))
                .then(|| col(r, "Gtid_IO_Pos"))
                .flatten()
        }),
        Err(_) => None,
    };
    let position = match io {
        Some(io) => merge_max(&binlog, &io),
        None => binlog,
    };
    Some((position, slave))
}

/// A host that holds transactions the local server lacks.
struct Survivor {
    host: HostDb,
    /// What it can serve: its `gtid_binlog_pos`, with its `Gtid_IO_Pos` where ahead.
    position: String,
    /// How many transactions it is ahead.
    count: u64,
}

impl MysqlServer {
    /// The catch-up (module doc). Called under the replication lock, after the local
    /// server applied its relay log, with the peer unreachable. Never fails: every problem
    /// is logged and the writer role goes on.
    pub(super) async fn catch_up(&self, local: &mut Db) {
        if !local.flavor.mariadb_gtid() {
            let why = match local.flavor {
                Flavor::MariaDb { .. } => "this MariaDB version has no GTID",
                _ => "it is implemented for MariaDB only",
            };
            self.warn_once(format!(
                "Catch-up from the most advanced survivor skipped: {why}; a slave that received more from the old master than this server keeps replicating from the old master until it returns"
            ));
            return;
        }
        let st = match local.repl_status().await {
            Ok(Some(st)) => st,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("Catch-up from the most advanced survivor skipped: {e}");
                return;
            }
        };
        if st.using_gtid.as_deref().is_none_or(|g| g == "No") {
            self.warn_once(format!(
                "Catch-up from the most advanced survivor skipped: the replication from {} is by binlog position, catch-up needs GTID (MASTER_USE_GTID)",
                st.master_host
            ));
            return;
        }
        let Some(old) = self.hosts.iter().find(|h| h.ip == st.master_host).cloned() else {
            self.warn_once(format!(
                "Catch-up from the most advanced survivor skipped: this server replicates from {}, not a host of the configuration, so its link could not be restored",
                st.master_host
            ));
            return;
        };
        let own_id = match local.scalar("SELECT @@global.server_id").await {
            Ok(Some(v)) => v.trim().parse().unwrap_or(0),
            _ => 0,
        };
        let old_master = st.master_server_id.filter(|id| *id != 0);
        let deadline = Instant::now() + self.sync_timeout;
        // Most advanced first; the others are asked again after each catch-up (one may
        // hold a transaction more than the first, or have applied more of its relay log).
        let mut tried: Vec<String> = Vec::new();
        loop {
            let survivors = self
                .survivors(local, &st.master_host, old_master, own_id, &tried)
                .await;
            let Some(s) = survivors.into_iter().max_by_key(|s| s.count) else {
                break;
            };
            tried.push(s.host.name.clone());
            let own = match local.scalar("SELECT @@global.gtid_current_pos").await {
                Ok(v) => v.unwrap_or_default(),
                Err(e) => {
                    tracing::error!("Catch-up from {} not done: {e}", s.host.name);
                    break;
                }
            };
            let target = ahead_of(&s.position, &own, old_master, own_id);
            if target.is_empty() {
                continue;
            }
            let count = count_ahead(&target, &own);
            tracing::warn!(
                "Catching up from {}: it has {count} transaction(s) from the old master that this server lacks (it is at {}, this server at {own}); fetching them before taking writes",
                s.host.name,
                list(&target)
            );
            let started = Instant::now();
            match self
                .pull_from(local, &s.host, &old, &target, deadline)
                .await
            {
                Ok(()) => tracing::warn!(
                    "Caught up from {}: recovered {count} transaction(s) ({own} → {}) in {:.2} s",
                    s.host.name,
                    list(&target),
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    let now = local
                        .scalar("SELECT @@global.gtid_current_pos")
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    tracing::error!(
                        "Catch-up from {} failed ({e}): taking writes without the transactions up to {} this server lacks (now at {now}); they are lost unless the old master returns",
                        s.host.name,
                        list(&target)
                    );
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }

    /// Every other reachable MariaDB host (not the old master, not in `skip`) that is
    /// ahead of the local server. What a host can serve is its binlog plus, while its SQL
    /// thread runs, what its relay log holds (`Gtid_IO_Pos`: it reaches the binlog as it is
    /// applied, and the catch-up connection streams it from there). Hosts that received
    /// more but cannot serve it (`log_slave_updates` off) are logged at ERROR.
    async fn survivors(
        &self,
        local: &mut Db,
        old_master_ip: &str,
        old_master: Option<u32>,
        own_id: u32,
        skip: &[String],
    ) -> Vec<Survivor> {
        let own = local
            .scalar("SELECT @@global.gtid_current_pos")
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let others: Vec<HostDb> = self
            .hosts
            .iter()
            .filter(|h| {
                h.name != self.this
                    && h.ip != old_master_ip
                    && self.peer.as_deref() != Some(h.name.as_str())
                    && !skip.contains(&h.name)
            })
            .cloned()
            .collect();
        // The full connect bound, not the short one for a peer that may be dead: a
        // survivor behind a busy link (seen with the standby's inbound link rate-limited:
        // its answers queue behind the replication stream) must not be skipped silently,
        // it may hold exactly the transactions this server lacks.
        let asks = others.iter().map(|h| async move {
            let mut db = match self.connect(h).await {
                Ok(db) => db,
                Err(e) => {
                    tracing::error!(
                        "Catch-up: could not ask {} whether it holds transactions from the old master that this server lacks ({e}); what only it has is lost",
                        h.name
                    );
                    return None;
                }
            };
            let r = if db.flavor.mariadb_gtid() {
                survivor_positions(&mut db).await
            } else {
                None
            };
            db.close().await;
            r.map(|(b, s)| (h.clone(), b, s))
        });
        let mut out = Vec::new();
        for (host, position, slave_pos) in
            futures::future::join_all(asks).await.into_iter().flatten()
        {
            let ahead = ahead_of(&position, &own, old_master, own_id);
            if !ahead.is_empty() {
                let count = count_ahead(&ahead, &own);
                out.push(Survivor {
                    host,
                    position,
                    count,
                });
            } else if !ahead_of(&slave_pos, &own, old_master, own_id).is_empty() {
                tracing::error!(
                    "{} applied transactions from the old master that this server lacks (its gtid_slave_pos {slave_pos}, this server {own}) but its binlog does not have them (log_slave_updates off?): they cannot be fetched from it",
                    host.name
                );
            }
        }
        out
    }

    /// Replicates from `from` until the local server has `target` (or `deadline`, or an
    /// error of the slave threads), then points the link back at `old` (the old master, as
    /// MMM leaves it) and starts again the threads that ran.
    async fn pull_from(
        &self,
        local: &mut Db,
        from: &HostDb,
        old: &HostDb,
        target: &[Gtid],
        deadline: Instant,
    ) -> Result<(), EffectError> {
        let f = local.flavor;
        let st = local
            .repl_status()
            .await?
            .ok_or_else(|| EffectError::Other("slave status vanished".into()))?;
        let (io_was, sql_was) = (st.io_running(), st.sql_running());
        if io_was {
            local.exec(f.stop_io_thread()).await?;
        }
        // The relay log is applied before the SQL thread stops (it is discarded when the
        // threads start again with GTID); when it cannot be, nothing else changes.
        if let Err(e) = local.drain_relay_log(deadline).await {
            if io_was {
                let _ = local.exec(f.start_io_thread()).await;
            }
            return Err(EffectError::Other(format!(
                "the local relay log could not be applied first: {e}"
            )));
        }
        local.exec(f.stop_slave()).await?;
        let net = local
            .net_timeout()
            .await
            .ok()
            .flatten()
            .unwrap_or(NET_TIMEOUT);
        let result = async {
            self.point_at(local, from, net).await?;
            local.exec(f.start_slave()).await?;
            self.wait_catchup(local, target, deadline).await
        }
        .await;
        // Back to the old master, whatever happened: from the new gtid_slave_pos, so
        // nothing is fetched twice when it returns.
        let _ = local.exec(f.stop_slave()).await;
        if let Err(e) = self.point_at(local, old, net).await {
            tracing::error!(
                "could not point replication back at {} after the catch-up ({e}): it still points at {}; fix it with CHANGE MASTER",
                old.name,
                from.name
            );
            return result;
        }
        let restart = f.restart_threads(io_was, sql_was);
        if let Some(q) = restart {
            if let Err(e) = local.exec(q).await {
                tracing::error!(
                    "'{q}' failed after the catch-up ({e}): replication from {} is stopped",
                    old.name
                );
            }
        }
        result
    }

    /// One CHANGE MASTER (applied whole or not at all) to `to` by GTID with the link
    /// settings; a server that refuses them gets it without.
    async fn point_at(&self, local: &mut Db, to: &HostDb, net: u32) -> Result<(), EffectError> {
        let mut target = ChangeMaster {
            host: to.ip.clone(),
            port: to.port,
            user: to.replication_user.clone(),
            password: to.replication_password.clone(),
            position: Position::MariaGtid,
            link: Some(LINK.for_net_timeout(net)),
        };
        if local
            .exec(&local.flavor.change_master(&target))
            .await
            .is_err()
        {
            target.link = None;
            local.exec(&local.flavor.change_master(&target)).await?;
        }
        Ok(())
    }

    async fn wait_catchup(
        &self,
        local: &mut Db,
        target: &[Gtid],
        deadline: Instant,
    ) -> Result<(), EffectError> {
        loop {
            let pos = local
                .scalar("SELECT @@global.gtid_current_pos")
                .await?
                .unwrap_or_default();
            if reached(&pos, target) {
                return Ok(());
            }
            let rows = local.query(local.flavor.show_slave_status()).await?;
            if let Some(r) = rows.first() {
                for (no, text) in [
                    ("Last_IO_Errno", "Last_IO_Error"),
                    ("Last_SQL_Errno", "Last_SQL_Error"),
                ] {
                    let errno = col(r, no).unwrap_or_default();
                    if !errno.is_empty() && errno != "0" {
                        return Err(EffectError::Other(format!(
                            "{no} {errno}: {}",
                            col(r, text).unwrap_or_default()
                        )));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(EffectError::Timeout {
                    what: format!("catch-up to {}", list(target)),
                    after: self.sync_timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_survivor_ahead_in_the_old_masters_domain() {
        // db2 (server 2) applied up to 0-1-500; db3 received up to 0-1-510.
        let a = ahead_of("0-1-510", "0-1-500", Some(1), 2);
        assert_eq!(a, vec![(0, 1, 510)]);
        assert_eq!(count_ahead(&a, "0-1-500"), 10);
        assert!(reached("0-1-510", &a));
        assert!(!reached("0-1-509", &a));
    }

    #[test]
    fn not_ahead_when_equal_behind_own_or_foreign() {
        assert!(ahead_of("0-1-500", "0-1-500", Some(1), 2).is_empty());
        assert!(ahead_of("0-1-400", "0-1-500", Some(1), 2).is_empty());
        // Its last transaction is this server's own.
        assert!(ahead_of("0-2-600", "0-1-500", Some(1), 2).is_empty());
        // Written by a third server (a slave's errant write), not the old master.
        assert!(ahead_of("0-3-600", "0-1-500", Some(1), 2).is_empty());
        // Old master unknown: anything but this server's own counts.
        assert_eq!(ahead_of("0-3-600", "0-1-500", None, 2), vec![(0, 3, 600)]);
    }

    #[test]
    fn the_relay_log_counts_where_it_is_ahead() {
        assert_eq!(merge_max("0-1-500", "0-1-510"), "0-1-510");
        assert_eq!(merge_max("0-1-510,1-1-3", "0-1-500"), "0-1-510,1-1-3");
        assert_eq!(merge_max("", "0-1-5"), "0-1-5");
    }

    #[test]
    fn per_domain() {
        let a = ahead_of("0-1-500,1-1-20", "1-1-10,0-1-500", Some(1), 2);
        assert_eq!(a, vec![(1, 1, 20)]);
        assert_eq!(count_ahead(&a, "1-1-10,0-1-500"), 10);
        // A domain this server never saw.
        let a = ahead_of("0-1-5,7-1-3", "0-1-5", Some(1), 2);
        assert_eq!(a, vec![(7, 1, 3)]);
        assert_eq!(count_ahead(&a, "0-1-5"), 3);
        assert!(parse_gtids("garbage,0-1").is_empty());
        assert!(reached("", &[]));
    }
}
