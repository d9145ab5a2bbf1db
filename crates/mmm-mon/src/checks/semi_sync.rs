//! The semi-sync watch (extension directive `semi_sync`, issue 13): knows at every moment
//! whether the standby master holds every write the active master acknowledged, and tells
//! the core when that changes (`Input::Durability`).
//!
//! Every [`POLL`] it reads, from both masters at once (one kept connection each, every
//! query bounded): `read_only`, the semi-sync status variables (`Rpl_semi_sync_master_status`
//! and `_clients`, `Rpl_semi_sync_slave_status`; `source`/`replica` on MySQL 8.0.26+), the
//! binlog position (MariaDB `gtid_binlog_pos`) and the slave status (IO thread, master
//! host, MariaDB `Gtid_IO_Pos`: what it *received*).
//!
//! The writer is the master with `read_only=0`. Lossless means: the writer's semi-sync is
//! on with a client, the standby's slave side is on, its IO thread connected to the writer,
//! and it has received the **ack ledger** position: the writer's binlog position as it was
//! at least [`LEDGER_AGE`] ago (a commit waits for its acknowledgement much less than that
//! while semi-sync is on; one that waited longer, until the timeout, is in the ledger and
//! missing on the standby, so a fallback is seen even before the status variable says so).
//!
//! When no master is writable (the writer crashed, or a switch is under way) the verdict
//! is frozen as it was at the last look at the writer; a verdict that was lossless is then
//! checked once more against what the standby has received (it must hold the ledger). The
//! ledger comparison needs MariaDB GTID positions; on MySQL the verdict rests on the status
//! variables alone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mmm_common::config::{MonitorSettings, MysqlTarget};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tracing::debug;

use super::InputFn;
use crate::core::{Durability, Input};

/// Time between two looks at the masters.
pub const POLL: Duration = Duration::from_millis(200);

/// Age of the ledger position the standby must have received (module doc).
pub const LEDGER_AGE: Duration = Duration::from_millis(600);

/// Connect and query bound.
const TIMEOUT: Duration = Duration::from_secs(1);

/// What one look at a master found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasterView {
    /// `read_only` is off.
    pub writable: bool,
    /// `Rpl_semi_sync_master_status` is ON.
    pub master_on: bool,
    /// `Rpl_semi_sync_master_clients`.
    pub clients: u32,
    /// `Rpl_semi_sync_slave_status` is ON.
    pub slave_on: bool,
    /// `Slave_IO_Running` (empty: not a slave).
    pub io: String,
    /// `Master_Host`.
    pub master_host: String,
    /// MariaDB `gtid_binlog_pos` (empty elsewhere).
    pub binlog_pos: String,
    /// MariaDB `Gtid_IO_Pos`: received up to (empty elsewhere).
    pub io_pos: String,
}

/// The (domain, seq) pairs of a MariaDB GTID list.
fn domains(s: &str) -> Vec<(u32, u64)> {
    s.split(',')
        .filter_map(|g| {
            let mut it = g.trim().split('-');
            let d = it.next()?.parse().ok()?;
            let _srv: u32 = it.next()?.parse().ok()?;
            let n = it.next()?.parse().ok()?;
            Some((d, n))
        })
        .collect()
}

/// Whether the GTID lists `have` hold `ledger`: every domain of the ledger with a sequence
/// number at least as high. An empty ledger (not MariaDB, nothing written) is held.
pub fn holds(have: &[&str], ledger: &str) -> bool {
    let have: Vec<(u32, u64)> = have.iter().flat_map(|h| domains(h)).collect();
    domains(ledger)
        .iter()
        .all(|(d, n)| have.iter().any(|(hd, hn)| hd == d && hn >= n))
}

/// The watch's memory between looks.
#[derive(Debug, Default)]
pub struct Watch {
    /// The writer's binlog positions of recent looks (newest last).
    positions: VecDeque<(Instant, String)>,
    /// The last writer seen (index into the masters).
    writer: Option<usize>,
    /// The ledger: the writer's position at least [`LEDGER_AGE`] old at the last look.
    ledger: String,
    /// The last verdict.
    verdict: Option<Durability>,
}

impl Watch {
    /// One look: `views[i]` is master `i`'s view (`None`: unreachable), `names`/`ips` its
    /// name and address. Returns the verdict.
    pub fn look(
        &mut self,
        now: Instant,
        names: &[String],
        ips: &[String],
        views: &[Option<MasterView>],
    ) -> Durability {
        let writers: Vec<usize> = (0..views.len())
            .filter(|&i| views[i].as_ref().is_some_and(|v| v.writable))
            .collect();
        let d = match writers.as_slice() {
            [w] => self.look_at_writer(now, *w, names, ips, views),
            [] => self.frozen(names, views),
            _ => Durability {
                lossless: false,
                why: "more than one master is writable".into(),
            },
        };
        self.verdict = Some(d.clone());
        d
    }

    fn look_at_writer(
        &mut self,
        now: Instant,
        w: usize,
        names: &[String],
        ips: &[String],
        views: &[Option<MasterView>],
    ) -> Durability {
        if self.writer != Some(w) {
            self.positions.clear();
            self.writer = Some(w);
        }
        let wv = views[w].clone().unwrap_or_default();
        self.positions.push_back((now, wv.binlog_pos.clone()));
        // The newest position at least LEDGER_AGE old (the oldest one kept until then).
        while self.positions.len() > 1
            && self
                .positions
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= LEDGER_AGE)
        {
            self.positions.pop_front();
        }
        let (w_name, w_ip) = (&names[w], &ips[w]);
        let not = |why: String| Durability {
            lossless: false,
            why,
        };
        let aged = self
            .positions
            .front()
            .filter(|(t, _)| now.duration_since(*t) >= LEDGER_AGE);
        if !wv.master_on {
            return not(format!(
                "semi-sync is off on the writer {w_name} (it fell back to asynchronous replication or was never on)"
            ));
        }
        if wv.clients == 0 {
            return not(format!(
                "no semi-sync slave is connected to the writer {w_name}"
            ));
        }
        let Some(s) = (0..views.len()).find(|&i| i != w) else {
            return not("no standby master configured".into());
        };
        let s_name = &names[s];
        let Some(sv) = &views[s] else {
            return not(format!("the standby {s_name} does not answer"));
        };
        if !sv.slave_on {
            return not(format!(
                "semi-sync is not active on the standby {s_name} (Rpl_semi_sync_slave_status OFF)"
            ));
        }
        if sv.io != "Yes" || sv.master_host != *w_ip {
            return not(format!(
                "the standby {s_name} is not connected to {w_name} (Slave_IO_Running: {}, Master_Host: {})",
                sv.io, sv.master_host
            ));
        }
        if let Some((_, ledger)) = aged {
            if !holds(&[&sv.io_pos, &sv.binlog_pos], ledger) {
                return not(format!(
                    "the standby {s_name} has received up to {} only, the writer {w_name} had written {ledger} {} ms before",
                    sv.io_pos,
                    LEDGER_AGE.as_millis()
                ));
            }
            self.ledger = ledger.clone();
        }
        Durability {
            lossless: true,
            why: format!("{w_name} waits for the acknowledgement of {s_name} (AFTER_SYNC)"),
        }
    }

    /// No writable master: the last verdict stands; a lossless one is checked against what
    /// the standby has received.
    fn frozen(&mut self, names: &[String], views: &[Option<MasterView>]) -> Durability {
        let last = self.verdict.clone().unwrap_or(Durability {
            lossless: false,
            why: "no writer was seen yet".into(),
        });
        let Some(w) = self.writer else {
            return last;
        };
        if !last.lossless {
            return last;
        }
        let Some((s, Some(sv))) = views.iter().enumerate().find(|(i, _)| *i != w) else {
            return last;
        };
        if holds(&[&sv.io_pos, &sv.binlog_pos], &self.ledger) {
            let pos = if self.ledger.is_empty() {
                String::new()
            } else {
                format!("; the ledger position {} is on {}", self.ledger, names[s])
            };
            Durability {
                lossless: true,
                why: format!("semi-sync was on at the last look at {}{pos}", names[w]),
            }
        } else {
            Durability {
                lossless: false,
                why: format!(
                    "{} has received up to {} only, but {} had acknowledged up to {}",
                    names[s], sv.io_pos, names[w], self.ledger
                ),
            }
        }
    }
}

/// Connects to one master (the checks' connect, with the watch's timeout).
async fn connect(t: &MysqlTarget) -> Option<Conn> {
    match super::mysql::connect(t, TIMEOUT).await {
        Ok(c) => Some(c),
        Err(e) => {
            debug!("semi-sync watch: connect to {} failed: {}", t.ip, e.errstr);
            None
        }
    }
}

fn text(row: &Row, i: usize) -> String {
    match row.as_ref(i) {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(n)) => n.to_string(),
        Some(Value::UInt(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn column(row: &Row, names: &[&str]) -> String {
    for n in names {
        if let Some(Ok(v)) = row.get_opt::<Value, _>(*n) {
            return match v {
                Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                Value::NULL => String::new(),
                other => other.as_sql(true).trim_matches('\'').to_string(),
            };
        }
    }
    String::new()
}

/// One look at one master over `conn`.
async fn view(conn: &mut Conn) -> Result<MasterView, mysql_async::Error> {
    let mut v = MasterView::default();
    let ro: Option<Row> = conn
        .query_first("SELECT @@global.read_only, @@global.version")
        .await?;
    let version = ro.as_ref().map(|r| text(r, 1)).unwrap_or_default();
    v.writable = ro.as_ref().map(|r| text(r, 0)).as_deref() == Some("0");
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    if mariadb {
        let p: Option<String> = conn.query_first("SELECT @@global.gtid_binlog_pos").await?;
        v.binlog_pos = p.unwrap_or_default();
    }
    let rows: Vec<Row> = conn
        .query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%'")
        .await?;
    for r in &rows {
        let (name, value) = (text(r, 0).to_ascii_lowercase(), text(r, 1));
        let on = value.eq_ignore_ascii_case("ON");
        match name.as_str() {
            "rpl_semi_sync_master_status" | "rpl_semi_sync_source_status" => v.master_on = on,
            "rpl_semi_sync_slave_status" | "rpl_semi_sync_replica_status" => v.slave_on = on,
            "rpl_semi_sync_master_clients" | "rpl_semi_sync_source_clients" => {
                v.clients = value.trim().parse().unwrap_or(0)
            }
            _ => {}
        }
    }
    let slave: Vec<Row> = match conn.query("SHOW SLAVE STATUS").await {
        Ok(r) => r,
        Err(_) => conn.query("SHOW REPLICA STATUS").await?,
    };
    if let Some(r) = slave.first() {
        v.io = column(r, &["Slave_IO_Running", "Replica_IO_Running"]);
        v.master_host = column(r, &["Master_Host", "Source_Host"]);
        v.io_pos = column(r, &["Gtid_IO_Pos"]);
    }
    Ok(v)
}

/// One master's kept connection: a look, reconnecting when needed; `None` when it cannot
/// be reached or does not answer within the bound.
async fn look_at(conn: &mut Option<Conn>, t: &MysqlTarget) -> Option<MasterView> {
    if conn.is_none() {
        *conn = connect(t).await;
    }
    let c = conn.as_mut()?;
    match tokio::time::timeout(TIMEOUT, view(c)).await {
        Ok(Ok(v)) => Some(v),
        _ => {
            // A connection that failed or hung is not used again.
            *conn = None;
            None
        }
    }
}

/// The watch task: looks every [`POLL`] and sends the verdict when it changes.
pub async fn run(config: MonitorSettings, sink: InputFn) {
    let Some(role) = config.active_master_role().cloned() else {
        return;
    };
    let masters: Vec<_> = role
        .hosts
        .iter()
        .filter_map(|n| config.host(n).cloned())
        .collect();
    let names: Vec<String> = masters.iter().map(|h| h.name.clone()).collect();
    let ips: Vec<String> = masters.iter().map(|h| h.ip.to_string()).collect();
    let targets: Vec<MysqlTarget> = masters.iter().map(|h| h.mysql_target()).collect();
    let mut conns: Vec<Option<Conn>> = targets.iter().map(|_| None).collect();
    let mut watch = Watch::default();
    let mut last: Option<Durability> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let looks = conns.iter_mut().zip(&targets).map(|(c, t)| look_at(c, t));
        let views = futures::future::join_all(looks).await;
        let d = watch.look(Instant::now(), &names, &ips, &views);
        if last.as_ref() != Some(&d) {
            debug!("semi-sync watch: {d:?}");
            sink(Input::Durability(d.clone()));
            last = Some(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_writer(pos: &str) -> MasterView {
        MasterView {
            writable: true,
            master_on: true,
            clients: 1,
            binlog_pos: pos.into(),
            io: "Yes".into(),
            master_host: "10.0.0.2".into(),
            ..Default::default()
        }
    }

    fn standby(io_pos: &str) -> MasterView {
        MasterView {
            slave_on: true,
            io: "Yes".into(),
            master_host: "10.0.0.1".into(),
            io_pos: io_pos.into(),
            binlog_pos: "0-2-5".into(),
            ..Default::default()
        }
    }

    fn names() -> (Vec<String>, Vec<String>) {
        (
            vec!["db1".into(), "db2".into()],
            vec!["10.0.0.1".into(), "10.0.0.2".into()],
        )
    }

    #[test]
    fn holds_compares_per_domain() {
        assert!(holds(&["0-1-10"], "0-1-10"));
        assert!(holds(&["0-1-11", ""], "0-1-10"));
        assert!(!holds(&["0-1-9"], "0-1-10"));
        assert!(!holds(&["1-1-50"], "0-1-10"));
        assert!(holds(&["0-1-10,1-2-3"], "0-1-10,1-2-3"));
        assert!(holds(&[""], ""));
    }

    #[test]
    fn lossless_while_the_standby_acknowledges_and_holds_the_ledger() {
        let (n, ip) = names();
        let mut w = Watch::default();
        let t0 = Instant::now();
        for (i, pos) in ["0-1-10", "0-1-20", "0-1-30", "0-1-40", "0-1-50"]
            .iter()
            .enumerate()
        {
            let t = t0 + POLL * i as u32;
            let d = w.look(t, &n, &ip, &[Some(on_writer(pos)), Some(standby(pos))]);
            assert!(d.lossless, "{d:?}");
        }
        // The writer crashes: frozen, and the standby holds the ledger.
        let d = w.look(t0 + POLL * 6, &n, &ip, &[None, Some(standby("0-1-50"))]);
        assert!(d.lossless, "{d:?}");
        assert!(d.why.contains("0-1-"), "{d:?}");
    }

    #[test]
    fn a_standby_stuck_behind_the_ledger_is_not_lossless() {
        let (n, ip) = names();
        let mut w = Watch::default();
        let t0 = Instant::now();
        let mut last = None;
        for i in 0..6u32 {
            let pos = format!("0-1-{}", 10 * (i + 1));
            // The writer waits (status still ON before the timeout), the standby receives
            // nothing after 0-1-10.
            last = Some(w.look(
                t0 + POLL * i,
                &n,
                &ip,
                &[Some(on_writer(&pos)), Some(standby("0-1-10"))],
            ));
        }
        let d = last.expect("looked");
        assert!(!d.lossless);
        assert!(
            d.why.contains("db2 has received up to 0-1-10 only"),
            "{d:?}"
        );
        // Crash now: the verdict stays not lossless.
        let d = w.look(t0 + POLL * 7, &n, &ip, &[None, Some(standby("0-1-10"))]);
        assert!(!d.lossless, "{d:?}");
    }

    #[test]
    fn fallback_frozen_or_cut_standby_is_not_lossless() {
        let (n, ip) = names();
        let now = Instant::now();
        let mut off = on_writer("0-1-1");
        off.master_on = false;
        let d = Watch::default().look(now, &n, &ip, &[Some(off), Some(standby("0-1-1"))]);
        assert!(!d.lossless && d.why.contains("fell back"), "{d:?}");
        let d = Watch::default().look(now, &n, &ip, &[Some(on_writer("0-1-1")), None]);
        assert!(
            !d.lossless && d.why.contains("db2 does not answer"),
            "{d:?}"
        );
        let mut cut = standby("0-1-1");
        cut.io = "Connecting".into();
        let d = Watch::default().look(now, &n, &ip, &[Some(on_writer("0-1-1")), Some(cut)]);
        assert!(!d.lossless && d.why.contains("not connected"), "{d:?}");
        let mut w = Watch::default();
        let d = w.look(now, &n, &ip, &[None, Some(standby("0-1-1"))]);
        assert!(!d.lossless && d.why.contains("no writer"), "{d:?}");
        let both = [Some(on_writer("0-1-1")), Some(on_writer("0-2-1"))];
        assert!(!Watch::default().look(now, &n, &ip, &both).lossless);
    }
}
