//! SQL syntax per server flavour (DESIGN.md "Server flavours"): MariaDB 10.x and MySQL up
//! to 8.0 speak 2.2.1's words (`SHOW SLAVE STATUS`, `CHANGE MASTER TO`, `SHOW MASTER
//! STATUS`, `MASTER_POS_WAIT`); MySQL 8.4+ removed them (`SHOW REPLICA STATUS`,
//! `CHANGE REPLICATION SOURCE TO`, `SHOW BINARY LOG STATUS`, `SOURCE_POS_WAIT`, and
//! `Source_*` column names). Pure: chosen from `SELECT VERSION()`.

/// A server flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MariaDB (any version): classic words, GTID via `gtid_slave_pos`, no super_read_only.
    MariaDb,
    /// MySQL before 8.4 (`super_read_only` from 5.7.8).
    MySqlClassic {
        /// Whether `super_read_only` exists (5.7.8+).
        super_read_only: bool,
    },
    /// MySQL 8.4 and later.
    MySqlModern,
}

impl Flavor {
    /// The flavour of a server whose `VERSION()` is `version`.
    pub fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            return Flavor::MariaDb;
        }
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
        if v >= (8, 4, 0) {
            Flavor::MySqlModern
        } else {
            Flavor::MySqlClassic {
                super_read_only: v >= (5, 7, 8),
            }
        }
    }

    fn modern(self) -> bool {
        self == Flavor::MySqlModern
    }

    /// Whether the server has `super_read_only`.
    pub fn has_super_read_only(self) -> bool {
        match self {
            Flavor::MariaDb => false,
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

    /// Column names of the slave status row: (master host, master log file,
    /// read master log pos).
    pub fn slave_columns(self) -> (&'static str, &'static str, &'static str) {
        if self.modern() {
            ("Source_Host", "Source_Log_File", "Read_Source_Log_Pos")
        } else {
            ("Master_Host", "Master_Log_File", "Read_Master_Log_Pos")
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

    /// `CHANGE MASTER TO …` for `target`.
    pub fn change_master(self, t: &ChangeMaster) -> String {
        let (cmd, p) = if self.modern() {
            ("CHANGE REPLICATION SOURCE TO", "SOURCE")
        } else {
            ("CHANGE MASTER TO", "MASTER")
        };
        let mut s = format!(
            "{cmd} {p}_HOST='{}', {p}_PORT={}, {p}_USER='{}', {p}_PASSWORD='{}'",
            escape(&t.host),
            t.port,
            escape(&t.user),
            escape(&t.password)
        );
        match &t.position {
            Position::MariaGtid => s.push_str(", MASTER_USE_GTID=slave_pos"),
            Position::MySqlAutoPosition => s.push_str(&format!(", {p}_AUTO_POSITION=1")),
            Position::File { file, pos } => {
                if self == Flavor::MariaDb {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours_and_syntax() {
        assert_eq!(
            Flavor::from_version("10.11.6-MariaDB-0+deb12u1"),
            Flavor::MariaDb
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
            Flavor::MariaDb.pos_wait("mysql-bin.000002", 342, 30),
            "SELECT MASTER_POS_WAIT('mysql-bin.000002', 342, 30)"
        );
        let t = ChangeMaster {
            host: "198.18.0.102".into(),
            port: 3306,
            user: "repl".into(),
            password: "it's".into(),
            position: Position::File {
                file: "mysql-bin.000003".into(),
                pos: 4,
            },
        };
        assert_eq!(
            Flavor::MariaDb.change_master(&t),
            "CHANGE MASTER TO MASTER_HOST='198.18.0.102', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='it\\'s', MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=4"
        );
        assert!(Flavor::MySqlModern
            .change_master(&t)
            .starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST="));
    }

    #[test]
    fn gtid_coverage() {
        assert!(gtid_covers("0-2-120", "0-1-100"));
        assert!(!gtid_covers("0-2-90", "0-1-100"));
        assert!(!gtid_covers("0-2-120", "0-1-100,1-3-4"));
        assert!(!gtid_covers("0-2-120", ""));
    }
}
