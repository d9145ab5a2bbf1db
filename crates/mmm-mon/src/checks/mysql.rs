//! The MySQL checks (spec §3.3.1): `mysql` (connect + `SELECT NOW()`), `rep_threads` and
//! `rep_backlog` (`SHOW SLAVE STATUS`), with 2.2.1's result strings, plus the long-lived
//! monitor connection per host that notices a stopped or crashed server at once
//! (DESIGN.md "Detection starts at the failure").
//!
//! mmm-rs differs from 2.2.1 in what counts as running (issue 13, docs/differences.md): an
//! IO thread that is not connected to its master (`Slave_IO_Running: Connecting`: the master
//! is down, unreachable, refuses the account…) fails `rep_threads` with the reason
//! (`Last_IO_Error`), and `rep_backlog` fails instead of saying `OK: Backlog is null` when
//! the lag is unknown because replication is not running or not connected. 2.2.1 counted
//! `Connecting` as running and a NULL `Seconds_Behind_Master` as no backlog, so a standby
//! master that had not received a write for a minute was reported healthy. `ERROR:
//! Replication is broken` (a thread stopped) is 2.2.1's text, followed by the thread's last
//! error when there is one.
//!
//! Each function returns the raw result line (`OK…`, `ERROR…`, `UNKNOWN…`); the caller
//! bounds the whole check by `timeout + 1 s` and feeds the line to the core. The `errstr`
//! part mimics what the MariaDB client library prints (`Can't connect to server on
//! '<ip>' (<errno>)` for connect failures, the server's own message for server errors).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Error as MyError, IoError, OptsBuilder, Row};

use super::disk_full;
pub use super::host_conns::{HostConns, QueryError};

/// MySQL's "Too many connections".
const ER_CON_COUNT_ERROR: u16 = 1040;
/// MySQL's "Access denied; you need the … privilege".
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;
/// Syntax error: the server has no SHOW SLAVE STATUS (MySQL 8.4+).
const ER_PARSE_ERROR: u16 = 1064;

/// Where and as whom the checks connect: a host's [`HostConfig::mysql_target`] with the
/// `monitor_user` account.
///
/// [`HostConfig::mysql_target`]: mmm_common::config::HostConfig::mysql_target
pub use mmm_common::config::MysqlTarget;

/// 2.2.1's prefix of a failed connect's result (`host = <ip>:<port>`, unbracketed).
fn connect_error_prefix(t: &MysqlTarget) -> String {
    format!(
        "Connect error (host = {}:{}, user = {})!",
        t.ip, t.port, t.user
    )
}

/// A failed connect: the error code (if the server sent one) and the errstr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// Server error code, if any.
    pub code: Option<u16>,
    /// The message.
    pub errstr: String,
}

/// Connects with the check's connect timeout.
pub async fn connect(t: &MysqlTarget, timeout: Duration) -> Result<Conn, ConnectError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(t.ip.to_string())
        .tcp_port(t.port)
        .user(Some(t.user.clone()))
        .pass(Some(t.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0);
    let opts = t.tls.apply(opts);
    match tokio::time::timeout(timeout, Conn::new(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(connect_errstr(&e, &t.ip.to_string())),
        // ETIMEDOUT, as the C client reports a connect timeout.
        Err(_) => Err(ConnectError {
            code: None,
            errstr: format!("Can't connect to server on '{}' (110)", t.ip),
        }),
    }
}

fn connect_errstr(e: &MyError, ip: &str) -> ConnectError {
    match e {
        MyError::Server(se) => ConnectError {
            code: Some(se.code),
            errstr: se.message.clone(),
        },
        MyError::Io(IoError::Io(io)) => ConnectError {
            code: None,
            errstr: match io.raw_os_error() {
                Some(n) => format!("Can't connect to server on '{ip}' ({n})"),
                None => format!("Can't connect to server on '{ip}' ({io})"),
            },
        },
        other => ConnectError {
            code: None,
            errstr: other.to_string(),
        },
    }
}

/// The errstr of a failed query.
fn query_errstr(e: &MyError) -> (Option<u16>, String) {
    match e {
        MyError::Server(se) => (Some(se.code), se.message.clone()),
        MyError::Io(_) => (None, "Lost connection to server during query".to_string()),
        other => (None, other.to_string()),
    }
}

async fn close(conn: Conn) {
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
}

/// `mysql`: `SELECT NOW()` on one of the host's connections ([`HostConns`]; a new one
/// when none is idle or the idle one is gone).
///
/// When a disk-full probe is due ([`disk_full::Probe`]) it runs instead and counts the
/// threads waiting for disk space: when there are some, the result is `UNKNOWN: Disk
/// full! …`, and it stays so on the checks between probes while their `SELECT NOW()`
/// succeeds. A server that refuses the probe gets `SELECT NOW()` from then on.
pub async fn mysql_check(conns: &HostConns, timeout: Duration) -> String {
    let t = conns.target();
    let now = Instant::now();
    if conns.disk_probe().due(now) {
        match read_processlist(conns, timeout).await {
            Ok((waiting, longest)) => {
                let verdict = disk_full::verdict(waiting, longest);
                conns.disk_probe().record(now, verdict.clone());
                return verdict.unwrap_or_else(|| "OK".to_string());
            }
            Err(QueryError::Query {
                code: Some(code),
                errstr,
            }) if code != ER_CON_COUNT_ERROR => {
                tracing::debug!(
                    "{}: the disk-full probe was refused ({code}: {errstr}); SELECT NOW() from now on",
                    t.ip
                );
                conns.disk_probe().refuse();
            }
            Err(e) => return result_line(t, e),
        }
    }
    match conns.query_drop(timeout, "SELECT NOW()").await {
        Ok(()) => conns
            .disk_probe()
            .standing()
            .unwrap_or_else(|| "OK".to_string()),
        Err(e) => result_line(t, e),
    }
}

/// The disk-full probe: the threads of `SHOW PROCESSLIST` waiting for disk space
/// ([`disk_full::tally`]).
async fn read_processlist(
    conns: &HostConns,
    timeout: Duration,
) -> Result<(u64, Option<u64>), QueryError> {
    conns
        .run(timeout, |c| {
            Box::pin(async move {
                let rows: Vec<Row> = c.query(disk_full::PROBE_SQL).await?;
                Ok(disk_full::tally(rows.iter().map(|r| {
                    (
                        r.get::<Option<String>, _>("State").flatten(),
                        r.get::<Option<i64>, _>("Time").flatten(),
                    )
                })))
            })
        })
        .await
}

/// The `mysql` check's line for a failed query (2.2.1's texts).
fn result_line(t: &MysqlTarget, e: QueryError) -> String {
    match e {
        QueryError::Connect(ConnectError {
            code: Some(ER_CON_COUNT_ERROR),
            errstr,
        }) => format!("UNKNOWN: Too many connections! {errstr}"),
        QueryError::Connect(e) => format!("ERROR: {} {}", connect_error_prefix(t), e.errstr),
        e => format!("ERROR: SQL Query Error: {e}"),
    }
}

/// What SHOW SLAVE STATUS said.
enum SlaveStatus {
    /// A result line to return as is (errors, not set up).
    Done(String),
    /// The first row.
    Row(SlaveRow),
}

/// The columns of a slave status row the checks read (`None`: absent or NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SlaveRow {
    /// `Slave_IO_Running`: `Yes`, `No`, `Connecting`.
    io: Option<String>,
    /// `Slave_SQL_Running`.
    sql: Option<String>,
    /// `Seconds_Behind_Master`.
    behind: Option<String>,
    /// `Master_Host`.
    master_host: Option<String>,
    /// `Master_Port`.
    master_port: Option<String>,
    /// `Last_IO_Error`.
    last_io_error: Option<String>,
    /// `Last_SQL_Error`.
    last_sql_error: Option<String>,
}

fn col(row: &Row, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        row.get_opt::<Option<String>, &str>(n)
            .and_then(Result::ok)
            .flatten()
    })
}

async fn slave_status(conns: &HostConns, timeout: Duration) -> SlaveStatus {
    let t = conns.target();
    // rep_threads and rep_backlog run at the same moment and share one query.
    let mut res = conns.query_row_shared(timeout, "SHOW SLAVE STATUS").await;
    if matches!(&res, Err(e) if e.code() == Some(ER_PARSE_ERROR)) {
        // MySQL 8.4 removed the SLAVE spelling.
        res = conns.query_row_shared(timeout, "SHOW REPLICA STATUS").await;
    }
    match res {
        Err(QueryError::Connect(e)) => {
            SlaveStatus::Done(format!("UNKNOWN: {} {}", connect_error_prefix(t), e.errstr))
        }
        Err(e) => SlaveStatus::Done(if e.code() == Some(ER_SPECIFIC_ACCESS_DENIED) {
            format!(
                    "ERROR: The monitor user '{}' doesn't have the required REPLICATION CLIENT privilege! {e}",
                    t.user
                )
        } else {
            format!("UNKNOWN: Unknown state. Execute error: {e}")
        }),
        Ok(None) => SlaveStatus::Done("ERROR: Replication is not set up".to_string()),
        Ok(Some(row)) => SlaveStatus::Row(SlaveRow {
            io: col(&row, &["Slave_IO_Running", "Replica_IO_Running"]),
            sql: col(&row, &["Slave_SQL_Running", "Replica_SQL_Running"]),
            behind: col(&row, &["Seconds_Behind_Master", "Seconds_Behind_Source"]),
            master_host: col(&row, &["Master_Host", "Source_Host"]),
            master_port: col(&row, &["Master_Port", "Source_Port"]),
            last_io_error: col(&row, &["Last_IO_Error"]),
            last_sql_error: col(&row, &["Last_SQL_Error"]),
        }),
    }
}

/// `rep_threads`: both replication threads running and the IO thread connected to its
/// master (mmm-rs: `Connecting` is a failure, see the module doc).
pub async fn rep_threads_check(conns: &HostConns, timeout: Duration) -> String {
    match slave_status(conns, timeout).await {
        SlaveStatus::Done(line) => line,
        SlaveStatus::Row(row) => rep_threads_verdict(&row),
    }
}

/// `rep_backlog`: Seconds_Behind_Master against `max_backlog` (mmm-rs: an unknown lag
/// because replication is not running or not connected is a failure).
pub async fn rep_backlog_check(conns: &HostConns, timeout: Duration, max_backlog: u64) -> String {
    rep_backlog_check_lag(conns, timeout, max_backlog).await.0
}

/// [`rep_backlog_check`] and the `Seconds_Behind_Master` it saw (`None`: not known).
pub async fn rep_backlog_check_lag(
    conns: &HostConns,
    timeout: Duration,
    max_backlog: u64,
) -> (String, Option<u64>) {
    match slave_status(conns, timeout).await {
        SlaveStatus::Done(line) => (line, None),
        SlaveStatus::Row(row) => {
            let lag = row
                .behind
                .as_deref()
                .map(str::trim)
                .and_then(|b| b.parse::<u64>().ok());
            (rep_backlog_verdict(&row, max_backlog), lag)
        }
    }
}

/// `" (…)"` with the non-empty parts, or nothing.
fn details(parts: &[(&str, Option<&str>)]) -> String {
    let v: Vec<String> = parts
        .iter()
        .filter_map(|(k, v)| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}: {v}"))
        })
        .collect();
    if v.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.join("; "))
    }
}

fn rep_threads_verdict(r: &SlaveRow) -> String {
    let io = r.io.as_deref();
    let sql = r.sql.as_deref();
    if io == Some("No") || sql == Some("No") {
        format!(
            "ERROR: Replication is broken{}",
            details(&[
                ("Slave_IO_Running", io),
                ("Slave_SQL_Running", sql),
                ("Last_IO_Error", r.last_io_error.as_deref()),
                ("Last_SQL_Error", r.last_sql_error.as_deref()),
            ])
        )
    } else if io == Some("Connecting") {
        let master = match (r.master_host.as_deref(), r.master_port.as_deref()) {
            (Some(h), Some(p)) => format!(" {h}:{p}"),
            (Some(h), None) => format!(" {h}"),
            _ => String::new(),
        };
        format!(
            "ERROR: Replication is not connected to its master{master}{}",
            details(&[
                ("Slave_IO_Running", io),
                ("Last_IO_Error", r.last_io_error.as_deref()),
            ])
        )
    } else {
        "OK".to_string()
    }
}

fn rep_backlog_verdict(r: &SlaveRow, max_backlog: u64) -> String {
    let running = |v: &Option<String>| v.as_deref().is_none_or(|v| v == "Yes");
    match r
        .behind
        .as_deref()
        .map(str::trim)
        .and_then(|b| b.parse::<u64>().ok())
    {
        None if !(running(&r.io) && running(&r.sql)) => format!(
            "ERROR: Backlog is unknown: replication is not running{}",
            details(&[
                ("Slave_IO_Running", r.io.as_deref()),
                ("Slave_SQL_Running", r.sql.as_deref()),
            ])
        ),
        None | Some(0) => "OK: Backlog is null".to_string(),
        Some(b) if b > max_backlog => "ERROR: Backlog is too big".to_string(),
        Some(_) => "OK".to_string(),
    }
}

/// How a held monitor connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEnd {
    /// The server closed it or went away (stopped, crashed, killed our thread).
    Closed(String),
    /// The server stopped answering: a `SELECT SLEEP(<sleep>)` did not return within
    /// `sleep` plus the check timeout (hung server or cut link).
    Silent,
}

/// Holds one connection open and returns when it is lost. The connection runs
/// `SELECT SLEEP(<sleep>)` over and over: a dead server makes it fail at once, a hung one
/// makes it overrun its bound. Returns `Err` when no connection could be made in the first
/// place.
pub async fn hold_connection(
    t: &MysqlTarget,
    timeout: Duration,
    sleep: Duration,
) -> Result<ConnEnd, ConnectError> {
    let mut conn = connect(t, timeout).await?;
    let bound = sleep + timeout;
    let query = format!("SELECT SLEEP({:.3})", sleep.as_secs_f64());
    loop {
        match tokio::time::timeout(bound, conn.query_drop(query.as_str())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Ok(ConnEnd::Closed(query_errstr(&e).1)),
            Err(_) => return Ok(ConnEnd::Silent),
        }
    }
}

/// What the master-master configuration check (spec §3.13) reads from one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterSettings {
    /// `Master_Host` of SHOW SLAVE STATUS (`None`: not a slave).
    pub master_host: Option<String>,
    /// `(@@auto_increment_offset, @@auto_increment_increment)`, when readable.
    pub auto_increment: Option<(u64, u64)>,
}

/// Reads [`MasterSettings`]; `None` when the server cannot be reached.
pub async fn master_settings(t: &MysqlTarget, timeout: Duration) -> Option<MasterSettings> {
    let work = async {
        let mut conn = connect(t, timeout).await.ok()?;
        let master_host = match conn.query_first::<Row, _>("SHOW SLAVE STATUS").await {
            Ok(Some(row)) => col(&row, &["Master_Host", "Source_Host"]),
            _ => None,
        };
        let auto_increment = conn
            .query_first::<(u64, u64), _>(
                "SELECT @@auto_increment_offset, @@auto_increment_increment",
            )
            .await
            .ok()
            .flatten();
        close(conn).await;
        Some(MasterSettings {
            master_host,
            auto_increment,
        })
    };
    tokio::time::timeout(timeout + Duration::from_secs(1), work)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(io: &str, sql: &str, behind: Option<&str>) -> SlaveRow {
        SlaveRow {
            io: Some(io.into()),
            sql: Some(sql.into()),
            behind: behind.map(Into::into),
            master_host: Some("198.18.2.100".into()),
            master_port: Some("3306".into()),
            last_io_error: Some(String::new()),
            last_sql_error: Some(String::new()),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(rep_threads_verdict(&row("Yes", "Yes", Some("0"))), "OK");
        assert_eq!(
            rep_threads_verdict(&row("No", "Yes", None)),
            "ERROR: Replication is broken (Slave_IO_Running: No; Slave_SQL_Running: Yes)"
        );
        let broken = SlaveRow {
            last_sql_error: Some("Duplicate entry '7' for key 'PRIMARY'".into()),
            ..row("Yes", "No", None)
        };
        assert_eq!(
            rep_threads_verdict(&broken),
            "ERROR: Replication is broken (Slave_IO_Running: Yes; Slave_SQL_Running: No; Last_SQL_Error: Duplicate entry '7' for key 'PRIMARY')"
        );
        assert_eq!(
            rep_backlog_verdict(&row("Yes", "Yes", None), 60),
            "OK: Backlog is null"
        );
        assert_eq!(
            rep_backlog_verdict(&row("Yes", "Yes", Some("0")), 60),
            "OK: Backlog is null"
        );
        assert_eq!(
            rep_backlog_verdict(&row("Yes", "Yes", Some("60")), 60),
            "OK"
        );
        assert_eq!(
            rep_backlog_verdict(&row("Yes", "Yes", Some("61")), 60),
            "ERROR: Backlog is too big"
        );
        // Columns a server does not have keep 2.2.1's reading.
        assert_eq!(
            rep_backlog_verdict(&SlaveRow::default(), 60),
            "OK: Backlog is null"
        );
        assert_eq!(rep_threads_verdict(&SlaveRow::default()), "OK");
    }

    /// Issue 13: a standby whose IO thread sits in `Connecting` (its master died and came
    /// back, MASTER_CONNECT_RETRY 60) was reported `rep_threads OK` and `rep_backlog OK:
    /// Backlog is null` while it lacked every write for a minute. Both fail now and say why.
    #[test]
    fn a_slave_not_connected_to_its_master_fails_both_checks() {
        let connecting = SlaveRow {
            last_io_error: Some("error reconnecting to master 'replication@198.18.2.100:3306' - retry-time: 60  maximum-retries: 100000  message: Can't connect to server on '198.18.2.100' (111 \"Connection refused\")".into()),
            ..row("Connecting", "Yes", None)
        };
        assert_eq!(
            rep_threads_verdict(&connecting),
            "ERROR: Replication is not connected to its master 198.18.2.100:3306 (Slave_IO_Running: Connecting; Last_IO_Error: error reconnecting to master 'replication@198.18.2.100:3306' - retry-time: 60  maximum-retries: 100000  message: Can't connect to server on '198.18.2.100' (111 \"Connection refused\"))"
        );
        assert_eq!(
            rep_backlog_verdict(&connecting, 60),
            "ERROR: Backlog is unknown: replication is not running (Slave_IO_Running: Connecting; Slave_SQL_Running: Yes)"
        );
        assert_eq!(
            rep_backlog_verdict(&row("No", "No", None), 60),
            "ERROR: Backlog is unknown: replication is not running (Slave_IO_Running: No; Slave_SQL_Running: No)"
        );
        // A connecting thread whose lag the server still reports is judged by the lag for
        // rep_backlog (rep_threads already fails).
        assert_eq!(
            rep_backlog_verdict(&row("Connecting", "Yes", Some("5")), 60),
            "OK"
        );
    }

    #[tokio::test]
    async fn refused_connect_strings() {
        // Port 1 on an address nobody listens: the connect fails fast or times out; both
        // must give 2.2.1's shapes. Loopback in the test's own process only.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = MysqlTarget {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port,
            user: "mmm_monitor".into(),
            password: "x".into(),
            tls: Default::default(),
        };
        let conns = HostConns::new(t.clone());
        let s = mysql_check(&conns, Duration::from_secs(1)).await;
        assert_eq!(
            s,
            format!("ERROR: Connect error (host = 127.0.0.1:{port}, user = mmm_monitor)! Can't connect to server on '127.0.0.1' (111)")
        );
        let s = rep_threads_check(&conns, Duration::from_secs(1)).await;
        assert!(
            s.starts_with("UNKNOWN: Connect error (host = 127.0.0.1:"),
            "{s}"
        );
        let s = rep_backlog_check(&conns, Duration::from_secs(1), 60).await;
        assert!(s.starts_with("UNKNOWN: Connect error"), "{s}");
    }
}
