//! SQL syntax per server flavour (DESIGN.md "Server flavours"): MariaDB 10.x and MySQL up
//! to 8.0 speak 2.2.1's words (`SHOW SLAVE STATUS`, `CHANGE MASTER TO`, `SHOW MASTER
//! STATUS`, `MASTER_POS_WAIT`); MySQL 8.4+ removed them (`SHOW REPLICA STATUS`,
//! `CHANGE REPLICATION SOURCE TO`, `SHOW BINARY LOG STATUS`, `SOURCE_POS_WAIT`, and
//! `Source_*` column names). Pure: chosen from `SELECT VERSION()`.
//!
//! Also the settings of the replication link itself ([`LINK`]), which every CHANGE MASTER
//! the agent issues carries, and the statement that fixes up an existing link without
//! re-pointing it ([`Flavor::change_link`]). Why these values: docs/agent.md "Replication
//! links".

/// `MASTER_CONNECT_RETRY`: seconds between a slave IO thread's attempts to reach its master
/// after the connection broke. The server's default (60) leaves the peer of a master that
/// crashed and came back without its writes for up to a minute (issue 13: measured 60 s and
/// more while `checks` said OK); an attempt costs one TCP connect, so once a second is cheap.
/// The IO thread gives up after `master_retry_count` attempts (MariaDB 100,000 ≈ 28 h at
/// 1 s; MySQL 86,400 = 24 h), after which `rep_threads` reports it broken.
pub const CONNECT_RETRY: u32 = 1;

/// `MASTER_HEARTBEAT_PERIOD` in milliseconds: an idle master sends a heartbeat this often,
/// so the slave can tell an idle master from a silently dead one within `slave_net_timeout`.
pub const HEARTBEAT_PERIOD_MS: u32 = 1000;

/// The largest `slave_net_timeout` (seconds) the agent leaves in place: a slave whose master
/// vanished without closing the connection (power loss, a cut link, a frozen server) waits
/// this long for data or a heartbeat before it reconnects. Five heartbeat periods: a busy or
/// briefly stalled master is not mistaken for a dead one, and a reconnect that was not
/// needed costs nothing (the IO thread continues where it was). The server default is 60.
pub const NET_TIMEOUT: u32 = 5;

/// The link settings every CHANGE MASTER the agent issues carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSettings {
    /// `MASTER_CONNECT_RETRY` (seconds).
    pub connect_retry: u32,
    /// `MASTER_HEARTBEAT_PERIOD` (milliseconds).
    pub heartbeat_ms: u32,
}

/// [`CONNECT_RETRY`] and [`HEARTBEAT_PERIOD_MS`].
pub const LINK: LinkSettings = LinkSettings {
    connect_retry: CONNECT_RETRY,
    heartbeat_ms: HEARTBEAT_PERIOD_MS,
};

impl LinkSettings {
    /// These settings on a server whose `slave_net_timeout` is `net_timeout` seconds: the
    /// heartbeat at most half of it (a longer one is refused with a warning and is useless).
    pub fn for_net_timeout(self, net_timeout: u32) -> LinkSettings {
        let half = net_timeout.saturating_mul(500).max(1);
        LinkSettings {
            heartbeat_ms: self.heartbeat_ms.min(half),
            ..self
        }
    }

    /// The heartbeat as SQL (`1.000`).
    fn heartbeat_sql(self) -> String {
        format!(
            "{}.{:03}",
            self.heartbeat_ms / 1000,
            self.heartbeat_ms % 1000
        )
    }
}

/// A server flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MariaDB: classic words, GTID via `gtid_slave_pos` (from 10.0.2), no super_read_only.
    MariaDb {
        /// Whether the server has GTIDs (`MASTER_USE_GTID`, `gtid_slave_pos`): 10.0.2+.
        gtid: bool,
    },
    /// MySQL before 8.4 (`super_read_only` from 5.7.8).
    MySqlClassic {
        /// Whether `super_read_only` exists (5.7.8+).
        super_read_only: bool,
    },
    /// MySQL 8.4 and later.
    MySqlModern,
}

/// The column names of one slave status row that the agent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaveColumns {
    /// `Master_Host`.
    pub master_host: &'static str,
    /// `Master_Log_File` (the master's binlog the IO thread reads).
    pub master_log_file: &'static str,
    /// `Read_Master_Log_Pos` (received up to).
    pub read_pos: &'static str,
    /// `Relay_Master_Log_File` (the master's binlog the SQL thread applies).
    pub relay_master_log_file: &'static str,
    /// `Exec_Master_Log_Pos` (applied up to).
    pub exec_pos: &'static str,
    /// `Slave_IO_Running` (`Yes`, `No`, `Connecting`).
    pub io_running: &'static str,
    /// `Slave_SQL_Running`.
    pub sql_running: &'static str,
}

/// The three numbers of a version string (`10.11.6-MariaDB…` → (10, 11, 6)).
fn version_triple(version: &str) -> (u32, u32, u32) {
    let nums: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    )
}

impl Flavor {
    /// The flavour of a server whose `VERSION()` is `version`.
    pub fn from_version(version: &str) -> Flavor {
        let v = version_triple(version);
        if version.to_ascii_lowercase().contains("mariadb") {
            return Flavor::MariaDb {
                gtid: v >= (10, 0, 2),
            };
        }
        if v >= (8, 4, 0) {
            Flavor::MySqlModern
        } else {
            Flavor::MySqlClassic {
                super_read_only: v >= (5, 7, 8),
            }
        }
    }

    /// Whether this is MariaDB.
    pub fn is_mariadb(self) -> bool {
        matches!(self, Flavor::MariaDb { .. })
    }

    /// MariaDB with GTIDs (`MASTER_USE_GTID=slave_pos` is possible).
    pub fn mariadb_gtid(self) -> bool {
        self == Flavor::MariaDb { gtid: true }
    }

    fn modern(self) -> bool {
        self == Flavor::MySqlModern
    }

    /// Whether the server has `super_read_only`.
    pub fn has_super_read_only(self) -> bool {
        match self {
            Flavor::MariaDb { .. } => false,
            Flavor::MySqlClassic { super_read_only } => super_read_only,
            Flavor::MySqlModern => true,
        }
    }

    /// `SHOW SLAVE STATUS`.
    pub fn show_slave_status(self) -> &'static str {
        if self.modern() {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    /// `SHOW MASTER STATUS`.
    pub fn show_master_status(self) -> &'static str {
        if self.modern() {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    /// `START SLAVE` (all threads).
    pub fn start_slave(self) -> &'static str {
        if self.modern() {
            "START REPLICA"
        } else {
            "START SLAVE"
        }
    }

    /// `STOP SLAVE` (all threads).
    pub fn stop_slave(self) -> &'static str {
        if self.modern() {
            "STOP REPLICA"
        } else {
            "STOP SLAVE"
        }
    }

    /// `STOP SLAVE IO_THREAD`.
    pub fn stop_io_thread(self) -> &'static str {
        if self.modern() {
            "STOP REPLICA IO_THREAD"
        } else {
            "STOP SLAVE IO_THREAD"
        }
    }

    /// `START SLAVE IO_THREAD`.
    pub fn start_io_thread(self) -> &'static str {
        if self.modern() {
            "START REPLICA IO_THREAD"
        } else {
            "START SLAVE IO_THREAD"
        }
    }

    /// `STOP SLAVE SQL_THREAD`.
    pub fn stop_sql_thread(self) -> &'static str {
        if self.modern() {
            "STOP REPLICA SQL_THREAD"
        } else {
            "STOP SLAVE SQL_THREAD"
        }
    }

    /// `START SLAVE SQL_THREAD`.
    pub fn start_sql_thread(self) -> &'static str {
        if self.modern() {
            "START REPLICA SQL_THREAD"
        } else {
            "START SLAVE SQL_THREAD"
        }
    }

    /// The statement that starts again the slave threads that ran (`io`, `sql`) before a
    /// change; `None` when neither ran.
    pub fn restart_threads(self, io: bool, sql: bool) -> Option<&'static str> {
        match (io, sql) {
            (true, true) => Some(self.start_slave()),
            (true, false) => Some(self.start_io_thread()),
            (false, true) => Some(self.start_sql_thread()),
            (false, false) => None,
        }
    }

    /// Column names of the slave status row.
    pub fn slave_columns(self) -> SlaveColumns {
        if self.modern() {
            SlaveColumns {
                master_host: "Source_Host",
                master_log_file: "Source_Log_File",
                read_pos: "Read_Source_Log_Pos",
                relay_master_log_file: "Relay_Source_Log_File",
                exec_pos: "Exec_Source_Log_Pos",
                io_running: "Replica_IO_Running",
                sql_running: "Replica_SQL_Running",
            }
        } else {
            SlaveColumns {
                master_host: "Master_Host",
                master_log_file: "Master_Log_File",
                read_pos: "Read_Master_Log_Pos",
                relay_master_log_file: "Relay_Master_Log_File",
                exec_pos: "Exec_Master_Log_Pos",
                io_running: "Slave_IO_Running",
                sql_running: "Slave_SQL_Running",
            }
        }
    }

    /// The global variable that bounds a slave's wait for data from its master.
    pub fn net_timeout_var(self) -> &'static str {
        if self.modern() {
            "replica_net_timeout"
        } else {
            "slave_net_timeout"
        }
    }

    /// A query whose first row's last column is the IO thread's heartbeat period in seconds
    /// (MariaDB: a status variable; MySQL 5.7+: performance_schema, which may be off).
    pub fn heartbeat_query(self) -> &'static str {
        if self.is_mariadb() {
            "SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'"
        } else {
            "SELECT HEARTBEAT_INTERVAL FROM performance_schema.replication_connection_configuration"
        }
    }

    /// `SELECT MASTER_POS_WAIT(file, pos, timeout)`.
    pub fn pos_wait(self, file: &str, pos: u64, timeout_secs: u64) -> String {
        let f = if self.modern() {
            "SOURCE_POS_WAIT"
        } else {
            "MASTER_POS_WAIT"
        };
        format!("SELECT {f}('{}', {pos}, {timeout_secs})", escape(file))
    }

    fn change_words(self) -> (&'static str, &'static str) {
        if self.modern() {
            ("CHANGE REPLICATION SOURCE TO", "SOURCE")
        } else {
            ("CHANGE MASTER TO", "MASTER")
        }
    }

    /// `CHANGE MASTER TO …` for `target`.
    pub fn change_master(self, t: &ChangeMaster) -> String {
        let (cmd, p) = self.change_words();
        let mut s = format!(
            "{cmd} {p}_HOST='{}', {p}_PORT={}, {p}_USER='{}', {p}_PASSWORD='{}'",
            escape(&t.host),
            t.port,
            escape(&t.user),
            escape(&t.password)
        );
        if let Some(l) = t.link {
            s.push_str(&format!(
                ", {p}_CONNECT_RETRY={}, {p}_HEARTBEAT_PERIOD={}",
                l.connect_retry,
                l.heartbeat_sql()
            ));
        }
        match &t.position {
            Position::MariaGtid => s.push_str(", MASTER_USE_GTID=slave_pos"),
            Position::MySqlAutoPosition => s.push_str(&format!(", {p}_AUTO_POSITION=1")),
            Position::File { file, pos } => {
                if self.mariadb_gtid() {
                    s.push_str(", MASTER_USE_GTID=no");
                }
                s.push_str(&format!(
                    ", {p}_LOG_FILE='{}', {p}_LOG_POS={pos}",
                    escape(file)
                ));
            }
        }
        s
    }

    /// A CHANGE MASTER that changes the link of the current master without re-pointing it:
    /// `link` sets the connect retry and heartbeat, `gtid` turns on GTID positioning
    /// (MariaDB `MASTER_USE_GTID=slave_pos`, MySQL auto-position). `None` when there is
    /// nothing to change.
    pub fn change_link(self, link: Option<LinkSettings>, gtid: bool) -> Option<String> {
        let (cmd, p) = self.change_words();
        let mut parts = Vec::new();
        if let Some(l) = link {
            parts.push(format!("{p}_CONNECT_RETRY={}", l.connect_retry));
            parts.push(format!("{p}_HEARTBEAT_PERIOD={}", l.heartbeat_sql()));
        }
        if gtid {
            parts.push(if self.is_mariadb() {
                "MASTER_USE_GTID=slave_pos".to_string()
            } else {
                format!("{p}_AUTO_POSITION=1")
            });
        }
        (!parts.is_empty()).then(|| format!("{cmd} {}", parts.join(", ")))
    }
}

/// Where a re-pointed slave starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// MariaDB GTID (`MASTER_USE_GTID=slave_pos`).
    MariaGtid,
    /// MySQL GTID (`SOURCE_AUTO_POSITION=1`).
    MySqlAutoPosition,
    /// A binlog file and position on the new master.
    File {
        /// Binlog file.
        file: String,
        /// Position.
        pos: u64,
    },
}

/// The arguments of a CHANGE MASTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMaster {
    /// New master's IP.
    pub host: String,
    /// Its MySQL port.
    pub port: u16,
    /// Replication user.
    pub user: String,
    /// Replication password.
    pub password: String,
    /// Start position.
    pub position: Position,
    /// Connect retry and heartbeat ([`LINK`]); `None` only for the fallback when a replica
    /// refused them.
    pub link: Option<LinkSettings>,
}

/// Escapes a string for a single-quoted SQL literal.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Parses a MariaDB GTID position (`0-1-100,1-2-5`) into (domain, seq_no) pairs.
pub fn parse_gtid_pos(s: &str) -> Vec<(u32, u64)> {
    s.split(',')
        .filter_map(|g| {
            let mut it = g.trim().split('-');
            let d = it.next()?.parse().ok()?;
            let _server = it.next()?;
            let n = it.next()?.parse().ok()?;
            Some((d, n))
        })
        .collect()
}

/// Whether `master_binlog` (the new master's `gtid_binlog_pos`) holds everything in
/// `slave_pos` (the slave's `gtid_slave_pos`): every domain present with seq_no ≥.
pub fn gtid_covers(master_binlog: &str, slave_pos: &str) -> bool {
    let m = parse_gtid_pos(master_binlog);
    let s = parse_gtid_pos(slave_pos);
    !s.is_empty()
        && s.iter()
            .all(|(d, n)| m.iter().any(|(md, mn)| md == d && mn >= n))
}

/// Whether the new master's binlog holds the slave's position exactly: for every GTID
/// `d-s-n` of `slave_pos` (the slave's `gtid_slave_pos`), `binlog_state` (the new master's
/// `gtid_binlog_state`, the last sequence number per domain *and server*) has `d-s-m` with
/// `m ≥ n`. Stricter than [`gtid_covers`], which compares sequence numbers per domain only:
/// once a new master has taken writes its sequence numbers pass those of a slave that holds
/// transactions it never got, and that slave would be re-pointed past them (skipping the
/// new master's own transactions with the same numbers).
pub fn gtid_state_holds(binlog_state: &str, slave_pos: &str) -> bool {
    let state = triples(binlog_state);
    let slave = triples(slave_pos);
    !slave.is_empty()
        && slave.iter().all(|(d, srv, n)| {
            state
                .iter()
                .any(|(sd, ss, sn)| sd == d && ss == srv && sn >= n)
        })
}

/// The GTIDs of a MariaDB GTID list (`0-1-100,1-2-5`: `domain-server-seq`), malformed
/// entries left out.
pub(crate) fn triples(s: &str) -> Vec<(u32, u32, u64)> {
    s.split(',')
        .filter_map(|g| {
            let mut it = g.trim().split('-');
            let d = it.next()?.parse().ok()?;
            let srv = it.next()?.parse().ok()?;
            let n = it.next()?.parse().ok()?;
            it.next().is_none().then_some((d, srv, n))
        })
        .collect()
}

/// Whether two MariaDB GTID positions name the same last GTID in every domain (order and
/// spaces do not matter; `""` equals `""`). Used before turning a positional link into a
/// GTID one: the slave's `gtid_slave_pos` must be exactly what the master's binlog holds at
/// the coordinates the slave applied (`BINLOG_GTID_POS`), or GTID positioning would repeat
/// or skip transactions.
pub fn same_gtid_pos(a: &str, b: &str) -> bool {
    fn triples(s: &str) -> Option<Vec<(u32, u32, u64)>> {
        let mut v = Vec::new();
        for g in s.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut it = g.split('-');
            let d = it.next()?.parse().ok()?;
            let srv = it.next()?.parse().ok()?;
            let n = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            v.push((d, srv, n));
        }
        v.sort_unstable();
        Some(v)
    }
    match (triples(a), triples(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARIA: Flavor = Flavor::MariaDb { gtid: true };

    fn target(position: Position, link: Option<LinkSettings>) -> ChangeMaster {
        ChangeMaster {
            host: "198.18.0.102".into(),
            port: 3306,
            user: "repl".into(),
            password: "it's".into(),
            position,
            link,
        }
    }

    #[test]
    fn flavours_and_syntax() {
        assert_eq!(Flavor::from_version("10.11.6-MariaDB-0+deb12u1"), MARIA);
        assert_eq!(
            Flavor::from_version("5.5.68-MariaDB"),
            Flavor::MariaDb { gtid: false }
        );
        assert_eq!(Flavor::from_version("8.4.2"), Flavor::MySqlModern);
        assert_eq!(
            Flavor::from_version("5.7.44-log"),
            Flavor::MySqlClassic {
                super_read_only: true
            }
        );
        assert_eq!(
            Flavor::MySqlModern.show_slave_status(),
            "SHOW REPLICA STATUS"
        );
        assert_eq!(
            MARIA.pos_wait("mysql-bin.000002", 342, 30),
            "SELECT MASTER_POS_WAIT('mysql-bin.000002', 342, 30)"
        );
        let file = Position::File {
            file: "mysql-bin.000003".into(),
            pos: 4,
        };
        assert_eq!(
            MARIA.change_master(&target(file.clone(), None)),
            "CHANGE MASTER TO MASTER_HOST='198.18.0.102', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='it\\'s', MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=4"
        );
        // MariaDB without GTID has no MASTER_USE_GTID.
        assert!(!Flavor::MariaDb { gtid: false }
            .change_master(&target(file.clone(), None))
            .contains("MASTER_USE_GTID"));
        assert!(Flavor::MySqlModern
            .change_master(&target(file, None))
            .starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST="));
    }

    #[test]
    fn every_change_master_carries_the_link_settings() {
        assert_eq!(
            MARIA.change_master(&target(Position::MariaGtid, Some(LINK))),
            "CHANGE MASTER TO MASTER_HOST='198.18.0.102', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='it\\'s', MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1.000, MASTER_USE_GTID=slave_pos"
        );
        assert_eq!(
            Flavor::MySqlModern.change_master(&target(Position::MySqlAutoPosition, Some(LINK))),
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='198.18.0.102', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='it\\'s', SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1.000, SOURCE_AUTO_POSITION=1"
        );
        assert_eq!(
            MARIA.change_link(Some(LINK), true).as_deref(),
            Some("CHANGE MASTER TO MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1.000, MASTER_USE_GTID=slave_pos")
        );
        assert_eq!(
            Flavor::MySqlClassic {
                super_read_only: true
            }
            .change_link(None, true)
            .as_deref(),
            Some("CHANGE MASTER TO MASTER_AUTO_POSITION=1")
        );
        assert_eq!(MARIA.change_link(None, false), None);
        // A server with slave_net_timeout 1 gets a 0.5 s heartbeat; 0 does not divide by 0.
        assert_eq!(LINK.for_net_timeout(1).heartbeat_ms, 500);
        assert_eq!(LINK.for_net_timeout(60), LINK);
        assert_eq!(LINK.for_net_timeout(0).heartbeat_ms, 1);
        assert_eq!(
            MARIA
                .change_link(Some(LINK.for_net_timeout(1)), false)
                .as_deref(),
            Some("CHANGE MASTER TO MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=0.500")
        );
        assert_eq!(Flavor::MySqlModern.net_timeout_var(), "replica_net_timeout");
        assert_eq!(MARIA.start_io_thread(), "START SLAVE IO_THREAD");
        assert_eq!(
            Flavor::MySqlModern.stop_sql_thread(),
            "STOP REPLICA SQL_THREAD"
        );
    }

    #[test]
    fn gtid_coverage() {
        assert!(gtid_covers("0-2-120", "0-1-100"));
        assert!(!gtid_covers("0-2-90", "0-1-100"));
        assert!(!gtid_covers("0-2-120", "0-1-100,1-3-4"));
        assert!(!gtid_covers("0-2-120", ""));
    }

    #[test]
    fn gtid_state_holds_the_slaves_exact_gtid() {
        assert!(gtid_state_holds("0-1-120,0-2-40", "0-1-100"));
        assert!(gtid_state_holds("0-1-100", "0-1-100"));
        // The new master wrote on (0-2-…) without the slave's last transaction 0-1-100.
        assert!(!gtid_state_holds("0-1-99,0-2-300", "0-1-100"));
        assert!(!gtid_state_holds("0-2-120", "0-1-100"));
        assert!(!gtid_state_holds("0-1-120", "0-1-100,1-3-4"));
        assert!(!gtid_state_holds("0-1-120", ""));
    }

    #[test]
    fn gtid_positions_compare_per_domain() {
        assert!(same_gtid_pos("0-1-9", "0-1-9"));
        assert!(same_gtid_pos("1-2-5,0-1-9", "0-1-9, 1-2-5"));
        assert!(same_gtid_pos("", ""));
        assert!(!same_gtid_pos("0-1-9", "0-2-9"));
        assert!(!same_gtid_pos("0-1-9", "0-1-10"));
        assert!(!same_gtid_pos("0-1-9", ""));
        assert!(!same_gtid_pos("0-1-9", "0-1-9,1-1-1"));
        assert!(!same_gtid_pos("garbage", "garbage"));
    }
}
