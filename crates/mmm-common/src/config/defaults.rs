//! Every default of MMM's configuration language, defined once (spec §2.4's "Default"
//! column, and docs/config.md for mmm-rs's extension directives). Validation fills them in
//! (`validate.rs`, and [`super::Extensions::default`], [`super::CheckConfig::default`]);
//! nothing else in mmm-rs repeats a default.

use std::time::Duration;

// Top level.

/// `debug`.
pub const DEBUG: bool = false;
/// `max_kill_retries`.
pub const MAX_KILL_RETRIES: u32 = 10;

// <monitor>.

/// `monitor->port`.
pub const MONITOR_PORT: u16 = 9988;
/// `monitor->ping_interval`.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// `monitor->flap_duration`.
pub const FLAP_DURATION: Duration = Duration::from_secs(3600);
/// `monitor->flap_count` (0 disables flap detection).
pub const FLAP_COUNT: u32 = 3;
/// `monitor->auto_set_online` (0 = off).
pub const AUTO_SET_ONLINE: Duration = Duration::ZERO;
/// `monitor->kill_host_bin` (relative to `<bin_path>/monitor/`).
pub const KILL_HOST_BIN: &str = "kill_host";
/// `monitor->careful_startup` (2.2.1's code default; its manual says 0).
pub const CAREFUL_STARTUP: bool = true;
/// `monitor->mode`.
pub const MONITOR_MODE: crate::state::MonitorMode = crate::state::MonitorMode::Active;
/// `monitor->wait_for_other_master` (0 = forever).
pub const WAIT_FOR_OTHER_MASTER: Duration = Duration::from_secs(120);
/// `leader_lease` (monitor HA on etcd): the etcd lease TTL of the leader key.
pub const LEADER_LEASE: Duration = Duration::from_secs(3);

// <host NAME>.

/// `host->agent_port`.
pub const AGENT_PORT: u16 = 9989;
/// `host->mysql_port`.
pub const MYSQL_PORT: u16 = 3306;
/// `host->mysql_pidfile` (tools).
pub const MYSQL_PIDFILE: &str = "/var/run/mysqld/mysqld.pid";
/// `host->mysql_rcscript` (tools).
pub const MYSQL_RCSCRIPT: &str = "/etc/init.d/mysql";
/// `host->mysql_cnf` (tools).
pub const MYSQL_CNF: &str = "/etc/my.cnf";
// The tools' host directives (`ssh_port`, `lvm_bin_*`...) are kept as written; their
// defaults are in `rules::HOST_TOOLS_VARS`.

// <socket>.

/// `socket->type`.
pub const SOCKET_TYPE: super::model::SocketType = super::model::SocketType::Plain;

// <check NAME>.

/// `check->*->check_period`.
pub const CHECK_PERIOD: Duration = Duration::from_secs(5);
/// `check->*->trap_period`.
pub const TRAP_PERIOD: Duration = Duration::from_secs(10);
/// `check->*->timeout`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// `check->*->restart_after`.
pub const RESTART_AFTER: u64 = 10000;
/// `check->rep_backlog->max_backlog` (seconds).
pub const MAX_BACKLOG: u64 = 60;

// <copy_method NAME> (tools).

/// `copy_method->*->incremental`, `single_run`, `true_copy`.
pub const COPY_FLAG: bool = false;

// mmm-rs extension directives (top level).

/// `arp_count`.
pub const ARP_COUNT: u32 = 5;
/// `arp_repeat`.
pub const ARP_REPEAT: u32 = 3;
/// `arp_interval`.
pub const ARP_INTERVAL: Duration = Duration::from_millis(500);
/// `arp_refresh` (0 = never).
pub const ARP_REFRESH: Duration = Duration::from_secs(1);
/// `sync_timeout`.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// `mysql_timeout`.
pub const MYSQL_TIMEOUT: Duration = Duration::from_secs(3);
/// `agent_connect_timeout`.
pub const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `agent_read_timeout`.
pub const AGENT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// `status_retry_interval`.
pub const STATUS_RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// `agent_lease` (0 = off).
pub const AGENT_LEASE: Duration = Duration::ZERO;
/// `monitor_ips` (empty: every source may command the agent, as 2.2.1).
pub const MONITOR_IPS: Vec<std::net::IpAddr> = Vec::new();
/// `http_listen`: the monitor's HTTP listener (issue 17), loopback only.
pub const HTTP_LISTEN: &str = "127.0.0.1:9990";
/// `http_tls` (off: plain HTTP).
pub const HTTP_TLS: bool = false;
/// `control_allow` (empty: no list; loopback and the monitor's own `ip` are always allowed
/// once a list is given).
pub const CONTROL_ALLOW: Vec<std::net::IpAddr> = Vec::new();
/// `errant_transactions` (the guard is on).
pub const ERRANT_TRANSACTIONS: super::model::ErrantPolicy = super::model::ErrantPolicy::Hold;
/// `semi_sync` (off: asynchronous replication, as 2.2.1).
pub const SEMI_SYNC: bool = false;
/// `semi_sync_timeout`: the writer's wait for an acknowledgement before it falls back to
/// asynchronous replication (the servers' own default).
pub const SEMI_SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// `hook_timeout`.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// `pre_failover_retry`.
pub const PRE_FAILOVER_RETRY: Duration = Duration::from_secs(5);
