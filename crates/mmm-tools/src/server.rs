//! MySQL servers as the tools handle them (2.2.1's `MMM::Tools::MySQL`): the local server
//! stopped and started with `mysql_rcscript` (its pid from `mysql_pidfile`), and
//! replication set with the tools account (`tools_user`) over TCP.

use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::error::{io_err, Result, ToolsError};
use crate::settings::Host;

/// How long 2.2.1 waits for the server to go away after `stop` (15 s).
pub const STOP_WAIT: Duration = Duration::from_secs(15);

/// How long a started server has to accept the tools' connection.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// Bound on one connection attempt (2.2.1's `mysql_connect_timeout=3`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

fn pid_alive(pid: i32) -> bool {
    // SAFETY-free: kill(pid, 0) through nix-less libc is not needed; /proc tells.
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

/// The pid in `mysql_pidfile` when that process exists (2.2.1's `is_running`).
pub fn running_pid(host: &Host<'_>) -> Option<i32> {
    let text = std::fs::read_to_string(&host.section.mysql_pidfile).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    pid_alive(pid).then_some(pid)
}

fn rcscript(host: &Host<'_>, action: &str) -> Result<bool> {
    let script = &host.section.mysql_rcscript;
    let status = std::process::Command::new(script)
        .arg(action)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(io_err(format!("running {script} {action}")))?;
    Ok(status.success())
}

/// Stops the local server (2.2.1's `stop`): `<mysql_rcscript> stop`, then waits at most
/// 15 s for the pid to go.
pub fn stop(host: &Host<'_>) -> Result<()> {
    let Some(pid) = running_pid(host) else {
        tracing::warn!("MySQL is not running now, skipping shutdown ...");
        return Ok(());
    };
    if !rcscript(host, "stop")? {
        return Err(ToolsError::Failed(
            "ERROR: Can't stop local MySQL server!".into(),
        ));
    }
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() > STOP_WAIT {
            return Err(ToolsError::Failed(format!(
                "ERROR: MySQL is running with PID {pid} after shutdown request!"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("MySQL has been stopped!");
    Ok(())
}

/// Starts the local server (2.2.1's `start`): `<mysql_rcscript> start`; then waits (at
/// most 60 s) until the tools account can connect.
pub async fn start(host: &Host<'_>) -> Result<()> {
    if let Some(pid) = running_pid(host) {
        return Err(ToolsError::Failed(format!(
            "Error: Local MySQL server is running with pid {pid}"
        )));
    }
    tracing::info!("MySQL is not running. Going to start it...");
    if !rcscript(host, "start")? {
        return Err(ToolsError::Failed(
            "ERROR: Can't start local MySQL server!".into(),
        ));
    }
    let started = Instant::now();
    loop {
        match connect(host).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                break;
            }
            Err(e) if started.elapsed() > START_WAIT => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    tracing::info!("MySQL has been started!");
    Ok(())
}

/// A connection to `host` with its tools account.
pub async fn connect(host: &Host<'_>) -> Result<Conn> {
    let (user, password) = host.tools_account();
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.ip())
        .tcp_port(host.mysql_port())
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    let sql_err = |detail: String| ToolsError::Sql {
        host: host.name().to_string(),
        detail,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(sql_err(format!(
            "Can't connect to MySQL (host = {}:{}, user = {user}): {e}",
            host.ip(),
            host.mysql_port()
        ))),
        Err(_) => Err(sql_err(format!(
            "Can't connect to MySQL (host = {}:{}, user = {user}): timed out",
            host.ip(),
            host.mysql_port()
        ))),
    }
}

/// Where a new replication link starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// 2.2.1 without positions (the master-master peer of a copy without GTID): from the
    /// master's first binary log (`MASTER_USE_GTID=no`).
    Beginning,
    /// A binlog file and position (2.2.1).
    File {
        /// Binlog file.
        file: String,
        /// Position.
        pos: String,
    },
    /// A GTID position: `gtid_slave_pos` set to it, `MASTER_USE_GTID=slave_pos`.
    Gtid(String),
}

fn sql_quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The statements 2.2.1's `change_master_to` runs (with mmm-rs's GTID forms).
pub fn change_master_statements(master: &Host<'_>, at: &StartAt) -> Vec<String> {
    let (user, password) = master.replication();
    let mut change = format!(
        "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={}, MASTER_USER='{}', MASTER_PASSWORD='{}'",
        sql_quote(master.ip()),
        master.mysql_port(),
        sql_quote(user),
        sql_quote(password)
    );
    let mut v = vec!["STOP SLAVE".to_string(), "RESET SLAVE".to_string()];
    match at {
        StartAt::Beginning => change.push_str(", MASTER_USE_GTID=no"),
        StartAt::File { file, pos } => change.push_str(&format!(
            ", MASTER_LOG_FILE='{}', MASTER_LOG_POS={}",
            sql_quote(file),
            pos.parse::<u64>().unwrap_or(4)
        )),
        StartAt::Gtid(g) => {
            v.push(format!("SET GLOBAL gtid_slave_pos = '{}'", sql_quote(g)));
            change.push_str(", MASTER_USE_GTID=slave_pos");
        }
    }
    v.push(change);
    v.push("START SLAVE".to_string());
    v
}

/// Waits (at most `limit`) until `host`'s IO thread is connected to its master; an IO
/// error, or the limit, is a failure naming it.
pub async fn wait_io_connected(host: &Host<'_>, limit: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        let mut conn = connect(host).await?;
        let row: Option<mysql_async::Row> =
            conn.query_first("SHOW SLAVE STATUS")
                .await
                .map_err(|e| ToolsError::Sql {
                    host: host.name().to_string(),
                    detail: format!("SHOW SLAVE STATUS: {e}"),
                })?;
        let _ = conn.disconnect().await;
        let get = |r: &mysql_async::Row, k: &str| -> String {
            r.get_opt::<String, _>(k)
                .and_then(|v| v.ok())
                .unwrap_or_default()
        };
        if let Some(r) = row {
            if get(&r, "Slave_IO_Running") == "Yes" {
                return Ok(());
            }
            let errno = get(&r, "Last_IO_Errno");
            last = get(&r, "Last_IO_Error");
            if !errno.is_empty() && errno != "0" && get(&r, "Slave_IO_Running") == "No" {
                return Err(ToolsError::Failed(format!(
                    "The replication of host {} does not connect: {last}",
                    host.name()
                )));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ToolsError::Failed(format!(
        "The replication of host {} did not connect within {} s {last}",
        host.name(),
        limit.as_secs()
    )))
}

/// 2.2.1's `change_master_to`: points `replica` at `master` and starts the link.
pub async fn change_master_to(replica: &Host<'_>, master: &Host<'_>, at: &StartAt) -> Result<()> {
    tracing::info!(
        "Changing master of host {} to {} ...",
        replica.name(),
        master.ip()
    );
    let mut conn = connect(replica).await?;
    for stmt in change_master_statements(master, at) {
        let shown = if stmt.starts_with("CHANGE MASTER") {
            stmt.split(", MASTER_PASSWORD")
                .next()
                .unwrap_or("")
                .to_string()
                + ", …"
        } else {
            stmt.clone()
        };
        tracing::debug!("{shown}");
        conn.query_drop(&stmt).await.map_err(|e| ToolsError::Sql {
            host: replica.name().to_string(),
            detail: format!("SQL Query Error: {e} ({shown})"),
        })?;
    }
    let _ = conn.disconnect().await;
    tracing::info!("Successfully changed master.");
    Ok(())
}

/// `Master_Host` of SHOW SLAVE STATUS on `host` (2.2.1's `get_master_host`).
pub async fn master_host(host: &Host<'_>) -> Result<String> {
    let mut conn = connect(host).await?;
    let row: Option<mysql_async::Row> =
        conn.query_first("SHOW SLAVE STATUS")
            .await
            .map_err(|e| ToolsError::Sql {
                host: host.name().to_string(),
                detail: format!(
                    "Can't get slave status for host '{}'! Error: {e}",
                    host.name()
                ),
            })?;
    let _ = conn.disconnect().await;
    let ip = row
        .and_then(|r| r.get_opt::<String, _>("Master_Host").and_then(|v| v.ok()))
        .unwrap_or_default();
    if ip.is_empty() {
        return Err(ToolsError::Failed(format!(
            "Host '{}' replicates from no master",
            host.name()
        )));
    }
    Ok(ip)
}
