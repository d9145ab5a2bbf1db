//! Row tests of the monitor core: each test cites the spec row it checks, the way raft-rs
//! cites paper sections. `Harness` drives a [`Monitor`] with its own clock and a scripted
//! agent per host (answers OK unless told to fail), all in memory.

mod commands;
mod decisions;
mod errant;
mod failover_gate;
mod fresh_standby;
mod ha;
mod lease;
mod next_state;
mod roles;
mod scale;
mod semi_sync;
mod startup;
mod transitions;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mmm_common::config::{
    CheckConfig, Checks, Extensions, HostConfig, MonitorConfig, MonitorSettings, MysqlAccount,
    RoleConfig, RoleMode, SocketConfig, SocketType,
};
use mmm_common::proto::agent::{AgentCommand, AgentReply, AgentRequest, AgentStatus, SystemStatus};
use mmm_common::role::RoleIp;
use mmm_common::state::{HostMode, HostState, MonitorMode};

use super::*;

pub(crate) fn host_cfg(name: &str, ip: &str, mode: HostMode, peer: Option<&str>) -> HostConfig {
    HostConfig {
        name: name.into(),
        ip: ip.parse().expect("an IP address"),
        mode,
        peer: peer.map(Into::into),
        agent_port: 9989,
        mysql_port: 3306,
        mysql_tls: Default::default(),
        mysql_account: MysqlAccount {
            user: String::new(),
            password: String::new(),
        },
    }
}

pub(super) fn role_cfg(name: &str, mode: RoleMode, hosts: &[&str], ips: &[&str]) -> RoleConfig {
    RoleConfig {
        name: name.into(),
        mode,
        hosts: hosts.iter().map(|s| s.to_string()).collect(),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        prefer: None,
    }
}

/// A monitor config with the given hosts and roles, trap periods of `trap` seconds.
pub(super) fn config(hosts: Vec<HostConfig>, roles: Vec<RoleConfig>, trap: u64) -> MonitorSettings {
    let check = CheckConfig {
        trap_period: Duration::from_secs(trap),
        ..CheckConfig::default()
    };
    MonitorSettings {
        debug: false,
        active_master_role: "writer".into(),
        monitor: MonitorConfig {
            ip: "198.18.2.106".into(),
            port: 9988,
            pid_path: String::new(),
            bin_path: String::new(),
            status_path: String::new(),
            ping_interval: Duration::from_secs(1),
            ping_ips: vec!["198.18.2.100".into()],
            flap_duration: Duration::from_secs(3600),
            flap_count: 3,
            auto_set_online: Duration::ZERO,
            kill_host_bin: "kill_host".into(),
            careful_startup: true,
            mode: MonitorMode::Active,
            wait_for_other_master: Duration::from_secs(120),
            http_listen: None,
            http_tls: false,
            audit_log: mmm_common::config::AuditLog::Off,
            ha: None,
        },
        socket: SocketConfig {
            kind: SocketType::Plain,
            cert_file: None,
            key_file: None,
            ca_file: None,
        },
        hosts,
        roles,
        checks: Checks {
            ping: check.clone(),
            mysql: check.clone(),
            rep_threads: check.clone(),
            rep_backlog: check,
        },
        ext: Extensions::default(),
    }
}

/// The seed's deployment: db1/db2 masters (peers), db3/db4 slaves; writer .188 on db1,db2;
/// readers .198 .199 on db3,db4.
pub(crate) fn seed_config(trap: u64) -> MonitorSettings {
    config(
        vec![
            host_cfg("db1", "198.18.2.100", HostMode::Master, Some("db2")),
            host_cfg("db2", "198.18.2.102", HostMode::Master, Some("db1")),
            host_cfg("db3", "198.18.2.103", HostMode::Slave, None),
            host_cfg("db4", "198.18.2.105", HostMode::Slave, None),
        ],
        vec![
            role_cfg(
                "writer",
                RoleMode::Exclusive,
                &["db1", "db2"],
                &["198.18.2.188"],
            ),
            role_cfg(
                "reader",
                RoleMode::Balanced,
                &["db3", "db4"],
                &["198.18.2.198", "198.18.2.199"],
            ),
        ],
        trap,
    )
}

/// MMM's stock sample: db1/db2 masters, db3 slave; writer .50 on db1,db2; readers .51-.53
/// on db1,db2,db3 (spec §3.9 worked example).
pub(crate) fn stock_config(trap: u64) -> MonitorSettings {
    config(
        vec![
            host_cfg("db1", "192.168.0.31", HostMode::Master, Some("db2")),
            host_cfg("db2", "192.168.0.32", HostMode::Master, Some("db1")),
            host_cfg("db3", "192.168.0.33", HostMode::Slave, None),
        ],
        vec![
            role_cfg(
                "writer",
                RoleMode::Exclusive,
                &["db1", "db2"],
                &["192.168.0.50"],
            ),
            role_cfg(
                "reader",
                RoleMode::Balanced,
                &["db1", "db2", "db3"],
                &["192.168.0.51", "192.168.0.52", "192.168.0.53"],
            ),
        ],
        trap,
    )
}

pub(super) fn r(role: &str, ip: &str) -> RoleIp {
    RoleIp::new(role, ip)
}

/// Drives a monitor with a simulated clock and scripted agents.
pub(super) struct Harness {
    pub(super) m: Monitor,
    pub(super) now: Instant,
    pub(super) wall: i64,
    /// Sends not answered yet.
    pub(super) outstanding: VecDeque<(Token, HostId, AgentRequest)>,
    /// Every action drained, in order.
    pub(super) log: Vec<Action>,
    /// Per host: the agent answers `ERROR`/fails instead of OK.
    pub(super) agent_fails: PerHost<bool>,
    /// Per host: uptime reported by the agent.
    pub(super) uptime: PerHost<f64>,
    /// Answer sends automatically after every step.
    pub(super) auto_reply: bool,
    next_cmd: u64,
}

pub(crate) const WALL0: i64 = 1_795_600_000;

impl Harness {
    /// A monitor before startup.
    pub(super) fn new(cfg: MonitorSettings) -> Harness {
        let now = Instant::now();
        let n = cfg.hosts.len();
        Harness {
            m: Monitor::new(&cfg, now, WALL0),
            now,
            wall: WALL0,
            outstanding: VecDeque::new(),
            log: Vec::new(),
            agent_fails: PerHost::new(vec![false; n]),
            uptime: PerHost::new(vec![1000.0; n]),
            auto_reply: true,
            next_cmd: 1,
        }
    }

    pub(super) fn n(&self) -> usize {
        self.m.hosts.len()
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = HostId> {
        self.m.hosts.ids()
    }

    /// Feeds initial checks (all `OK`), then a startup where every host's stored state is
    /// `state` and nobody claims a role.
    pub(super) fn started(cfg: MonitorSettings, state: HostState) -> Harness {
        let mut h = Harness::new(cfg);
        h.initial_ok();
        let stored = (0..h.n())
            .map(|i| StatusLine {
                host: h.m.names[i].clone(),
                state,
                roles: vec![],
            })
            .collect();
        h.startup(stored, vec![], vec![]);
        h
    }

    pub(super) fn initial_ok(&mut self) {
        for host in self.ids() {
            for check in CheckKind::ALL {
                let line = if check == CheckKind::RepBacklog {
                    "OK: Backlog is null"
                } else {
                    "OK"
                };
                self.input(Input::Check {
                    host,
                    check,
                    result: CheckResult::from_line(line),
                    wall: self.wall,
                });
            }
        }
    }

    /// Startup with agent/system answers (defaults: fresh agent, read-only, no master).
    pub(super) fn startup(
        &mut self,
        stored: Vec<StatusLine>,
        agents: Vec<Result<AgentStatus, String>>,
        systems: Vec<Result<SystemStatus, String>>,
    ) {
        let n = self.n();
        let mut agents = agents;
        agents.resize(
            n,
            Ok(AgentStatus {
                state: HostState::Unknown,
                roles: vec![],
                master: String::new(),
            }),
        );
        let mut systems = systems;
        systems.resize(
            n,
            Ok(SystemStatus {
                writable: false,
                roles: vec![],
                master_ip: String::new(),
            }),
        );
        self.input(Input::Startup {
            stored,
            agents,
            systems,
        });
    }

    pub(super) fn host(&self, name: &str) -> HostId {
        self.m
            .names
            .iter()
            .position(|n| n == name)
            .map(HostId)
            .expect("test host")
    }

    pub(super) fn state(&self, name: &str) -> HostState {
        self.m.hosts[self.host(name)].state
    }

    pub(super) fn roles(&self, name: &str) -> Vec<RoleIp> {
        self.m.roles.host_roles(self.host(name))
    }

    /// Feeds an input and drains.
    pub(super) fn input(&mut self, input: Input) {
        self.m.handle(self.now, input);
        self.drain();
    }

    /// Drains actions into the log; answers sends when `auto_reply`.
    pub(super) fn drain(&mut self) {
        loop {
            while let Some(a) = self.m.poll_action() {
                if let Action::Send {
                    token,
                    host,
                    request,
                } = &a
                {
                    self.outstanding.push_back((*token, *host, request.clone()));
                }
                self.log.push(a);
            }
            if !self.auto_reply || self.outstanding.is_empty() {
                return;
            }
            self.answer_all();
        }
    }

    /// Answers every outstanding send (OK, or a failure for hosts in `agent_fails`).
    pub(super) fn answer_all(&mut self) {
        while let Some((token, host, req)) = self.outstanding.pop_front() {
            self.answer(token, host, &req);
        }
    }

    /// Answers one send (OK, or a failure for hosts in `agent_fails`).
    fn answer(&mut self, token: Token, host: HostId, req: &AgentRequest) {
        let reply = self.agent_answer(host, req);
        let maybe_delivered = reply.is_ok();
        self.m.handle(
            self.now,
            Input::AgentReply {
                token,
                reply,
                maybe_delivered,
            },
        );
    }

    fn agent_answer(&self, host: HostId, req: &AgentRequest) -> Result<AgentReply, String> {
        if self.agent_fails[host] {
            return Err("Connection refused".into());
        }
        let result = match req.command {
            AgentCommand::Ping => "OK: Pinged!".to_string(),
            AgentCommand::SetStatus { .. } => "OK: Status applied successfully!".to_string(),
            AgentCommand::ClearBadRoles => "OK: Removed 0 roles".to_string(),
            _ => "OK: Returning status!|UNKNOWN||".to_string(),
        };
        Ok(AgentReply {
            result,
            uptime: Some(self.uptime[host]),
        })
    }

    /// Feeds a raw check result.
    pub(super) fn check(&mut self, name: &str, check: CheckKind, line: &str) {
        let host = self.host(name);
        self.input(Input::Check {
            host,
            check,
            result: CheckResult::from_line(line),
            wall: self.wall,
        });
    }

    /// Sets checks of a host: `OK` or an `ERROR` (reported once its trap period passed:
    /// row tests use trap_period 0).
    pub(super) fn set(&mut self, name: &str, checks: &[CheckKind], ok: bool) {
        for &c in checks {
            self.check(name, c, if ok { "OK" } else { "ERROR: broken" });
        }
    }

    /// Lets `d` pass, firing every deadline on the way.
    pub(super) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self.m.poll_timeout();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.m.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = end;
        self.wall += d.as_secs() as i64;
        self.m.handle_timeout(self.now);
        self.drain();
    }

    /// Runs a control command and returns its reply (PINGs are answered automatically).
    pub(super) fn cmd(&mut self, line: &str) -> String {
        let token = Token(self.next_cmd);
        self.next_cmd += 1;
        let start = self.log.len();
        self.input(Input::Command {
            token,
            line: line.to_string(),
        });
        self.reply_since(start, token)
    }

    /// Runs a control command with `auto_reply` off, answering only the PINGs it sends (so
    /// the SET_STATUS sequence it starts stays observable, unanswered); returns its reply.
    pub(super) fn cmd_answering_pings(&mut self, line: &str) -> String {
        let token = Token(self.next_cmd);
        self.next_cmd += 1;
        let start = self.log.len();
        self.input(Input::Command {
            token,
            line: line.to_string(),
        });
        for _ in 0..10 {
            let pending: Vec<_> = self.outstanding.drain(..).collect();
            let mut answered = false;
            for (t, host, req) in pending {
                if matches!(req.command, AgentCommand::Ping) {
                    self.answer(t, host, &req);
                    answered = true;
                } else {
                    self.outstanding.push_back((t, host, req));
                }
            }
            self.drain();
            if !answered {
                break;
            }
        }
        self.reply_since(start, token)
    }

    /// The reply to command `token` logged since `start`.
    fn reply_since(&self, start: usize, token: Token) -> String {
        self.log[start..]
            .iter()
            .find_map(|a| match a {
                Action::Reply { token: t, text } if *t == token => Some(text.clone()),
                _ => None,
            })
            .expect("command got no reply")
    }

    /// Decisions logged since `from`.
    pub(super) fn decisions(&self, from: usize) -> Vec<&Decision> {
        self.log[from..]
            .iter()
            .filter_map(|a| match a {
                Action::Decision(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Decision texts (the log lines) since `from`.
    pub(super) fn decisions_since(&self, from: usize) -> Vec<String> {
        self.decisions(from).iter().map(|d| d.to_string()).collect()
    }

    /// Requests sent since `from`, as wire lines.
    pub(super) fn sends_since(&self, from: usize) -> Vec<String> {
        self.log[from..]
            .iter()
            .filter_map(|a| match a {
                Action::Send { request, .. } => Some(request.to_string()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn kills_since(&self, from: usize) -> Vec<(HostId, bool)> {
        self.log[from..]
            .iter()
            .filter_map(|a| match a {
                Action::KillHost { host, ping_ok } => Some((*host, *ping_ok)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn mark(&self) -> usize {
        self.log.len()
    }
}

pub(super) use CheckKind::{Mysql as M, Ping as P, RepBacklog as B, RepThreads as T};
