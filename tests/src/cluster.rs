//! [`Cluster`]: a [`Testbed`] plus the real daemons of the seed's deployment — `mmm_agentd`
//! on db1..db4 and `mmm_mond` on the monitor host, all in the foreground under this
//! process — brought to the healthy state of the seed's Step 2 (every host ONLINE, the
//! writer on db1, one reader per slave). Scenario tests (the walkthrough of spec §8, the
//! fault tests) drive it with `mmm_control` (spec §5) and observe the real effects: VIPs on
//! the hosts' `ens33`, `read_only` on the servers, the daemons' logs.
//!
//! ```no_run
//! use mmm_tests::cluster::{Cluster, ClusterOptions};
//! let cluster = Cluster::start(ClusterOptions::fast(40))?;
//! let (out, code) = cluster.control(&["move_role", "writer", "db2"])?;
//! cluster.wait_for("writer on db2", std::time::Duration::from_secs(30), |c| {
//!     (c.vip_holders(c.vip(188)).ok()? == ["db2"]).then_some(())
//! })?;
//! cluster.stop()?;
//! # Ok::<(), mmm_tests::cluster::ClusterError>(())
//! ```
//!
//! The cluster derefs to its [`Testbed`] (fault injection, `query`, `exec`, `ip`, `vip`).
//! Dropping it kills the daemons (printing their logs first when the thread is panicking,
//! copying them to [`ClusterOptions::keep_logs`] when set) and then the testbed tears
//! everything else down.
//!
//! The one harness of the testbed tests that run the daemons: `tests/tests/walkthrough.rs`,
//! `tests/tests/monitor.rs`, the fault matrix (`tests/tests/scenarios/mod.rs`, used by
//! `faults.rs` and `bench.rs`) and `tests/tests/agent.rs`, which runs agents without a
//! monitor ([`Daemons::Agents`]) and plays the monitor itself over the agent protocol
//! ([`Cluster::agent_request`], sent from the monitor host). Per-daemon control:
//! `start_*`, `stop_*` (SIGTERM, exit 0 checked), `kill_*` (SIGKILL, a crash), `restart_*`,
//! `*_pid`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bins::workspace_binary;
use crate::error::TestbedError;
use crate::testbed::{Testbed, TestbedOptions};

/// The database hosts of the seed, in configuration order.
pub const DB_HOSTS: [&str; 4] = ["db1", "db2", "db3", "db4"];

/// Bound on one `mmm_control` run (its own connect timeout is 10 s; the monitor answers
/// within one main-loop iteration).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a daemon may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The agents' port (`agent_port` in the testbed's configs).
pub const AGENT_PORT: u16 = 9989;

/// Bound on connecting to an agent in [`Cluster::agent_request`].
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on an agent's reply in [`Cluster::agent_request`] (a SET_STATUS may wait for
/// `sync_timeout`).
const AGENT_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a fresh agent may take to answer `PING`.
const AGENT_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// `mmm_control help` as 2.2.1 prints it (transcripts-2.2.1.md §1; mmm_control adds one
/// more newline).
pub const CONTROL_HELP: &str = "Valid commands are:
    help                              - show this message
    ping                              - ping monitor
    show                              - show status
    checks [<host>|all [<check>|all]] - show checks status
    set_online <host>                 - set host <host> online
    set_offline <host>                - set host <host> offline
    mode                              - print current mode.
    set_active                        - switch into active mode.
    set_manual                        - switch into manual mode.
    set_passive                       - switch into passive mode.
    move_role [--force] <role> <host> - move exclusive role <role> to host <host>
                                        (Only use --force if you know what you are doing!)
    set_ip <ip> <host>                - set role with ip <ip> to host <host>
";

/// What went wrong with a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The testbed (namespaces, servers, commands run on hosts) failed.
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    /// A condition did not hold in time; `last` is the last `mmm_control show` seen.
    #[error("timed out after {after:?} waiting for {what}; last show:\n{last}")]
    Timeout {
        /// The awaited condition.
        what: String,
        /// The limit.
        after: Duration,
        /// The last `show` output (or why it could not be had).
        last: String,
    },
    /// A daemon did not behave (exit status, unexpected reply).
    #[error("{0}")]
    Daemon(String),
}

/// Result of cluster operations.
pub type Result<T> = std::result::Result<T, ClusterError>;

/// How a brand-new cluster (every host AWAITING_RECOVERY, spec §3.14.2) is brought online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BringOnline {
    /// `mmm_control set_online` for db1, db2, db3, db4 in this order, as an admin would
    /// (the seed's walkthrough); db1 gets the writer.
    SetOnline,
    /// Wait for `auto_set_online` (must be > 0 in the options).
    AutoSetOnline,
    /// Leave every host AWAITING_RECOVERY; `start` returns once the monitor answers.
    Leave,
}

/// Which daemons [`Cluster::start`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemons {
    /// `mmm_agentd` on every database host and `mmm_mond`, brought online per
    /// [`ClusterOptions::bring_online`].
    AgentsAndMonitor,
    /// `mmm_agentd` on every database host, no monitor: the test plays the monitor
    /// ([`Cluster::agent_request`]). `start` returns once every agent answers `PING`.
    Agents,
    /// No daemon: the test starts what it needs ([`Cluster::start_agent`],
    /// [`Cluster::start_agent_notify`]).
    None,
}

/// How to build a cluster. `None` keeps the seed's value (2.2.1's defaults for the checks,
/// `auto_set_online 10`, flap detection 3 in 3600 s, no agent lease); the
/// `effective_*` methods give the value in force either way.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// A name for printed figures (`seed`, `fast`, `fast-lease`).
    pub label: &'static str,
    /// The testbed's third octet (198.18.<subnet>.0/24), plus `MMM_TEST_SUBNET_SHIFT` when
    /// that is set (to run a test beside other testbeds on one machine).
    pub subnet: u8,
    /// Slaves of db1 (2: db3 and db4, the seed; fewer only without the monitor).
    pub slaves: usize,
    /// Which daemons run.
    pub daemons: Daemons,
    /// `<check default> check_period` (seconds).
    pub check_period: Option<f64>,
    /// `<check default> trap_period` (seconds).
    pub trap_period: Option<f64>,
    /// `<check default> timeout` (seconds).
    pub check_timeout: Option<f64>,
    /// `<check default> max_backlog` (seconds of replication delay).
    pub max_backlog: Option<u32>,
    /// `<monitor> auto_set_online` (seconds; 0 = off).
    pub auto_set_online: Option<f64>,
    /// `<monitor> flap_duration` (seconds).
    pub flap_duration: Option<f64>,
    /// `<monitor> flap_count` (0 disables flap detection).
    pub flap_count: Option<u32>,
    /// `agent_lease` in `mmm_common.conf` (seconds; mmm-rs extension, off when `None`).
    pub agent_lease: Option<f64>,
    /// `debug 1` instead of the seed's `debug 0` in `mmm_mon.conf` (the monitor's debug log).
    pub monitor_debug: bool,
    /// More lines inside `<monitor>` (e.g. `"mode passive"`, `"ping_interval 0.5"`).
    pub monitor_directives: Vec<String>,
    /// Top-level lines appended to `mmm_common.conf` on every host (mmm-rs extension
    /// directives such as `"status_retry_interval 0.2"`, or `max_kill_retries`).
    pub common_directives: Vec<String>,
    /// How the fresh cluster is brought online.
    pub bring_online: BringOnline,
    /// Bound on reaching the healthy state in [`Cluster::start`].
    pub start_timeout: Duration,
    /// How often [`Cluster::wait_for`] polls.
    pub poll: Duration,
    /// Whether failures print the daemons' logs ([`Cluster::dump_logs`]).
    pub dump_logs: bool,
    /// How many last lines of the monitor's and of each agent's logs a dump prints.
    pub log_tail: (usize, usize),
    /// Copy every host's MMM logs and MariaDB error log to `DIR/<subnet>/<host>/` before
    /// the testbed is removed (on [`Cluster::stop`] and on drop).
    pub keep_logs: Option<PathBuf>,
    /// [`TestbedOptions::binlog_tmpfs_mib`]: every server's binary log on a tmpfs this big.
    pub binlog_tmpfs_mib: Option<u32>,
    /// [`TestbedOptions::extra_hosts`]: hosts without a database (more monitors, etcd).
    pub extra_hosts: Vec<(String, u8)>,
    /// Monitor high availability on etcd (issue 16): more monitors and an etcd cluster.
    pub ha: Option<HaOptions>,
}

/// Monitor HA on the testbed: `monitors` beside `monitor` (name, last octet), each with
/// its own `mmm_mon.conf` (its own `ip`, `etcd_endpoints`, `leader_lease`), and an etcd
/// member on each of `etcd`. Every monitor is in `monitor_ips`. `monitor` starts first
/// (and normally leads); the others follow.
#[derive(Debug, Clone)]
pub struct HaOptions {
    /// The monitors besides `monitor`.
    pub monitors: Vec<(String, u8)>,
    /// The etcd members' hosts.
    pub etcd: Vec<(String, u8)>,
    /// `leader_lease` (whole seconds).
    pub leader_lease: u32,
}

impl HaOptions {
    /// `mon2` (.107) beside `monitor`, etcd on `etcd1`..`etcd3` (.110-.112).
    pub fn two_monitors(leader_lease: u32) -> HaOptions {
        HaOptions {
            monitors: vec![("mon2".into(), 107)],
            etcd: vec![
                ("etcd1".into(), 110),
                ("etcd2".into(), 111),
                ("etcd3".into(), 112),
            ],
            leader_lease,
        }
    }
}

impl ClusterOptions {
    /// The seed's configuration unchanged (2.2.1 default periods: a failover takes ~15 s).
    pub fn seed(subnet: u8) -> ClusterOptions {
        ClusterOptions {
            label: "seed",
            subnet,
            slaves: 2,
            daemons: Daemons::AgentsAndMonitor,
            check_period: None,
            trap_period: None,
            check_timeout: None,
            max_backlog: None,
            auto_set_online: None,
            flap_duration: None,
            flap_count: None,
            agent_lease: None,
            monitor_debug: false,
            monitor_directives: Vec::new(),
            common_directives: Vec::new(),
            bring_online: BringOnline::SetOnline,
            start_timeout: Duration::from_secs(90),
            poll: Duration::from_millis(100),
            dump_logs: true,
            log_tail: (100, 100),
            keep_logs: None,
            binlog_tmpfs_mib: None,
            extra_hosts: Vec::new(),
            ha: None,
        }
    }

    /// Fast checks for tests: check_period 0.5 s, trap_period 2 s, timeout 1 s,
    /// auto_set_online 3 s, flap detection off.
    pub fn fast(subnet: u8) -> ClusterOptions {
        ClusterOptions {
            label: "fast",
            check_period: Some(0.5),
            trap_period: Some(2.0),
            check_timeout: Some(1.0),
            auto_set_online: Some(3.0),
            flap_count: Some(0),
            ..ClusterOptions::seed(subnet)
        }
    }

    /// `check_period` in force (2.2.1's default 5 s).
    pub fn effective_check_period(&self) -> f64 {
        self.check_period.unwrap_or(5.0)
    }

    /// `trap_period` in force (2.2.1's default 10 s).
    pub fn effective_trap_period(&self) -> f64 {
        self.trap_period.unwrap_or(10.0)
    }

    /// The check `timeout` in force (2.2.1's default 2 s).
    pub fn effective_check_timeout(&self) -> f64 {
        self.check_timeout.unwrap_or(2.0)
    }

    /// `max_backlog` in force (2.2.1's default 60).
    pub fn effective_max_backlog(&self) -> u32 {
        self.max_backlog.unwrap_or(60)
    }

    /// `auto_set_online` in force (the seed's 10 s).
    pub fn effective_auto_set_online(&self) -> f64 {
        self.auto_set_online.unwrap_or(10.0)
    }

    /// `flap_count` in force (2.2.1's default 3).
    pub fn effective_flap_count(&self) -> u32 {
        self.flap_count.unwrap_or(3)
    }

    /// `agent_lease` in force (0 = off, the default).
    pub fn effective_agent_lease(&self) -> f64 {
        self.agent_lease.unwrap_or(0.0)
    }
}

/// One host line of `mmm_control show`: `  db1(198.18.2.100) master/ONLINE. Roles: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowHost {
    /// Host name.
    pub name: String,
    /// Its address.
    pub ip: String,
    /// `master` or `slave`.
    pub mode: String,
    /// `ONLINE`, `HARD_OFFLINE`, …
    pub state: String,
    /// `writer(198.18.2.188)`, … in the order shown (sorted by the monitor).
    pub roles: Vec<String>,
}

/// `mmm_control show`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Show {
    /// The `# `-prefixed lines (PASSIVE block, agent warnings, preferences), without `# `.
    pub comments: Vec<String>,
    /// The host lines in order.
    pub hosts: Vec<ShowHost>,
    /// The raw text (as printed by mmm_control).
    pub raw: String,
}

impl Show {
    /// Parses `show` output; lines that are neither comments nor host lines are errors.
    pub fn parse(raw: &str) -> Result<Show> {
        let mut show = Show {
            raw: raw.to_string(),
            ..Show::default()
        };
        for line in raw.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(c) = line.strip_prefix("# ").or(line.strip_prefix('#')) {
                show.comments.push(c.to_string());
                continue;
            }
            show.hosts.push(parse_host_line(line).ok_or_else(|| {
                ClusterError::Daemon(format!("unexpected line in show: {line:?}"))
            })?);
        }
        Ok(show)
    }

    /// The line of `host`.
    pub fn host(&self, name: &str) -> Option<&ShowHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The state of `host` ("" when absent).
    pub fn state(&self, name: &str) -> &str {
        self.host(name).map(|h| h.state.as_str()).unwrap_or("")
    }

    /// The roles of `host` (empty when absent).
    pub fn roles(&self, name: &str) -> Vec<String> {
        self.host(name).map(|h| h.roles.clone()).unwrap_or_default()
    }

    /// The hosts whose roles include `role` (e.g. `writer(198.18.2.188)`).
    pub fn holders(&self, role: &str) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.roles.iter().any(|r| r == role))
            .map(|h| h.name.clone())
            .collect()
    }

    /// The hosts holding any role named `name` (`writer`, `reader`), in `show` order.
    pub fn role_holders(&self, name: &str) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| self.role_count(&h.name, name) > 0)
            .map(|h| h.name.clone())
            .collect()
    }

    /// How many roles named `name` (`reader(…)`, …) `host` holds.
    pub fn role_count(&self, host: &str, name: &str) -> usize {
        self.host(host).map_or(0, |h| {
            h.roles
                .iter()
                .filter(|r| r.strip_prefix(name).is_some_and(|ip| ip.starts_with('(')))
                .count()
        })
    }
}

fn parse_host_line(line: &str) -> Option<ShowHost> {
    let rest = line.strip_prefix("  ")?;
    let (name, rest) = rest.split_once('(')?;
    let (ip, rest) = rest.split_once(") ")?;
    let (mode, rest) = rest.split_once('/')?;
    let (state, roles) = rest.split_once(". Roles: ")?;
    let roles = if roles.is_empty() {
        Vec::new()
    } else {
        roles.split(", ").map(str::to_string).collect()
    };
    Some(ShowHost {
        name: name.to_string(),
        ip: ip.to_string(),
        mode: mode.to_string(),
        state: state.to_string(),
        roles,
    })
}

/// The running deployment with its daemons.
#[derive(Debug)]
pub struct Cluster {
    /// Always `Some` until [`Cluster::stop`] takes it out.
    tb: Option<Testbed>,
    opts: ClusterOptions,
    mond: PathBuf,
    agentd: PathBuf,
    control_bin: PathBuf,
    agents: Mutex<BTreeMap<String, Child>>,
    monitor: Mutex<Option<Child>>,
    /// When the running monitor was spawned.
    monitor_spawned: Mutex<Option<Instant>>,
    started: Instant,
    /// Monitor HA: the other monitors (host → process).
    other_monitors: Mutex<BTreeMap<String, Child>>,
    /// Monitor HA: the etcd cluster.
    etcd: std::sync::OnceLock<crate::etcd::Etcd>,
}

impl Deref for Cluster {
    type Target = Testbed;
    fn deref(&self) -> &Testbed {
        self.testbed()
    }
}

impl Cluster {
    /// Builds the testbed, writes the configs, starts the agents and the monitor, brings the
    /// hosts online (per `opts.bring_online`) and waits for the healthy state
    /// ([`Cluster::wait_healthy`]): every host ONLINE, the writer on a master with its VIP
    /// and `read_only=0` there — on db1 with [`BringOnline::SetOnline`] (checked), usually
    /// db1 with [`BringOnline::AutoSetOnline`] too (the first master to come online) — and
    /// one reader per slave with its VIP on that slave.
    pub fn start(opts: ClusterOptions) -> Result<Cluster> {
        let mond = workspace_binary("mmm_mond")?;
        let agentd = workspace_binary("mmm_agentd")?;
        let control_bin = workspace_binary("mmm_control")?;
        let tb = {
            // One testbed build at a time: concurrent `mariadbd --bootstrap` runs have
            // been seen to collide on temporary tables in /tmp.
            static UP: Mutex<()> = Mutex::new(());
            let _one_at_a_time = lock(&UP);
            Testbed::up(TestbedOptions {
                subnet: shifted_subnet(opts.subnet),
                slaves: opts.slaves,
                write_mmm_configs: false,
                binlog_tmpfs_mib: opts.binlog_tmpfs_mib,
                extra_hosts: opts
                    .extra_hosts
                    .iter()
                    .cloned()
                    .chain(
                        opts.ha
                            .iter()
                            .flat_map(|h| h.monitors.iter().chain(h.etcd.iter()).cloned()),
                    )
                    .collect(),
                ..TestbedOptions::default()
            })?
        };
        let cluster = Cluster {
            tb: Some(tb),
            opts,
            mond,
            agentd,
            control_bin,
            agents: Mutex::new(BTreeMap::new()),
            monitor: Mutex::new(None),
            monitor_spawned: Mutex::new(None),
            started: Instant::now(),
            other_monitors: Mutex::new(BTreeMap::new()),
            etcd: std::sync::OnceLock::new(),
        };
        // On error `cluster` drops: daemons killed (logs printed), testbed torn down.
        if let Err(e) = cluster.bring_up() {
            cluster.dump_logs();
            return Err(e);
        }
        Ok(cluster)
    }

    fn bring_up(&self) -> Result<()> {
        self.write_configs()?;
        match self.opts.daemons {
            Daemons::None => return Ok(()),
            Daemons::Agents => {
                let hosts = self.db_hosts();
                for h in &hosts {
                    self.spawn_agent(h)?;
                }
                for h in &hosts {
                    self.wait_agent_answers(h)?;
                }
                return Ok(());
            }
            Daemons::AgentsAndMonitor => {}
        }
        for h in DB_HOSTS {
            self.spawn_agent(h)?;
        }
        if let Some(ha) = &self.opts.ha {
            let hosts: Vec<&str> = ha.etcd.iter().map(|(h, _)| h.as_str()).collect();
            let etcd = crate::etcd::Etcd::start(self.testbed(), &hosts)?;
            let _ = self.etcd.set(etcd);
            // The configs name the etcd endpoints: written again now.
            self.write_configs()?;
        }
        self.spawn_monitor()?;
        self.wait_monitor_answers()?;
        if let Some(ha) = &self.opts.ha {
            self.wait_for("monitor to lead", Duration::from_secs(30), |c| {
                let (out, _) = c.control(&["show"]).ok()?;
                out.lines()
                    .next()
                    .is_some_and(|l| l.starts_with("# Monitor HA:") && l.contains(" leads "))
                    .then_some(())
            })?;
            for (h, _) in &ha.monitors {
                self.start_monitor_on(h)?;
            }
        }
        let limit = self.opts.start_timeout;
        match self.opts.bring_online {
            BringOnline::Leave => return Ok(()),
            BringOnline::AutoSetOnline => {}
            BringOnline::SetOnline => {
                for h in DB_HOSTS {
                    self.wait_for(&format!("set_online {h} accepted"), limit, |c| {
                        let (out, _) = c.control(&["set_online", h]).ok()?;
                        (out.starts_with("OK: State of '")
                            || out.starts_with("OK: This host is already ONLINE"))
                        .then_some(())
                    })?;
                }
            }
        }
        let writer = self.wait_healthy(limit)?;
        // set_online in configuration order gives the writer to db1, as in the seed.
        if self.opts.bring_online == BringOnline::SetOnline && writer != "db1" {
            return Err(ClusterError::Daemon(format!(
                "after set_online db1..db4 the writer is on {writer}, not db1"
            )));
        }
        Ok(())
    }

    /// Waits until the cluster is healthy: every database host ONLINE, the writer role on
    /// one master (its VIP on that master's `ens33` only, `read_only=0` there), one reader
    /// role on each slave (each reader VIP on exactly one slave). Returns the writer's
    /// host. (The other master's `read_only` is not checked: MMM only sets it when the
    /// writer role leaves a host, so after a server restart it is whatever its my.cnf says.)
    pub fn wait_healthy(&self, limit: Duration) -> Result<String> {
        let writer = format!("writer({})", self.vip(188));
        let readers = [
            format!("reader({})", self.vip(198)),
            format!("reader({})", self.vip(199)),
        ];
        let host = self.wait_for("a healthy cluster (show)", limit, |c| {
            let s = c.show().ok()?;
            c.accept_kept_out(&s);
            let all_online = DB_HOSTS.iter().all(|h| s.state(h) == "ONLINE");
            let w = s.holders(&writer);
            let [w] = w.as_slice() else { return None };
            let ok = all_online
                && s.roles(w) == [writer.clone()]
                && s.roles("db3").len() == 1
                && s.roles("db4").len() == 1
                && readers.iter().all(|r| s.holders(r).len() == 1);
            ok.then(|| w.clone())
        })?;
        self.wait_for("VIPs and read_only on the hosts", limit, |c| {
            let w = c.vip_holders(c.vip(188)).ok()?;
            let r1 = c.vip_holders(c.vip(198)).ok()?;
            let r2 = c.vip_holders(c.vip(199)).ok()?;
            let ok = w == [host.as_str()]
                && r1.len() == 1
                && r2.len() == 1
                && r1 != r2
                && c.read_only(&host).ok()? == Some(false);
            ok.then_some(())
        })?;
        Ok(host)
    }

    /// A crashed old master may come back with errant transactions (what it wrote and
    /// sent to nobody): the monitor keeps it out (issue 13). Scenarios that are about
    /// something else accept them with `accept_errant`, as 2.2.1 did silently, and print a
    /// `note:` line. `show` is the latest `show`.
    pub fn accept_kept_out(&self, show: &Show) {
        for (host, why) in show
            .comments
            .iter()
            .filter_map(|l| l.strip_prefix("Warning: host "))
            .filter_map(|l| l.split_once(" is kept out: "))
        {
            let answer = self
                .control(&["accept_errant", host])
                .map(|r| r.0)
                .unwrap_or_else(|e| e.to_string());
            println!("note: {host} kept out ({why}): {}", answer.trim());
        }
    }

    /// The testbed under the daemons.
    pub fn testbed(&self) -> &Testbed {
        match &self.tb {
            Some(tb) => tb,
            // Only `stop(self)` takes the testbed out, and nothing can use the cluster
            // after that.
            None => unreachable!("cluster used after stop"),
        }
    }

    /// The testbed's database hosts in configuration order (db1..db4 with two slaves).
    pub fn db_hosts(&self) -> Vec<String> {
        self.testbed()
            .hosts()
            .iter()
            .filter(|h| h.is_db())
            .map(|h| h.name.clone())
            .collect()
    }

    /// The options the cluster was started with.
    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// The options, to change before [`Cluster::write_configs`] and daemon restarts.
    pub fn options_mut(&mut self) -> &mut ClusterOptions {
        &mut self.opts
    }

    /// Time since [`Cluster::start`] finished building the testbed.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// The configuration texts as written: `(mmm_common.conf, mmm_mon.conf)`; the agents'
    /// `mmm_agent.conf` are the testbed's (`include mmm_common.conf`, `this dbN`).
    pub fn config_texts(&self) -> Result<(String, String)> {
        let c = self.testbed().mmm_configs();
        let mut common = c.common.clone();
        if !self.opts.common_directives.is_empty() || self.opts.agent_lease.is_some() {
            common.push('\n');
            for d in &self.opts.common_directives {
                let _ = writeln!(common, "{d}");
            }
            if let Some(v) = self.opts.agent_lease {
                let _ = writeln!(common, "agent_lease {}", secs(v));
            }
        }
        let mut monitor_lines = String::new();
        let mut add = |k: &str, v: String| {
            let _ = writeln!(monitor_lines, "    {k:<19} {v}");
        };
        if let Some(v) = self.opts.flap_duration {
            add("flap_duration", secs(v));
        }
        if let Some(v) = self.opts.flap_count {
            add("flap_count", v.to_string());
        }
        for d in &self.opts.monitor_directives {
            let _ = writeln!(monitor_lines, "    {d}");
        }
        let seed_auto = "    auto_set_online     10\n";
        if !c.mon.contains(seed_auto) {
            return Err(ClusterError::Daemon(format!(
                "the testbed's mmm_mon.conf changed shape (no {seed_auto:?}); update cluster.rs"
            )));
        }
        let auto = match self.opts.auto_set_online {
            Some(v) => format!("    auto_set_online     {}\n", secs(v)),
            None => seed_auto.to_string(),
        };
        let mut mon = c.mon.replace(seed_auto, &format!("{auto}{monitor_lines}"));
        if self.opts.monitor_debug {
            let seed_debug = "\ndebug 0\n";
            if !mon.contains(seed_debug) {
                return Err(ClusterError::Daemon(format!(
                    "the testbed's mmm_mon.conf changed shape (no {seed_debug:?}); update cluster.rs"
                )));
            }
            mon = mon.replace(seed_debug, "\ndebug 1\n");
        }
        let mut check = String::new();
        if let Some(v) = self.opts.check_period {
            let _ = writeln!(check, "    check_period        {}", secs(v));
        }
        if let Some(v) = self.opts.trap_period {
            let _ = writeln!(check, "    trap_period         {}", secs(v));
        }
        if let Some(v) = self.opts.check_timeout {
            let _ = writeln!(check, "    timeout             {}", secs(v));
        }
        if let Some(v) = self.opts.max_backlog {
            let _ = writeln!(check, "    max_backlog         {v}");
        }
        if !check.is_empty() {
            let _ = write!(mon, "\n<check default>\n{check}</check>\n");
        }
        Ok((common, mon))
    }

    /// Writes the configs ([`Cluster::config_texts`]) into every host's `etc/mysql-mmm`
    /// (mode 0640); daemons read them when they start.
    pub fn write_configs(&self) -> Result<()> {
        let (mut common, mon) = self.config_texts()?;
        let agents = self.testbed().mmm_configs().agents;
        let monitors = self.monitor_hosts();
        if self.opts.ha.is_some() {
            let ips: Vec<String> = monitors.iter().map(|m| self.ip(m).to_string()).collect();
            common = common
                .lines()
                .map(|l| {
                    if l.starts_with("monitor_ips") {
                        format!("monitor_ips             {}", ips.join(", "))
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
        }
        for h in self.testbed().hosts() {
            let etc = h.dir.join("etc/mysql-mmm");
            write_0640(&etc.join("mmm_common.conf"), &common)?;
            if let Some((_, text)) = agents.iter().find(|(n, _)| *n == h.name) {
                write_0640(&etc.join("mmm_agent.conf"), text)?;
            }
            if monitors.contains(&h.name) {
                write_0640(&etc.join("mmm_mon.conf"), &self.ha_mon_text(&mon, &h.name))?;
            }
        }
        Ok(())
    }

    /// The monitor hosts: `monitor`, and with HA the others.
    pub fn monitor_hosts(&self) -> Vec<String> {
        let mut v = vec!["monitor".to_string()];
        if let Some(ha) = &self.opts.ha {
            v.extend(ha.monitors.iter().map(|(h, _)| h.clone()));
        }
        v
    }

    /// `mon` for monitor `host`: without HA unchanged; with HA bound to the host's own
    /// address (followers forward commands to it) with the etcd directives.
    fn ha_mon_text(&self, mon: &str, host: &str) -> String {
        let (Some(ha), Some(etcd)) = (&self.opts.ha, self.etcd.get()) else {
            return mon.to_string();
        };
        let ip = self.ip(host);
        mon.replace(
            "    ip                  127.0.0.1\n",
            &format!(
                "    ip                  {ip}\n    etcd_endpoints      {}\n    leader_lease        {}\n",
                etcd.endpoints(),
                ha.leader_lease
            ),
        )
    }

    /// Monitor HA: the etcd cluster.
    pub fn etcd(&self) -> Option<&crate::etcd::Etcd> {
        self.etcd.get()
    }

    /// Monitor HA: starts the monitor on `host` (one of [`HaOptions::monitors`]) and waits
    /// until it answers `ping`.
    pub fn start_monitor_on(&self, host: &str) -> Result<()> {
        if host == "monitor" {
            return self.start_monitor();
        }
        if lock(&self.other_monitors).contains_key(host) {
            return Err(ClusterError::Daemon(format!(
                "a monitor already runs on {host}"
            )));
        }
        let bin = self.mond.to_string_lossy().into_owned();
        let child = self.testbed().spawn(host, &[&bin, "--foreground"])?;
        lock(&self.other_monitors).insert(host.to_string(), child);
        self.wait_for(
            &format!("the monitor on {host} to answer ping"),
            Duration::from_secs(60),
            |c| {
                let (out, code) = c.control_on(host, &["ping"]).ok()?;
                (code == Some(0) && out == "OK: Pinged successfully!\n").then_some(())
            },
        )
    }

    /// Monitor HA: SIGKILL to the monitor on `host` (a crash), reaped.
    pub fn kill_monitor_on(&self, host: &str) -> Result<()> {
        if host == "monitor" {
            return self.kill_monitor();
        }
        match lock(&self.other_monitors).remove(host) {
            Some(child) => {
                reap_killed(child);
                Ok(())
            }
            None => Err(ClusterError::Daemon(format!(
                "no monitor running on {host}"
            ))),
        }
    }

    fn spawn_agent(&self, host: &str) -> Result<()> {
        let bin = self.agentd.to_string_lossy().into_owned();
        let child = self.testbed().spawn(host, &[&bin, "--foreground"])?;
        lock(&self.agents).insert(host.to_string(), child);
        Ok(())
    }

    fn spawn_monitor(&self) -> Result<()> {
        let bin = self.mond.to_string_lossy().into_owned();
        let child = self.testbed().spawn("monitor", &[&bin, "--foreground"])?;
        *lock(&self.monitor) = Some(child);
        *lock(&self.monitor_spawned) = Some(Instant::now());
        Ok(())
    }

    /// Time since the running monitor was spawned.
    pub fn monitor_uptime(&self) -> Option<Duration> {
        lock(&self.monitor_spawned).map(|t| t.elapsed())
    }

    /// Waits until `mmm_control ping` succeeds.
    pub fn wait_monitor_answers(&self) -> Result<()> {
        self.wait_for("the monitor to answer ping", Duration::from_secs(60), |c| {
            let (out, code) = c.control(&["ping"]).ok()?;
            (code == Some(0) && out == "OK: Pinged successfully!\n").then_some(())
        })
    }

    /// Runs `mmm_control ARGS…` on the monitor host: (stdout, exit code).
    pub fn control(&self, args: &[&str]) -> Result<(String, Option<i32>)> {
        self.control_on("monitor", args)
    }

    /// The `mmm_mond` binary the cluster runs (for tests that start more monitors).
    pub fn mond_bin(&self) -> &Path {
        &self.mond
    }

    /// Runs `mmm_control ARGS…` on `host` (one of several monitor hosts): (stdout, exit
    /// code).
    pub fn control_on(&self, host: &str, args: &[&str]) -> Result<(String, Option<i32>)> {
        let bin = self.control_bin.to_string_lossy().into_owned();
        let mut argv = vec![bin.as_str()];
        argv.extend_from_slice(args);
        let out = self.testbed().exec_timeout(host, &argv, CONTROL_TIMEOUT)?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code(),
        ))
    }

    /// `mmm_control show`, parsed (fails when the monitor does not answer with host lines).
    pub fn show(&self) -> Result<Show> {
        let (out, code) = self.control(&["show"])?;
        if code != Some(0) {
            return Err(ClusterError::Daemon(format!(
                "mmm_control show exited with {code:?}: {out}"
            )));
        }
        let show = Show::parse(&out)?;
        if show.hosts.is_empty() {
            return Err(ClusterError::Daemon(format!("show without hosts: {out:?}")));
        }
        Ok(show)
    }

    /// Polls `f` every 100 ms until it returns `Some` or `limit` passes; the timeout error
    /// carries the last `show`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut f: impl FnMut(&Cluster) -> Option<T>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return Ok(v);
            }
            if start.elapsed() >= limit {
                let last = match self.control(&["show"]) {
                    Ok((out, _)) => out,
                    Err(e) => format!("(show failed: {e})"),
                };
                return Err(ClusterError::Timeout {
                    what: what.to_string(),
                    after: limit,
                    last,
                });
            }
            std::thread::sleep(self.opts.poll);
        }
    }

    /// Waits until `show` satisfies `f`; returns that `show`.
    pub fn wait_show(
        &self,
        what: &str,
        limit: Duration,
        mut f: impl FnMut(&Show) -> bool,
    ) -> Result<Show> {
        self.wait_for(what, limit, |c| c.show().ok().filter(|s| f(s)))
    }

    /// The database hosts whose `ens33` holds `ip` (read with `ip -o addr` on each host).
    pub fn vip_holders(&self, ip: Ipv4Addr) -> Result<Vec<String>> {
        let mut holders = Vec::new();
        for h in DB_HOSTS {
            if self.holds_ip(h, ip)? {
                holders.push(h.to_string());
            }
        }
        Ok(holders)
    }

    /// Whether `host`'s `ens33` holds `ip` (`ip -o addr` on that host).
    pub fn holds_ip(&self, host: &str, ip: Ipv4Addr) -> Result<bool> {
        let out = self
            .testbed()
            .exec(host, &["ip", "-o", "addr", "show", "dev", "ens33"])?;
        Ok(String::from_utf8_lossy(&out.stdout).contains(&format!("inet {ip}/")))
    }

    /// Whether `host`'s server is writable: `read_only` read as 0 (false when it cannot
    /// be read).
    pub fn writable(&self, host: &str) -> bool {
        matches!(self.read_only(host), Ok(Some(false)))
    }

    /// `@@read_only` of the host's server: `Some(true/false)`, `None` when it cannot be read
    /// (server down).
    pub fn read_only(&self, host: &str) -> Result<Option<bool>> {
        match self.testbed().query(host, "SELECT @@read_only AS ro") {
            Ok(rows) => Ok(rows
                .first()
                .and_then(|r| r.get("ro"))
                .map(|v| v == "1" || v == "ON")),
            Err(TestbedError::Sql { .. }) | Err(TestbedError::Command { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The monitor's log (`/var/log/mysql-mmm/mmm_mond.log` on the monitor host).
    pub fn monitor_log(&self) -> Result<String> {
        self.log("monitor", "mmm_mond.log")
    }

    /// The monitor's decision audit (`mmm_mond.audit.jsonl` beside its log), one JSON
    /// event a line.
    pub fn monitor_audit(&self) -> Result<String> {
        self.log("monitor", "mmm_mond.audit.jsonl")
    }

    /// An agent's log (`/var/log/mysql-mmm/mmm_agentd.log` on `host`).
    pub fn agent_log(&self, host: &str) -> Result<String> {
        self.log(host, "mmm_agentd.log")
    }

    fn log(&self, host: &str, file: &str) -> Result<String> {
        let path = self
            .testbed()
            .host_dir(host)?
            .join("var/log/mysql-mmm")
            .join(file);
        Ok(std::fs::read_to_string(&path).unwrap_or_default())
    }

    /// SIGTERM to the monitor, waits for exit 0, starts it again and waits until it answers.
    pub fn restart_monitor(&self) -> Result<()> {
        let child = lock(&self.monitor).take();
        if let Some(child) = child {
            terminate("mmm_mond", child)?;
        }
        self.spawn_monitor()?;
        self.wait_monitor_answers()
    }

    /// SIGTERM to `host`'s agent, waits for exit 0, starts it again.
    pub fn restart_agent(&self, host: &str) -> Result<()> {
        self.stop_agent(host)?;
        self.spawn_agent(host)
    }

    /// SIGTERM to `host`'s agent and waits for exit 0 (a later
    /// [`Cluster::start_agent`] brings it back).
    pub fn stop_agent(&self, host: &str) -> Result<()> {
        let child = lock(&self.agents).remove(host);
        match child {
            Some(child) => terminate(&format!("mmm_agentd on {host}"), child),
            None => Err(ClusterError::Daemon(format!("no agent running on {host}"))),
        }
    }

    /// Starts `host`'s agent (after [`Cluster::stop_agent`]).
    pub fn start_agent(&self, host: &str) -> Result<()> {
        if lock(&self.agents).contains_key(host) {
            return Err(ClusterError::Daemon(format!(
                "an agent already runs on {host}"
            )));
        }
        self.spawn_agent(host)
    }

    /// Starts `host`'s agent as systemd would (`Type=notify`): without `--foreground`, with
    /// `NOTIFY_SOCKET=notify_socket` (it must stay in the foreground and send `READY=1`
    /// there); output goes where [`Testbed::spawn`] puts it.
    pub fn start_agent_notify(&self, host: &str, notify_socket: &Path) -> Result<()> {
        if lock(&self.agents).contains_key(host) {
            return Err(ClusterError::Daemon(format!(
                "an agent already runs on {host}"
            )));
        }
        let bin = self.agentd.to_string_lossy().into_owned();
        let child = self.testbed().spawn_env(
            host,
            &[&bin],
            &[("NOTIFY_SOCKET", notify_socket.as_os_str())],
        )?;
        lock(&self.agents).insert(host.to_string(), child);
        Ok(())
    }

    /// Sends one request line to `host`'s agent from the monitor host, on a connection of
    /// its own as the monitor does (plain TCP), and returns the result part of the reply
    /// (without `|UP:…`). Prints the exchange. A reply without `|UP:` is an error.
    pub fn agent_request(&self, host: &str, line: &str) -> Result<String> {
        let reply = self.agent_exchange(host, line, AGENT_CONNECT_TIMEOUT, AGENT_REPLY_TIMEOUT)?;
        println!("-> {line}\n<- {}", reply.trim_end());
        let decoded = mmm_common::proto::agent::decode_reply(reply.trim_end());
        if decoded.uptime.is_none() {
            return Err(ClusterError::Daemon(format!(
                "reply without |UP: from the agent on {host}: {reply:?}"
            )));
        }
        Ok(decoded.result)
    }

    /// Waits (at most 20 s) until `host`'s agent answers `PING` from the monitor host.
    pub fn wait_agent_answers(&self, host: &str) -> Result<()> {
        let ping = format!("PING|1|{host}");
        let second = Duration::from_secs(1);
        let start = Instant::now();
        loop {
            if let Ok(reply) = self.agent_exchange(host, &ping, second, second * 5) {
                if reply.starts_with("OK: Pinged!|UP:") {
                    return Ok(());
                }
            }
            if start.elapsed() > AGENT_UP_TIMEOUT {
                return Err(ClusterError::Daemon(format!(
                    "agent on {host} did not come up within {AGENT_UP_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One request line to `host`'s agent from the monitor host; the raw reply line.
    fn agent_exchange(
        &self,
        host: &str,
        line: &str,
        connect_timeout: Duration,
        reply_timeout: Duration,
    ) -> Result<String> {
        let addr = SocketAddr::from((self.ip(host), AGENT_PORT));
        let fail = |what: &str, e: std::io::Error| {
            ClusterError::Daemon(format!("agent on {host} ({addr}): {what}: {e}"))
        };
        let mut stream = self
            .testbed()
            .tcp_connect_from("monitor", addr, connect_timeout)?
            .map_err(|e| fail("connect", e))?;
        stream
            .set_read_timeout(Some(reply_timeout))
            .map_err(|e| fail("read timeout", e))?;
        stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| fail("send", e))?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .map_err(|e| fail(&format!("no reply within {reply_timeout:?}"), e))?;
        Ok(reply)
    }

    /// Starts the monitor (after [`Cluster::stop_monitor`] or [`Cluster::kill_monitor`])
    /// and waits until it answers.
    pub fn start_monitor(&self) -> Result<()> {
        if lock(&self.monitor).is_some() {
            return Err(ClusterError::Daemon("a monitor already runs".into()));
        }
        self.spawn_monitor()?;
        self.wait_monitor_answers()
    }

    /// SIGKILL to the monitor (a crash: no clean shutdown), reaped.
    pub fn kill_monitor(&self) -> Result<()> {
        let child = lock(&self.monitor).take();
        match child {
            Some(child) => {
                reap_killed(child);
                Ok(())
            }
            None => Err(ClusterError::Daemon("no monitor running".into())),
        }
    }

    /// SIGKILL to `host`'s agent (a crash), reaped; [`Cluster::start_agent`] brings it
    /// back.
    pub fn kill_agent(&self, host: &str) -> Result<()> {
        let child = lock(&self.agents).remove(host);
        match child {
            Some(child) => {
                reap_killed(child);
                Ok(())
            }
            None => Err(ClusterError::Daemon(format!("no agent running on {host}"))),
        }
    }

    /// SIGTERM to the monitor and waits for exit 0 (not restarted).
    pub fn stop_monitor(&self) -> Result<()> {
        let child = lock(&self.monitor).take();
        match child {
            Some(child) => terminate("mmm_mond", child),
            None => Err(ClusterError::Daemon("no monitor running".into())),
        }
    }

    /// The pid of the running monitor.
    pub fn monitor_pid(&self) -> Option<u32> {
        lock(&self.monitor).as_ref().map(Child::id)
    }

    /// Monitor HA: the pid of the monitor running on `host`.
    pub fn monitor_pid_on(&self, host: &str) -> Option<u32> {
        if host == "monitor" {
            return self.monitor_pid();
        }
        lock(&self.other_monitors).get(host).map(Child::id)
    }

    /// The pid of `host`'s running agent.
    pub fn agent_pid(&self, host: &str) -> Option<u32> {
        lock(&self.agents).get(host).map(Child::id)
    }

    /// Stops the daemons with SIGTERM (monitor first), checks each exits with status 0,
    /// then tears the testbed down.
    pub fn stop(mut self) -> Result<()> {
        let mut first_err = None;
        let others = std::mem::take(&mut *lock(&self.other_monitors));
        for (host, child) in others {
            if let Err(e) = terminate(&format!("mmm_mond on {host}"), child) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(child) = lock(&self.monitor).take() {
            if let Err(e) = terminate("mmm_mond", child) {
                first_err.get_or_insert(e);
            }
        }
        let agents = std::mem::take(&mut *lock(&self.agents));
        for (host, child) in agents {
            if let Err(e) = terminate(&format!("mmm_agentd on {host}"), child) {
                first_err.get_or_insert(e);
            }
        }
        if first_err.is_some() || std::env::var_os("MMM_TEST_DUMP_LOGS").is_some() {
            self.dump_logs();
        }
        self.keep_logs();
        if let Some(tb) = self.tb.take() {
            if let Err(e) = tb.down() {
                first_err.get_or_insert(e.into());
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Prints the tail of every MMM log and daemon output of every host (for failures;
    /// nothing when the options turn dumps off).
    pub fn dump_logs(&self) {
        if !self.opts.dump_logs {
            return;
        }
        let monitors = self.monitor_hosts();
        let mut names: Vec<&str> = DB_HOSTS.to_vec();
        names.extend(monitors.iter().map(String::as_str));
        for h in names {
            let keep = if monitors.iter().any(|m| m == h) {
                self.opts.log_tail.0
            } else {
                self.opts.log_tail.1
            };
            let Ok(dir) = self.testbed().host_dir(h) else {
                continue;
            };
            let Ok(rd) = std::fs::read_dir(dir.join("var/log/mysql-mmm")) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // The netlink crate's warning about newer kernels repeats on every
                // address operation and says nothing about MMM.
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("IFLA_INET6_CONF"))
                    .collect();
                let tail = lines.get(lines.len().saturating_sub(keep)..).unwrap_or(&[]);
                eprintln!("==== {h}: {} (last {} lines)", path.display(), tail.len());
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() && self.tb.is_some() {
            self.dump_logs();
        }
        let monitor = lock(&self.monitor).take();
        let agents = std::mem::take(&mut *lock(&self.agents));
        let others = std::mem::take(&mut *lock(&self.other_monitors));
        for child in monitor
            .into_iter()
            .chain(others.into_values())
            .chain(agents.into_values())
        {
            reap_killed(child);
        }
        if self.tb.is_some() {
            self.keep_logs();
        }
        // The testbed's own Drop removes the namespaces, servers and directories.
    }
}

impl Cluster {
    /// With [`ClusterOptions::keep_logs`], copies every host's MMM logs and its MariaDB
    /// error log to `DIR/<subnet>/<host>/` (best effort: the testbed is going away).
    fn keep_logs(&self) {
        let Some(dir) = &self.opts.keep_logs else {
            return;
        };
        let tb = self.testbed();
        for h in DB_HOSTS.iter().copied().chain(["monitor"]) {
            let Ok(src) = tb.host_dir(h) else {
                continue;
            };
            let dst = dir.join(tb.subnet().to_string()).join(h);
            let _ = std::fs::create_dir_all(&dst);
            if let Ok(entries) = std::fs::read_dir(src.join("var/log/mysql-mmm")) {
                for e in entries.flatten() {
                    let _ = std::fs::copy(e.path(), dst.join(e.file_name()));
                }
            }
            if let Ok(info) = tb.host(h) {
                let _ = std::fs::copy(info.error_log(), dst.join("mariadb-error.log"));
            }
        }
    }
}

/// SIGKILL to a daemon child and reap it.
fn reap_killed(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Seconds as MMM writes them (`0.5`, `2`).
fn secs(v: f64) -> String {
    format!("{v}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_0640(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| TestbedError::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    std::fs::write(path, text).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).map_err(io)?;
    Ok(())
}

/// SIGTERM to a daemon child; it must exit with status 0 within [`EXIT_TIMEOUT`] (else it
/// is killed and an error returned).
fn terminate(what: &str, mut child: Child) -> Result<()> {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    if let Ok(Some(status)) = child.try_wait() {
        return Err(ClusterError::Daemon(format!(
            "{what} had already exited ({status})"
        )));
    }
    kill(pid, Signal::SIGTERM)
        .map_err(|e| ClusterError::Daemon(format!("SIGTERM to {what}: {e}")))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(ClusterError::Daemon(format!(
                    "{what} exited with {status} after SIGTERM"
                )))
            }
            Ok(None) if start.elapsed() < EXIT_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ClusterError::Daemon(format!(
                    "{what} did not exit within {EXIT_TIMEOUT:?} of SIGTERM (killed)"
                )));
            }
        }
    }
}

/// `subnet` plus `MMM_TEST_SUBNET_SHIFT` (default 0; see [`ClusterOptions::subnet`]).
fn shifted_subnet(subnet: u8) -> u8 {
    let shift: u8 = std::env::var("MMM_TEST_SUBNET_SHIFT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    subnet
        .checked_add(shift)
        .expect("MMM_TEST_SUBNET_SHIFT too large for this test's subnet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show() {
        let raw = "# --- Monitor is in PASSIVE MODE ---\n# Cause: Admin switched to passive mode.\n  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)\n  db2(198.18.2.102) master/ONLINE. Roles: \n  db4(198.18.2.105) slave/ONLINE. Roles: reader(198.18.2.198), reader(198.18.2.199)\n\n";
        let s = Show::parse(raw).expect("parse");
        assert_eq!(
            s.comments,
            [
                "--- Monitor is in PASSIVE MODE ---",
                "Cause: Admin switched to passive mode."
            ]
        );
        assert_eq!(s.hosts.len(), 3);
        assert_eq!(s.state("db1"), "ONLINE");
        assert_eq!(s.roles("db1"), ["writer(198.18.2.188)"]);
        assert!(s.roles("db2").is_empty());
        assert_eq!(s.host("db2").map(|h| h.mode.as_str()), Some("master"));
        assert_eq!(s.roles("db4").len(), 2);
        assert_eq!(s.holders("reader(198.18.2.199)"), ["db4"]);
        assert_eq!(s.role_holders("writer"), ["db1"]);
        assert_eq!(s.role_holders("reader"), ["db4"]);
        assert_eq!(s.role_count("db4", "reader"), 2);
        assert_eq!(s.role_count("db4", "read"), 0);
        assert_eq!(s.role_count("db9", "reader"), 0);
        assert!(Show::parse("garbage\n").is_err());
    }

    #[test]
    fn seconds_format() {
        assert_eq!(secs(0.5), "0.5");
        assert_eq!(secs(2.0), "2");
    }
}
