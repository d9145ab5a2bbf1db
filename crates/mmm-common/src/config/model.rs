//! The effective configuration: the file as validated for one program class (spec §2.4),
//! `default` templates applied and every default ([`super::defaults`]) filled in. Hosts,
//! roles and IPs are kept in configuration order. This is what `--check-config` prints
//! ([`super::render_effective`]) and what the config tests inspect.
//!
//! A directive that has no default and was not given is `None` here: which ones are
//! required depends on the program class. The programs do not read this model; they run
//! with their settings (`settings.rs`: [`super::MonitorSettings`], [`super::AgentSettings`],
//! [`super::ControlSettings`]), which have no `Option` where the class requires the entry.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::defaults as d;
use crate::state::{HostMode, MonitorMode};

/// The program class a configuration is validated for (spec §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProgramClass {
    /// `mmm_mond`.
    Monitor,
    /// `mmm_agentd`.
    Agent,
    /// `mmm_control`.
    Control,
    /// The tools (`mmm_backup`, `mmm_restore`, `mmm_clone` and their remote helpers).
    Tools,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// `this`: the local host's name (agents).
    pub this: Option<String>,
    /// `debug`.
    pub debug: bool,
    /// `active_master_role`: the writer role's name.
    pub active_master_role: Option<String>,
    /// `max_kill_retries` (default 10).
    pub max_kill_retries: u32,
    /// `default_copy_method` (tools).
    pub default_copy_method: Option<String>,
    /// `clone_dirs` (tools).
    pub clone_dirs: Vec<String>,
    /// `<monitor>`, when present.
    pub monitor: Option<MonitorSection>,
    /// `<socket>` (defaults to plain when absent).
    pub socket: SocketConfig,
    /// `<host NAME>` sections, configuration order, `default` template applied.
    pub hosts: Vec<HostSection>,
    /// `<role NAME>` sections, configuration order.
    pub roles: Vec<RoleSection>,
    /// The four `<check NAME>` sections (always present for the monitor).
    pub checks: Checks,
    /// `<copy_method NAME>` sections (tools), configuration order.
    pub copy_methods: Vec<CopyMethodConfig>,
    /// mmm-rs extension directives (top level; not understood by 2.2.1).
    pub ext: Extensions,
}

/// Top-level directives that mmm-rs adds to MMM's language (documented in
/// docs/config.md). All optional; a 2.2.1 config never needs them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extensions {
    /// `arp_count`: gratuitous ARP request+reply pairs per burst (5, as 2.2.1).
    pub arp_count: u32,
    /// `arp_repeat`: bursts sent after adding a VIP (3).
    pub arp_repeat: u32,
    /// `arp_interval`: time between bursts (0.5 s).
    pub arp_interval: Duration,
    /// `arp_refresh`: while the agent holds a role IP, one gratuitous ARP request+reply for
    /// it every this many seconds (1 s; 0 = never, as 2.2.1), so clients whose ARP cache
    /// points elsewhere (an old holder that kept the IP through a network split) follow.
    pub arp_refresh: Duration,
    /// `sync_timeout`: bound on the agent's wait for replication catch-up
    /// (MASTER_POS_WAIT / MASTER_GTID_WAIT) before taking the writer role or switching a
    /// slave (30 s). On timeout the change is reported as failed.
    pub sync_timeout: Duration,
    /// `mysql_timeout`: connect and query timeout of the agent's MySQL calls (3 s, as 2.2.1's
    /// connect timeout).
    pub mysql_timeout: Duration,
    /// `agent_connect_timeout`: monitor (and mmm_control) connect timeout (10 s, as 2.2.1).
    pub agent_connect_timeout: Duration,
    /// `agent_read_timeout`: how long the monitor waits for an agent's reply (60 s; 2.2.1
    /// waits forever). Must exceed `sync_timeout`.
    pub agent_read_timeout: Duration,
    /// `status_retry_interval`: retry interval for a SET_STATUS that did not get through (0.5 s).
    pub status_retry_interval: Duration,
    /// `agent_lease`: the optional agent lease (0 = off, the 2.2.1 behaviour). When non-zero
    /// (at least 0.5 s), an agent holding the writer role that has not received a request
    /// from the monitor for this long fences itself (writer IP removed, read_only=1), and
    /// the monitor does not give the writer role to another master before the old writer's
    /// lease has run out. Read by the monitor and the agents.
    pub agent_lease: Duration,
    /// `monitor_ips`: the addresses the monitor(s) send from (all monitor hosts with HA).
    /// When given, an agent answers every request from any other source address with an
    /// `ERROR:` line and carries out nothing; empty (the default): anyone who reaches the
    /// agent port is obeyed, as in 2.2.1. Comma- or space-separated.
    pub monitor_ips: Vec<IpAddr>,
    /// `control_allow`: the addresses besides loopback and the monitor's own `ip` that may
    /// use the monitor's control port (mmm_control). When given, other clients get an
    /// `ERROR:` line; empty (the default): every client that reaches the port, as 2.2.1.
    pub control_allow: Vec<IpAddr>,
    /// `errant_transactions`: what happens to a returning master that holds transactions
    /// the active master never had (issue 13's errant-transaction guard; `hold` by
    /// default). Read by the monitor and the agents.
    pub errant_transactions: ErrantPolicy,
    /// `semi_sync`: semi-synchronous replication from the writer to the standby master
    /// (0 = off, the 2.2.1 behaviour). When on, the agents turn it on in their servers
    /// (wait point AFTER_SYNC) and the monitor promotes automatically only a standby that
    /// provably holds every acknowledged write (docs/data-safety.md). Read by the monitor
    /// and the agents; must be the same everywhere.
    pub semi_sync: bool,
    /// `semi_sync_timeout`: how long the writer waits for the standby's acknowledgement
    /// before it falls back to asynchronous replication (10 s, the servers' default).
    pub semi_sync_timeout: Duration,
    /// `notify_bin`: a program (absolute path) the monitor runs on every host state change
    /// and role move, the facts in `MMM_*` environment variables (docs/operations.md
    /// "Hooks"); none by default.
    pub notify_bin: Option<String>,
    /// `pre_failover_bin`: a program run before the monitor gives an exclusive role (the
    /// writer) to another host on its own; a non-zero exit (or a timeout) holds the
    /// failover, and it is asked again every `pre_failover_retry`.
    pub pre_failover_bin: Option<String>,
    /// `post_failover_bin`: a program run after such a failover was decided.
    pub post_failover_bin: Option<String>,
    /// `hook_timeout`: how long a hook may run before its process group is killed (10 s).
    pub hook_timeout: Duration,
    /// `pre_failover_retry`: how long after a held failover `pre_failover_bin` is asked
    /// again (5 s).
    pub pre_failover_retry: Duration,
}

/// `errant_transactions hold|accept` (docs/config.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrantPolicy {
    /// The guard (default): after a crash failover the new writer does not replicate from
    /// the old master until the monitor found no errant transactions on it; a master with
    /// errant transactions is kept out until an operator accepts them or re-seeds it.
    Hold,
    /// 2.2.1's behaviour: the old master's transactions replicate into the new writer
    /// when it returns, silently.
    Accept,
}

impl std::fmt::Display for ErrantPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrantPolicy::Hold => "hold",
            ErrantPolicy::Accept => "accept",
        })
    }
}

impl std::str::FromStr for ErrantPolicy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "hold" => Ok(ErrantPolicy::Hold),
            "accept" => Ok(ErrantPolicy::Accept),
            _ => Err(()),
        }
    }
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            arp_count: d::ARP_COUNT,
            arp_repeat: d::ARP_REPEAT,
            arp_interval: d::ARP_INTERVAL,
            arp_refresh: d::ARP_REFRESH,
            sync_timeout: d::SYNC_TIMEOUT,
            mysql_timeout: d::MYSQL_TIMEOUT,
            agent_connect_timeout: d::AGENT_CONNECT_TIMEOUT,
            agent_read_timeout: d::AGENT_READ_TIMEOUT,
            status_retry_interval: d::STATUS_RETRY_INTERVAL,
            agent_lease: d::AGENT_LEASE,
            monitor_ips: d::MONITOR_IPS,
            control_allow: d::CONTROL_ALLOW,
            errant_transactions: d::ERRANT_TRANSACTIONS,
            semi_sync: d::SEMI_SYNC,
            semi_sync_timeout: d::SEMI_SYNC_TIMEOUT,
            notify_bin: None,
            pre_failover_bin: None,
            post_failover_bin: None,
            hook_timeout: d::HOOK_TIMEOUT,
            pre_failover_retry: d::PRE_FAILOVER_RETRY,
        }
    }
}

/// `<monitor>` as written (spec §2.4; the monitor's own view is [`super::MonitorConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorSection {
    /// `ip`: where the command listener binds and mmm_control connects.
    pub ip: Option<String>,
    /// `port` (9988).
    pub port: u16,
    /// `pid_path`.
    pub pid_path: Option<String>,
    /// `bin_path`.
    pub bin_path: Option<String>,
    /// `status_path`.
    pub status_path: Option<String>,
    /// `ping_interval` (1 s).
    pub ping_interval: Duration,
    /// `ping_ips`.
    pub ping_ips: Vec<String>,
    /// `flap_duration` (3600 s).
    pub flap_duration: Duration,
    /// `flap_count` (3; 0 disables).
    pub flap_count: u32,
    /// `auto_set_online` (0 = off).
    pub auto_set_online: Duration,
    /// `kill_host_bin` (`kill_host`; relative to `<bin_path>/monitor/`).
    pub kill_host_bin: String,
    /// `careful_startup` (1).
    pub careful_startup: bool,
    /// `mode` (active).
    pub mode: MonitorMode,
    /// `wait_for_other_master` (120 s; 0 = forever).
    pub wait_for_other_master: Duration,
    /// mmm-rs `http_listen`: where the HTTP listener (metrics, JSON API, status page)
    /// binds; `None` when `off` (default `127.0.0.1:9990`).
    pub http_listen: Option<std::net::SocketAddr>,
    /// mmm-rs `http_tls`: the HTTP listener speaks TLS with the `<socket>` certificates of
    /// the agent channel (client certificates required); off by default.
    pub http_tls: bool,
    /// mmm-rs `audit_log`: where the decision audit is appended as JSON lines.
    pub audit_log: AuditLog,
    /// `etcd_endpoints` (mmm-rs, monitor HA): `host:port` of the etcd members; empty = no HA.
    pub etcd_endpoints: Vec<String>,
    /// `etcd_prefix` (mmm-rs): the key prefix in etcd (default `/mysql-mmm/<cluster>`).
    pub etcd_prefix: Option<String>,
    /// `leader_lease` (mmm-rs): the leader key's etcd lease TTL (3 s, whole seconds ≥ 2).
    pub leader_lease: Duration,
}

/// `audit_log` (mmm-rs): where the monitor's decision audit is kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditLog {
    /// Not given: `<log dir>/mmm_mond[_<C>].audit.jsonl`, beside the log file.
    Beside,
    /// `off`: kept in memory only (lost at a restart).
    Off,
    /// An absolute path.
    Path(String),
}

/// `<socket>` (spec §2.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketConfig {
    /// `type`.
    pub kind: SocketType,
    /// `cert_file`.
    pub cert_file: Option<String>,
    /// `key_file`.
    pub key_file: Option<String>,
    /// `ca_file`.
    pub ca_file: Option<String>,
}

/// `<socket> type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketType {
    /// Plain TCP.
    Plain,
    /// TLS with client certificates.
    Ssl,
}

/// `<host NAME>` as written (spec §2.4; the monitor's and the agent's view is
/// [`super::HostConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSection {
    /// The section name (`db1`).
    pub name: String,
    /// `ip`.
    pub ip: Option<String>,
    /// `mode`.
    pub mode: Option<HostMode>,
    /// `peer`.
    pub peer: Option<String>,
    /// `pid_path` (agent pid file).
    pub pid_path: Option<String>,
    /// `bin_path`.
    pub bin_path: Option<String>,
    /// `agent_port` (9989).
    pub agent_port: u16,
    /// `cluster_interface`.
    pub cluster_interface: Option<String>,
    /// `mysql_port` (3306).
    pub mysql_port: u16,
    /// mmm-rs `mysql_ssl_mode`, `mysql_ssl_ca`, `mysql_ssl_cert`, `mysql_ssl_key`: TLS
    /// for the connections to this host's server (plain by default; not rendered then).
    #[serde(skip_serializing_if = "crate::mysql_tls::MysqlTls::is_plain")]
    pub mysql_tls: crate::mysql_tls::MysqlTls,
    /// `mysql_pidfile`.
    pub mysql_pidfile: String,
    /// `mysql_rcscript`.
    pub mysql_rcscript: String,
    /// `mysql_cnf`.
    pub mysql_cnf: String,
    /// `agent_user`.
    pub agent_user: Option<String>,
    /// `agent_password`.
    pub agent_password: Option<String>,
    /// `monitor_user`.
    pub monitor_user: Option<String>,
    /// `monitor_password`.
    pub monitor_password: Option<String>,
    /// `replication_user`.
    pub replication_user: Option<String>,
    /// `replication_password`.
    pub replication_password: Option<String>,
    /// Tools directives (`ssh_user`, `lvm_*`, `backup_dir`...), kept as written, in
    /// configuration order, defaults filled in.
    pub tools: Vec<(String, String)>,
    /// The snapshot back-end of the tools (mmm-rs `backup_method`; LVM when it or any
    /// `lvm_*` setting is given, else the hot backup with `mariadb-backup`).
    #[serde(skip)]
    pub backup_method: BackupMethod,
}

/// How the tools take a consistent copy of a host's data (mmm-rs `backup_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum BackupMethod {
    /// 2.2.1's LVM snapshot (`create_snapshot` / `remove_snapshot`).
    Lvm,
    /// A hot backup with `mariadb-backup`, streamed (`stream_backup`).
    #[default]
    MariadbBackup,
}

impl HostSection {
    /// The value of the tools directive `var` (`ssh_user`, `backup_dir`...), defaults filled.
    pub fn tool(&self, var: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }
}

/// `<role NAME>` as written (spec §2.4; the monitor's view is [`super::RoleConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleSection {
    /// The section name (`writer`).
    pub name: String,
    /// `mode`.
    pub mode: Option<RoleMode>,
    /// `hosts`, in order (order matters for tie-breaks).
    pub hosts: Vec<String>,
    /// `ips`, in order.
    pub ips: Vec<String>,
    /// `prefer` (honoured for exclusive roles only).
    pub prefer: Option<String>,
}

/// `<role> mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleMode {
    /// One IP on one host at a time.
    Exclusive,
    /// IPs spread over the role's hosts.
    Balanced,
}

/// The four checks (spec §2.4 `<check NAME>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checks {
    /// `<check ping>`.
    pub ping: CheckConfig,
    /// `<check mysql>`.
    pub mysql: CheckConfig,
    /// `<check rep_threads>`.
    pub rep_threads: CheckConfig,
    /// `<check rep_backlog>`.
    pub rep_backlog: CheckConfig,
}

/// One `<check NAME>` section. Sub-second values are accepted (`check_period 0.5`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckConfig {
    /// `check_period` (5 s).
    pub check_period: Duration,
    /// `trap_period` (10 s).
    pub trap_period: Duration,
    /// `timeout` (2 s).
    pub timeout: Duration,
    /// `restart_after` (10000; ineffective in 2.2.1, kept for compatibility).
    pub restart_after: u64,
    /// `max_backlog` (60 s; rep_backlog only).
    pub max_backlog: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            check_period: d::CHECK_PERIOD,
            trap_period: d::TRAP_PERIOD,
            timeout: d::CHECK_TIMEOUT,
            restart_after: d::RESTART_AFTER,
            max_backlog: d::MAX_BACKLOG,
        }
    }
}

/// `<copy_method NAME>` (tools; parsed and validated only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyMethodConfig {
    /// The section name.
    pub name: String,
    /// `backup_command`.
    pub backup_command: Option<String>,
    /// `restore_command`.
    pub restore_command: Option<String>,
    /// `incremental_command`.
    pub incremental_command: Option<String>,
    /// `incremental`.
    pub incremental: bool,
    /// `single_run`.
    pub single_run: bool,
    /// `true_copy`.
    pub true_copy: bool,
    /// mmm-rs `stream`: `backup_command` is the receiving end of a hot backup streamed
    /// from the source host's `stream_backup` helper (its standard input), run on the
    /// local host (docs/tools.md).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

impl Config {
    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostSection> {
        self.hosts.iter().find(|h| h.name == name)
    }
    /// The role named `name`.
    pub fn role(&self, name: &str) -> Option<&RoleSection> {
        self.roles.iter().find(|r| r.name == name)
    }
    /// The local host (`this`), for agents.
    pub fn this_host(&self) -> Option<&HostSection> {
        self.this.as_deref().and_then(|t| self.host(t))
    }
    /// The role named by `active_master_role`.
    pub fn active_master_role(&self) -> Option<&RoleSection> {
        self.active_master_role
            .as_deref()
            .and_then(|r| self.role(r))
    }
    /// The host whose `ip` equals `ip`.
    pub fn host_by_ip(&self, ip: &str) -> Option<&HostSection> {
        self.hosts.iter().find(|h| h.ip.as_deref() == Some(ip))
    }
    /// The role owning `ip`.
    pub fn role_by_ip(&self, ip: &str) -> Option<&RoleSection> {
        self.roles.iter().find(|r| r.ips.iter().any(|i| i == ip))
    }
}

impl Checks {
    /// The check named `name` (`ping`, `mysql`, `rep_threads`, `rep_backlog`).
    pub fn get(&self, name: &str) -> Option<&CheckConfig> {
        match name {
            "ping" => Some(&self.ping),
            "mysql" => Some(&self.mysql),
            "rep_threads" => Some(&self.rep_threads),
            "rep_backlog" => Some(&self.rep_backlog),
            _ => None,
        }
    }
}
