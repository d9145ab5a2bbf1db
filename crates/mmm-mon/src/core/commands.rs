//! Admin commands received through the control socket (spec §5.2, §5.3): parsing with
//! 2.2.1's exact argument counts, and every command with its exact output bytes.
//!
//! A command that needs an agent PING (set_online, set_offline, move_role) sends it and is
//! parked; it runs again from the start when the reply arrives (so every earlier check is
//! re-validated against the state at that moment), this time with the PING's outcome.

use mmm_common::role::{format_role_list_show, RoleIp};
use mmm_common::state::{HostState, MonitorMode};

use super::decision::{Decision, Reason};
use super::ids::{HostId, RoleId};
use super::types::{CheckKind, Token};
use super::Monitor;

/// The exact help text (spec §5.3 `help`).
pub const HELP: &str = "Valid commands are:
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

/// A parsed admin command (spec §5.2 dispatch table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    Help,
    Ping,
    Show,
    Checks(String, String),
    Mode,
    SetActive,
    SetPassive,
    SetManual,
    SetOnline(String),
    SetOffline(String),
    MoveRole {
        role: String,
        host: String,
        force: bool,
    },
    SetIp(String, String),
    /// mmm-rs (issue 13): `accept_errant <host>`.
    AcceptErrant(String),
    Invalid(String),
}

/// Parses a control line with 2.2.1's exact argument counts.
pub(crate) fn parse(line: &str) -> Cmd {
    let w: Vec<&str> = line.split_whitespace().collect();
    let s = |i: usize| w.get(i).map(|x| x.to_string()).unwrap_or_default();
    match (w.first().copied().unwrap_or(""), w.len()) {
        ("help", 1) => Cmd::Help,
        ("ping", 1) => Cmd::Ping,
        ("show", 1) => Cmd::Show,
        ("checks", 1) => Cmd::Checks("all".into(), "all".into()),
        ("checks", 2) => Cmd::Checks(s(1), "all".into()),
        ("checks", 3) => Cmd::Checks(s(1), s(2)),
        ("mode", 1) => Cmd::Mode,
        ("set_active", 1) => Cmd::SetActive,
        ("set_passive", 1) => Cmd::SetPassive,
        ("set_manual", 1) => Cmd::SetManual,
        ("set_online", 2) => Cmd::SetOnline(s(1)),
        ("set_offline", 2) => Cmd::SetOffline(s(1)),
        ("move_role", 3) => Cmd::MoveRole {
            role: s(1),
            host: s(2),
            force: false,
        },
        ("move_role", 4) if w.get(1) == Some(&"--force") => Cmd::MoveRole {
            role: s(2),
            host: s(3),
            force: true,
        },
        ("set_ip", 3) => Cmd::SetIp(s(1), s(2)),
        ("accept_errant", 2) => Cmd::AcceptErrant(s(1)),
        _ => Cmd::Invalid(line.to_string()),
    }
}

/// A command either finished with a reply or is parked on a PING.
enum Flow {
    Done(String),
    Parked,
}

use Flow::{Done, Parked as Wait};

impl Monitor {
    /// A control line arrived.
    pub(crate) fn handle_command(&mut self, token: Token, line: String) {
        self.run_command(token, &line, None);
    }

    /// Runs the command `line` (again, with the outcome of its agent PING: `ping`).
    pub(crate) fn run_command(&mut self, token: Token, line: &str, ping: Option<bool>) {
        let cmd = parse(line);
        let flow = match &cmd {
            Cmd::Help => Done(HELP.to_string()),
            Cmd::Ping => Done("OK: Pinged successfully!".to_string()),
            Cmd::Show => Done(self.show()),
            Cmd::Checks(h, c) => Done(self.checks_text(h, c)),
            Cmd::Mode => Done(self.mode.as_str().to_string()),
            Cmd::SetActive | Cmd::SetManual | Cmd::SetPassive if self.held_from.is_some() => {
                Done(format!(
                    "ERROR: The mode is held: {} It comes back when etcd confirms the leadership.",
                    self.passive_cause
                ))
            }
            Cmd::SetActive => Done(self.set_active()),
            Cmd::SetManual => Done(self.set_manual()),
            Cmd::SetPassive => Done(self.set_passive()),
            Cmd::SetOnline(h) => self.set_online(token, line, h, ping),
            Cmd::SetOffline(h) => self.set_offline(token, line, h, ping),
            Cmd::MoveRole { role, host, force } => {
                if *force {
                    self.move_role_force(token, line, role, host, ping)
                } else {
                    self.move_role(token, line, role, host, ping)
                }
            }
            Cmd::SetIp(ip, h) => Done(self.set_ip(ip, h)),
            Cmd::AcceptErrant(h) => Done(self.accept_errant(h)),
            Cmd::Invalid(line) => Done(format!("Invalid command '{line}'\n\n{HELP}")),
        };
        if let Done(text) = flow {
            self.reply(token, text);
        }
    }

    /// The agent PING step of the admin commands (spec §5.3): `Ok` when the PING was
    /// answered; otherwise the PING is sent and the command parked (`Err(Wait)`: it runs
    /// again from the start when the reply comes), or the command ends with
    /// `ERROR: Can't reach agent daemon on '<host>'! <consequence>`. A PING that cannot be
    /// sent (network down, ping check failed) fails at once.
    fn agent_ping(
        &mut self,
        token: Token,
        line: &str,
        host: HostId,
        ping: Option<bool>,
        consequence: &str,
    ) -> Result<(), Flow> {
        let ok = match ping {
            Some(ok) => ok,
            None => match self.with_outbox(|o, f| o.ping(f, host)) {
                Some(ping) => {
                    self.parked.insert(ping, (token, line.to_string()));
                    return Err(Wait);
                }
                None => false,
            },
        };
        if ok {
            Ok(())
        } else {
            Err(Done(format!(
                "ERROR: Can't reach agent daemon on '{}'! {consequence}",
                self.name(host)
            )))
        }
    }

    fn host_index(&self, name: &str) -> Option<HostId> {
        self.names.iter().position(|n| n == name).map(HostId)
    }

    /// `show` (spec §5.3).
    pub(super) fn show(&self) -> String {
        let mut out = String::new();
        if self.mode == MonitorMode::Passive {
            out.push_str("# --- Monitor is in PASSIVE MODE ---\n");
            let cause = format!("Cause: {}", self.passive_cause);
            for l in cause.split('\n') {
                out.push_str("# ");
                out.push_str(l);
                out.push('\n');
            }
        }
        let mut order: Vec<HostId> = self.hosts.ids().collect();
        order.sort_by(|&a, &b| self.hosts[a].name.cmp(&self.hosts[b].name));
        for &i in &order {
            if self.hosts[i].agent_down {
                out.push_str(&format!(
                    "# Warning: agent on host {} is not reachable\n",
                    self.hosts[i].name
                ));
            }
        }
        out.push_str(&self.hold_show());
        for &i in &order {
            if let Some(why) = self.errant_text(i).filter(|_| self.errant_found(i)) {
                out.push_str(&format!(
                    "# Warning: host {} is kept out: {why}\n",
                    self.hosts[i].name
                ));
            }
        }
        for &i in &order {
            let h = &self.hosts[i];
            out.push_str(&format!(
                "  {}({}) {}/{}. Roles: {}\n",
                h.name,
                h.ip,
                h.mode,
                h.state,
                format_role_list_show(&h.roles)
            ));
        }
        if let Some(line) = self.gate_show_line() {
            out.push_str(&line);
        }
        for r in &self.roles.roles {
            let Some(p) = r.prefer else { continue };
            let pn = self.name(p);
            let owner = r.ips.first().and_then(|s| s.owner);
            match owner {
                Some(o) if o == p => out.push_str(&format!(
                    "# Role {} is assigned to it's preferred host {pn}.\n",
                    r.name
                )),
                Some(o) => out.push_str(&format!(
                    "# Role {} has {pn} configured as it's preferred host but is assigned to {} at the moment.\n",
                    r.name,
                    self.name(o)
                )),
                None => out.push_str(&format!(
                    "# Role {} has {pn} configured as it's preferred host.\n",
                    r.name
                )),
            }
        }
        out
    }

    /// `checks [host|all [check|all]]` (spec §5.3).
    fn checks_text(&self, host: &str, check: &str) -> String {
        let checks: Vec<CheckKind> = if check == "all" {
            CheckKind::ALL.to_vec()
        } else {
            match CheckKind::from_name(check) {
                Some(c) => vec![c],
                None => return format!("ERROR: Unknown check '{check}'!"),
            }
        };
        let hosts: Vec<HostId> = if host == "all" {
            self.hosts.ids().collect()
        } else {
            match self.host_index(host) {
                Some(h) => vec![h],
                None => return format!("ERROR: Unknown host name '{host}'!"),
            }
        };
        let line = |h: HostId, c: CheckKind, hw: usize, cw: usize| {
            let e = self.checks.entry(h, c);
            format!(
                "{:<hw$}  {:<cw$}  [last change: {}]  {}",
                self.name(h),
                c.as_str(),
                (self.time_format)(e.map(|e| e.last_change_wall).unwrap_or(0)),
                e.map(|e| e.message.as_str()).unwrap_or("")
            )
        };
        if host != "all" && check != "all" {
            return match (hosts.first(), checks.first()) {
                (Some(&h), Some(&c)) => line(h, c, 0, 0),
                _ => String::new(),
            };
        }
        let hw = if host == "all" {
            self.names.iter().map(String::len).max().unwrap_or(0)
        } else {
            0
        };
        let cw = if check == "all" { 11 } else { 0 };
        let mut out = String::new();
        for &h in &hosts {
            for &c in &checks {
                out.push_str(&line(h, c, hw, cw));
                out.push('\n');
            }
        }
        out
    }

    fn log_mode_change(&mut self, from: MonitorMode, to: MonitorMode) {
        self.decide(Decision::ModeChanged { from, to });
    }

    fn set_active(&mut self) -> String {
        let old = self.mode;
        match old {
            MonitorMode::Active => return "OK: Already in active mode.".to_string(),
            MonitorMode::Passive => {
                self.mode = MonitorMode::Active;
                self.passive_cause.clear();
                self.log_mode_change(old, MonitorMode::Active);
                // mmm-rs: PASSIVE kept the roles of hosts that failed meanwhile and ran no
                // kill_host; do now what ACTIVE would have done (clear, send, kill-on-fail),
                // then the cleanup tells every agent.
                self.clear_non_online_holders();
                self.cleanup_and_send();
            }
            MonitorMode::Manual | MonitorMode::Wait => {
                self.mode = MonitorMode::Active;
                self.log_mode_change(old, MonitorMode::Active);
                self.clear_non_online_holders();
            }
        }
        "OK: Switched into active mode.".to_string()
    }

    fn set_manual(&mut self) -> String {
        let old = self.mode;
        match old {
            MonitorMode::Manual | MonitorMode::Wait => {
                return "OK: Already in manual mode.".to_string()
            }
            MonitorMode::Passive => {
                self.mode = MonitorMode::Manual;
                self.passive_cause.clear();
                self.log_mode_change(old, MonitorMode::Manual);
                self.cleanup_and_send();
            }
            MonitorMode::Active => {
                self.mode = MonitorMode::Manual;
                self.log_mode_change(old, MonitorMode::Manual);
            }
        }
        "OK: Switched into manual mode.".to_string()
    }

    /// [`Input::Hold`](super::Input::Hold) (monitor HA).
    pub(crate) fn hold(&mut self, on: bool, cause: String) {
        if on {
            if self.held_from.is_none() {
                self.held_from = Some((self.mode, self.passive_cause.clone()));
                self.decide(Decision::HaHold {
                    on: true,
                    mode: self.mode,
                });
                self.mode = MonitorMode::Passive;
            }
            self.passive_cause = cause;
            return;
        }
        let Some((before, cause)) = self.held_from.take() else {
            return;
        };
        self.decide(Decision::HaHold {
            on: false,
            mode: before,
        });
        self.mode = before;
        match before {
            MonitorMode::Passive => self.passive_cause = cause,
            // As `set_active` leaves PASSIVE: what ACTIVE would have done meanwhile.
            MonitorMode::Active => {
                self.passive_cause.clear();
                self.clear_non_online_holders();
                self.cleanup_and_send();
            }
            MonitorMode::Manual | MonitorMode::Wait => {
                self.passive_cause.clear();
                self.cleanup_and_send();
            }
        }
    }

    fn set_passive(&mut self) -> String {
        let old = self.mode;
        if old == MonitorMode::Passive {
            return "OK: Already in passive mode.".to_string();
        }
        self.mode = MonitorMode::Passive;
        self.passive_cause = "Admin switched to passive mode.".to_string();
        self.log_mode_change(old, MonitorMode::Passive);
        "OK: Switched into passive mode.".to_string()
    }

    fn set_online(&mut self, token: Token, line: &str, name: &str, ping: Option<bool>) -> Flow {
        let Some(host) = self.host_index(name) else {
            return Done(format!("ERROR: Unknown host name '{name}'!"));
        };
        let state = self.hosts[host].state;
        if state == HostState::Online {
            return Done("OK: This host is already ONLINE. Skipping command.".to_string());
        }
        if !matches!(state, HostState::AdminOffline | HostState::AwaitingRecovery) {
            return Done(format!(
                "ERROR: Host '{name}' is '{state}' at the moment. It can't be switched to ONLINE."
            ));
        }
        if !(self.checks.ok(host, CheckKind::Ping) && self.checks.ok(host, CheckKind::Mysql)) {
            return Done(format!(
                "ERROR: Checks ping and/or mysql are not ok for host '{name}'. It can't be switched to ONLINE."
            ));
        }
        if let Some(why) = self.errant_text(host) {
            return Done(format!(
                "ERROR: Host '{name}' has {why}. It can't be switched to ONLINE before they are accepted (accept_errant {name}) or the host is re-seeded."
            ));
        }
        if let Some(p) = self.hosts[host].peer {
            if self
                .hosts
                .get(p)
                .is_some_and(|p| p.state == HostState::Online)
                && !(self.checks.ok(p, CheckKind::RepThreads)
                    && self.checks.ok(p, CheckKind::RepBacklog))
            {
                return Done(format!(
                    "ERROR: Some replication checks failed on peer '{}'. We can't set '{name}' online now. Please, wait some time.",
                    self.name(p)
                ));
            }
        }
        if let Err(flow) = self.agent_ping(token, line, host, ping, "Can't switch its state!") {
            return flow;
        }
        self.decide(Decision::AdminStateChanged {
            host,
            name: name.to_string(),
            from: state,
            to: HostState::Online,
        });
        self.set_state(host, HostState::Online);
        self.hosts[host].flapping = false;
        self.tell(host);
        Done(format!(
            "OK: State of '{name}' changed to ONLINE. Now you can wait some time and check its new roles!"
        ))
    }

    fn set_offline(&mut self, token: Token, line: &str, name: &str, ping: Option<bool>) -> Flow {
        let Some(host) = self.host_index(name) else {
            return Done(format!("ERROR: Unknown host name '{name}'!"));
        };
        let state = self.hosts[host].state;
        if state == HostState::AdminOffline {
            return Done("OK: This host is already ADMIN_OFFLINE. Skipping command.".to_string());
        }
        if !matches!(
            state,
            HostState::Online | HostState::ReplicationFail | HostState::ReplicationDelay
        ) {
            return Done(format!(
                "ERROR: Host '{name}' is '{state}' at the moment. It can't be switched to ADMIN_OFFLINE."
            ));
        }
        if let Err(flow) = self.agent_ping(token, line, host, ping, "Can't switch its state!") {
            return flow;
        }
        self.decide(Decision::AdminStateChanged {
            host,
            name: name.to_string(),
            from: state,
            to: HostState::AdminOffline,
        });
        self.set_state(host, HostState::AdminOffline);
        self.clear_roles(host);
        self.tell(host);
        Done(format!(
            "OK: State of '{name}' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"
        ))
    }

    /// Common checks of both move_role forms: PASSIVE, unknown role / host.
    fn move_role_lookup(&self, role: &str, host: &str) -> Result<(RoleId, HostId), String> {
        if self.mode == MonitorMode::Passive {
            return Err("ERROR: This command is not allowed in passive mode".to_string());
        }
        let Some(ri) = self.roles.role_index(role) else {
            return Err(format!("ERROR: Unknown role name '{role}'!"));
        };
        let Some(h) = self.host_index(host) else {
            return Err(format!("ERROR: Unknown host name '{host}'!"));
        };
        Ok((ri, h))
    }

    fn cant_handle(&self, ri: RoleId, host: &str, role: &str, word: &str) -> String {
        let list: Vec<String> = self
            .roles
            .role(ri)
            .map(|r| r.hosts.iter().map(|&h| self.name(h)).collect())
            .unwrap_or_default();
        format!(
            "ERROR: Host '{host}' can't handle role '{role}'. {word} hosts could: {}",
            list.join(", ")
        )
    }

    fn move_role(
        &mut self,
        token: Token,
        line: &str,
        role: &str,
        name: &str,
        ping: Option<bool>,
    ) -> Flow {
        let (ri, host) = match self.move_role_lookup(role, name) {
            Ok(x) => x,
            Err(e) => return Done(e),
        };
        let Some(r) = self.roles.role(ri) else {
            return Done(format!("ERROR: Unknown role name '{role}'!"));
        };
        if !r.exclusive {
            self.roles.remove_role_from_host(ri, host);
            return Done(format!(
                "OK: Balanced role {role} has been removed from host '{name}'. Now you can wait some time and check new roles info!"
            ));
        }
        let can_handle = r.hosts.contains(&host);
        let state = self.hosts[host].state;
        if state != HostState::Online {
            return Done(format!(
                "ERROR: Can't move role to host with state {state}."
            ));
        }
        // 2.2.1's answer for a host outside the role comes before mmm-rs's own refusals.
        if !can_handle {
            return Done(self.cant_handle(ri, name, role, "Only following"));
        }
        // Issue 13: the writer role only goes to a master known to be current.
        if let Some(why) = (Some(ri) == self.roles.am_role && self.roles.owner(ri, 0) != Some(host))
            .then(|| self.replication_doubt(host, true))
            .flatten()
        {
            return Done(format!("ERROR: Can't move role to host '{name}': its replication is not current ({why}). Wait until it has caught up, or use move_role --force."));
        }
        if let Some(why) = (Some(ri) == self.roles.am_role)
            .then(|| self.hold_refuses(host))
            .flatten()
        {
            return Done(format!("ERROR: Can't move role to host '{name}': {why}."));
        }
        let old = match self.move_role_target(token, line, ri, host, role, name, ping) {
            Ok(old) => old,
            Err(flow) => return flow,
        };
        let prefer = self.roles.role(ri).and_then(|r| r.prefer);
        if self.mode == MonitorMode::Active && old.is_some() && old == prefer {
            return Done(format!(
                "ERROR: Role '{role}' is assigned to preferred host '{}'. Can't move it!",
                old.map(|o| self.name(o)).unwrap_or_default()
            ));
        }
        if self.roles.role(ri).is_none_or(|r| r.ips.is_empty()) {
            return Done(format!("Error: Role {role} has no IP."));
        }
        let old_name = old.map(|o| self.name(o)).unwrap_or_default();
        self.roles.set_owner(ri, 0, Some(host));
        self.decide(Decision::AdminMovedRole {
            host,
            role: role.to_string(),
            from: old_name.clone(),
            to: name.to_string(),
            forced: false,
        });
        self.after_move(ri, old, host);
        Done(format!(
            "OK: Role '{role}' has been moved from '{old_name}' to '{name}'. Now you can wait some time and check new roles info!"
        ))
    }

    /// The steps `move_role` and `move_role --force` share (spec §5.3 steps 5–7): the host
    /// can handle the role, it does not own it yet, its agent answers a PING. `Ok` carries
    /// the current owner; `Err` ends (or parks) the command.
    #[allow(clippy::too_many_arguments)]
    fn move_role_target(
        &mut self,
        token: Token,
        line: &str,
        ri: RoleId,
        host: HostId,
        role: &str,
        name: &str,
        ping: Option<bool>,
    ) -> Result<Option<HostId>, Flow> {
        if !self.roles.role(ri).is_some_and(|r| r.hosts.contains(&host)) {
            return Err(Done(self.cant_handle(ri, name, role, "Only following")));
        }
        let old = self.roles.owner(ri, 0);
        if old == Some(host) {
            return Err(Done(format!(
                "OK: Role is on '{name}' already. Skipping command."
            )));
        }
        self.agent_ping(token, line, host, ping, "Can't move roles there!")?;
        Ok(old)
    }

    /// Sends after a move: for the active-master role the switch sequence (old owner,
    /// slaves, new owner); otherwise old owner then new owner.
    fn after_move(&mut self, ri: RoleId, old: Option<HostId>, host: HostId) {
        if Some(ri) == self.roles.am_role {
            self.last_am = Some(host);
            self.master_switch(old, Some(host));
        } else {
            if let Some(o) = old {
                self.tell(o);
            }
            self.tell(host);
        }
    }

    fn move_role_force(
        &mut self,
        token: Token,
        line: &str,
        role: &str,
        name: &str,
        ping: Option<bool>,
    ) -> Flow {
        let (ri, host) = match self.move_role_lookup(role, name) {
            Ok(x) => x,
            Err(e) => return Done(e),
        };
        if Some(ri) != self.roles.am_role {
            return Done(
                "ERROR: move_role --forced may be used for the active master role only!"
                    .to_string(),
            );
        }
        let state = self.hosts[host].state;
        let doubted = state == HostState::Online
            && self.roles.owner(ri, 0) != Some(host)
            && (self.replication_doubt(host, true).is_some() || self.hold_refuses(host).is_some());
        if !doubted
            && !matches!(
                state,
                HostState::ReplicationFail | HostState::ReplicationDelay
            )
        {
            return Done(format!(
                "ERROR: Can't force move of role to host with state {state}."
            ));
        }
        let old = match self.move_role_target(token, line, ri, host, role, name, ping) {
            Ok(old) => old,
            Err(flow) => return flow,
        };
        if self.roles.role(ri).is_none_or(|r| r.ips.is_empty()) {
            return Done(format!("Error: Role {role} has no IP."));
        }
        let old_name = old.map(|o| self.name(o)).unwrap_or_default();
        // The operator overrides a refused promotion (`semi_sync`).
        self.release_hold();
        self.roles.set_owner(ri, 0, Some(host));
        self.decide(Decision::AdminMovedRole {
            host,
            role: role.to_string(),
            from: old_name.clone(),
            to: name.to_string(),
            forced: true,
        });
        if state != HostState::Online {
            self.decide(Decision::StateChanged {
                host,
                name: name.to_string(),
                from: state,
                to: HostState::Online,
                reason: Reason::MoveRoleForce,
            });
            self.set_state(host, HostState::Online);
        }
        if let Some(o) = old {
            let new_state = if !self.checks.ok(o, CheckKind::RepThreads) {
                Some(HostState::ReplicationFail)
            } else if !self.checks.ok(o, CheckKind::RepBacklog) {
                Some(HostState::ReplicationDelay)
            } else {
                None
            };
            if let Some(s) = new_state {
                let from = self.hosts[o].state;
                self.decide(Decision::StateChanged {
                    host: o,
                    name: old_name.clone(),
                    from,
                    to: s,
                    reason: Reason::MoveRoleForce,
                });
                self.set_state(o, s);
                if self.mode == MonitorMode::Active {
                    self.clear_roles(o);
                }
            }
        }
        self.after_move(ri, old, host);
        Done(format!(
            "OK: Role '{role}' has been moved from '{old_name}' to '{name}' enforcedly. Now you can wait some time and check new roles info!"
        ))
    }

    fn set_ip(&mut self, ip: &str, name: &str) -> String {
        if self.mode != MonitorMode::Passive {
            return "ERROR: This command is only allowed in passive mode".to_string();
        }
        let Some((ri, ii)) = self.roles.find_ip(ip) else {
            return format!("ERROR: Unknown ip '{ip}'!");
        };
        let Some(host) = self.host_index(name) else {
            return format!("ERROR: Unknown host name '{name}'!");
        };
        let Some(r) = self.roles.role(ri) else {
            return format!("ERROR: Unknown ip '{ip}'!");
        };
        let role = r.name.clone();
        if !r.hosts.contains(&host) {
            return self.cant_handle(ri, name, &role, "Following");
        }
        let state = self.hosts[host].state;
        if state != HostState::Online {
            return format!(
                "ERROR: Host '{name}' is '{state}' at the moment. Can't move role with ip '{ip}' there."
            );
        }
        let old = self.roles.owner(ri, ii);
        self.roles.set_owner(ri, ii, Some(host));
        let mut refresh: Vec<HostId> = self
            .roles
            .role(ri)
            .map(|r| r.hosts.clone())
            .unwrap_or_default();
        refresh.extend(old);
        for h in refresh {
            let roles = self.roles.host_roles(h);
            if let Some(rec) = self.hosts.get_mut(h) {
                rec.roles = roles;
            }
        }
        let r = RoleIp::new(role.clone(), ip);
        self.decide(Decision::AdminSetIp {
            host,
            name: name.to_string(),
            role: r.clone(),
        });
        format!("OK: Set role '{r}' to host '{name}'.")
    }
}
