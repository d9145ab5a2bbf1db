//! [`Testbed`]: one deployment of the seed (db1, db2 masters; db3, db4 slaves of db1; the
//! monitor host) on this machine. It owns the lifecycle: prerequisites, leftovers of
//! interrupted runs, namespaces and bridge ([`crate::net`]), private directories, the
//! MariaDB servers and their replication ([`crate::mariadb`]), running commands "on" a host,
//! and teardown. Fault injection lives in [`crate::faults`].
//!
//! State file: `<base>/testbed-state.toml` records the id, subnet, hosts, the pid of the
//! owning process (0 once detached by the CLI) and the mariadbd pids, so a later run can
//! remove what an interrupted one left, and the CLI can attach to a running testbed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::configs::{self, MmmConfigs};
use crate::error::{io_err, Result, TestbedError};
use crate::mariadb::{self, HostRole, Row, PASSWORD};
use crate::net::{self, MacAddr};
use crate::process::{
    describe, output_with_timeout, pid_alive, pid_start_time, poll_until, run_ok, signal_pid,
    wait_child, wait_pid_gone,
};

/// Name of the state file inside a testbed's base directory.
pub const STATE_FILE: &str = "testbed-state.toml";

/// Every name the testbed creates (namespaces, /tmp directories) starts with this.
pub const PREFIX: &str = "mt";

/// Default bound on [`Testbed::exec`].
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on a server's start (socket accepting) and stop (process gone).
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on replication reaching a wanted state.
pub(crate) const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The private directories bind-mounted over the root filesystem's for processes on a host.
pub const PRIVATE_DIRS: [&str; 4] = ["etc/mysql-mmm", "run", "var/lib/misc", "var/log/mysql-mmm"];

/// The seed's hosts: name, last octet, role.
const SEED_HOSTS: [(&str, u8, HostRole); 5] = [
    ("db1", 100, HostRole::Master),
    ("db2", 102, HostRole::Master),
    ("db3", 103, HostRole::Slave),
    ("db4", 105, HostRole::Slave),
    ("monitor", 106, HostRole::Monitor),
];

/// How to build a testbed.
#[derive(Debug, Clone)]
pub struct TestbedOptions {
    /// The third octet: hosts get 198.18.<subnet>.{100,102,103,105,106}. Testbeds are fully
    /// isolated from each other, but give each running testbed its own subnet anyway so
    /// logs and configs are unambiguous.
    pub subnet: u8,
    /// How many slaves of db1 (0..=2: db3, db4).
    pub slaves: usize,
    /// Install mariadb-server/mariadb-client/iproute2 with apt-get when missing.
    pub install_missing: bool,
    /// Write the seed's MMM configs into every host's etc/mysql-mmm during `up`.
    pub write_mmm_configs: bool,
    /// Put every server's binary log on a tmpfs of this many MiB, mounted in the server's
    /// own mount namespace (`<host dir>/binlog`), so that a test can fill it
    /// ([`Testbed::fill_binlog_disk`]): a full disk under the binary log. The tmpfs lives
    /// as long as the server: a restarted server starts with empty binary logs.
    pub binlog_tmpfs_mib: Option<u32>,
    /// More hosts without a database server (name, last octet), e.g. a second monitor
    /// and etcd members for monitor HA: namespaces on the same bridge, private
    /// directories, nothing started.
    pub extra_hosts: Vec<(String, u8)>,
}

impl TestbedOptions {
    /// The seed's deployment on 198.18.<subnet>.0/24 (two slaves, configs written).
    pub fn new(subnet: u8) -> TestbedOptions {
        TestbedOptions {
            subnet,
            ..Default::default()
        }
    }
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions {
            subnet: 2,
            slaves: 2,
            install_missing: true,
            write_mmm_configs: true,
            binlog_tmpfs_mib: None,
            extra_hosts: Vec::new(),
        }
    }
}

/// One host of the testbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// "db1".."db4", "monitor".
    pub name: String,
    /// Its address on `ens33`.
    pub ip: Ipv4Addr,
    /// Its network namespace.
    pub netns: String,
    /// The MAC of its `ens33`.
    pub mac: MacAddr,
    /// Master, slave or monitor.
    pub role: HostRole,
    /// Its private root (etc/mysql-mmm, run, var/lib/misc, var/log/mysql-mmm, mysql/).
    pub dir: PathBuf,
    /// MariaDB data directory (database hosts).
    pub datadir: Option<PathBuf>,
    /// MariaDB unix socket, a real path in the root filesystem (database hosts). Inside the
    /// host it is also `/run/mysqld/mysqld.sock`, the client's default.
    pub socket: Option<PathBuf>,
    /// MariaDB server-id (database hosts).
    pub server_id: Option<u32>,
}

impl HostInfo {
    /// Whether it is a database host (db1..db4, not the monitor).
    pub fn is_db(&self) -> bool {
        self.role != HostRole::Monitor
    }
    fn mysql_dir(&self) -> PathBuf {
        self.dir.join("mysql")
    }
    /// Where the server's binary log is with [`TestbedOptions::binlog_tmpfs_mib`].
    pub fn binlog_dir(&self) -> PathBuf {
        self.dir.join("binlog")
    }
    /// The server's my.cnf.
    pub fn my_cnf(&self) -> PathBuf {
        self.mysql_dir().join("my.cnf")
    }
    /// The server's error log.
    pub fn error_log(&self) -> PathBuf {
        self.mysql_dir().join("error.log")
    }
}

/// What the state file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) id: String,
    pub(crate) subnet: u8,
    pub(crate) base_dir: PathBuf,
    /// The process that tears this testbed down; 0 once detached (CLI `up`).
    pub(crate) owner_pid: u32,
    /// The owner's start time (guards against pid reuse; 0 = unknown).
    #[serde(default)]
    pub(crate) owner_start: u64,
    pub(crate) bridge_netns: String,
    pub(crate) hosts: Vec<HostInfo>,
    /// Last known mariadbd pid per host.
    #[serde(default)]
    pub(crate) mysqld_pids: BTreeMap<String, u32>,
    /// [`TestbedOptions::binlog_tmpfs_mib`].
    #[serde(default)]
    pub(crate) binlog_tmpfs_mib: Option<u32>,
}

impl State {
    fn path(&self) -> PathBuf {
        self.base_dir.join(STATE_FILE)
    }

    fn save(&self) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| TestbedError::StateFile {
            path: self.path(),
            detail: e.to_string(),
        })?;
        let tmp = self.base_dir.join(format!("{STATE_FILE}.tmp"));
        fs::write(&tmp, text).map_err(io_err(format!("writing {}", tmp.display())))?;
        fs::rename(&tmp, self.path()).map_err(io_err(format!("renaming {}", tmp.display())))
    }

    pub(crate) fn load(path: &Path) -> Result<State> {
        let text = fs::read_to_string(path).map_err(|e| TestbedError::StateFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| TestbedError::StateFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    fn all_netns(&self) -> Vec<String> {
        let mut v: Vec<String> = self.hosts.iter().map(|h| h.netns.clone()).collect();
        v.push(self.bridge_netns.clone());
        v
    }
}

/// One running deployment. Dropping an owning `Testbed` tears it down (like [`Testbed::down`]
/// but errors are only logged).
#[derive(Debug)]
pub struct Testbed {
    pub(crate) state: State,
    /// mariadbd processes this value started (so they can be reaped, not left as zombies).
    pub(crate) servers: Mutex<HashMap<String, Child>>,
    /// Whether Drop tears down (false for attached or detached testbeds).
    owned: bool,
    /// How long `up` took.
    up_time: Duration,
}

impl Testbed {
    /// Builds the whole deployment and returns when all servers replicate.
    pub fn up(opts: TestbedOptions) -> Result<Testbed> {
        let start = Instant::now();
        preflight(opts.install_missing)?;
        if opts.slaves > 2 {
            return Err(TestbedError::State(format!(
                "at most 2 slaves (db3, db4), asked for {}",
                opts.slaves
            )));
        }
        reap_leftovers();

        let (id, base_dir) = make_base_dir()?;
        set_mode(&base_dir, 0o755)?;

        let subnet = opts.subnet;
        let extra: Vec<(&str, u8, HostRole)> = opts
            .extra_hosts
            .iter()
            .map(|(name, octet)| (name.as_str(), *octet, HostRole::Monitor))
            .collect();
        let hosts: Vec<HostInfo> = SEED_HOSTS
            .iter()
            .copied()
            .filter(|(name, _, role)| {
                *role != HostRole::Slave
                    || (*name == "db3" && opts.slaves >= 1)
                    || (*name == "db4" && opts.slaves >= 2)
            })
            .chain(extra)
            .enumerate()
            .map(|(i, (name, octet, role))| {
                let dir = base_dir.join(name);
                let is_db = role != HostRole::Monitor;
                HostInfo {
                    name: name.to_string(),
                    ip: Ipv4Addr::new(198, 18, subnet, octet),
                    netns: format!("{id}-{name}"),
                    mac: net::host_mac(subnet, octet),
                    role,
                    datadir: is_db.then(|| dir.join("mysql").join("data")),
                    socket: is_db.then(|| dir.join("run").join("mysqld").join("mysqld.sock")),
                    server_id: is_db.then(|| u32::try_from(i + 1).unwrap_or(u32::MAX)),
                    dir,
                }
            })
            .collect();
        let state = State {
            id: id.clone(),
            subnet,
            base_dir: base_dir.clone(),
            owner_pid: std::process::id(),
            owner_start: pid_start_time(std::process::id()).unwrap_or(0),
            bridge_netns: format!("{id}-br"),
            hosts,
            mysqld_pids: BTreeMap::new(),
            binlog_tmpfs_mib: opts.binlog_tmpfs_mib,
        };
        // The state file exists before anything else is created, so an interrupted run can
        // always be cleaned up.
        state.save()?;
        let mut tb = Testbed {
            state,
            servers: Mutex::new(HashMap::new()),
            owned: true,
            up_time: Duration::ZERO,
        };
        // On error, `tb` drops here and tears down what was made.
        tb.build(&opts)?;
        tb.up_time = start.elapsed();
        tracing::info!(id = %tb.state.id, subnet, up_ms = tb.up_time.as_millis() as u64, "testbed up");
        Ok(tb)
    }

    fn build(&mut self, opts: &TestbedOptions) -> Result<()> {
        // The template data directory is made while the network is built.
        let template = self.state.base_dir.join("template");
        let net_pattern = format!("198.18.{}.%", self.state.subnet);
        let monitor_ip = Ipv4Addr::new(198, 18, self.state.subnet, 106);
        let accounts = mariadb::accounts_sql(&net_pattern, monitor_ip);
        let base = self.state.base_dir.clone();
        let template_job = thread::spawn(move || make_template(&base, &template, &accounts));

        let net_result = self.build_network();
        let dirs_result = net_result.and_then(|()| self.make_host_dirs());
        let template_result = template_job
            .join()
            .map_err(|_| TestbedError::State("template thread panicked".into()))
            .and_then(|r| r);
        dirs_result?;
        template_result?;

        self.start_all_servers()?;
        self.setup_replication()?;
        if opts.write_mmm_configs {
            self.write_mmm_configs()?;
        }
        Ok(())
    }

    fn build_network(&self) -> Result<()> {
        net::create_bridge(&self.state.bridge_netns)?;
        for h in &self.state.hosts {
            net::create_host(&self.state.bridge_netns, &h.netns, &h.name, h.ip, h.mac)?;
        }
        Ok(())
    }

    fn make_host_dirs(&self) -> Result<()> {
        for root in ["/etc/mysql-mmm", "/var/log/mysql-mmm", "/var/lib/misc"] {
            // Empty mount points in the root filesystem (documented in docs/testbed.md).
            fs::create_dir_all(root).map_err(io_err(format!("creating {root}")))?;
        }
        let mysql = mysql_ids()?;
        for h in &self.state.hosts {
            fs::create_dir_all(&h.dir).map_err(io_err(format!("creating {}", h.dir.display())))?;
            set_mode(&h.dir, 0o755)?;
            for d in PRIVATE_DIRS {
                // Each component 0755 whatever the umask: user mysql must traverse them.
                let mut p = h.dir.clone();
                for part in d.split('/') {
                    p.push(part);
                    if !p.is_dir() {
                        fs::create_dir(&p).map_err(io_err(format!("creating {}", p.display())))?;
                    }
                    set_mode(&p, 0o755)?;
                }
            }
            if h.is_db() {
                let run_mysqld = h.dir.join("run").join("mysqld");
                let mysql_dir = h.mysql_dir();
                for p in [&run_mysqld, &mysql_dir] {
                    fs::create_dir_all(p).map_err(io_err(format!("creating {}", p.display())))?;
                    chown(p, mysql)?;
                }
            }
        }
        Ok(())
    }

    /// Copies the template into each database host and starts all servers in parallel.
    fn start_all_servers(&self) -> Result<()> {
        let template = self.state.base_dir.join("template");
        let mysql = mysql_ids()?;
        for h in self.state.hosts.iter().filter(|h| h.is_db()) {
            let (Some(datadir), Some(socket), Some(server_id)) =
                (&h.datadir, &h.socket, h.server_id)
            else {
                continue;
            };
            run_ok(
                Command::new("cp").arg("-a").arg(&template).arg(datadir),
                Duration::from_secs(60),
            )?;
            chown(datadir, mysql)?;
            let binlog_dir = self.state.binlog_tmpfs_mib.map(|_| h.binlog_dir());
            if let Some(d) = &binlog_dir {
                fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
            }
            let cnf = mariadb::my_cnf(
                server_id,
                if h.name == "db2" { 2 } else { 1 },
                // Every server starts read_only=1 (spec §4.8), so a master that restarts
                // after a crash is not writable without the writer role; db1 is made
                // writable at run time once replication is set up (the seed's start).
                true,
                datadir,
                socket,
                &h.dir.join("run").join("mysqld").join("mysqld.pid"),
                &h.error_log(),
                binlog_dir.as_deref(),
            );
            fs::write(h.my_cnf(), cnf).map_err(io_err("writing my.cnf"))?;
        }
        let db_hosts: Vec<String> = self
            .state
            .hosts
            .iter()
            .filter(|h| h.is_db())
            .map(|h| h.name.clone())
            .collect();
        for name in &db_hosts {
            self.spawn_server(name)?;
        }
        for name in &db_hosts {
            self.wait_server_ready(name)?;
        }
        self.save_state()
    }

    /// The seed's topology (db1 <-> db2, db3 and db4 from db1) with crash-safe
    /// replication from the start (issue 13): GTID positioning (`MASTER_USE_GTID=slave_pos`,
    /// whose position MariaDB stores with each transaction in `mysql.gtid_slave_pos`), the
    /// relay log recovered at start (`relay_log_recovery=1` in my.cnf), a reconnect every
    /// second and a heartbeat every second (the settings the agents give every link). The
    /// servers are fresh (no binlogged transaction yet, empty `gtid_slave_pos`), so every
    /// slave starts at its master's first binlog. [`Testbed::seed_positional_links`] turns
    /// the links into what a site that followed the seed has.
    fn setup_replication(&self) -> Result<()> {
        for h in self.state.hosts.iter().filter(|h| h.is_db()) {
            let master = if h.name == "db1" { "db2" } else { "db1" };
            let q = format!(
                "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT=3306, MASTER_USER='replication', \
                 MASTER_PASSWORD='{PASSWORD}', MASTER_USE_GTID=slave_pos, \
                 MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1; START SLAVE",
                self.ip(master)
            );
            self.query(&h.name, &q)?;
        }
        for h in self.state.hosts.iter().filter(|h| h.is_db()) {
            self.wait_slave_running(&h.name)?;
        }
        self.query("db1", "SET GLOBAL read_only = 0")?;
        // A schema for the testbed's own use (fault injection); it also proves every
        // server replicates from its master before `up` returns.
        self.query(
            "db1",
            "CREATE DATABASE mmm_test; \
             CREATE TABLE mmm_test.mt_break (id INT PRIMARY KEY) ENGINE=InnoDB",
        )?;
        for h in self
            .state
            .hosts
            .iter()
            .filter(|h| h.is_db() && h.name != "db1")
        {
            let name = h.name.clone();
            poll_until(
                &format!("mmm_test.mt_break to replicate to {name}"),
                REPLICATION_TIMEOUT,
                Duration::from_millis(20),
                || {
                    let rows = self.query(
                        &name,
                        "SELECT COUNT(*) AS n FROM information_schema.tables \
                         WHERE table_schema='mmm_test' AND table_name='mt_break'",
                    )?;
                    Ok((rows.first().and_then(|r| r.get("n")) == Some("1")).then_some(()))
                },
            )?;
        }
        Ok(())
    }

    /// Turns every running server's link into the seed's (Step 2 of the walkthrough: a
    /// positional `CHANGE MASTER` without connect retry or heartbeat, so the server's
    /// defaults apply: retry 60 s, heartbeat `slave_net_timeout`/2) and sets
    /// `slave_net_timeout` to the server default 60: what the agents find on a site that
    /// set MMM up as the seed says. Each link is changed only after everything it received
    /// is applied (so the binlog coordinates are exact). For tests of the agents' upkeep.
    pub fn seed_positional_links(&self) -> Result<()> {
        for h in self.state.hosts.iter().filter(|h| h.is_db()) {
            if !self.mysql_running(&h.name)? {
                continue;
            }
            self.query(&h.name, "STOP SLAVE IO_THREAD")?;
            poll_until(
                &format!("{} to apply its relay log", h.name),
                REPLICATION_TIMEOUT,
                Duration::from_millis(20),
                || {
                    let st = self.slave_status(&h.name)?;
                    let Some(st) = st else { return Ok(Some(())) };
                    let done = st.get("Master_Log_File") == st.get("Relay_Master_Log_File")
                        && st.get("Read_Master_Log_Pos") == st.get("Exec_Master_Log_Pos");
                    Ok(done.then_some(()))
                },
            )?;
            self.query(
                &h.name,
                "STOP SLAVE; SET GLOBAL slave_net_timeout=60; CHANGE MASTER TO \
                 MASTER_USE_GTID=no, MASTER_CONNECT_RETRY=60, MASTER_HEARTBEAT_PERIOD=30; \
                 START SLAVE",
            )?;
        }
        Ok(())
    }

    /// Waits until the host's slave IO and SQL threads both run.
    pub fn wait_slave_running(&self, host: &str) -> Result<()> {
        poll_until(
            &format!("replication threads on {host} to run"),
            REPLICATION_TIMEOUT,
            Duration::from_millis(20),
            || {
                let st = self.slave_status(host)?;
                let Some(st) = st else { return Ok(None) };
                if let Some(err) = st.get("Last_IO_Error").filter(|e| !e.is_empty()) {
                    tracing::debug!(host, err, "slave IO error while waiting");
                }
                Ok((st.get("Slave_IO_Running") == Some("Yes")
                    && st.get("Slave_SQL_Running") == Some("Yes"))
                .then_some(()))
            },
        )
    }

    /// `SHOW SLAVE STATUS` on a host (None when it is no slave).
    pub fn slave_status(&self, host: &str) -> Result<Option<Row>> {
        Ok(self.query(host, "SHOW SLAVE STATUS")?.into_iter().next())
    }

    /// Attaches to a running testbed from its base directory (or its state file). The
    /// returned value does not tear the testbed down when dropped; call [`Testbed::down`].
    pub fn attach(base_dir_or_state_file: &Path) -> Result<Testbed> {
        let path = if base_dir_or_state_file.is_dir() {
            base_dir_or_state_file.join(STATE_FILE)
        } else {
            base_dir_or_state_file.to_path_buf()
        };
        let state = State::load(&path)?;
        Ok(Testbed {
            state,
            servers: Mutex::new(HashMap::new()),
            owned: false,
            up_time: Duration::ZERO,
        })
    }

    /// Leaves the testbed running after this value is gone (the CLI's `up`): the state file
    /// records no owner, so leftover cleanup leaves it alone. Returns the base directory.
    pub fn detach(mut self) -> Result<PathBuf> {
        self.state.owner_pid = 0;
        self.state.owner_start = 0;
        self.save_state()?;
        self.owned = false;
        // Our server children are reparented to init when this process exits.
        if let Ok(mut servers) = self.servers.lock() {
            servers.clear();
        }
        Ok(self.state.base_dir.clone())
    }

    /// Tears everything down: every process on the hosts (mariadbd and whatever was
    /// spawned), the namespaces (and with them the veths and the bridge), the directories.
    pub fn down(mut self) -> Result<()> {
        self.owned = false;
        let mut servers = self
            .servers
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        teardown(&self.state, &mut servers)
    }

    /// The testbed's unique id (`mt` + 6 hex digits); every namespace name starts with it.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The third octet of the testbed's addresses.
    pub fn subnet(&self) -> u8 {
        self.state.subnet
    }

    /// The testbed's directory in /tmp (state file, host directories).
    pub fn base_dir(&self) -> &Path {
        &self.state.base_dir
    }

    /// How long `up` took (zero for an attached testbed).
    pub fn up_duration(&self) -> Duration {
        self.up_time
    }

    /// All namespaces of this testbed (hosts and bridge).
    pub fn namespaces(&self) -> Vec<String> {
        self.state.all_netns()
    }

    /// The hosts, in the seed's order (db1, db2, db3, db4, monitor).
    pub fn hosts(&self) -> &[HostInfo] {
        &self.state.hosts
    }

    /// One host by name.
    pub fn host(&self, name: &str) -> Result<&HostInfo> {
        self.state
            .hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| TestbedError::UnknownHost(name.to_string()))
    }

    /// A host's address. Panics on a name that is not a host of this testbed (a bug in the
    /// calling test); use [`Testbed::host`] for names from outside.
    pub fn ip(&self, host: &str) -> Ipv4Addr {
        match self.host(host) {
            Ok(h) => h.ip,
            Err(e) => panic!("{e}"),
        }
    }

    /// 198.18.<subnet>.<last_octet> (the VIPs: .188 writer, .198/.199 readers).
    pub fn vip(&self, last_octet: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.state.subnet, last_octet)
    }

    /// A host's private root; under it `etc/mysql-mmm`, `run`, `var/lib/misc` and
    /// `var/log/mysql-mmm` are what processes on the host see at those paths.
    pub fn host_dir(&self, host: &str) -> Result<PathBuf> {
        Ok(self.host(host)?.dir.clone())
    }

    /// A `Command` that runs `argv` on `host`: inside its network namespace and a private
    /// mount namespace where the four private directories are bind-mounted. The caller
    /// sets stdio and spawns it (std, or `tokio::process::Command::from`).
    pub fn command(&self, host: &str, argv: &[&str]) -> Result<Command> {
        let h = self.host(host)?;
        let Some((program, args)) = argv.split_first() else {
            return Err(TestbedError::State("empty argv".into()));
        };
        let mut script = String::from("set -e; d=\"$0\"; ");
        for dir in PRIVATE_DIRS {
            script.push_str(&format!("mount --bind \"$d/{dir}\" /{dir}; "));
        }
        script.push_str("exec \"$@\"");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &h.netns])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", &script])
            .arg(&h.dir)
            .arg(program)
            .args(args);
        Ok(cmd)
    }

    /// Runs `argv` on `host` to completion (at most [`EXEC_TIMEOUT`]), capturing output.
    pub fn exec(&self, host: &str, argv: &[&str]) -> Result<Output> {
        self.exec_timeout(host, argv, EXEC_TIMEOUT)
    }

    /// [`Testbed::exec`] with an explicit bound.
    pub fn exec_timeout(&self, host: &str, argv: &[&str], timeout: Duration) -> Result<Output> {
        output_with_timeout(&mut self.command(host, argv)?, timeout)
    }

    /// Starts a daemon on `host`: stdin closed, stdout and stderr appended to
    /// `<host_dir>/var/log/mysql-mmm/<program>.out`. The caller owns the child; anything
    /// still running on the host is killed by `down`.
    pub fn spawn(&self, host: &str, argv: &[&str]) -> Result<Child> {
        self.spawn_env(host, argv, &[])
    }

    /// [`Testbed::spawn`] with more environment variables (e.g. `NOTIFY_SOCKET` for a daemon
    /// started as systemd would).
    pub fn spawn_env(
        &self,
        host: &str,
        argv: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<Child> {
        let h = self.host(host)?;
        let program = argv
            .first()
            .and_then(|p| Path::new(p).file_name())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "spawn".into());
        let log = h
            .dir
            .join("var/log/mysql-mmm")
            .join(format!("{program}.out"));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_err(format!("opening {}", log.display())))?;
        let err = out.try_clone().map_err(io_err("dup log"))?;
        let mut cmd = self.command(host, argv)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn()
            .map_err(io_err(format!("spawning {}", describe(&cmd))))
    }

    /// Runs `query` on `host` as root over its unix socket with the `mariadb` client
    /// (blocking; several statements separated by `;` run in one session). Values are text;
    /// the client prints SQL NULL and the string "NULL" alike, both read as `None`.
    pub fn query(&self, host: &str, query: &str) -> Result<Vec<Row>> {
        let h = self.db_host(host)?;
        let socket = h.socket.as_deref().unwrap_or(Path::new(""));
        mariadb::cli_query(host, socket, query)
    }

    /// Runs one `query` on `host` as root over its unix socket with mysql_async (connect
    /// and query each bounded by 10 s).
    pub async fn sql(&self, host: &str, query: &str) -> Result<Vec<Row>> {
        use mysql_async::prelude::Queryable;
        let h = self.db_host(host)?;
        let socket = h.socket.as_ref().map(|s| s.to_string_lossy().into_owned());
        let opts = mysql_async::OptsBuilder::default()
            .socket(socket)
            .prefer_socket(true)
            .user(Some("root"));
        let err = |detail: String| TestbedError::Sql {
            host: host.into(),
            query: query.into(),
            detail,
        };
        let bound = Duration::from_secs(10);
        let mut conn = tokio::time::timeout(bound, mysql_async::Conn::new(opts))
            .await
            .map_err(|_| err(format!("connect timed out after {bound:?}")))?
            .map_err(|e| err(e.to_string()))?;
        let rows: Vec<mysql_async::Row> = tokio::time::timeout(bound, conn.query(query))
            .await
            .map_err(|_| err(format!("query timed out after {bound:?}")))?
            .map_err(|e| err(e.to_string()))?;
        let _ = tokio::time::timeout(bound, conn.disconnect()).await;
        Ok(mariadb::from_async_rows(rows))
    }

    /// Runs the `mariadb` client on host `from` against `to` over TCP as `user` (password
    /// 123456), with a connect timeout of `connect_timeout_s` seconds. Returns the client's
    /// output: success and failure (refused, timed out, access denied, read-only) are the
    /// caller's to judge.
    pub fn sql_from(
        &self,
        from: &str,
        to: Ipv4Addr,
        user: &str,
        query: &str,
        connect_timeout_s: u32,
    ) -> Result<Output> {
        let host = format!("--host={to}");
        let user = format!("--user={user}");
        let pass = format!("--password={PASSWORD}");
        let ct = format!("--connect-timeout={connect_timeout_s}");
        self.exec_timeout(
            from,
            &[
                "mariadb",
                "--no-defaults",
                &host,
                "--port=3306",
                &user,
                &pass,
                &ct,
                "--batch",
                "-e",
                query,
            ],
            Duration::from_secs(u64::from(connect_timeout_s) + 30),
        )
    }

    /// The seed's MMM configuration texts with this testbed's addresses.
    pub fn mmm_configs(&self) -> MmmConfigs {
        let db: Vec<(String, Ipv4Addr, bool)> = self
            .state
            .hosts
            .iter()
            .filter(|h| h.is_db())
            .map(|h| (h.name.clone(), h.ip, h.role == HostRole::Master))
            .collect();
        let monitor = self
            .state
            .hosts
            .iter()
            .find(|h| h.role == HostRole::Monitor)
            .map_or(Ipv4Addr::new(198, 18, self.state.subnet, 106), |h| h.ip);
        configs::build(self.state.subnet, &db, monitor)
    }

    /// Writes the configs into each host's etc/mysql-mmm (mode 0640): mmm_common.conf
    /// everywhere, mmm_agent.conf on database hosts, mmm_mon.conf on the monitor.
    pub fn write_mmm_configs(&self) -> Result<()> {
        let c = self.mmm_configs();
        for h in &self.state.hosts {
            let etc = h.dir.join("etc/mysql-mmm");
            write_0640(&etc.join("mmm_common.conf"), &c.common)?;
            if let Some((_, text)) = c.agents.iter().find(|(n, _)| *n == h.name) {
                write_0640(&etc.join("mmm_agent.conf"), text)?;
            }
            if h.role == HostRole::Monitor {
                write_0640(&etc.join("mmm_mon.conf"), &c.mon)?;
            }
        }
        Ok(())
    }

    /// The topology as TOML (what the CLI prints).
    pub fn to_toml(&self) -> Result<String> {
        #[derive(Serialize)]
        struct Topology<'a> {
            id: &'a str,
            subnet: u8,
            base_dir: &'a Path,
            writer_vip: Ipv4Addr,
            reader_vips: Vec<Ipv4Addr>,
            hosts: &'a [HostInfo],
        }
        toml::to_string_pretty(&Topology {
            id: &self.state.id,
            subnet: self.state.subnet,
            base_dir: &self.state.base_dir,
            writer_vip: self.vip(configs::WRITER_VIP),
            reader_vips: configs::READER_VIPS.iter().map(|o| self.vip(*o)).collect(),
            hosts: &self.state.hosts,
        })
        .map_err(|e| TestbedError::State(e.to_string()))
    }

    pub(crate) fn db_host(&self, host: &str) -> Result<&HostInfo> {
        let h = self.host(host)?;
        if h.is_db() {
            Ok(h)
        } else {
            Err(TestbedError::NotADatabaseHost(host.to_string()))
        }
    }

    pub(crate) fn save_state(&self) -> Result<()> {
        let mut state = self.state.clone();
        if let Ok(servers) = self.servers.lock() {
            for (host, child) in servers.iter() {
                state.mysqld_pids.insert(host.clone(), child.id());
            }
        }
        state.save()
    }

    /// The pid of the host's mariadbd (ours, or the one the state file records).
    pub(crate) fn server_pid(&self, host: &str) -> Option<u32> {
        if let Some(pid) = self
            .servers
            .lock()
            .ok()
            .and_then(|s| s.get(host).map(Child::id))
        {
            return Some(pid);
        }
        let h = self.host(host).ok()?;
        // An attached testbed reads the pid file (it changes when a server restarts).
        let pid_file = h.dir.join("run/mysqld/mysqld.pid");
        fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| self.state.mysqld_pids.get(host).copied())
    }

    /// Starts the host's mariadbd (not waiting for it).
    pub(crate) fn spawn_server(&self, host: &str) -> Result<()> {
        let h = self.db_host(host)?;
        let out_path = h.mysql_dir().join("mariadbd.out");
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(io_err(format!("opening {}", out_path.display())))?;
        let err = out.try_clone().map_err(io_err("dup log"))?;
        let cnf = format!("--defaults-file={}", h.my_cnf().display());
        let mut cmd = match self.state.binlog_tmpfs_mib {
            // The tmpfs is mounted in the server's private mount namespace, so it is gone
            // with the server and nothing outside sees it.
            Some(mib) => {
                let dir = h.binlog_dir();
                let script = format!(
                    "mount -t tmpfs -o size={mib}m,mode=0750 mmm-binlog \"$1\" && \
                     chown mysql:mysql \"$1\" && exec mariadbd \"$2\""
                );
                let dir = dir.to_string_lossy();
                self.command(host, &["sh", "-c", &script, "sh", &dir, &cnf])?
            }
            None => self.command(host, &["mariadbd", &cnf])?,
        };
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(io_err(format!("spawning mariadbd on {host}")))?;
        if let Ok(mut servers) = self.servers.lock() {
            servers.insert(host.to_string(), child);
        }
        Ok(())
    }

    /// Waits until the host's server accepts connections on its socket.
    pub(crate) fn wait_server_ready(&self, host: &str) -> Result<()> {
        let h = self.db_host(host)?;
        let socket = h.socket.clone().unwrap_or_default();
        let start = Instant::now();
        loop {
            if let Ok(mut servers) = self.servers.lock() {
                if let Some(child) = servers.get_mut(host) {
                    if let Ok(Some(status)) = child.try_wait() {
                        servers.remove(host);
                        return Err(TestbedError::ServerDied {
                            host: host.into(),
                            status: status.to_string(),
                            log_tail: mariadb::log_tail(&h.error_log(), 15),
                        });
                    }
                }
            }
            if UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            if start.elapsed() > SERVER_TIMEOUT {
                return Err(TestbedError::Timeout {
                    what: format!("mariadbd on {host} to accept connections"),
                    after: SERVER_TIMEOUT,
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the host's mariadbd and, for terminating signals, waits until it is
    /// gone.
    pub(crate) fn signal_server(&self, host: &str, signal: Signal, wait: bool) -> Result<()> {
        self.db_host(host)?;
        let pid = self
            .server_pid(host)
            .ok_or_else(|| TestbedError::State(format!("no mariadbd known on {host}")))?;
        if !pid_alive(pid) {
            return Err(TestbedError::State(format!(
                "mariadbd on {host} is not running"
            )));
        }
        signal_pid(pid, signal)?;
        if !wait {
            return Ok(());
        }
        // A frozen server must run to act on SIGTERM.
        signal_pid(pid, Signal::SIGCONT)?;
        let child = self.servers.lock().ok().and_then(|mut s| s.remove(host));
        match child {
            Some(mut child) => {
                wait_child(&mut child, SERVER_TIMEOUT)?;
            }
            None => wait_pid_gone(pid, SERVER_TIMEOUT)?,
        }
        Ok(())
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let mut servers = self
            .servers
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        if let Err(e) = teardown(&self.state, &mut servers) {
            tracing::error!(id = %self.state.id, error = %e, "testbed teardown failed");
            eprintln!("testbed {}: teardown failed: {e}", self.state.id);
        }
    }
}

/// Where the error logs of crashed servers are kept (the testbed's directory goes away).
pub const CRASH_DIR: &str = "/var/tmp/mmm-tests-mariadb-crashes";

/// Keeps the error log of every server that crashed during the testbed's life (MariaDB
/// writes `got signal` and a backtrace with the query it was running) in [`CRASH_DIR`],
/// and prints where, with the log's last lines: a server crash is a finding, and the
/// evidence must outlive the testbed (issue 15).
fn keep_crash_logs(state: &State) {
    for h in state.hosts.iter().filter(|h| h.is_db()) {
        let log = h.error_log();
        let Ok(text) = fs::read_to_string(&log) else {
            continue;
        };
        if !text.contains("got signal") {
            continue;
        }
        let dir = Path::new(CRASH_DIR);
        let dest = dir.join(format!("{}-{}-error.log", state.id, h.name));
        let kept = fs::create_dir_all(dir).and_then(|()| fs::copy(&log, &dest));
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        eprintln!(
            "testbed {}: mariadbd on {} CRASHED; error log {} ({})\n{}",
            state.id,
            h.name,
            dest.display(),
            match kept {
                Ok(_) => "kept".to_string(),
                Err(e) => format!("not kept: {e}"),
            },
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// Removes everything a testbed made: processes on its hosts, namespaces, directories.
pub(crate) fn teardown(state: &State, servers: &mut HashMap<String, Child>) -> Result<()> {
    keep_crash_logs(state);
    let mut first_err: Option<TestbedError> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };
    let namespaces = state.all_netns();
    let existing = net::list_netns().unwrap_or_default();
    // Kill every process living in one of our namespaces; repeat until none are left
    // (a dying parent may have just forked).
    let start = Instant::now();
    loop {
        let mut pids = Vec::new();
        for ns in namespaces.iter().filter(|n| existing.contains(n)) {
            pids.extend(net::netns_pids(ns).unwrap_or_default());
        }
        // Servers we know of, even if their namespace is gone already.
        pids.extend(
            state
                .mysqld_pids
                .values()
                .copied()
                .filter(|p| pid_in_dir(*p, &state.base_dir)),
        );
        pids.extend(servers.values().map(Child::id));
        pids.retain(|p| pid_alive(*p));
        if pids.is_empty() {
            break;
        }
        for pid in &pids {
            let _ = signal_pid(*pid, Signal::SIGKILL);
        }
        for child in servers.values_mut() {
            let _ = wait_child(child, Duration::from_secs(5));
        }
        if start.elapsed() > Duration::from_secs(20) {
            note(Err(TestbedError::Timeout {
                what: format!("processes {pids:?} of testbed {} to die", state.id),
                after: Duration::from_secs(20),
            }));
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    servers.clear();
    for ns in &namespaces {
        if existing.contains(ns) {
            note(net::delete_netns(ns));
        }
    }
    if state.base_dir.exists() {
        note(
            fs::remove_dir_all(&state.base_dir)
                .map_err(io_err(format!("removing {}", state.base_dir.display()))),
        );
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether `pid`'s command line mentions `dir` (guards against pid reuse before killing a
/// pid read from an old state file).
fn pid_in_dir(pid: u32, dir: &Path) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
        .unwrap_or(false)
}

/// Removes what interrupted runs left behind: testbeds whose owner process is dead, and
/// namespaces with our prefix whose testbed has no state file. Detached testbeds (owner 0)
/// are left alone. Errors are logged, not returned: a leftover must not stop a new run.
pub fn reap_leftovers() -> Vec<String> {
    let mut reaped = Vec::new();
    let Ok(entries) = fs::read_dir("/tmp") else {
        return reaped;
    };
    let mut live_ids = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_testbed_id(&name) {
            continue;
        }
        let path = entry.path();
        match State::load(&path.join(STATE_FILE)) {
            Ok(state) if state.owner_pid != 0 && !owner_alive(&state) => {
                tracing::warn!(id = %state.id, owner = state.owner_pid, "removing leftover testbed");
                if let Err(e) = teardown(&state, &mut HashMap::new()) {
                    tracing::error!(id = %state.id, error = %e, "leftover teardown failed");
                }
                reaped.push(state.id);
            }
            Ok(state) => live_ids.push(state.id),
            Err(_) => {
                // A directory without a readable state file: only if it is old (a testbed
                // writes its state file right after making the directory).
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > Duration::from_secs(120));
                if old {
                    if fs::remove_dir_all(&path).is_ok() {
                        reaped.push(name);
                    }
                } else {
                    live_ids.push(name);
                }
            }
        }
    }
    for ns in net::list_netns().unwrap_or_default() {
        let Some((id, _)) = ns.split_once('-') else {
            continue;
        };
        // A testbed makes its directory before its namespaces and removes it after them,
        // so a namespace whose directory exists belongs to a testbed being built or torn
        // down (checked now, not from the scan above, which may be older than the
        // namespace).
        if !is_testbed_id(id)
            || live_ids.iter().any(|l| l == id)
            || Path::new("/tmp").join(id).exists()
        {
            continue;
        }
        tracing::warn!(netns = %ns, "removing leftover namespace");
        for pid in net::netns_pids(&ns).unwrap_or_default() {
            let _ = signal_pid(pid, Signal::SIGKILL);
        }
        thread::sleep(Duration::from_millis(50));
        let _ = net::delete_netns(&ns);
        reaped.push(ns);
    }
    reaped
}

/// Whether the process that owns a testbed still runs (same pid and start time).
fn owner_alive(state: &State) -> bool {
    pid_alive(state.owner_pid)
        && (state.owner_start == 0 || pid_start_time(state.owner_pid) == Some(state.owner_start))
}

/// `mt` followed by exactly six lowercase hex digits.
pub(crate) fn is_testbed_id(name: &str) -> bool {
    name.len() == PREFIX.len() + 6
        && name.starts_with(PREFIX)
        && name.get(PREFIX.len()..).is_some_and(|rest| {
            rest.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
}

/// Checks root and the programs we need; installs MariaDB with apt-get when allowed.
fn preflight(install_missing: bool) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(TestbedError::NotRoot(euid));
    }
    let missing = |prog: &str| which(prog).is_none();
    if (missing("mariadbd") || missing("mariadb") || missing("ip")) && install_missing {
        tracing::warn!("installing mariadb-server mariadb-client iproute2 with apt-get");
        let mut update = Command::new("apt-get");
        update.arg("update");
        let _ = output_with_timeout(&mut update, Duration::from_secs(300));
        let mut install = Command::new("apt-get");
        install
            .args([
                "install",
                "-y",
                "mariadb-server",
                "mariadb-client",
                "iproute2",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run_ok(&mut install, Duration::from_secs(900))?;
    }
    for (prog, pkg) in [
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("mount", "mount"),
        ("cp", "coreutils"),
        ("mariadbd", "mariadb-server"),
        ("mariadb", "mariadb-client"),
    ] {
        if missing(prog) {
            return Err(TestbedError::MissingPrerequisite {
                what: prog.into(),
                hint: format!("apt-get install -y {pkg}"),
            });
        }
    }
    mysql_ids()?;
    Ok(())
}

/// Finds a program in PATH (plus the sbin directories, which a non-login root may lack).
fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file());
    found
}

/// uid and gid of user mysql.
fn mysql_ids() -> Result<(u32, u32)> {
    match nix::unistd::User::from_name("mysql") {
        Ok(Some(u)) => Ok((u.uid.as_raw(), u.gid.as_raw())),
        _ => Err(TestbedError::MissingPrerequisite {
            what: "user mysql".into(),
            hint: "apt-get install -y mariadb-server creates it".into(),
        }),
    }
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(io_err(format!("chown {}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", path.display())))
}

fn write_0640(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))?;
    set_mode(path, 0o640)
}

/// Makes the template data directory (once per testbed).
fn make_template(base: &Path, template: &Path, accounts: &[String]) -> Result<()> {
    let mysql = mysql_ids()?;
    fs::create_dir_all(template).map_err(io_err("creating template datadir"))?;
    chown(template, mysql)?;
    let cnf = base.join("bootstrap.cnf");
    fs::write(&cnf, mariadb::bootstrap_cnf()).map_err(io_err("writing bootstrap.cnf"))?;
    let log_dir = base.join("bootstrap-log");
    fs::create_dir_all(&log_dir).map_err(io_err("creating bootstrap log dir"))?;
    chown(&log_dir, mysql)?;
    mariadb::bootstrap_datadir(&cnf, template, &log_dir.join("bootstrap.err"), accounts)
}

/// Picks a fresh id and creates `/tmp/<id>` (retrying on the rare collision).
fn make_base_dir() -> Result<(String, PathBuf)> {
    let mut last_err = None;
    for _ in 0..8 {
        let id = format!("{PREFIX}{:06x}", random_u64() & 0xff_ffff);
        let base_dir = PathBuf::from("/tmp").join(&id);
        match fs::create_dir(&base_dir) {
            Ok(()) => return Ok((id, base_dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(io_err(format!("creating {}", base_dir.display()))(e)),
        }
    }
    Err(TestbedError::Io {
        what: "picking a testbed id".into(),
        source: last_err.unwrap_or_else(|| std::io::Error::other("no id")),
    })
}

/// A random number from the standard library's per-process random keys plus the clock.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testbed_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Testbed>();
    }

    #[test]
    fn testbed_ids() {
        assert!(is_testbed_id("mt0a1b2c"));
        assert!(!is_testbed_id("mtexp"));
        assert!(!is_testbed_id("mt0A1b2c"));
        assert!(!is_testbed_id("mt0a1b2c3"));
        assert!(!is_testbed_id("xx0a1b2c"));
    }
}
