//! [`Snapshot`]: a copy of what `show` and `checks all` print (spec §5.3), as values, for
//! readers outside the core (the HTTP listener, the metrics). The shell takes one after a
//! batch of actions and publishes it; readers never touch the [`Monitor`] itself.

use serde::Serialize;

use mmm_common::state::MonitorMode;

use super::types::CheckKind;
use super::Monitor;

/// The monitor's facts at one moment (hosts, roles and checks in configuration order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// `ACTIVE`, `MANUAL`, `WAIT` or `PASSIVE` (`mmm_control mode`).
    pub mode: String,
    /// Why the monitor is PASSIVE (`show`'s `# Cause:` line), when it is.
    pub passive_cause: Option<String>,
    /// The monitor's own network check.
    pub network_up: bool,
    /// The host holding the active-master (writer) role, if any.
    pub active_master: Option<String>,
    /// The hosts (`show`'s host lines).
    pub hosts: Vec<HostView>,
    /// The roles and who holds each IP (`show`'s `# Role …` lines).
    pub roles: Vec<RoleView>,
    /// Every host's four checks (`checks all`).
    pub checks: Vec<CheckView>,
    /// `show`'s other `# ` lines, without the `# ` (preferred-host notes, a held failover,
    /// a host kept out), as `mmm_control --json show` gives them.
    pub notes: Vec<String>,
}

/// One host as `show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostView {
    /// Host name.
    pub name: String,
    /// Its `ip`.
    pub ip: String,
    /// `master` or `slave`.
    pub mode: String,
    /// Its state (`ONLINE`, `HARD_OFFLINE`, …).
    pub state: String,
    /// Its roles as `show` prints them (`writer(192.168.0.50)`), those last sent to it.
    pub roles: Vec<String>,
    /// The agent answers (`show`'s `# Warning: agent on host … is not reachable` when not).
    pub agent_reachable: bool,
    /// The host flapped (cleared by `set_online`).
    pub flapping: bool,
}

/// One role and its IPs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleView {
    /// Role name.
    pub name: String,
    /// Exclusive (else balanced).
    pub exclusive: bool,
    /// The preferred host (`prefer`).
    pub preferred_host: Option<String>,
    /// Its IPs and their owners in the role table.
    pub ips: Vec<RoleIpView>,
}

/// One IP of a role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleIpView {
    /// The IP.
    pub ip: String,
    /// The host holding it (`None`: orphaned).
    pub owner: Option<String>,
}

/// One line of `checks all`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckView {
    /// Host name.
    pub host: String,
    /// `ping`, `mysql`, `rep_threads` or `rep_backlog`.
    pub check: String,
    /// The reported status (trap periods applied).
    pub ok: bool,
    /// Epoch seconds of the last status change.
    pub last_change: i64,
    /// The same as `checks` prints it (`yyyy/MM/dd HH:mm:ss`).
    pub last_change_text: String,
    /// The last reported result line.
    pub message: String,
}

impl Monitor {
    /// The facts of `show` and `checks all` now.
    pub fn snapshot(&self) -> Snapshot {
        let hosts = self
            .hosts
            .iter()
            .map(|h| HostView {
                name: h.name.clone(),
                ip: h.ip.clone(),
                mode: h.mode.to_string(),
                state: h.state.to_string(),
                roles: h.roles.iter().map(ToString::to_string).collect(),
                agent_reachable: !h.agent_down,
                flapping: h.flapping,
            })
            .collect();
        let roles = self
            .roles
            .roles
            .iter()
            .map(|r| RoleView {
                name: r.name.clone(),
                exclusive: r.exclusive,
                preferred_host: r.prefer.map(|p| self.name(p)),
                ips: r
                    .ips
                    .iter()
                    .map(|s| RoleIpView {
                        ip: s.ip.clone(),
                        owner: s.owner.map(|o| self.name(o)),
                    })
                    .collect(),
            })
            .collect();
        let mut checks = Vec::with_capacity(self.names.len() * 4);
        for host in self.hosts.ids() {
            for check in CheckKind::ALL {
                let e = self.checks.entry(host, check);
                let wall = e.map(|e| e.last_change_wall).unwrap_or(0);
                checks.push(CheckView {
                    host: self.name(host),
                    check: check.as_str().to_string(),
                    ok: e.is_some_and(|e| e.ok),
                    last_change: wall,
                    last_change_text: (self.time_format)(wall),
                    message: e.map(|e| e.message.clone()).unwrap_or_default(),
                });
            }
        }
        Snapshot {
            notes: self.show_notes(),
            mode: self.mode.as_str().to_string(),
            passive_cause: (self.mode == MonitorMode::Passive).then(|| self.passive_cause.clone()),
            network_up: self.network_up,
            active_master: self.roles.active_master().map(|h| self.name(h)),
            hosts,
            roles,
            checks,
        }
    }

    /// The `# ` lines of `show` other than the PASSIVE header, its cause and the agent
    /// warnings (those are fields of their own).
    fn show_notes(&self) -> Vec<String> {
        let text = self.show();
        let mut skip = if self.mode == MonitorMode::Passive {
            1 + self.passive_cause.split('\n').count()
        } else {
            0
        };
        let mut notes = Vec::new();
        for line in text.lines() {
            let Some(note) = line.strip_prefix("# ") else {
                continue;
            };
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if note.starts_with("Warning: agent on host ") && note.ends_with(" is not reachable") {
                continue;
            }
            notes.push(note.to_string());
        }
        notes
    }
}
