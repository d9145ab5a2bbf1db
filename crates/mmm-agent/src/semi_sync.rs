//! Semi-synchronous replication per server flavour (extension directive `semi_sync`): the
//! variable, status and plugin names, and the statements that turn it on. Pure: chosen from
//! `SELECT VERSION()`, unit-tested for every flavour (only MariaDB runs on the testbed).
//!
//! - MariaDB 10.3.3+: built in (`rpl_semi_sync_master_*` / `_slave_*`), wait point
//!   AFTER_COMMIT by default, so the agent sets AFTER_SYNC.
//! - MySQL 5.7 and 8.0 before 8.0.26: plugins `rpl_semi_sync_master` (semisync_master.so) and
//!   `rpl_semi_sync_slave` (semisync_slave.so), same variable names as MariaDB.
//! - MySQL 8.0.26 and later: plugins `rpl_semi_sync_source` (semisync_source.so) and
//!   `rpl_semi_sync_replica` (semisync_replica.so), `*_source_*` / `*_replica_*` names.
//! - Older servers (MariaDB before 10.3.3, MySQL before 5.5): none; the agent says so and
//!   the monitor treats the cluster as not lossless.

use std::time::Duration;

/// Which semi-sync implementation a server has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemiSyncKind {
    /// MariaDB 10.3.3+: built in, `master`/`slave` names.
    MariaDbBuiltIn,
    /// MySQL 5.5–8.0.25: the `rpl_semi_sync_master`/`_slave` plugins.
    MySqlMasterSlave,
    /// MySQL 8.0.26+: the `rpl_semi_sync_source`/`_replica` plugins.
    MySqlSourceReplica,
    /// No semi-synchronous replication (the version string says why).
    Unsupported,
}

/// The three numbers of a version string (`10.11.6-MariaDB…` → (10, 11, 6)).
fn version_triple(version: &str) -> (u32, u32, u32) {
    let mut nums = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .take(3)
        .map(|n| n.parse().unwrap_or(0));
    (
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
    )
}

/// One side of semi-sync (the writer waits, the standby acknowledges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The writer: waits for an acknowledgement before a commit returns.
    Master,
    /// The standby master: acknowledges what it wrote to its relay log.
    Slave,
}

impl SemiSyncKind {
    /// The implementation of a server whose `VERSION()` is `version`.
    pub fn from_version(version: &str) -> SemiSyncKind {
        let v = version_triple(version);
        if version.to_ascii_lowercase().contains("mariadb") {
            if v >= (10, 3, 3) {
                SemiSyncKind::MariaDbBuiltIn
            } else {
                SemiSyncKind::Unsupported
            }
        } else if v >= (8, 0, 26) {
            SemiSyncKind::MySqlSourceReplica
        } else if v >= (5, 5, 0) {
            SemiSyncKind::MySqlMasterSlave
        } else {
            SemiSyncKind::Unsupported
        }
    }

    /// Whether the server has semi-sync at all.
    pub fn supported(self) -> bool {
        self != SemiSyncKind::Unsupported
    }

    fn word(self, side: Side) -> &'static str {
        match (self, side) {
            (SemiSyncKind::MySqlSourceReplica, Side::Master) => "source",
            (SemiSyncKind::MySqlSourceReplica, Side::Slave) => "replica",
            (_, Side::Master) => "master",
            (_, Side::Slave) => "slave",
        }
    }

    /// `rpl_semi_sync_master_enabled` (or `_source_` / `_slave_` / `_replica_`).
    pub fn enabled_var(self, side: Side) -> String {
        format!("rpl_semi_sync_{}_enabled", self.word(side))
    }

    /// The status variable that says whether semi-sync is active now
    /// (`Rpl_semi_sync_master_status`: OFF after a fall back to async).
    pub fn status_var(self, side: Side) -> String {
        format!("Rpl_semi_sync_{}_status", self.word(side))
    }

    /// `Rpl_semi_sync_master_clients`: semi-sync slaves connected to the writer.
    pub fn clients_var(self) -> String {
        format!("Rpl_semi_sync_{}_clients", self.word(Side::Master))
    }

    /// `INSTALL PLUGIN` for one side (MySQL only; MariaDB has it built in). The statement
    /// fails with 1125 (exists) when the plugin is installed already: check
    /// `information_schema.PLUGINS` first ([`SemiSyncKind::plugin_name`]).
    pub fn install_plugin(self, side: Side) -> Option<String> {
        match self {
            SemiSyncKind::MySqlMasterSlave | SemiSyncKind::MySqlSourceReplica => {
                let w = self.word(side);
                Some(format!(
                    "INSTALL PLUGIN rpl_semi_sync_{w} SONAME 'semisync_{w}.so'"
                ))
            }
            _ => None,
        }
    }

    /// The plugin's name in `information_schema.PLUGINS` (MySQL only).
    pub fn plugin_name(self, side: Side) -> Option<String> {
        matches!(
            self,
            SemiSyncKind::MySqlMasterSlave | SemiSyncKind::MySqlSourceReplica
        )
        .then(|| format!("rpl_semi_sync_{}", self.word(side)))
    }

    /// The statements that configure the master side: wait point AFTER_SYNC (an
    /// acknowledged commit is in the standby's relay log before any client can see it;
    /// MariaDB's default AFTER_COMMIT is not lossless), the timeout in milliseconds, and
    /// `enabled` (on for the writer only).
    pub fn master_settings(self, timeout: Duration, enabled: bool) -> Vec<String> {
        if !self.supported() {
            return Vec::new();
        }
        let w = self.word(Side::Master);
        let ms = timeout.as_millis().max(1);
        vec![
            format!("SET GLOBAL rpl_semi_sync_{w}_wait_point=AFTER_SYNC"),
            format!("SET GLOBAL rpl_semi_sync_{w}_timeout={ms}"),
            self.set_enabled(Side::Master, enabled),
        ]
    }

    /// `SET GLOBAL rpl_semi_sync_<side>_enabled=0|1`.
    pub fn set_enabled(self, side: Side, on: bool) -> String {
        format!("SET GLOBAL {}={}", self.enabled_var(side), u8::from(on))
    }

    /// A query whose rows are (name, value) of the semi-sync global variables.
    pub fn variables_query(self) -> &'static str {
        "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_%'"
    }

    /// A query whose rows are (name, value) of the semi-sync status variables.
    pub fn status_query(self) -> &'static str {
        "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%'"
    }

    /// The wait point variable.
    pub fn wait_point_var(self) -> String {
        format!("rpl_semi_sync_{}_wait_point", self.word(Side::Master))
    }

    /// The timeout variable (milliseconds).
    pub fn timeout_var(self) -> String {
        format!("rpl_semi_sync_{}_timeout", self.word(Side::Master))
    }

    /// Whether the writer waits out the timeout when no semi-sync slave is connected at
    /// all (`rpl_semi_sync_master_wait_no_slave`, MySQL 8.0.26+
    /// `rpl_semi_sync_source_wait_no_replica`; ON by default).
    pub fn wait_no_slave_var(self) -> String {
        match self {
            SemiSyncKind::MySqlSourceReplica => "rpl_semi_sync_source_wait_no_replica".into(),
            _ => "rpl_semi_sync_master_wait_no_slave".into(),
        }
    }

    /// `SET GLOBAL <wait_no_slave>=ON|OFF`.
    pub fn set_wait_no_slave(self, on: bool) -> String {
        format!(
            "SET GLOBAL {}={}",
            self.wait_no_slave_var(),
            if on { "ON" } else { "OFF" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_version() {
        use SemiSyncKind::*;
        for (v, k) in [
            ("10.11.6-MariaDB-0+deb12u1-log", MariaDbBuiltIn),
            ("10.3.3-MariaDB", MariaDbBuiltIn),
            ("10.3.2-MariaDB", Unsupported),
            ("5.5.68-MariaDB", Unsupported),
            ("5.7.44-log", MySqlMasterSlave),
            ("8.0.25", MySqlMasterSlave),
            ("8.0.26", MySqlSourceReplica),
            ("8.4.3", MySqlSourceReplica),
            ("9.1.0", MySqlSourceReplica),
            ("5.1.73", Unsupported),
            ("", Unsupported),
        ] {
            assert_eq!(SemiSyncKind::from_version(v), k, "{v}");
        }
    }

    #[test]
    fn mariadb_statements() {
        let k = SemiSyncKind::MariaDbBuiltIn;
        assert_eq!(
            k.master_settings(Duration::from_secs(10), true),
            [
                "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
                "SET GLOBAL rpl_semi_sync_master_timeout=10000",
                "SET GLOBAL rpl_semi_sync_master_enabled=1",
            ]
        );
        assert_eq!(
            k.set_enabled(Side::Slave, true),
            "SET GLOBAL rpl_semi_sync_slave_enabled=1"
        );
        assert_eq!(k.install_plugin(Side::Master), None);
        assert_eq!(k.status_var(Side::Master), "Rpl_semi_sync_master_status");
        assert_eq!(k.status_var(Side::Slave), "Rpl_semi_sync_slave_status");
        assert_eq!(k.clients_var(), "Rpl_semi_sync_master_clients");
        assert_eq!(
            k.set_wait_no_slave(false),
            "SET GLOBAL rpl_semi_sync_master_wait_no_slave=OFF"
        );
    }

    #[test]
    fn mysql_plugin_statements() {
        let k = SemiSyncKind::MySqlMasterSlave;
        assert_eq!(
            k.install_plugin(Side::Master).as_deref(),
            Some("INSTALL PLUGIN rpl_semi_sync_master SONAME 'semisync_master.so'")
        );
        assert_eq!(
            k.install_plugin(Side::Slave).as_deref(),
            Some("INSTALL PLUGIN rpl_semi_sync_slave SONAME 'semisync_slave.so'")
        );
        assert_eq!(
            k.master_settings(Duration::from_millis(2500), false)[1],
            "SET GLOBAL rpl_semi_sync_master_timeout=2500"
        );
        let k = SemiSyncKind::MySqlSourceReplica;
        assert_eq!(
            k.install_plugin(Side::Slave).as_deref(),
            Some("INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'")
        );
        assert_eq!(
            k.plugin_name(Side::Master).as_deref(),
            Some("rpl_semi_sync_source")
        );
        assert_eq!(
            k.master_settings(Duration::from_secs(1), true),
            [
                "SET GLOBAL rpl_semi_sync_source_wait_point=AFTER_SYNC",
                "SET GLOBAL rpl_semi_sync_source_timeout=1000",
                "SET GLOBAL rpl_semi_sync_source_enabled=1",
            ]
        );
        assert_eq!(k.status_var(Side::Slave), "Rpl_semi_sync_replica_status");
        assert_eq!(k.clients_var(), "Rpl_semi_sync_source_clients");
        assert_eq!(
            k.set_wait_no_slave(true),
            "SET GLOBAL rpl_semi_sync_source_wait_no_replica=ON"
        );
        assert_eq!(
            SemiSyncKind::MySqlMasterSlave.wait_no_slave_var(),
            "rpl_semi_sync_master_wait_no_slave"
        );
    }

    #[test]
    fn unsupported_has_no_statements() {
        let k = SemiSyncKind::Unsupported;
        assert!(!k.supported());
        assert!(k.master_settings(Duration::from_secs(10), true).is_empty());
        assert_eq!(k.install_plugin(Side::Master), None);
    }
}
