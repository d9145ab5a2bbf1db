//! Fault injection on a [`Testbed`] (DESIGN.md "Tests": stop / kill -9 / freeze a server,
//! cut a host's link or rate-limit its inbound traffic, break or delay replication) and reading a host's neighbour cache.
//! Each operation returns once its effect is in place (a stopped server is gone, a broken
//! slave shows its SQL error), so a test can assert right after.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{Result, TestbedError};
use crate::net::{self, MacAddr};
use crate::process::{pid_alive, poll_until};
use crate::testbed::{Testbed, REPLICATION_TIMEOUT};

impl Testbed {
    /// Clean shutdown of the host's mariadbd (SIGTERM, as `systemctl stop mysqld`); returns
    /// once the process is gone.
    pub fn mysql_stop(&self, host: &str) -> Result<()> {
        self.signal_server(host, Signal::SIGTERM, true)
    }

    /// `kill -9` of the host's mariadbd; returns once the process is gone.
    pub fn mysql_kill9(&self, host: &str) -> Result<()> {
        self.signal_server(host, Signal::SIGKILL, true)
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a hung server).
    pub fn mysql_freeze(&self, host: &str) -> Result<()> {
        self.signal_server(host, Signal::SIGSTOP, false)
    }

    /// SIGCONT after [`Testbed::mysql_freeze`].
    pub fn mysql_thaw(&self, host: &str) -> Result<()> {
        self.signal_server(host, Signal::SIGCONT, false)
    }

    /// Starts the host's server again on the same data directory; returns once it accepts
    /// connections (its slave threads restart by themselves).
    pub fn mysql_start(&self, host: &str) -> Result<()> {
        if self.mysql_running(host)? {
            return Err(TestbedError::State(format!(
                "mariadbd on {host} is already running"
            )));
        }
        self.spawn_server(host)?;
        self.wait_server_ready(host)?;
        self.save_state()?;
        self.settle_slave_threads(host);
        Ok(())
    }

    /// Waits (at most 10 s, best effort) until a restarted server's slave threads are past
    /// their start-up: the IO thread connected, or failing to connect with an error shown.
    /// A SIGTERM that arrives while the IO thread is still connecting can hang MariaDB
    /// 10.11's shutdown for good (seen here), so `mysql_start` does not return earlier.
    fn settle_slave_threads(&self, host: &str) {
        let settled = poll_until(
            &format!("slave threads on {host} to settle"),
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                let Some(st) = self.slave_status(host)? else {
                    return Ok(Some(()));
                };
                let io = st.get("Slave_IO_Running").unwrap_or_default();
                let io_error = st.get("Last_IO_Errno").is_some_and(|e| e != "0");
                Ok((io == "Yes" || io == "No" || io_error).then_some(()))
            },
        );
        if let Err(e) = settled {
            tracing::warn!(host, error = %e, "slave threads did not settle");
        }
    }

    /// Forgets the mariadbd this testbed started on `host` once it has exited, so the
    /// host's server is found by its pid file again: for a server that something else
    /// stopped and started (the tools' `mysql_rcscript`).
    pub fn forget_server(&self, host: &str) {
        if let Ok(mut servers) = self.servers.lock() {
            if let Some(mut child) = servers.remove(host) {
                if matches!(child.try_wait(), Ok(None)) {
                    servers.insert(host.to_string(), child);
                }
            }
        }
    }

    /// Whether the host's mariadbd process exists (it may be frozen).
    pub fn mysql_running(&self, host: &str) -> Result<bool> {
        self.db_host(host)?;
        Ok(self.server_pid(host).is_some_and(pid_alive))
    }

    /// Fills the filesystem under the host's binary log (needs
    /// [`TestbedOptions::binlog_tmpfs_mib`]): a file of zeros grows in it until the write
    /// fails with `ENOSPC`. The tmpfs is reached through the server's own root
    /// (`/proc/<pid>/root`), since it is mounted in the server's mount namespace only.
    /// Returns the bytes written.
    ///
    /// [`TestbedOptions::binlog_tmpfs_mib`]: crate::TestbedOptions::binlog_tmpfs_mib
    pub fn fill_binlog_disk(&self, host: &str) -> Result<u64> {
        use std::io::Write as _;
        let path = self.binlog_filler(host)?;
        let mut f = std::fs::File::create(&path).map_err(|source| TestbedError::Io {
            what: format!("creating {}", path.display()),
            source,
        })?;
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(source) => {
                    return Err(TestbedError::Io {
                        what: format!("filling {}", path.display()),
                        source,
                    })
                }
            }
        }
        Ok(written)
    }

    /// Removes what [`Testbed::fill_binlog_disk`] wrote.
    pub fn free_binlog_disk(&self, host: &str) -> Result<()> {
        let path = self.binlog_filler(host)?;
        std::fs::remove_file(&path).map_err(|source| TestbedError::Io {
            what: format!("removing {}", path.display()),
            source,
        })
    }

    fn binlog_filler(&self, host: &str) -> Result<std::path::PathBuf> {
        let h = self.db_host(host)?;
        if self.state.binlog_tmpfs_mib.is_none() {
            return Err(TestbedError::State(
                "the binary logs are not on a tmpfs (TestbedOptions::binlog_tmpfs_mib)".into(),
            ));
        }
        let pid = self
            .server_pid(host)
            .filter(|p| pid_alive(*p))
            .ok_or_else(|| TestbedError::State(format!("mariadbd on {host} is not running")))?;
        let dir = h.binlog_dir();
        let rel = dir.strip_prefix("/").unwrap_or(&dir);
        Ok(std::path::Path::new(&format!("/proc/{pid}/root"))
            .join(rel)
            .join("fill"))
    }

    /// Cuts the host off the network: its port on the bridge goes down, so nothing reaches
    /// it or leaves it (connections time out; nothing is refused).
    pub fn cut_link(&self, host: &str) -> Result<()> {
        let h = self.host(host)?;
        net::set_port(&self.state.bridge_netns, &h.name, false)
    }

    /// Undoes [`Testbed::cut_link`].
    pub fn restore_link(&self, host: &str) -> Result<()> {
        let h = self.host(host)?;
        net::set_port(&self.state.bridge_netns, &h.name, true)?;
        // Returns once the host sees its link up again (carrier back on ens33), so the next
        // connection attempt of a test does not race the link coming up.
        let limit = Instant::now() + Duration::from_secs(5);
        loop {
            let link = net::ip_in(&h.netns, &["-o", "link", "show", net::CLUSTER_INTERFACE])?;
            if link.contains("state UP") || link.contains("LOWER_UP") {
                return Ok(());
            }
            if Instant::now() >= limit {
                return Err(TestbedError::State(format!(
                    "{host}: {} not up 5 s after restoring its link: {link}",
                    net::CLUSTER_INTERFACE
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Rate-limits what reaches `host` (its inbound link, as a busy or far-away host) to
    /// `kbit` kbit/s: a tc `tbf` on the host's port of the testbed's bridge, inside the
    /// bridge namespace. What it sends is not limited. Replaces an earlier limit.
    pub fn limit_inbound(&self, host: &str, kbit: u32) -> Result<()> {
        if kbit == 0 {
            return Err(TestbedError::State(
                "an inbound limit of 0 kbit/s: use cut_link".into(),
            ));
        }
        let h = self.host(host)?;
        net::set_port_rate(&self.state.bridge_netns, &h.name, Some(kbit))
    }

    /// Undoes [`Testbed::limit_inbound`] (a host without a limit is fine).
    pub fn unlimit_inbound(&self, host: &str) -> Result<()> {
        let h = self.host(host)?;
        net::set_port_rate(&self.state.bridge_netns, &h.name, None)
    }

    /// The inbound limit of `host` in kbit/s, if it has one.
    pub fn inbound_limit(&self, host: &str) -> Result<Option<u32>> {
        let h = self.host(host)?;
        net::port_rate(&self.state.bridge_netns, &h.name)
    }

    /// The host this host replicates from at start-up (db1 from db2, the others from db1).
    pub fn initial_master(&self, host: &str) -> Result<&'static str> {
        self.db_host(host)?;
        Ok(if host == "db1" { "db2" } else { "db1" })
    }

    /// Breaks replication on `host`: a row is inserted locally (not binlogged), then the
    /// same key on its master, so the slave's SQL thread stops on a duplicate-key error
    /// (1062). Returns once `SHOW SLAVE STATUS` shows the error.
    pub fn break_replication(&self, host: &str) -> Result<()> {
        let master = self.current_master(host)?;
        let rows = self.query(
            &master,
            "SELECT COALESCE(MAX(id), 0) + 1000 AS k FROM mmm_test.mt_break",
        )?;
        let key: u64 = rows
            .first()
            .and_then(|r| r.get("k"))
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| TestbedError::State("no key for mt_break".into()))?;
        self.query(
            host,
            &format!("SET sql_log_bin=0; INSERT INTO mmm_test.mt_break VALUES ({key})"),
        )?;
        self.query(
            &master,
            &format!("INSERT INTO mmm_test.mt_break VALUES ({key})"),
        )?;
        poll_until(
            &format!("replication on {host} to stop with an SQL error"),
            REPLICATION_TIMEOUT,
            Duration::from_millis(20),
            || {
                let st = self.slave_status(host)?;
                Ok(st
                    .filter(|s| {
                        s.get("Last_SQL_Errno").is_some_and(|e| e != "0")
                            && s.get("Slave_SQL_Running") == Some("No")
                    })
                    .map(|_| ()))
            },
        )
    }

    /// Repairs what [`Testbed::break_replication`] did: removes the conflicting local row
    /// (not binlogged) and restarts the SQL thread, which then applies the master's row.
    /// Returns once both slave threads run again. A slave that is not broken is left as is.
    pub fn repair_replication(&self, host: &str) -> Result<()> {
        let st = self
            .slave_status(host)?
            .ok_or_else(|| TestbedError::State(format!("{host} is no slave")))?;
        if st.get("Slave_SQL_Running") == Some("Yes") {
            return Ok(());
        }
        let error = st.get("Last_SQL_Error").unwrap_or_default();
        let key = duplicate_key(error).ok_or_else(|| {
            TestbedError::State(format!(
                "replication on {host} is stopped by an error the testbed did not cause: {error}"
            ))
        })?;
        self.query(
            host,
            &format!(
                "SET sql_log_bin=0; DELETE FROM mmm_test.mt_break WHERE id={key}; START SLAVE"
            ),
        )?;
        self.wait_slave_running(host)?;
        poll_until(
            &format!("the SQL error on {host} to clear"),
            REPLICATION_TIMEOUT,
            Duration::from_millis(20),
            || {
                let st = self.slave_status(host)?;
                Ok(st
                    .filter(|s| s.get("Last_SQL_Errno") == Some("0"))
                    .map(|_| ()))
            },
        )
    }

    /// Makes `host` apply its master's events `secs` seconds late (`MASTER_DELAY`).
    pub fn delay_replication(&self, host: &str, secs: u32) -> Result<()> {
        self.query(
            host,
            &format!("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={secs}; START SLAVE"),
        )?;
        self.wait_slave_running(host)
    }

    /// Undoes [`Testbed::delay_replication`] (`MASTER_DELAY=0`).
    pub fn undelay_replication(&self, host: &str) -> Result<()> {
        self.delay_replication(host, 0)
    }

    /// The MAC that `host`'s neighbour (ARP) cache holds for `ip`, if any.
    pub fn neighbour_mac(&self, host: &str, ip: Ipv4Addr) -> Result<Option<MacAddr>> {
        let h = self.host(host)?;
        net::neighbour(&h.netns, ip)
    }

    /// The host `host` replicates from now (from `SHOW SLAVE STATUS`'s Master_Host).
    fn current_master(&self, host: &str) -> Result<String> {
        let st = self
            .slave_status(host)?
            .ok_or_else(|| TestbedError::State(format!("{host} is no slave")))?;
        let master_ip: Ipv4Addr = st
            .get("Master_Host")
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| TestbedError::State(format!("{host}: no Master_Host")))?;
        self.hosts()
            .iter()
            .find(|h| h.ip == master_ip)
            .map(|h| h.name.clone())
            .ok_or_else(|| {
                TestbedError::State(format!(
                    "{host} replicates from {master_ip}, no testbed host"
                ))
            })
    }
}

/// The key in a duplicate-key replication error ("Duplicate entry '1005' for key ...").
fn duplicate_key(error: &str) -> Option<u64> {
    let rest = error.split("Duplicate entry '").nth(1)?;
    rest.split('\'').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_parses() {
        let row = "Could not execute Write_rows_v1 event on table mmm_test.mt_break; \
                   Duplicate entry '1005' for key 'PRIMARY', Error_code: 1062; handler error \
                   HA_ERR_FOUND_DUPP_KEY; the event's master log mysql_bin.000001, end_log_pos 1234";
        assert_eq!(duplicate_key(row), Some(1005));
        let stmt = "Error 'Duplicate entry '7' for key 'PRIMARY'' on query. Default database: ''";
        assert_eq!(duplicate_key(stmt), Some(7));
        assert_eq!(duplicate_key("Error 'Table x doesn't exist'"), None);
    }
}
