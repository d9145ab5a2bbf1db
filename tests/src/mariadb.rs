//! MariaDB servers of the testbed: the seed's my.cnf (Step1), a data directory made once
//! per testbed with the MMM accounts (spec §4.8, seed Step2) created by the bootstrap (so no
//! binlog holds them), the `mariadb` command-line client for the testbed's own queries, and
//! the [`Row`] type that both the CLI and the async ([`mysql_async`]) paths return.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{io_err, Result, TestbedError};
use crate::process::{output_with_input, output_with_timeout};

/// The password of every account, as in the seed.
pub const PASSWORD: &str = "123456";

/// Bound on one CLI query.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound on the data directory bootstrap.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where Debian/Ubuntu keep the system-table SQL that `mariadb-install-db` feeds to
/// `mariadbd --bootstrap`.
const SQL_DIRS: &[&str] = &["/usr/share/mysql", "/usr/share/mariadb"];

/// One result row: column names (shared by the rows of a result) and text values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Option<String>>,
}

impl Row {
    /// Builds a row; `values` pairs with `columns` by position.
    pub fn new(columns: Arc<[String]>, values: Vec<Option<String>>) -> Row {
        Row { columns, values }
    }

    /// The value of column `name` (`None` if the column is absent or SQL NULL).
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.values.get(i)?.as_deref()
    }

    /// The value at position `i` (`None` if out of range or SQL NULL).
    pub fn at(&self, i: usize) -> Option<&str> {
        self.values.get(i)?.as_deref()
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// All values in column order.
    pub fn values(&self) -> &[Option<String>] {
        &self.values
    }
}

/// The role a host plays in the seed's deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    /// db1, db2: masters of the master-master pair.
    Master,
    /// db3, db4: slaves of db1.
    Slave,
    /// The monitor host (no MariaDB).
    Monitor,
}

/// The seed's my.cnf for one server, adapted to the testbed (small memory, per-testbed
/// paths, bound on every address of the host's namespace).
#[allow(clippy::too_many_arguments)]
pub(crate) fn my_cnf(
    server_id: u32,
    auto_increment_offset: u32,
    read_only: bool,
    datadir: &Path,
    socket: &Path,
    pid_file: &Path,
    error_log: &Path,
    binlog_dir: Option<&Path>,
) -> String {
    let mut s = String::from("[mysqld]\n");
    s.push_str(&common_settings());
    let _ = write!(
        s,
        "datadir = {datadir}\n\
         socket = {socket}\n\
         pid-file = {pid}\n\
         log-error = {log}\n\
         port = 3306\n\
         bind-address = 0.0.0.0\n\
         server-id = {server_id}\n\
         log_bin = {log_bin}\n\
         log_slave_updates = 1\n\
         sync_binlog = 1\n\
         innodb_flush_log_at_trx_commit = 1\n\
         auto_increment_increment = 2\n\
         auto_increment_offset = {auto_increment_offset}\n\
         binlog-ignore-db = mysql\n\
         binlog-ignore-db = information_schema\n\
         gtid_strict_mode = 0\n\
         relay_log_recovery = 1\n\
         read_only = {ro}\n\
         character_set_server = utf8mb4\n\
         slave_net_timeout = 5\n",
        datadir = datadir.display(),
        socket = socket.display(),
        pid = pid_file.display(),
        log = error_log.display(),
        ro = u8::from(read_only),
        log_bin = binlog_dir
            .map(|d| d.join("mysql_bin").display().to_string())
            .unwrap_or_else(|| "mysql_bin".to_string()),
    );
    s
}

/// Settings shared by the bootstrap and the running servers (must agree, or InnoDB
/// resizes its log on first start).
///
/// `max_connections = 400`: the monitor holds up to five connections per configured host
/// (the MySQL checks' shared connections and the watcher, issue 14), and the scaling
/// benchmarks configure 204 hosts, 51 of them addresses of one server: about 255
/// connections to each server, beyond MariaDB's default of 151 (docs/scaling.md).
fn common_settings() -> String {
    "user = mysql\n\
     skip-name-resolve\n\
     performance_schema = 0\n\
     innodb_buffer_pool_size = 16M\n\
     innodb_log_file_size = 8M\n\
     innodb_log_buffer_size = 1M\n\
     key_buffer_size = 1M\n\
     max_connections = 400\n\
     skip-host-cache\n"
        .to_string()
}

/// The accounts every server has (created by the bootstrap, so never binlogged). `net` is
/// the testbed's /24 as a MySQL host pattern (`198.18.N.%`), `monitor_ip` the monitor host.
pub(crate) fn accounts_sql(net: &str, monitor_ip: Ipv4Addr) -> Vec<String> {
    let pw = PASSWORD;
    vec![
        // The bootstrap runs with the grant tables unloaded; load them so CREATE USER works.
        "FLUSH PRIVILEGES;".into(),
        format!("CREATE USER 'replication'@'{net}' IDENTIFIED BY '{pw}';"),
        format!("GRANT REPLICATION SLAVE ON *.* TO 'replication'@'{net}';"),
        format!("CREATE USER 'mmm_agent'@'{net}' IDENTIFIED BY '{pw}';"),
        format!(
            "GRANT SUPER, REPLICATION CLIENT, PROCESS, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, \
             SLAVE MONITOR, BINLOG MONITOR, CONNECTION ADMIN ON *.* TO 'mmm_agent'@'{net}';"
        ),
        format!("CREATE USER 'mmm_monitor'@'{net}' IDENTIFIED BY '{pw}';"),
        format!(
            "GRANT REPLICATION CLIENT, SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'mmm_monitor'@'{net}';"
        ),
        format!("CREATE USER 'testdba'@'{monitor_ip}' IDENTIFIED BY '{pw}';"),
        format!("GRANT ALL PRIVILEGES ON *.* TO 'testdba'@'{monitor_ip}';"),
        format!("CREATE USER 'app'@'{net}' IDENTIFIED BY '{pw}';"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON *.* TO 'app'@'{net}';"
        ),
    ]
}

/// Makes a fresh data directory at `datadir` (owned by user mysql) with the system tables
/// and the MMM accounts: `mariadbd --bootstrap` fed the same system-table SQL as
/// `mariadb-install-db`, minus the help tables and the sys schema (0.3 s instead of 2.5 s).
pub(crate) fn bootstrap_datadir(
    cnf: &Path,
    datadir: &Path,
    error_log: &Path,
    accounts: &[String],
) -> Result<()> {
    let sql_dir = SQL_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("mysql_system_tables.sql").is_file())
        .ok_or_else(|| TestbedError::MissingPrerequisite {
            what: "mysql_system_tables.sql".into(),
            hint: format!("looked in {SQL_DIRS:?}; install mariadb-server"),
        })?;
    let mut sql: Vec<u8> =
        b"create database if not exists mysql;\nuse mysql;\nSET @auth_root_socket='root';\n"
            .to_vec();
    for f in [
        "mysql_system_tables.sql",
        "mysql_performance_tables.sql",
        "mysql_system_tables_data.sql",
    ] {
        let path = sql_dir.join(f);
        let text = std::fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        sql.extend_from_slice(&text);
        sql.push(b'\n');
    }
    // The bootstrap reads one statement per line.
    for stmt in accounts {
        sql.extend_from_slice(stmt.as_bytes());
        sql.push(b'\n');
    }
    let mut cmd = Command::new("mariadbd");
    cmd.arg(format!("--defaults-file={}", cnf.display()))
        .arg("--bootstrap")
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--log-error={}", error_log.display()))
        // A tmpdir of its own: two bootstraps sharing /tmp at once lost each other's
        // temporary tables (error 1051, abort).
        .arg(format!(
            "--tmpdir={}",
            error_log.parent().unwrap_or(datadir).display()
        ))
        .args([
            "--log-warnings=0",
            "--enforce-storage-engine=",
            "--max_allowed_packet=8M",
            "--net_buffer_length=16K",
        ]);
    let out = output_with_input(&mut cmd, Some(sql), BOOTSTRAP_TIMEOUT)?;
    if !out.status.success() {
        return Err(TestbedError::Command {
            cmd: "mariadbd --bootstrap".into(),
            detail: format!(
                "{}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                log_tail(error_log, 10)
            ),
        });
    }
    Ok(())
}

/// The my.cnf the bootstrap uses (only the settings that shape the data files).
pub(crate) fn bootstrap_cnf() -> String {
    format!("[mysqld]\n{}", common_settings())
}

/// The last `n` lines of a log file (empty if unreadable).
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines.get(from..).unwrap_or_default().join("\n")
}

/// Runs `query` as root over the unix socket with the `mariadb` client and parses its
/// batch output (tab-separated, first line the column names; `NULL` reads as SQL NULL).
pub(crate) fn cli_query(host: &str, socket: &Path, query: &str) -> Result<Vec<Row>> {
    let mut cmd = Command::new("mariadb");
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args([
            "--user=root",
            "--batch",
            "--connect-timeout=10",
            "-e",
            query,
        ]);
    let out = output_with_timeout(&mut cmd, QUERY_TIMEOUT).map_err(|e| TestbedError::Sql {
        host: host.into(),
        query: query.into(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(TestbedError::Sql {
            host: host.into(),
            query: query.into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(parse_batch(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `mariadb --batch` output. With several result sets, the rows of all of them are
/// returned, each with its own column names.
pub(crate) fn parse_batch(out: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut columns: Option<Arc<[String]>> = None;
    for line in out.lines() {
        let fields: Vec<String> = line.split('\t').map(unescape).collect();
        match &columns {
            None => columns = Some(fields.into()),
            Some(cols) => {
                if fields.len() != cols.len() {
                    // A new result set's header.
                    columns = Some(fields.into());
                    continue;
                }
                let values = fields
                    .into_iter()
                    .map(|f| if f == "NULL" { None } else { Some(f) })
                    .collect();
                rows.push(Row::new(cols.clone(), values));
            }
        }
    }
    rows
}

/// Undoes the batch-mode escapes (`\t`, `\n`, `\\`, `\0`).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Converts mysql_async rows to [`Row`]s (every value as text; bytes decoded lossily).
pub(crate) fn from_async_rows(rows: Vec<mysql_async::Row>) -> Vec<Row> {
    let mut cache: HashMap<usize, Arc<[String]>> = HashMap::new();
    rows.into_iter()
        .map(|row| {
            let columns = cache
                .entry(row.columns_ref().len())
                .or_insert_with(|| {
                    row.columns_ref()
                        .iter()
                        .map(|c| c.name_str().into_owned())
                        .collect::<Vec<_>>()
                        .into()
                })
                .clone();
            let values = (0..row.len())
                .map(|i| match row.as_ref(i) {
                    None | Some(mysql_async::Value::NULL) => None,
                    Some(mysql_async::Value::Bytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    Some(v) => Some(v.as_sql(true).trim_matches('\'').to_string()),
                })
                .collect();
            Row::new(columns, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_parses() {
        let out = "Slave_IO_Running\tLast_SQL_Error\tMaster_Delay\nYes\tDuplicate\\tentry\tNULL\n";
        let rows = parse_batch(out);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.get("Slave_IO_Running"), Some("Yes"));
        assert_eq!(row.get("Last_SQL_Error"), Some("Duplicate\tentry"));
        assert_eq!(row.get("Master_Delay"), None);
        assert_eq!(row.get("Nope"), None);
        assert_eq!(row.at(0), Some("Yes"));
    }

    #[test]
    fn empty_result_has_no_rows() {
        assert!(parse_batch("").is_empty());
        assert!(parse_batch("a\tb\n").is_empty());
    }

    #[test]
    fn my_cnf_has_the_seed_settings() {
        let cnf = my_cnf(
            2,
            2,
            true,
            Path::new("/d"),
            Path::new("/s.sock"),
            Path::new("/p.pid"),
            Path::new("/e.log"),
            None,
        );
        for line in [
            "server-id = 2",
            "log_bin = mysql_bin",
            "log_slave_updates = 1",
            "sync_binlog = 1",
            "innodb_flush_log_at_trx_commit = 1",
            "auto_increment_increment = 2",
            "auto_increment_offset = 2",
            "binlog-ignore-db = mysql",
            "binlog-ignore-db = information_schema",
            "read_only = 1",
            "bind-address = 0.0.0.0",
            "gtid_strict_mode = 0",
            "relay_log_recovery = 1",
            "slave_net_timeout = 5",
        ] {
            assert!(cnf.lines().any(|l| l == line), "missing {line:?} in\n{cnf}");
        }
    }
}
