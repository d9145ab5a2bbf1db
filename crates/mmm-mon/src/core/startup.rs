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

use super::{CheckKind, Level, Monitor, StoredHost};

/// What one host reported about one role instance.
#[derive(Debug, Clone, Copy, Default)]
struct Claim {
    stored: bool,
    system: bool,
    agent: bool,
}

impl Monitor {
    /// Drops role tokens that no longer exist or that the host may no longer hold (WARN).
    fn filter_startup_roles(&mut self, host: usize, roles: &[RoleIp]) -> Vec<RoleIp> {
        let mut out = Vec::new();
        for r in roles {
            match self.roles.find(r) {
                None => self.decide(
                    Level::Warn,
                    Some(host),
                    format!("Detected change in role definitions: Role '{r}' was removed."),
                ),
                Some((ri, _)) if !self.roles.roles[ri].hosts.contains(&host) => {
                    let name = self.name(host);
                    self.decide(
                        Level::Warn,
                        Some(host),
                        format!(
                            "Detected change in role definitions: Host '{name}' can't handle role '{r}' anymore."
                        ),
                    )
                }
                Some(_) => out.push(r.clone()),
            }
        }
        out
    }

    /// Runs the §3.14 reconstruction and applies it.
    pub(crate) fn startup(
        &mut self,
        stored_lines: Vec<StoredHost>,
        agents: Vec<Result<AgentStatus, String>>,
        systems: Vec<Result<SystemStatus, String>>,
    ) {
        let n = self.hosts.len();
        let manual = matches!(self.mode, MonitorMode::Manual | MonitorMode::Wait);

        // Inputs per host (§3.14.1).
        let mut stored: Vec<Option<(HostState, Vec<RoleIp>)>> = vec![None; n];
        for line in stored_lines {
            match self.names.iter().position(|x| *x == line.host) {
                Some(h) => {
                    let roles = self.filter_startup_roles(h, &line.roles);
                    stored[h] = Some((line.state, roles));
                }
                None => self.decide(
                    Level::Warn,
                    None,
                    format!(
                        "Ignoring saved status information for unknown host '{}'",
                        line.host
                    ),
                ),
            }
        }
        let mut agent: Vec<Option<AgentStatus>> = vec![None; n];
        let mut system: Vec<Option<SystemStatus>> = vec![None; n];
        for h in 0..n {
            let name = self.name(h);
            let admin_offline = stored[h].as_ref().map(|s| s.0) == Some(HostState::AdminOffline);
            match agents.get(h) {
                Some(Ok(a)) => {
                    let mut a = a.clone();
                    a.roles = self.filter_startup_roles(h, &a.roles);
                    agent[h] = Some(a);
                }
                other => {
                    if !admin_offline {
                        let answer = other.and_then(|r| r.as_ref().err());
                        self.startup_status_failed(
                            h,
                            &format!("the agent on host '{name}'"),
                            answer,
                        );
                    }
                }
            }
            match systems.get(h) {
                Some(Ok(s)) => {
                    let mut s = s.clone();
                    s.roles = self.filter_startup_roles(h, &s.roles);
                    system[h] = Some(s);
                }
                other => {
                    if !admin_offline {
                        let answer = other.and_then(|r| r.as_ref().err());
                        self.startup_status_failed(h, &format!("the system '{name}'"), answer);
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
        let master_of: Vec<Option<usize>> = (0..n)
            .map(|h| {
                system[h].as_ref().and_then(|s| {
                    self.config
                        .hosts
                        .iter()
                        .position(|c| c.ip.to_string() == s.master_ip)
                })
            })
            .collect();
        let mut conflict = false;
        let mut rows: Vec<(RoleIp, usize, Claim)> = Vec::new();
        for ri in 0..self.roles.roles.len() {
            let is_am = Some(ri) == self.roles.am_role;
            for ii in 0..self.roles.roles[ri].ips.len() {
                let role = RoleIp::new(
                    self.roles.roles[ri].name.clone(),
                    self.roles.roles[ri].ips[ii].ip.clone(),
                );
                let claims: Vec<(usize, Claim)> = (0..n)
                    .map(|h| {
                        let c = Claim {
                            stored: stored[h].as_ref().is_some_and(|s| s.1.contains(&role)),
                            system: system[h].as_ref().is_some_and(|s| s.roles.contains(&role)),
                            agent: agent[h].as_ref().is_some_and(|a| a.roles.contains(&role)),
                        };
                        (h, c)
                    })
                    .filter(|(_, c)| c.stored || c.system || c.agent)
                    .collect();
                if claims.is_empty() {
                    continue;
                }
                let on_system = claims.iter().filter(|(_, c)| c.system).count();
                if on_system > 1 {
                    self.decide(
                        Level::Warn,
                        None,
                        format!(
                            "Role '{role}' was configured on {on_system} hosts during monitor startup."
                        ),
                    );
                    if is_am {
                        conflict = true;
                    }
                }
                let mut best: Option<(usize, u32)> = None;
                for &(h, c) in &claims {
                    let st = state[h];
                    let mut votes = if is_am {
                        let writable = system[h].as_ref().is_some_and(|s| s.writable);
                        let slaves = (0..n)
                            .filter(|&x| !self.roles.is_master(x) && master_of[x] == Some(h))
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
        self.decide(Level::Info, None, table.clone());

        // Apply (§3.1 step 8h).
        for (h, &st) in state.iter().enumerate() {
            self.set_state(h, st);
            let roles = stored[h].as_ref().map(|s| s.1.clone()).unwrap_or_default();
            self.hosts[h].roles = roles;
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
            self.hosts[h].sent_roles = may_hold;
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
        let word = self.mode.config_word();
        self.decide(
            Level::Info,
            None,
            format!("Monitor started in {word} mode."),
        );
    }

    /// A host's GET_AGENT_STATUS or GET_SYSTEM_STATUS failed at startup (spec §3.14.1):
    /// agent_down handling and MMM's ERROR line naming `what` and the answer.
    fn startup_status_failed(&mut self, h: usize, what: &str, answer: Option<&String>) {
        let res = answer.cloned().unwrap_or_default();
        self.startup_unreachable(h);
        self.decide(
            Level::Error,
            Some(h),
            format!("The status of {what} could not be determined (answer was: {res})."),
        );
    }

    /// An agent could not be asked at startup: set agent_down if ping and mysql are OK.
    fn startup_unreachable(&mut self, h: usize) {
        let pm = self.checks.ok(h, CheckKind::Ping) && self.checks.ok(h, CheckKind::Mysql);
        let name = self.name(h);
        if pm && !self.hosts[h].agent_down {
            self.hosts[h].agent_down = true;
            self.decide(
                Level::Error,
                Some(h),
                format!("Can't reach agent on host '{name}'"),
            );
        }
    }

    /// Renders the startup table (spec §3.14.3), without a final newline.
    fn startup_table(
        &self,
        rows: &mut [(RoleIp, usize, Claim)],
        stored: &[Option<(HostState, Vec<RoleIp>)>],
        agent: &[Option<AgentStatus>],
        system: &[Option<SystemStatus>],
        master_of: &[Option<usize>],
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
        for h in 0..self.hosts.len() {
            let master = if self.roles.is_master(h) {
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
                self.name(h),
                master,
                writable,
                st(stored.get(h).and_then(|s| s.as_ref()).map(|s| s.0)),
                st(agent.get(h).and_then(|a| a.as_ref()).map(|a| a.state)),
            ));
        }
        lines.join("\n")
    }
}
