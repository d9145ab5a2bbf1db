//! Startup state reconstruction (spec §3.14): host states from the status file and the
//! agents, role owner election by votes, conflict detection, the startup table, and then
//! either PASSIVE (conflict with careful_startup) or cleanup-and-send (§3.14.4).
//!
//! Deterministic orders (port decisions): role instances are elected in configuration
//! order (roles, then IPs), candidate hosts in configuration order (ties: first); the
//! table's role rows are sorted by role string then host configuration order, its host rows
//! follow configuration order.

use mmm_common::proto::agent::{AgentStatus, SystemStatus};
use mmm_common::role::RoleIp;
use mmm_common::state::{HostState, MonitorMode};

use super::decision::{Decision, StartupQuery};
use super::ids::{HostId, RoleId};
use super::types::{CheckKind, StatusLine};
use super::Monitor;

/// What one host reported about one role instance.
#[derive(Debug, Clone, Copy, Default)]
struct Claim {
    stored: bool,
    system: bool,
    agent: bool,
}

impl Monitor {
    /// Drops role tokens that no longer exist or that the host may no longer hold (WARN).
    fn filter_startup_roles(&mut self, host: HostId, roles: &[RoleIp]) -> Vec<RoleIp> {
        let mut out = Vec::new();
        for r in roles {
            match self.roles.find(r) {
                None => self.decide(Decision::RoleGone {
                    host,
                    role: r.clone(),
                }),
                Some((ri, _)) if !self.roles.role(ri).is_some_and(|x| x.hosts.contains(&host)) => {
                    let name = self.name(host);
                    self.decide(Decision::RoleNotAllowed {
                        host,
                        name,
                        role: r.clone(),
                    })
                }
                Some(_) => out.push(r.clone()),
            }
        }
        out
    }

    /// Runs the §3.14 reconstruction and applies it.
    pub(crate) fn startup(
        &mut self,
        stored_lines: Vec<StatusLine>,
        agents: Vec<Result<AgentStatus, String>>,
        systems: Vec<Result<SystemStatus, String>>,
    ) {
        let n = self.hosts.len();
        let manual = matches!(self.mode, MonitorMode::Manual | MonitorMode::Wait);

        // Inputs per host (§3.14.1).
        let mut stored: Vec<Option<(HostState, Vec<RoleIp>)>> = vec![None; n];
        for line in stored_lines {
            match self.names.iter().position(|x| *x == line.host).map(HostId) {
                Some(h) => {
                    let roles = self.filter_startup_roles(h, &line.roles);
                    stored[h.index()] = Some((line.state, roles));
                }
                None => self.decide(Decision::UnknownStoredHost { name: line.host }),
            }
        }
        let mut agent: Vec<Option<AgentStatus>> = vec![None; n];
        let mut system: Vec<Option<SystemStatus>> = vec![None; n];
        for id in self.hosts.ids() {
            let h = id.index();
            let admin_offline = stored[h].as_ref().map(|s| s.0) == Some(HostState::AdminOffline);
            match agents.get(h) {
                Some(Ok(a)) => {
                    let mut a = a.clone();
                    a.roles = self.filter_startup_roles(id, &a.roles);
                    agent[h] = Some(a);
                }
                other => {
                    if !admin_offline {
                        let answer = other.and_then(|r| r.as_ref().err());
                        self.startup_status_failed(id, StartupQuery::Agent, answer);
                    }
                }
            }
            match systems.get(h) {
                Some(Ok(s)) => {
                    let mut s = s.clone();
                    s.roles = self.filter_startup_roles(id, &s.roles);
                    system[h] = Some(s);
                }
                other => {
                    if !admin_offline {
                        let answer = other.and_then(|r| r.as_ref().err());
                        self.startup_status_failed(id, StartupQuery::System, answer);
                    }
                }
            }
        }

        // Host states (§3.14.2).
        let mut state: Vec<HostState> = (0..n)
            .map(|h| {
                let s = stored[h].as_ref().map(|s| s.0);
                let a = agent[h].as_ref().map(|a| a.state);
                let either = |x: HostState| s == Some(x) || a == Some(x);
                [
                    HostState::AdminOffline,
                    HostState::HardOffline,
                    HostState::ReplicationFail,
                    HostState::ReplicationDelay,
                    HostState::Online,
                ]
                .into_iter()
                .find(|&x| either(x))
                .unwrap_or(HostState::AwaitingRecovery)
            })
            .collect();

        // Role owner election (§3.14.3).
        let master_of: Vec<Option<HostId>> = (0..n)
            .map(|h| {
                system[h].as_ref().and_then(|s| {
                    self.config
                        .hosts
                        .iter()
                        .position(|c| c.ip.to_string() == s.master_ip)
                        .map(HostId)
                })
            })
            .collect();
        let mut conflict = false;
        let mut rows: Vec<(RoleIp, HostId, Claim)> = Vec::new();
        for ri in (0..self.roles.roles.len()).map(RoleId) {
            let is_am = Some(ri) == self.roles.am_role;
            let ips: Vec<String> = self.roles.roles[ri.0]
                .ips
                .iter()
                .map(|s| s.ip.clone())
                .collect();
            for (ii, ip) in ips.into_iter().enumerate() {
                let role = RoleIp::new(self.roles.roles[ri.0].name.clone(), ip);
                let claims: Vec<(HostId, Claim)> = self
                    .hosts
                    .ids()
                    .map(|id| {
                        let h = id.index();
                        let c = Claim {
                            stored: stored[h].as_ref().is_some_and(|s| s.1.contains(&role)),
                            system: system[h].as_ref().is_some_and(|s| s.roles.contains(&role)),
                            agent: agent[h].as_ref().is_some_and(|a| a.roles.contains(&role)),
                        };
                        (id, c)
                    })
                    .filter(|(_, c)| c.stored || c.system || c.agent)
                    .collect();
                if claims.is_empty() {
                    continue;
                }
                let on_system = claims.iter().filter(|(_, c)| c.system).count();
                if on_system > 1 {
                    self.decide(Decision::RoleOnSeveralHosts {
                        role: role.clone(),
                        hosts: on_system,
                    });
                    if is_am {
                        conflict = true;
                    }
                }
                let mut best: Option<(HostId, u32)> = None;
                for &(h, c) in &claims {
                    let st = state[h.index()];
                    let mut votes = if is_am {
                        let writable = system[h.index()].as_ref().is_some_and(|s| s.writable);
                        let slaves = self
                            .hosts
                            .ids()
                            .filter(|&x| {
                                !self.roles.is_master(x) && master_of[x.index()] == Some(h)
                            })
                            .count() as u32;
                        4 * u32::from(writable)
                            + 2 * u32::from(c.system)
                            + u32::from(c.stored)
                            + u32::from(c.agent)
                            + slaves
                    } else {
                        4 * u32::from(c.system) + 2 * u32::from(c.stored) + u32::from(c.agent)
                    };
                    let forced_zero = if is_am {
                        st == HostState::AdminOffline || (st == HostState::HardOffline && !manual)
                    } else {
                        st == HostState::AdminOffline
                            || (!manual
                                && !matches!(st, HostState::Online | HostState::AwaitingRecovery))
                    };
                    if forced_zero {
                        votes = 0;
                    }
                    if votes > 0 && best.is_none_or(|(_, v)| votes > v) {
                        best = Some((h, votes));
                    }
                }
                for &(h, c) in &claims {
                    rows.push((role.clone(), h, c));
                }
                if let Some((w, _)) = best {
                    self.roles.set_owner(ri, ii, Some(w));
                    let w = w.index();
                    let st = state[w];
                    if is_am {
                        if !manual
                            || matches!(
                                st,
                                HostState::ReplicationFail | HostState::ReplicationDelay
                            )
                        {
                            state[w] = HostState::Online;
                        }
                    } else if st == HostState::AwaitingRecovery {
                        state[w] = HostState::Online;
                    }
                }
            }
        }

        // The startup table.
        let table = self.startup_table(&mut rows, &stored, &agent, &system, &master_of);
        self.decide(Decision::StartupTable(table.clone()));

        // Apply (§3.1 step 8h).
        for (h, &st) in state.iter().enumerate() {
            let id = HostId(h);
            self.set_state(id, st);
            let roles = stored[h].as_ref().map(|s| s.1.clone()).unwrap_or_default();
            self.hosts[id].roles = roles;
            // what the agent may hold: its own roles and the VIPs found on the system
            let mut may_hold: Vec<RoleIp> = agent[h]
                .as_ref()
                .map(|a| a.roles.clone())
                .unwrap_or_default();
            if let Some(sys) = system[h].as_ref() {
                may_hold.extend(sys.roles.iter().cloned());
            }
            may_hold.sort();
            may_hold.dedup();
            self.outbox.set_may_hold(id, may_hold);
        }
        self.started = true;
        self.last_am = self.roles.active_master();
        // careful_startup defaults to on (2.2.1's code default).
        let careful = self.config.monitor.careful_startup;
        if conflict && careful {
            self.mode = MonitorMode::Passive;
            self.passive_cause = format!("Conflicting roles during startup:\n\n{table}");
        } else if self.mode != MonitorMode::Passive {
            self.cleanup_and_send();
        }
        self.decide(Decision::MonitorStarted { mode: self.mode });
    }

    /// A host's GET_AGENT_STATUS or GET_SYSTEM_STATUS failed at startup (spec §3.14.1):
    /// agent_down handling and MMM's ERROR line naming `what` and the answer.
    fn startup_status_failed(&mut self, h: HostId, query: StartupQuery, answer: Option<&String>) {
        self.startup_unreachable(h);
        self.decide(Decision::StartupStatusUnknown {
            host: h,
            name: self.name(h),
            query,
            answer: answer.cloned().unwrap_or_default(),
        });
    }

    /// An agent could not be asked at startup: set agent_down if ping and mysql are OK.
    fn startup_unreachable(&mut self, h: HostId) {
        let pm = self.checks.ok(h, CheckKind::Ping) && self.checks.ok(h, CheckKind::Mysql);
        if pm && !self.hosts[h].agent_down {
            self.hosts[h].agent_down = true;
            self.decide(Decision::AgentUnreachable {
                host: h,
                name: self.name(h),
                at_startup: true,
            });
        }
    }

    /// Renders the startup table (spec §3.14.3), without a final newline.
    fn startup_table(
        &self,
        rows: &mut [(RoleIp, HostId, Claim)],
        stored: &[Option<(HostState, Vec<RoleIp>)>],
        agent: &[Option<AgentStatus>],
        system: &[Option<SystemStatus>],
        master_of: &[Option<HostId>],
    ) -> String {
        let longest_role = self
            .roles
            .roles
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0);
        let rw = longest_role.max(4) + 17;
        let hw = self.names.iter().map(String::len).max().unwrap_or(0).max(6);
        rows.sort_by(|a, b| a.0.to_string().cmp(&b.0.to_string()).then(a.1.cmp(&b.1)));
        let yes = |b: bool| if b { "Yes" } else { "-" };
        let mut lines = vec![
            "Startup status:".to_string(),
            String::new(),
            "Roles:".to_string(),
        ];
        lines.push(format!(
            "    {:<rw$}  {:<hw$}  {:<6}  {:<6}  {:<5}",
            "Role", "Host", "Stored", "System", "Agent"
        ));
        for (role, h, c) in rows.iter() {
            lines.push(format!(
                "    {:<rw$}  {:<hw$}  {:<6}  {:<6}  {:<5}",
                role.to_string(),
                self.name(*h),
                yes(c.stored),
                yes(c.system),
                yes(c.agent)
            ));
        }
        lines.push(String::new());
        lines.push("Hosts:".to_string());
        lines.push(format!(
            "    {:<hw$}  {:<hw$}  {:<8}  {:<16}  {:<16}",
            "Host", "Master", "Writable", "Stored state", "Agent state"
        ));
        for id in self.hosts.ids() {
            let h = id.index();
            let master = if self.roles.is_master(id) {
                "-".to_string()
            } else {
                master_of
                    .get(h)
                    .copied()
                    .flatten()
                    .map(|m| self.name(m))
                    .unwrap_or_else(|| "?".to_string())
            };
            let writable = match system.get(h).and_then(Option::as_ref) {
                Some(s) if s.writable => "Yes",
                Some(_) => "No",
                None => "?",
            };
            let st = |x: Option<HostState>| x.map_or("?".to_string(), |s| s.to_string());
            lines.push(format!(
                "    {:<hw$}  {:<hw$}  {:<8}  {:<16}  {:<16}",
                self.name(id),
                master,
                writable,
                st(stored.get(h).and_then(|s| s.as_ref()).map(|s| s.0)),
                st(agent.get(h).and_then(|a| a.as_ref()).map(|a| a.state)),
            ));
        }
        lines.join("\n")
    }
}
