//! What each program runs with: [`MonitorSettings`] (mmm_mond), [`AgentSettings`]
//! (mmm_agentd), [`ControlSettings`] (mmm_control). They are read from a [`Config`]
//! validated for the program's class ([`Config::monitor_settings`] and friends), and have no
//! `Option` where the class requires the entry or the spec has a default (spec §2.4);
//! an `Option` left here is a directive that may really be absent (`peer`, `prefer`, a
//! `monitor_user` the agent's file does not give).
//!
//! The one place that knows how to reach a host: [`HostConfig::agent_addr`],
//! [`HostConfig::mysql_target`]; the one place that writes `host:port` for a configured
//! address that may be IPv6 or a name: [`join_host_port`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::{AuditLog, Checks, Config, Extensions, HostSection, RoleMode, SocketConfig};
use crate::role::RoleIp;
use crate::state::{HostMode, MonitorMode};

/// A settings conversion found an entry missing or malformed: the [`Config`] was not
/// validated for this program's class (validation reports these with file and line first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required entry (MMM's path words) is not set.
    #[error("missing {0} in the configuration")]
    Missing(String),
    /// A host `ip` that is not an IP address.
    #[error("{path} is not an IP address: '{value}'")]
    NotAnAddress {
        /// MMM's path words (`host->db1->ip`).
        path: String,
        /// The value.
        value: String,
    },
}

/// `host:port`, with an IPv6 address in brackets (`[fd00::1]:9988`); a host name or IPv4
/// address as is.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A MySQL account (`*_user`, `*_password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlAccount {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

/// One host's MySQL server and the account a program uses on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlTarget {
    /// The host's `ip`.
    pub ip: IpAddr,
    /// `mysql_port`.
    pub port: u16,
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
    /// TLS (`mysql_ssl_*`; plain by default).
    pub tls: crate::mysql_tls::MysqlTls,
}

impl MysqlTarget {
    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// A `<host NAME>` as the monitor and the agents use it (`ip` and `mode` are required for
/// both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The section name (`db1`).
    pub name: String,
    /// `ip`.
    pub ip: IpAddr,
    /// `mode`.
    pub mode: HostMode,
    /// `peer` (set for masters).
    pub peer: Option<String>,
    /// `agent_port`.
    pub agent_port: u16,
    /// `mysql_port`.
    pub mysql_port: u16,
    /// `mysql_ssl_*`.
    pub mysql_tls: crate::mysql_tls::MysqlTls,
    /// The MySQL account of the program these settings are for: `monitor_user` /
    /// `monitor_password` for mmm_mond, `agent_user` / `agent_password` for mmm_agentd.
    pub mysql_account: MysqlAccount,
}

impl HostConfig {
    /// Where the host's agent listens (`ip`, `agent_port`).
    pub fn agent_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.agent_port)
    }

    /// The host's MySQL server with this program's account.
    pub fn mysql_target(&self) -> MysqlTarget {
        MysqlTarget {
            ip: self.ip,
            port: self.mysql_port,
            user: self.mysql_account.user.clone(),
            password: self.mysql_account.password.clone(),
            tls: self.mysql_tls.clone(),
        }
    }
}

/// `<monitor>` as the monitor uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// `ip`: where the command listener binds (an address or a name).
    pub ip: String,
    /// `port`.
    pub port: u16,
    /// `pid_path`.
    pub pid_path: String,
    /// `bin_path`.
    pub bin_path: String,
    /// `status_path`.
    pub status_path: String,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_ips`.
    pub ping_ips: Vec<String>,
    /// `flap_duration`.
    pub flap_duration: Duration,
    /// `flap_count` (0 disables flap detection).
    pub flap_count: u32,
    /// `auto_set_online` (0 = off).
    pub auto_set_online: Duration,
    /// `kill_host_bin` as written (see [`MonitorConfig::kill_host_path`]).
    pub kill_host_bin: String,
    /// `careful_startup`.
    pub careful_startup: bool,
    /// `mode`.
    pub mode: MonitorMode,
    /// `wait_for_other_master` (0 = forever).
    pub wait_for_other_master: Duration,
    /// mmm-rs `http_listen` (`None`: off).
    pub http_listen: Option<SocketAddr>,
    /// mmm-rs `http_tls`.
    pub http_tls: bool,
    /// mmm-rs `audit_log`.
    pub audit_log: AuditLog,
    /// Monitor high availability on etcd (`etcd_endpoints` set), or `None` (2.2.1's single
    /// monitor).
    pub ha: Option<HaSettings>,
}

/// Monitor HA on etcd (mmm-rs, docs/ha.md): the `<monitor>` directives `etcd_endpoints`,
/// `etcd_prefix`, `leader_lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// `host:port` of every etcd member.
    pub endpoints: Vec<String>,
    /// `etcd_prefix` when given; `None` = `/mysql-mmm/<cluster>` (see [`HaSettings::prefix`]).
    pub prefix: Option<String>,
    /// The leader key's lease TTL (whole seconds).
    pub leader_lease: Duration,
}

impl HaSettings {
    /// The key prefix: `etcd_prefix`, or `/mysql-mmm/<cluster>` (`default` without a
    /// cluster name).
    pub fn prefix(&self, cluster: Option<&str>) -> String {
        match &self.prefix {
            Some(p) => p.clone(),
            None => format!("/mysql-mmm/{}", cluster.unwrap_or("default")),
        }
    }
}

impl MonitorConfig {
    /// Where the command listener binds (`ip:port`).
    pub fn listen_addr(&self) -> String {
        join_host_port(&self.ip, self.port)
    }

    /// The kill_host binary: `kill_host_bin` when absolute, else
    /// `<bin_path>/monitor/<kill_host_bin>` (spec §2.4).
    pub fn kill_host_path(&self) -> PathBuf {
        let name = &self.kill_host_bin;
        if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            Path::new(&self.bin_path).join("monitor").join(name)
        }
    }
}

/// A `<role NAME>` as the monitor uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    /// The section name (`writer`).
    pub name: String,
    /// `mode`.
    pub mode: RoleMode,
    /// `hosts`, in order (order matters for tie-breaks).
    pub hosts: Vec<String>,
    /// `ips`, in order.
    pub ips: Vec<String>,
    /// `prefer` (honoured for exclusive roles only).
    pub prefer: Option<String>,
}

/// What mmm_mond runs with (class MONITOR).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSettings {
    /// `debug`.
    pub debug: bool,
    /// `active_master_role`: the writer role's name.
    pub active_master_role: String,
    /// `<monitor>`.
    pub monitor: MonitorConfig,
    /// `<socket>`.
    pub socket: SocketConfig,
    /// The hosts, configuration order, each with the monitor's MySQL account.
    pub hosts: Vec<HostConfig>,
    /// The roles, configuration order.
    pub roles: Vec<RoleConfig>,
    /// The four checks.
    pub checks: Checks,
    /// mmm-rs extension directives.
    pub ext: Extensions,
}

impl MonitorSettings {
    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|h| h.name == name)
    }
    /// The role named `name`.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.name == name)
    }
    /// The role named by `active_master_role`.
    pub fn active_master_role(&self) -> Option<&RoleConfig> {
        self.role(&self.active_master_role)
    }
}

/// A host as an agent knows it: how to reach its MySQL (agent account), the replication
/// account a slave uses when this host becomes its master, and the monitor's user when the
/// agent's file gives it (its connections are spared by the kill loop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHost {
    /// The host (its `mysql_account` is `agent_user` / `agent_password`).
    pub host: HostConfig,
    /// `replication_user` / `replication_password`.
    pub replication: MysqlAccount,
    /// `monitor_user`, when given.
    pub monitor_user: Option<String>,
}

/// What mmm_agentd runs with (class AGENT).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// `debug`.
    pub debug: bool,
    /// The local host (`this`).
    pub local: AgentHost,
    /// `host-><this>->pid_path`.
    pub pid_path: String,
    /// `host-><this>->bin_path`.
    pub bin_path: String,
    /// `host-><this>->cluster_interface`: the NIC role IPs are added on.
    pub cluster_interface: String,
    /// `active_master_role`: the writer role's name.
    pub active_master_role: String,
    /// `max_kill_retries`.
    pub max_kill_retries: u32,
    /// Every host (the local one too), configuration order.
    pub hosts: Vec<AgentHost>,
    /// Every role IP, roles and IPs in configuration order.
    pub role_ips: Vec<RoleIp>,
    /// `<socket>`.
    pub socket: SocketConfig,
    /// mmm-rs extension directives.
    pub ext: Extensions,
}

impl AgentSettings {
    /// `this`: the local host's name.
    pub fn this(&self) -> &str {
        &self.local.host.name
    }
}

/// What mmm_control runs with (class CONTROL).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlSettings {
    /// `monitor->ip`.
    pub monitor_ip: String,
    /// `monitor->port`.
    pub monitor_port: u16,
    /// `<socket>`.
    pub socket: SocketConfig,
    /// mmm-rs extension directives (the agent timeouts bound the answer's wait).
    pub ext: Extensions,
}

impl ControlSettings {
    /// The monitor's command port (`monitor->ip:port`).
    pub fn monitor_addr(&self) -> String {
        join_host_port(&self.monitor_ip, self.monitor_port)
    }
}

/// `value`, or [`SettingsError::Missing`] naming `path`.
fn need<T: Clone>(value: &Option<T>, path: impl FnOnce() -> String) -> Result<T, SettingsError> {
    value.clone().ok_or_else(|| SettingsError::Missing(path()))
}

/// The account `<kind>_user` / `<kind>_password` of host `h` (`kind`: `agent`, `monitor`,
/// `replication`).
fn account(
    h: &HostSection,
    kind: &str,
    user: &Option<String>,
    password: &Option<String>,
) -> Result<MysqlAccount, SettingsError> {
    Ok(MysqlAccount {
        user: need(user, || format!("host->{}->{kind}_user", h.name))?,
        password: need(password, || format!("host->{}->{kind}_password", h.name))?,
    })
}

/// Host `h` with the MySQL account `mysql_account`.
fn host_config(h: &HostSection, mysql_account: MysqlAccount) -> Result<HostConfig, SettingsError> {
    let path = |var: &str| format!("host->{}->{var}", h.name);
    let ip_text = need(&h.ip, || path("ip"))?;
    let ip = ip_text.parse().map_err(|_| SettingsError::NotAnAddress {
        path: path("ip"),
        value: ip_text.clone(),
    })?;
    Ok(HostConfig {
        name: h.name.clone(),
        ip,
        mode: need(&h.mode, || path("mode"))?,
        peer: h.peer.clone(),
        agent_port: h.agent_port,
        mysql_port: h.mysql_port,
        mysql_tls: h.mysql_tls.clone(),
        mysql_account,
    })
}

impl Config {
    /// The monitor's settings (this config validated for [`super::ProgramClass::Monitor`]).
    pub fn monitor_settings(&self) -> Result<MonitorSettings, SettingsError> {
        let m = self
            .monitor
            .as_ref()
            .ok_or_else(|| SettingsError::Missing("monitor".into()))?;
        let mpath = |var: &str| format!("monitor->{var}");
        // `http_tls 1` serves the HTTP listener with the `<socket>` certificates (issue 17).
        if m.http_tls && m.http_listen.is_some() {
            for (var, v) in [
                ("cert_file", &self.socket.cert_file),
                ("key_file", &self.socket.key_file),
                ("ca_file", &self.socket.ca_file),
            ] {
                if v.is_none() {
                    return Err(SettingsError::Missing(format!(
                        "socket->{var} (monitor->http_tls 1 needs it)"
                    )));
                }
            }
        }
        let monitor = MonitorConfig {
            ip: need(&m.ip, || mpath("ip"))?,
            port: m.port,
            pid_path: need(&m.pid_path, || mpath("pid_path"))?,
            bin_path: need(&m.bin_path, || mpath("bin_path"))?,
            status_path: need(&m.status_path, || mpath("status_path"))?,
            ping_interval: m.ping_interval,
            ping_ips: m.ping_ips.clone(),
            flap_duration: m.flap_duration,
            flap_count: m.flap_count,
            auto_set_online: m.auto_set_online,
            kill_host_bin: m.kill_host_bin.clone(),
            careful_startup: m.careful_startup,
            mode: m.mode,
            wait_for_other_master: m.wait_for_other_master,
            http_listen: m.http_listen,
            http_tls: m.http_tls,
            audit_log: m.audit_log.clone(),
            ha: (!m.etcd_endpoints.is_empty()).then(|| HaSettings {
                endpoints: m.etcd_endpoints.clone(),
                prefix: m.etcd_prefix.clone(),
                leader_lease: m.leader_lease,
            }),
        };
        let hosts = self
            .hosts
            .iter()
            .map(|h| {
                let monitor = account(h, "monitor", &h.monitor_user, &h.monitor_password)?;
                host_config(h, monitor)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let roles = self
            .roles
            .iter()
            .map(|r| {
                Ok(RoleConfig {
                    name: r.name.clone(),
                    mode: need(&r.mode, || format!("role->{}->mode", r.name))?,
                    hosts: r.hosts.clone(),
                    ips: r.ips.clone(),
                    prefer: r.prefer.clone(),
                })
            })
            .collect::<Result<Vec<_>, SettingsError>>()?;
        Ok(MonitorSettings {
            debug: self.debug,
            active_master_role: need(&self.active_master_role, || "active_master_role".into())?,
            monitor,
            socket: self.socket.clone(),
            hosts,
            roles,
            checks: self.checks.clone(),
            ext: self.ext.clone(),
        })
    }

    /// The agent's settings (this config validated for [`super::ProgramClass::Agent`]).
    pub fn agent_settings(&self) -> Result<AgentSettings, SettingsError> {
        let this = need(&self.this, || "this".into())?;
        let hosts = self
            .hosts
            .iter()
            .map(|h| {
                let agent = account(h, "agent", &h.agent_user, &h.agent_password)?;
                Ok(AgentHost {
                    host: host_config(h, agent)?,
                    replication: account(
                        h,
                        "replication",
                        &h.replication_user,
                        &h.replication_password,
                    )?,
                    monitor_user: h.monitor_user.clone(),
                })
            })
            .collect::<Result<Vec<_>, SettingsError>>()?;
        let local = hosts
            .iter()
            .find(|h| h.host.name == this)
            .cloned()
            .ok_or_else(|| SettingsError::Missing(format!("host->{this}")))?;
        let section = self
            .host(&this)
            .ok_or_else(|| SettingsError::Missing(format!("host->{this}")))?;
        let path = |var: &str| format!("host->{this}->{var}");
        let role_ips = self
            .roles
            .iter()
            .flat_map(|r| {
                r.ips
                    .iter()
                    .map(|ip| RoleIp::new(r.name.clone(), ip.clone()))
            })
            .collect();
        Ok(AgentSettings {
            debug: self.debug,
            pid_path: need(&section.pid_path, || path("pid_path"))?,
            bin_path: need(&section.bin_path, || path("bin_path"))?,
            cluster_interface: need(&section.cluster_interface, || path("cluster_interface"))?,
            local,
            active_master_role: need(&self.active_master_role, || "active_master_role".into())?,
            max_kill_retries: self.max_kill_retries,
            hosts,
            role_ips,
            socket: self.socket.clone(),
            ext: self.ext.clone(),
        })
    }

    /// mmm_control's settings (this config validated for [`super::ProgramClass::Control`]).
    pub fn control_settings(&self) -> Result<ControlSettings, SettingsError> {
        let m = self
            .monitor
            .as_ref()
            .ok_or_else(|| SettingsError::Missing("monitor".into()))?;
        Ok(ControlSettings {
            monitor_ip: need(&m.ip, || "monitor->ip".into())?,
            monitor_port: m.port,
            socket: self.socket.clone(),
            ext: self.ext.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(join_host_port("198.18.2.100", 9989), "198.18.2.100:9989");
        assert_eq!(join_host_port("::1", 9989), "[::1]:9989");
        assert_eq!(join_host_port("localhost", 9988), "localhost:9988");
    }

    #[test]
    fn agent_addr_brackets_ipv6() {
        let host = |ip: &str| HostConfig {
            name: "db1".into(),
            ip: ip.parse().expect("ip"),
            mode: HostMode::Slave,
            peer: None,
            agent_port: 9989,
            mysql_port: 3306,
            mysql_tls: Default::default(),
            mysql_account: MysqlAccount {
                user: "u".into(),
                password: "p".into(),
            },
        };
        assert_eq!(
            host("198.18.2.100").agent_addr().to_string(),
            "198.18.2.100:9989"
        );
        assert_eq!(host("fd00::11").agent_addr().to_string(), "[fd00::11]:9989");
        assert_eq!(
            host("fd00::11").mysql_target().addr().to_string(),
            "[fd00::11]:3306"
        );
    }
}
