//! The agent: its state (state, roles, active master; spec §4.4) and command dispatch
//! (spec §4.2, §4.3, §4.5). Port of 2.2.1's `Agent/Agent.pm`.
//!
//! [`Agent::handle_line`] turns one request line into one reply line (byte-identical to
//! 2.2.1 except that SET_STATUS reports failed effects as `ERROR: …`, see docs/agent.md).
//! SET_STATUS, CLEAR_BAD_ROLES and the post-connection [`Agent::check_roles`] run one at a
//! time under the state mutex. Turning a SET_STATUS into a [`Plan`] is the pure step
//! [`plan_set_status`]; `role.rs` carries the roles out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmm_common::config;
use mmm_common::proto::agent::{
    decode_request, encode_reply, format_agent_status, format_system_status, AgentCommand,
    AgentStatus, SystemStatus,
};
use mmm_common::role::{format_role_list, RoleIp};
use mmm_common::state::{HostMode, HostState};
use tokio::sync::Mutex;

use crate::arp_schedule::ArpSchedule;
use crate::effects::{MysqlOps, Vip};
use crate::lease::{Lease, LEASE_TICK};
use crate::revoke::{Revocation, RevokeWatch};
use crate::role;

/// What command dispatch needs from the agent's settings (spec §4.4 agent record): a slice
/// of [`config::AgentSettings`], small enough for tests to write out.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// `this`.
    pub this: String,
    /// The host's `mode` (only slaves switch masters).
    pub mode: HostMode,
    /// `active_master_role` (the writer role's name).
    pub writer_role: String,
    /// Every configured role IP, roles and IPs in configuration order (GET_SYSTEM_STATUS,
    /// CLEAR_BAD_ROLES).
    pub role_ips: Vec<RoleIp>,
    /// Gratuitous ARP bursts after adding an IP (`arp_repeat`).
    pub arp_repeat: u32,
    /// Time between bursts (`arp_interval`).
    pub arp_interval: Duration,
    /// `agent_lease` (zero = off; see `lease.rs`).
    pub lease: Duration,
}

impl AgentSettings {
    /// The dispatch settings of the agent's settings.
    pub fn from_config(cfg: &config::AgentSettings) -> AgentSettings {
        AgentSettings {
            this: cfg.this().to_string(),
            mode: cfg.local.host.mode,
            writer_role: cfg.active_master_role.clone(),
            role_ips: cfg.role_ips.clone(),
            arp_repeat: cfg.ext.arp_repeat,
            arp_interval: cfg.ext.arp_interval,
            lease: cfg.ext.agent_lease,
        }
    }
}

/// The agent's in-memory state (nothing is persisted; a restarted agent is UNKNOWN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// The state the monitor last set.
    pub state: HostState,
    /// The roles the agent holds (sorted).
    pub roles: Vec<RoleIp>,
    /// The active master's host name (may be empty).
    pub active_master: String,
    /// Held roles whose add failed: recorded (2.2.1 does), retried as a full add on the
    /// next SET_STATUS, and skipped by the post-connection check, which must not enable
    /// writes on a server that could not sync (a 2.2.1 defect, spec §9.2).
    pub pending: Vec<RoleIp>,
    /// `read_only=1` is owed: the writer role was removed while the server did not answer
    /// (frozen, hung, down), so it may come back writable without the VIP. Every later
    /// SET_STATUS that does not give the writer role tries again (2.2.1 never did: the
    /// passive master stayed writable until it was given the writer role again).
    pub deny_owed: bool,
}

impl Default for AgentState {
    fn default() -> Self {
        AgentState {
            state: HostState::Unknown,
            roles: Vec::new(),
            active_master: String::new(),
            pending: Vec::new(),
            deny_owed: false,
        }
    }
}

/// What a SET_STATUS asks for, relative to the current state (spec §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Step 1: switch the active master to this host (slaves only).
    pub switch_master: Option<String>,
    /// Step 2: roles to delete (first).
    pub delete: Vec<RoleIp>,
    /// Step 2: roles to add (after the deletions).
    pub add: Vec<RoleIp>,
    /// Roles kept: re-asserted (a vanished IP is re-added and announced).
    pub keep: Vec<RoleIp>,
    /// Step 3: STOP SLAVE (entering ADMIN_OFFLINE) = Some(false), START SLAVE (leaving it)
    /// = Some(true).
    pub slave_threads: Option<bool>,
}

/// The pure step: what a SET_STATUS(state, roles, master) means for an agent in
/// `current` whose host mode is `mode`.
pub fn plan_set_status(
    current: &AgentState,
    mode: HostMode,
    state: HostState,
    roles: &[RoleIp],
    master: &str,
) -> Plan {
    let mut new_roles = roles.to_vec();
    new_roles.sort_by_key(|r| r.to_string());
    new_roles.dedup();
    let switch_master = (mode == HostMode::Slave
        && master != current.active_master
        && state == HostState::Online
        && !master.is_empty())
    .then(|| master.to_string());
    let delete = current
        .roles
        .iter()
        .filter(|r| !new_roles.contains(r))
        .cloned()
        .collect();
    let add = new_roles
        .iter()
        .filter(|r| !current.roles.contains(r))
        .cloned()
        .collect();
    let keep = new_roles
        .iter()
        .filter(|r| current.roles.contains(r))
        .cloned()
        .collect();
    let slave_threads = if state == current.state {
        None
    } else if state == HostState::AdminOffline {
        Some(false)
    } else if current.state == HostState::AdminOffline {
        Some(true)
    } else {
        None
    };
    Plan {
        switch_master,
        delete,
        add,
        keep,
        slave_threads,
    }
}

/// The agent: settings, effects and state.
pub struct Agent {
    /// From the configuration.
    settings: AgentSettings,
    /// Role IPs and ARP.
    vip: Arc<dyn Vip>,
    /// The local MySQL server.
    mysql: Arc<dyn MysqlOps>,
    /// State; held for the whole of a SET_STATUS / CLEAR_BAD_ROLES / check pass so they
    /// apply one at a time.
    state: Mutex<AgentState>,
    /// Produces the `|UP:` field (the host's uptime; tests may fix it).
    uptime: fn() -> String,
    /// The agent lease (renewed by every request; fences an isolated writer).
    lease: Lease,
    /// Gratuitous ARP: the bursts after an add and the periodic refresh.
    arp: ArpSchedule,
    /// The monitor terms (fencing tokens of monitor HA).
    fencing: crate::fencing::Fencing,
    /// Stops writer assertions when a SET_STATUS without the writer role arrives.
    revocation: Revocation,
    /// Stops the post-connection pass's re-assertions when any SET_STATUS arrives (the
    /// pass runs again after that request).
    background: Revocation,
    /// A failed writer's demotion owes `read_only=1` without having tried: the
    /// post-connection pass tries it right after the answer.
    deny_after_reply: AtomicBool,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("settings", &self.settings)
            .finish()
    }
}

const SET_OK: &str = "OK: Status applied successfully!";

/// How long the post-connection pass waits for the local server's `read_only=1` owed by a
/// failed writer's demotion (it is retried at every later SET_STATUS after that).
pub const OWED_DENY_WAIT: Duration = Duration::from_secs(1);

impl Agent {
    /// A fresh agent (state UNKNOWN, no roles, no active master).
    pub fn new(settings: AgentSettings, vip: Arc<dyn Vip>, mysql: Arc<dyn MysqlOps>) -> Agent {
        let lease = Lease::new(settings.lease);
        let arp = ArpSchedule::new(Arc::clone(&vip), settings.arp_repeat, settings.arp_interval);
        Agent {
            settings,
            vip,
            mysql,
            state: Mutex::new(AgentState::default()),
            uptime: mmm_common::uptime::uptime_field,
            lease,
            arp,
            fencing: crate::fencing::Fencing::in_memory(),
            revocation: Revocation::default(),
            background: Revocation::default(),
            deny_after_reply: AtomicBool::new(false),
        }
    }

    /// Keeps the monitor term in `fencing` (the daemon: a file beside the pid file).
    pub fn with_fencing(mut self, fencing: crate::fencing::Fencing) -> Agent {
        self.fencing = fencing;
        self
    }

    /// Replaces the uptime source (tests).
    pub fn with_uptime(mut self, uptime: fn() -> String) -> Agent {
        self.uptime = uptime;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// A copy of the current state.
    pub async fn snapshot(&self) -> AgentState {
        self.state.lock().await.clone()
    }

    /// Encodes a reply line (with `|UP:` and newline).
    pub fn reply(&self, result: &str) -> String {
        encode_reply(result, &(self.uptime)())
    }

    /// Handles one request line (newline stripped); returns the reply line with newline.
    pub async fn handle_line(&self, line: &str) -> String {
        let result = self.handle_request(line).await;
        self.reply(&result)
    }

    /// Handles one request; returns the result part of the reply.
    pub async fn handle_request(&self, line: &str) -> String {
        let decoded = match decode_request(line, &self.settings.this) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(line, "{}", e.reply_text);
                return e.reply_text;
            }
        };
        // Monitor HA: a command of a deposed leader is refused, and its queries renew
        // nothing.
        let current = match self
            .fencing
            .admit(&decoded.request.command, decoded.request.term)
        {
            Ok(current) => current,
            Err(e) => {
                tracing::warn!("{e}: {line}");
                return e;
            }
        };
        // A well-formed request from the monitor (its current term) renews the lease.
        if current {
            self.lease.touch();
        }
        if let Some(w) = &decoded.warning {
            tracing::warn!("{w}");
        }
        match decoded.request.command {
            AgentCommand::Ping => "OK: Pinged!".to_string(),
            AgentCommand::GetAgentStatus => {
                let s = self.state.lock().await;
                format_agent_status(&AgentStatus {
                    state: s.state,
                    roles: s.roles.clone(),
                    master: s.active_master.clone(),
                })
            }
            AgentCommand::GetSystemStatus => self.get_system_status().await,
            AgentCommand::ClearBadRoles => self.clear_bad_roles().await,
            AgentCommand::ResumePeerLink => {
                let _state = self.state.lock().await;
                match self.mysql.resume_peer_link().await {
                    Ok(text) => text,
                    Err(e) => {
                        let text =
                            format!("ERROR: Could not resume the replication from the peer: {e}");
                        tracing::error!("{text}");
                        text
                    }
                }
            }
            AgentCommand::SetStatus {
                state,
                roles,
                master,
            } => {
                // A writer assertion in progress (on a frozen server, it waits for its
                // connect) must not hold up the removal of the writer role (issue 14).
                if !roles.iter().any(|r| r.role == self.settings.writer_role) {
                    self.revocation.revoke();
                }
                self.background.revoke();
                let revoke = self.revocation.watch();
                self.set_status(state, &roles, &master, &decoded.request.failed, &revoke)
                    .await
            }
        }
    }

    async fn get_system_status(&self) -> String {
        let master_ip = match self.mysql.master_host().await {
            Ok(m) => m.unwrap_or_default(),
            Err(e) => {
                tracing::warn!("GET_SYSTEM_STATUS: could not read the master host: {e}");
                String::new()
            }
        };
        let mut roles = Vec::new();
        for r in &self.settings.role_ips {
            match role::ip_present(self.vip.as_ref(), &r.ip).await {
                Ok(true) => roles.push(r.clone()),
                Ok(false) => {}
                Err(e) => return format!("ERROR: Could not check if IP is configured: {e}"),
            }
        }
        let writable = match self.mysql.may_write().await {
            Ok(w) => w,
            // MySQL down: 2.2.1 crashed here; we answer "not writable", empty master.
            Err(e) if e.is_connect() => {
                tracing::warn!("GET_SYSTEM_STATUS: {e}");
                false
            }
            Err(e) => return format!("ERROR: Could not check if MySQL is writable: {e}"),
        };
        format_system_status(&SystemStatus {
            writable,
            roles,
            master_ip,
        })
    }

    async fn clear_bad_roles(&self) -> String {
        let mut state = self.state.lock().await;
        let mut removed = 0usize;
        for r in &self.settings.role_ips {
            if state.roles.contains(r) {
                continue;
            }
            match role::ip_present(self.vip.as_ref(), &r.ip).await {
                Ok(false) => {}
                Ok(true) => {
                    // Failures are logged by role::delete.
                    let revoke = self.revocation.watch();
                    let ctx = self.ctx(&revoke, &[]);
                    state.deny_owed |= role::delete(ctx, r, false).await.read_only_owed;
                    removed += 1;
                }
                Err(e) => return format!("ERROR: Could not check if IP is configured: {e}"),
            }
        }
        format!("OK: Removed {removed} roles")
    }

    fn ctx<'a>(&'a self, revoke: &'a RevokeWatch, failed: &'a [String]) -> role::RoleCtx<'a> {
        role::RoleCtx {
            vip: self.vip.as_ref(),
            mysql: self.mysql.as_ref(),
            writer_role: &self.settings.writer_role,
            arp: &self.arp,
            lease: &self.lease,
            revoke,
            failed,
        }
    }

    /// The agent lease.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The ARP scheduler (the daemon runs its refresh task).
    pub fn arp(&self) -> &ArpSchedule {
        &self.arp
    }

    /// One lease check (see [`Lease::tick`]): fences the held writer role when the lease
    /// has run out. Never waits on the state mutex. Returns whether it acted.
    pub async fn lease_tick(&self) -> bool {
        self.lease
            .tick(self.vip.as_ref(), self.mysql.as_ref())
            .await
    }

    /// The lease task: a check every [`LEASE_TICK`] until `shutdown` resolves (returns at
    /// once when the lease is off).
    pub async fn run_lease(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        if !self.lease.is_on() {
            return;
        }
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(LEASE_TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = every.tick() => {
                    self.lease_tick().await;
                }
            }
        }
    }

    async fn set_status(
        &self,
        state: HostState,
        roles: &[RoleIp],
        master: &str,
        failed: &[String],
        revoke: &RevokeWatch,
    ) -> String {
        let mut cur = self.state.lock().await;
        let plan = plan_set_status(&cur, self.settings.mode, state, roles, master);
        let mut errors: Vec<String> = Vec::new();

        if let Some(m) = &plan.switch_master {
            tracing::info!(to = %m, "Changing active master to '{m}'");
            match self.mysql.set_active_master(m).await {
                Ok(msg) => {
                    tracing::info!("{msg}");
                    cur.active_master = m.clone();
                }
                Err(e) => {
                    let text = format!("Failed to change master to '{m}': {e}");
                    tracing::error!("{text}");
                    errors.push(text);
                }
            }
        }

        if !plan.delete.is_empty() || !plan.add.is_empty() {
            tracing::info!("We have some new roles added or old rules deleted!");
            tracing::info!("Deleted: {}", format_role_list(&plan.delete));
            tracing::info!("Added:   {}", format_role_list(&plan.add));
        }
        let ctx = self.ctx(revoke, failed);
        let failed_host = state == HostState::HardOffline;
        for r in &plan.delete {
            let d = role::delete(ctx.clone(), r, failed_host).await;
            cur.deny_owed |= d.read_only_owed;
            if d.read_only_owed && failed_host && r.role == self.settings.writer_role {
                self.deny_after_reply.store(true, Ordering::SeqCst);
            }
            errors.extend(d.errors);
        }
        let mut pending = Vec::new();
        for r in &plan.add {
            let e = role::add(ctx.clone(), r).await;
            if !e.is_empty() {
                pending.push(r.clone());
            }
            errors.extend(e);
        }
        for r in &plan.keep {
            // A kept role whose add failed before, or a writer role the lease fenced, is
            // added again (sync included). A plainly kept writer role is re-asserted by
            // the post-connection pass right after the answer (issue 14): its connect to
            // a frozen server kept the monitor's next request to this host (the demotion)
            // waiting behind this one.
            let readd = cur.pending.contains(r) || self.lease.is_fenced(r);
            if !readd && r.role == self.settings.writer_role {
                continue;
            }
            let e = if readd {
                role::add(ctx.clone(), r).await
            } else {
                role::check(ctx.clone(), r).await
            };
            if !e.is_empty() && readd {
                pending.push(r.clone());
            }
            errors.extend(e);
        }
        let mut new_roles = roles.to_vec();
        new_roles.sort_by_key(|r| r.to_string());
        new_roles.dedup();
        if new_roles
            .iter()
            .any(|r| r.role == self.settings.writer_role)
        {
            cur.deny_owed = false;
        } else if cur.deny_owed && plan.delete.is_empty() {
            // Logged, not answered as an error: the removal was reported when it failed.
            match self.mysql.deny_write().await {
                Ok(()) => {
                    cur.deny_owed = false;
                    tracing::info!(
                        "read_only=1 set now (the server did not answer when the writer role was removed)"
                    );
                }
                Err(e) => tracing::warn!("read_only=1 still owed: {e}"),
            }
        }
        self.lease.set_writer(
            new_roles
                .iter()
                .find(|r| r.role == self.settings.writer_role),
        );
        cur.roles = new_roles;
        cur.pending = pending;

        match plan.slave_threads {
            Some(false) => {
                if let Err(e) = self.mysql.stop_slave().await {
                    let text = format!("Couldn't stop slave: {e}");
                    tracing::error!("{text}");
                    errors.push(text);
                }
            }
            Some(true) => {
                if let Err(e) = self.mysql.start_slave().await {
                    let text = format!("Couldn't start slave: {e}");
                    tracing::error!("{text}");
                    errors.push(text);
                }
            }
            None => {}
        }
        cur.state = state;

        // Each failure was logged where it happened.
        if errors.is_empty() {
            SET_OK.to_string()
        } else {
            format!("ERROR: {}", errors.join("; "))
        }
    }

    /// MMM's "check roles" after every closed connection (spec §4.6): re-asserts every
    /// held role (writer: read_only=0, then the IP; others: the IP), except roles whose
    /// add failed (see [`AgentState::pending`]) and a writer role the lease fenced.
    ///
    /// It also pays a `read_only=1` that a failed writer's demotion owed without trying
    /// (`role.rs`), right after that answer, for at most [`OWED_DENY_WAIT`].
    ///
    /// Its re-assertions stop when any SET_STATUS arrives (the pass runs again after it).
    pub async fn check_roles(&self) {
        let revoke = self.background.watch();
        let mut cur = self.state.lock().await;
        if self.deny_after_reply.swap(false, Ordering::SeqCst)
            && cur.deny_owed
            && !cur
                .roles
                .iter()
                .any(|r| r.role == self.settings.writer_role)
        {
            match tokio::time::timeout(OWED_DENY_WAIT, self.mysql.deny_write()).await {
                Ok(Ok(())) => {
                    cur.deny_owed = false;
                    tracing::info!(
                        "read_only=1 set now (owed by the removal of the writer role from this failed host)"
                    );
                }
                Ok(Err(e)) => tracing::warn!("read_only=1 still owed: {e}"),
                Err(_) => tracing::warn!(
                    "read_only=1 still owed: the local server did not answer within {OWED_DENY_WAIT:?}"
                ),
            }
        }
        let ctx = self.ctx(&revoke, &[]);
        for r in cur
            .roles
            .iter()
            .filter(|r| !cur.pending.contains(r) && !self.lease.is_fenced(r))
        {
            // Failures are logged by role::check.
            let _ = role::check(ctx.clone(), r).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::role::parse_role_list;

    #[test]
    fn plan_follows_spec_order() {
        let cur = AgentState {
            state: HostState::Online,
            roles: parse_role_list("reader(10.0.0.2),writer(10.0.0.1)"),
            active_master: "db1".into(),
            pending: Vec::new(),
            deny_owed: false,
        };
        let p = plan_set_status(
            &cur,
            HostMode::Slave,
            HostState::Online,
            &parse_role_list("reader(10.0.0.3),reader(10.0.0.2)"),
            "db2",
        );
        assert_eq!(p.switch_master.as_deref(), Some("db2"));
        assert_eq!(p.delete, parse_role_list("writer(10.0.0.1)"));
        assert_eq!(p.add, parse_role_list("reader(10.0.0.3)"));
        assert_eq!(p.keep, parse_role_list("reader(10.0.0.2)"));
        assert_eq!(p.slave_threads, None);
        // Masters never switch; no switch when not ONLINE or master empty.
        let p = plan_set_status(&cur, HostMode::Master, HostState::Online, &[], "db2");
        assert_eq!(p.switch_master, None);
        let p = plan_set_status(&cur, HostMode::Slave, HostState::HardOffline, &[], "db2");
        assert_eq!(p.switch_master, None);
        let p = plan_set_status(&cur, HostMode::Slave, HostState::Online, &[], "");
        assert_eq!(p.switch_master, None);
        // ADMIN_OFFLINE entry and exit.
        let p = plan_set_status(&cur, HostMode::Slave, HostState::AdminOffline, &[], "db1");
        assert_eq!(p.slave_threads, Some(false));
        let off = AgentState {
            state: HostState::AdminOffline,
            ..cur.clone()
        };
        let p = plan_set_status(&off, HostMode::Slave, HostState::Online, &[], "db1");
        assert_eq!(p.slave_threads, Some(true));
        let p = plan_set_status(&off, HostMode::Slave, HostState::HardOffline, &[], "db1");
        assert_eq!(p.slave_threads, Some(true));
    }
}
