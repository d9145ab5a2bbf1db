//! The errant-transaction comparison (issue 13): every round, the two masters' executed
//! GTIDs are read and each is compared with the other, and the core keeps the verdict of
//! the one compared with the active master (`core/errant.rs`). Runs with
//! `errant_transactions hold` only.
//!
//! Why in the monitor, not in the agents: the monitor alone knows which master is active,
//! decides host states and what `show` says, and reaches both masters; one comparison,
//! one verdict. The agents only carry out its consequence (hold and resume the link).
//!
//! Order of the reads: A, then B, then A again. A transaction A has at the first read that
//! came from B is on B by the second, and one B has that came from A is on A by the third,
//! so neither is mistaken for errant. (MariaDB: `@@gtid_binlog_state`, compared per domain
//! and server id in `mmm_common::gtid`; MySQL: `@@gtid_executed`, subtracted by the server
//! with `GTID_SUBTRACT`; MySQL with `gtid_mode` off cannot be compared: the core is told
//! why and keeps such a master out until an operator accepts it.) A server that cannot be
//! read this round sends nothing.

use std::time::Duration;

use mmm_common::config::{MonitorSettings, MysqlTarget};
use mmm_common::gtid::{mariadb_errant, mysql_errant, ErrantSet, Flavor};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::mysql::connect;
use super::InputFn;
use crate::core::{HostId, Input};

/// A master's executed GTIDs, as read.
enum Executed {
    /// The text of the query and the flavour.
    Gtids(Flavor, String),
    /// This server cannot be compared (why).
    Unsupported(String),
}

/// The two masters of the active-master role, if there are two.
fn masters(config: &MonitorSettings) -> Option<[(HostId, MysqlTarget); 2]> {
    let role = config.active_master_role()?;
    let find = |name: &String| {
        config
            .hosts
            .iter()
            .position(|h| &h.name == name)
            .map(|i| (HostId(i), config.hosts[i].mysql_target()))
    };
    let a = find(role.hosts.first()?)?;
    let b = find(role.hosts.get(1)?)?;
    Some([a, b])
}

async fn first_text(conn: &mut Conn, sql: &str, timeout: Duration) -> Option<String> {
    match tokio::time::timeout(timeout, conn.query_first::<Option<String>, _>(sql)).await {
        Ok(Ok(Some(v))) => Some(v.unwrap_or_default()),
        _ => None,
    }
}

async fn read(conn: &mut Conn, timeout: Duration) -> Option<Executed> {
    let version = first_text(conn, "SELECT VERSION()", timeout).await?;
    let flavor = Flavor::from_version(&version);
    if flavor == Flavor::MySql {
        let mode = first_text(conn, "SELECT @@global.gtid_mode", timeout).await?;
        if !mode.eq_ignore_ascii_case("ON") {
            return Some(Executed::Unsupported(format!(
                "MySQL {version} with gtid_mode {mode}: positional replication has no GTIDs to compare"
            )));
        }
    }
    if flavor == Flavor::MariaDb && mariadb_before_gtid(&version) {
        return Some(Executed::Unsupported(format!(
            "MariaDB {version} has no GTIDs (they need 10.0.2 or later)"
        )));
    }
    // A failed read (the server going down, a timeout) sends nothing this round.
    first_text(conn, flavor.executed_query(), timeout)
        .await
        .map(|t| Executed::Gtids(flavor, t))
}

/// MariaDB before 10.0.2 (no GTIDs) from its version string (`5.5.68-MariaDB`).
fn mariadb_before_gtid(version: &str) -> bool {
    let nums: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let v = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    );
    v < (10, 0, 2)
}

/// `candidate − active`, on `active_conn` for MySQL.
async fn compare(
    candidate: &Executed,
    active: &Executed,
    active_conn: &mut Conn,
    timeout: Duration,
) -> Option<Result<ErrantSet, String>> {
    match (candidate, active) {
        (Executed::Unsupported(why), _) | (_, Executed::Unsupported(why)) => Some(Err(why.clone())),
        (Executed::Gtids(Flavor::MariaDb, c), Executed::Gtids(Flavor::MariaDb, a)) => {
            Some(mariadb_errant(c, a).map_err(|e| e.to_string()))
        }
        (Executed::Gtids(Flavor::MySql, c), Executed::Gtids(Flavor::MySql, a)) => {
            let q = Flavor::MySql.subtract_query(c, a)?;
            let set = first_text(active_conn, &q, timeout).await?;
            Some(mysql_errant(&set).map_err(|e| e.to_string()))
        }
        _ => Some(Err(
            "the masters are of different server flavours (MariaDB and MySQL)".into(),
        )),
    }
}

/// One round over the two masters (module doc).
async fn round(pair: &[(HostId, MysqlTarget); 2], timeout: Duration, sink: &InputFn) {
    let [(a, ta), (b, tb)] = pair;
    let (Ok(mut ca), Ok(mut cb)) = (connect(ta, timeout).await, connect(tb, timeout).await) else {
        return;
    };
    let a1 = read(&mut ca, timeout).await;
    let b1 = read(&mut cb, timeout).await;
    let a2 = read(&mut ca, timeout).await;
    if let (Some(a1), Some(b1)) = (&a1, &b1) {
        if let Some(result) = compare(a1, b1, &mut cb, timeout).await {
            sink(Input::Errant {
                host: *a,
                against: *b,
                result,
            });
        }
    }
    if let (Some(b1), Some(a2)) = (&b1, &a2) {
        if let Some(result) = compare(b1, a2, &mut ca, timeout).await {
            sink(Input::Errant {
                host: *b,
                against: *a,
                result,
            });
        }
    }
    let _ = ca.disconnect().await;
    let _ = cb.disconnect().await;
}

/// Compares the masters every `mysql` check period until dropped.
pub async fn run(config: MonitorSettings, sink: InputFn) {
    let Some(pair) = masters(&config) else {
        return;
    };
    let period = config
        .checks
        .mysql
        .check_period
        .max(Duration::from_millis(500));
    let timeout = config.checks.mysql.timeout.max(Duration::from_secs(1));
    loop {
        round(&pair, timeout, &sink).await;
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::mariadb_before_gtid;

    #[test]
    fn mariadb_versions_without_gtid() {
        assert!(mariadb_before_gtid("5.5.68-MariaDB"));
        assert!(mariadb_before_gtid("10.0.1-MariaDB-log"));
        assert!(!mariadb_before_gtid("10.0.2-MariaDB"));
        assert!(!mariadb_before_gtid("10.11.19-MariaDB-0+deb12u1-log"));
        assert!(!mariadb_before_gtid("11.4.2-MariaDB"));
    }
}
