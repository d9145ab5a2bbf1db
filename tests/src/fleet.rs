//! A fleet of extra MMM hosts on a testbed, for the monitor scaling benchmark (issue 7
//! "Benchmarks"; docs/scaling.md; spec §3.3 checks, §4 agents).
//!
//! The seed's four hosts stay as they are. Each extra host `h005`, `h006`, … is a
//! configured `<host>` (mode `slave`, in no role) with an address of its own on the
//! testbed's /24, and that address reaches a real MariaDB server:
//!
//! - a *live* extra host's address is a /32 added to db3's `ens33`, so its ping, mysql,
//!   rep_threads and rep_backlog checks run against db3's mariadbd (a slave of db1);
//! - a *hung* extra host's address lives on a fifth namespace `<id>-hang` (bridge port
//!   `hang`, own address .99) running a fifth mariadbd, also a slave of db1, which
//!   [`Fleet::freeze_hung`] stops with SIGSTOP (TCP connects still complete in the kernel's
//!   backlog, no greeting comes: the same as the testbed's `mysql_freeze`).
//!
//! Every extra host gets its own `mmm_agent_<name>.conf` (`this <name>`) and a pid file of
//! its own, so a real `mmm_agentd @<name>` can run for it on the namespace that holds its
//! address ([`Fleet::spawn_agent`]). `mmm_common.conf` with all hosts is rewritten on every
//! host (`mmm_mon.conf` stays the testbed's).
//!
//! Dropping the fleet kills everything on the hang namespace and deletes it; the addresses
//! on db3 go with the testbed.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{io_err, Result, TestbedError};
use crate::mariadb::{self, PASSWORD};
use crate::net::{self, CLUSTER_INTERFACE};
use crate::process::{pid_alive, run_ok, signal_pid, wait_child};
use crate::testbed::{Testbed, PRIVATE_DIRS};

/// The host whose server answers for the live extra hosts.
pub const LIVE_SERVER: &str = "db3";
/// Name of the fifth namespace (`<id>-hang`) and its bridge port.
pub const HANG_HOST: &str = "hang";
/// Last octet of the hang namespace's own address.
pub const HANG_OCTET: u8 = 99;
/// Octets never given to an extra host: the seed's hosts, the VIPs, the hang namespace.
const RESERVED: [u8; 9] = [HANG_OCTET, 100, 102, 103, 105, 106, 188, 198, 199];
/// The seed's hosts.
pub const SEED_HOSTS: usize = 4;
/// How many hosts a fleet can have on one /24.
pub const MAX_HOSTS: usize = SEED_HOSTS + 254 - RESERVED.len();
/// `max_connections` set on the servers that answer for many hosts (one held monitor
/// connection, up to three check connections and an agent's per host).
const MANY_CONNECTIONS: u32 = 2000;
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// One extra configured host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetHost {
    /// `h005` … (the number is its position in the configuration).
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Whether its address is on the hang namespace (else on db3).
    pub hung: bool,
}

/// The fifth namespace with its server.
struct HangServer {
    netns: String,
    dir: PathBuf,
    server: Child,
}

/// Extra hosts on a running testbed (see the module doc).
pub struct Fleet<'a> {
    tb: &'a Testbed,
    extras: Vec<FleetHost>,
    hang: Option<HangServer>,
}

impl<'a> Fleet<'a> {
    /// Configures `total` hosts (the seed's four plus `total - 4` extra hosts), the last
    /// `hung` of which are on the hang namespace. Adds the addresses, starts the fifth
    /// server when `hung > 0`, and writes the configuration files.
    pub fn build(tb: &'a Testbed, total: usize, hung: usize) -> Result<Fleet<'a>> {
        let extras = plan_hosts(tb.subnet(), total, hung)?;
        let mut fleet = Fleet {
            tb,
            extras,
            hang: None,
        };
        let live_ns = tb.host(LIVE_SERVER)?.netns.clone();
        for h in fleet.extras.iter().filter(|h| !h.hung) {
            add_address(&live_ns, h.ip)?;
        }
        tb.query(
            LIVE_SERVER,
            &format!("SET GLOBAL max_connections = {MANY_CONNECTIONS}"),
        )?;
        if hung > 0 {
            // On error `fleet` drops and removes what was made.
            fleet.start_hang_server()?;
            let hang_ns = fleet
                .hang
                .as_ref()
                .map(|h| h.netns.clone())
                .unwrap_or_default();
            for h in fleet.extras.iter().filter(|h| h.hung) {
                add_address(&hang_ns, h.ip)?;
            }
        }
        fleet.write_configs()?;
        Ok(fleet)
    }

    /// The extra hosts in configuration order.
    pub fn extras(&self) -> &[FleetHost] {
        &self.extras
    }

    /// Every configured host name (seed's first), configuration order.
    pub fn host_names(&self) -> Vec<String> {
        ["db1", "db2", "db3", "db4"]
            .iter()
            .map(|s| (*s).to_string())
            .chain(self.extras.iter().map(|h| h.name.clone()))
            .collect()
    }

    /// The extra hosts whose address is on the hang namespace.
    pub fn hung_hosts(&self) -> Vec<&FleetHost> {
        self.extras.iter().filter(|h| h.hung).collect()
    }

    /// The text of `mmm_common.conf`: the testbed's, plus one `<host>` per extra host.
    pub fn common_conf(&self) -> String {
        let mut common = self.tb.mmm_configs().common;
        common.push_str(&extra_hosts_conf(&self.extras));
        common
    }

    fn write_configs(&self) -> Result<()> {
        let common = self.common_conf();
        let mut dirs: Vec<PathBuf> = ["monitor", "db1", "db2", "db3", "db4"]
            .iter()
            .filter_map(|h| self.tb.host_dir(h).ok())
            .collect();
        if let Some(hang) = &self.hang {
            dirs.push(hang.dir.clone());
        }
        for d in &dirs {
            write_conf(&d.join("etc/mysql-mmm/mmm_common.conf"), &common)?;
        }
        for h in &self.extras {
            let dir = self.server_dir(h)?;
            write_conf(
                &dir.join(format!("etc/mysql-mmm/mmm_agent_{}.conf", h.name)),
                &format!("include mmm_common.conf\n\nthis {}\n", h.name),
            )?;
        }
        Ok(())
    }

    fn server_dir(&self, h: &FleetHost) -> Result<PathBuf> {
        if h.hung {
            self.hang
                .as_ref()
                .map(|s| s.dir.clone())
                .ok_or_else(|| TestbedError::State("no hang namespace".into()))
        } else {
            self.tb.host_dir(LIVE_SERVER)
        }
    }

    /// Starts `mmm_agentd @<name> --foreground` for extra host `h` on the namespace that
    /// holds its address (stdout/stderr appended to that host's
    /// `var/log/mysql-mmm/mmm_agentd.out`; its log is `mmm_agentd_<name>.log`).
    pub fn spawn_agent(&self, agentd: &Path, h: &FleetHost) -> Result<Child> {
        let agentd = agentd.to_string_lossy();
        let cluster = format!("@{}", h.name);
        let argv = [agentd.as_ref(), cluster.as_str(), "--foreground"];
        if !h.hung {
            return self.tb.spawn(LIVE_SERVER, &argv);
        }
        let hang = self
            .hang
            .as_ref()
            .ok_or_else(|| TestbedError::State("no hang namespace".into()))?;
        let log = hang.dir.join("var/log/mysql-mmm/mmm_agentd.out");
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_err(format!("opening {}", log.display())))?;
        let err = out.try_clone().map_err(io_err("dup log"))?;
        let mut cmd = private_command(&hang.netns, &hang.dir, &argv);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd.spawn().map_err(io_err("spawning mmm_agentd on hang"))
    }

    /// SIGSTOP to the hang namespace's mariadbd: every hung host hangs.
    pub fn freeze_hung(&self) -> Result<()> {
        self.signal_hang(Signal::SIGSTOP)
    }

    /// SIGCONT to the hang namespace's mariadbd.
    pub fn thaw_hung(&self) -> Result<()> {
        self.signal_hang(Signal::SIGCONT)
    }

    fn signal_hang(&self, signal: Signal) -> Result<()> {
        let hang = self
            .hang
            .as_ref()
            .ok_or_else(|| TestbedError::State("no hang namespace".into()))?;
        signal_pid(hang.server.id(), signal)
    }

    fn start_hang_server(&mut self) -> Result<()> {
        let tb = self.tb;
        let netns = format!("{}-{HANG_HOST}", tb.id());
        let bridge = format!("{}-br", tb.id());
        let dir = tb.base_dir().join(HANG_HOST);
        let subnet = tb.subnet();
        net::create_host(
            &bridge,
            &netns,
            HANG_HOST,
            Ipv4Addr::new(198, 18, subnet, HANG_OCTET),
            net::host_mac(subnet, HANG_OCTET),
        )
        .inspect_err(|_| {
            let _ = net::delete_netns(&netns);
        })?;
        for d in PRIVATE_DIRS.iter().chain(["run/mysqld", "mysql"].iter()) {
            let p = dir.join(d);
            fs::create_dir_all(&p).map_err(io_err(format!("creating {}", p.display())))?;
        }
        let mut p = dir.clone();
        for part in ["run", "mysqld"] {
            set_mode(&p, 0o755)?;
            p.push(part);
        }
        let datadir = dir.join("mysql/data");
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(tb.base_dir().join("template"))
                .arg(&datadir),
            CMD_TIMEOUT,
        )?;
        run_ok(
            Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(dir.join("mysql"))
                .arg(dir.join("run/mysqld")),
            CMD_TIMEOUT,
        )?;
        let socket = dir.join("run/mysqld/mysqld.sock");
        let error_log = dir.join("mysql/error.log");
        let mut cnf = mariadb::my_cnf(
            9,
            1,
            true,
            &datadir,
            &socket,
            &dir.join("run/mysqld/mysqld.pid"),
            &error_log,
            None,
        );
        let _ = writeln!(cnf, "max_connections = {MANY_CONNECTIONS}");
        let cnf_path = dir.join("mysql/my.cnf");
        fs::write(&cnf_path, cnf).map_err(io_err("writing the hang server's my.cnf"))?;
        let out_path = dir.join("mysql/mariadbd.out");
        let out = fs::File::create(&out_path).map_err(io_err("creating mariadbd.out"))?;
        let err = out.try_clone().map_err(io_err("dup log"))?;
        let server = Command::new("ip")
            .args(["netns", "exec", &netns, "mariadbd"])
            .arg(format!("--defaults-file={}", cnf_path.display()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err("spawning the hang server"))?;
        self.hang = Some(HangServer {
            netns,
            dir: dir.clone(),
            server,
        });
        let start = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            if start.elapsed() > SERVER_TIMEOUT {
                return Err(TestbedError::ServerDied {
                    host: HANG_HOST.into(),
                    status: "no socket after 60 s".into(),
                    log_tail: mariadb::log_tail(&error_log, 15),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        // A slave of db1 like db3, so its rep_threads/rep_backlog checks are OK.
        let rows = tb.query("db1", "SHOW MASTER STATUS")?;
        let (file, pos) = rows
            .first()
            .and_then(|r| Some((r.get("File")?.to_string(), r.get("Position")?.to_string())))
            .ok_or_else(|| TestbedError::State("SHOW MASTER STATUS on db1 is empty".into()))?;
        mariadb::cli_query(
            HANG_HOST,
            &socket,
            &format!(
                "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT=3306, MASTER_USER='replication', \
                 MASTER_PASSWORD='{PASSWORD}', MASTER_LOG_FILE='{file}', MASTER_LOG_POS={pos}, \
                 MASTER_CONNECT_RETRY=1; START SLAVE",
                tb.ip("db1")
            ),
        )?;
        let start = Instant::now();
        loop {
            let rows = mariadb::cli_query(HANG_HOST, &socket, "SHOW SLAVE STATUS")?;
            let running = rows.first().is_some_and(|r| {
                r.get("Slave_IO_Running") == Some("Yes")
                    && r.get("Slave_SQL_Running") == Some("Yes")
            });
            if running {
                return Ok(());
            }
            if start.elapsed() > SERVER_TIMEOUT {
                return Err(TestbedError::Timeout {
                    what: "the hang server to replicate from db1".into(),
                    after: SERVER_TIMEOUT,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Fleet<'_> {
    fn drop(&mut self) {
        let Some(mut hang) = self.hang.take() else {
            return;
        };
        let start = Instant::now();
        loop {
            let mut pids = net::netns_pids(&hang.netns).unwrap_or_default();
            pids.push(hang.server.id());
            pids.retain(|p| pid_alive(*p));
            if pids.is_empty() || start.elapsed() > Duration::from_secs(20) {
                break;
            }
            for p in pids {
                let _ = signal_pid(p, Signal::SIGKILL);
            }
            let _ = wait_child(&mut hang.server, Duration::from_secs(5));
            thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = net::delete_netns(&hang.netns) {
            tracing::warn!("deleting {}: {e}", hang.netns);
        }
    }
}

/// The extra hosts of a fleet of `total` hosts with `hung` hung ones (the last ones):
/// names `h005`…, addresses 198.18.`subnet`.{1..254} minus the reserved octets.
pub fn plan_hosts(subnet: u8, total: usize, hung: usize) -> Result<Vec<FleetHost>> {
    if !(SEED_HOSTS..=MAX_HOSTS).contains(&total) || hung > total - SEED_HOSTS {
        return Err(TestbedError::State(format!(
            "a fleet has {SEED_HOSTS}..={MAX_HOSTS} hosts with at most total-4 hung; asked for {total} with {hung} hung"
        )));
    }
    let n_extra = total - SEED_HOSTS;
    Ok((1..=254u8)
        .filter(|o| !RESERVED.contains(o))
        .take(n_extra)
        .enumerate()
        .map(|(i, o)| FleetHost {
            name: format!("h{:03}", i + SEED_HOSTS + 1),
            ip: Ipv4Addr::new(198, 18, subnet, o),
            hung: i >= n_extra - hung,
        })
        .collect())
}

/// The `<host>` sections of the extra hosts (mode slave, no role, a pid file each).
pub fn extra_hosts_conf(extras: &[FleetHost]) -> String {
    let mut s = String::from("\n");
    for h in extras {
        let _ = write!(
            s,
            "<host {name}>\n    ip      {ip}\n    mode    slave\n    pid_path    /run/mysql-mmm-agent-{name}.pid\n</host>\n\n",
            name = h.name,
            ip = h.ip
        );
    }
    s
}

/// A /32 on `ens33` of `netns`.
fn add_address(netns: &str, ip: Ipv4Addr) -> Result<()> {
    net::ip_in(
        netns,
        &["addr", "add", &format!("{ip}/32"), "dev", CLUSTER_INTERFACE],
    )
    .map(|_| ())
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", p.display())))
}

fn write_conf(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))?;
    set_mode(path, 0o640)
}

/// Like [`Testbed::command`] for the hang namespace: its network namespace and a private
/// mount namespace with its private directories bind-mounted.
fn private_command(netns: &str, dir: &Path, argv: &[&str]) -> Command {
    let mut script = String::from("set -e; d=\"$0\"; ");
    for d in PRIVATE_DIRS {
        script.push_str(&format!("mount --bind \"$d/{d}\" /{d}; "));
    }
    script.push_str("exec \"$@\"");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns])
        .args(["unshare", "--mount", "--propagation", "private"])
        .args(["sh", "-c", &script])
        .arg(dir)
        .args(argv);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::config::{parse_str, ProgramClass};

    #[test]
    fn plan_of_200_hosts() {
        let extras = plan_hosts(90, 200, 20).unwrap();
        assert_eq!(extras.len(), 196);
        assert_eq!(extras.first().map(|h| h.name.as_str()), Some("h005"));
        assert_eq!(extras.last().map(|h| h.name.as_str()), Some("h200"));
        let mut ips: Vec<Ipv4Addr> = extras.iter().map(|h| h.ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 196);
        assert!(extras.iter().all(|h| !RESERVED.contains(&h.ip.octets()[3])));
        assert_eq!(extras.iter().filter(|h| h.hung).count(), 20);
        assert!(extras.iter().skip(176).all(|h| h.hung));
        assert!(plan_hosts(90, 3, 0).is_err());
        assert!(plan_hosts(90, 50, 47).is_err());
        assert!(plan_hosts(90, MAX_HOSTS + 1, 0).is_err());
        assert_eq!(plan_hosts(90, MAX_HOSTS, 0).unwrap().len(), MAX_HOSTS - 4);
    }

    /// The generated files pass the real config parser for the agent and the monitor.
    #[test]
    fn configs_parse() {
        let seed: Vec<(String, Ipv4Addr, bool)> = [
            ("db1", 100, true),
            ("db2", 102, true),
            ("db3", 103, false),
            ("db4", 105, false),
        ]
        .iter()
        .map(|(n, o, m)| ((*n).to_string(), Ipv4Addr::new(198, 18, 90, *o), *m))
        .collect();
        let base = crate::configs::build(90, &seed, Ipv4Addr::new(198, 18, 90, 106));
        let extras = plan_hosts(90, 50, 5).unwrap();
        let dir = std::env::temp_dir().join(format!("mmm-fleet-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_conf(
            &dir.join("mmm_common.conf"),
            &(base.common + &extra_hosts_conf(&extras)),
        )
        .unwrap();
        let dirs = vec![dir.clone()];
        let agent = parse_str(
            "include mmm_common.conf\n\nthis h050\n",
            "mmm_agent_h050.conf",
            &dirs,
            ProgramClass::Agent,
        );
        let mon = parse_str(&base.mon, "mmm_mon.conf", &dirs, ProgramClass::Monitor);
        let _ = fs::remove_dir_all(&dir);
        let agent = agent.unwrap();
        let this = agent.this_host().unwrap();
        assert_eq!(
            this.ip.as_deref(),
            Some(extras.last().unwrap().ip.to_string().as_str())
        );
        assert_eq!(
            this.pid_path.as_deref(),
            Some("/run/mysql-mmm-agent-h050.pid")
        );
        let mon = mon.unwrap();
        assert_eq!(mon.hosts.len(), 50);
        assert!(mon.role("reader").is_some());
    }
}
