//! Sending status to agents (spec §3.10): SET_STATUS sends and their failure handling
//! (kill-on-fail, agent_down, uptime), the retry of a SET_STATUS that did not get through,
//! the periodic broadcast (§3.2 step 5), cleanup-and-send (§3.14.4), and the cross-host
//! sequencing of a master switch (§3.9 step 5).
//!
//! A send "fails without IO" in PASSIVE, while the network is down, or when the host's
//! ping check is failed. Otherwise the core emits [`Action::Send`] and the rest happens
//! when the [`Input::AgentReply`] with its token arrives.
//!
//! Sequencing: the shell keeps per-host order but runs hosts in parallel, so an order
//! between hosts ("old master loses the writer role before the slaves switch before the new
//! master gains it") is kept here: a [`Sequence`] holds steps; a step's sends all go out at
//! once and the next step starts when every reply of the current one came back. A host
//! named in a later step gets no other SET_STATUS meanwhile (it is deferred and sent when
//! the sequence ends).
//!
//! With the optional agent lease (`agent_lease`), the step that gives the writer role to a
//! new master does not start while another host that may hold the writer role (per
//! `sent_roles`) could still be within its lease: until no exchange with it is open and its
//! lease anchor + lease + [`super::LEASE_GRACE`] has passed (its agent has fenced itself by
//! then), unless its agent answered a SET_STATUS without the role since (even with an
//! `ERROR:`: the agent applies the role list regardless). Earlier steps (the slaves'
//! switch) are not held back.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use mmm_common::proto::agent::{AgentCommand, AgentReply, AgentRequest};
use mmm_common::state::MonitorMode;

use super::{Action, Level, Monitor, Pending, Token};

/// One send of a sequence step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// SET_STATUS with this master (None = no active master).
    Status { host: usize, master: Option<usize> },
    /// SET_STATUS (current master) then CLEAR_BAD_ROLES.
    StatusAndClear { host: usize },
    /// Wait for the SET_STATUS sends in flight to `host`; if there are none, send one with
    /// this master.
    Settle { host: usize, master: Option<usize> },
    /// CLEAR_BAD_ROLES.
    Clear { host: usize },
}

impl Step {
    fn host(&self) -> usize {
        match self {
            Step::Status { host, .. }
            | Step::StatusAndClear { host }
            | Step::Settle { host, .. }
            | Step::Clear { host } => *host,
        }
    }
}

/// A cross-host send sequence in progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sequence {
    /// Replies the current step still waits for.
    current: BTreeSet<Token>,
    /// Steps not started yet.
    steps: VecDeque<Vec<Step>>,
    /// Hosts that may still hold the writer role while the current step waits for them
    /// to settle: if their SET_STATUS fails they are fenced (kill_host) before the new
    /// master gets the role. (mmm-rs: 2.2.1 went on regardless.)
    settling: Vec<usize>,
    /// When the current step stops waiting for its replies (bounded steps only: the slaves'
    /// switch, [`super::SLAVE_SWITCH_WAIT`]), or when a step held back for a lease is
    /// checked again. Late replies are still handled as usual.
    pub(crate) deadline: Option<Instant>,
    /// The next step gives the writer role and waits for another host's lease to run out.
    lease_waiting: bool,
    /// The lease wait of the next step was logged: (for an open exchange, with its end
    /// time). Each at most once per step.
    lease_logged: (bool, bool),
}

/// Why the step that gives the writer role must wait (agent lease).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LeaseWait {
    /// Until this time (host whose lease runs out last).
    Until(Instant, usize),
    /// An exchange with this host is open: its request may reach the agent any time.
    Open(usize),
}

/// The roles of a SET_STATUS request (empty for other commands).
fn roles_of(request: &AgentRequest) -> Vec<mmm_common::role::RoleIp> {
    match &request.command {
        AgentCommand::SetStatus { roles, .. } => roles.clone(),
        _ => Vec::new(),
    }
}

/// The immediate outcome of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    /// Emitted; the reply will come with this token.
    Sent(Token),
    /// Failed without IO (PASSIVE, network down, ping check failed).
    Failed,
    /// Held back by a sequence; sent when it ends.
    Deferred,
}

impl Monitor {
    /// Whether `host` is named in a step of the running sequence that has not started.
    fn sequence_blocks(&self, host: usize) -> bool {
        self.sequence
            .as_ref()
            .is_some_and(|s| s.steps.iter().flatten().any(|st| st.host() == host))
    }

    /// `send(host, master)` of spec §3.10 with `kill_on_fail`; `master` None = current AM.
    pub(crate) fn send_status(
        &mut self,
        host: usize,
        master: Option<Option<usize>>,
        kill_on_fail: bool,
        bypass_sequence: bool,
    ) -> SendOutcome {
        if host >= self.hosts.len() {
            return SendOutcome::Failed;
        }
        if self.mode == MonitorMode::Passive || !self.network_up {
            if kill_on_fail {
                self.kill_on_fail(host);
            }
            return SendOutcome::Failed;
        }
        if !bypass_sequence && self.sequence_blocks(host) {
            let h = &mut self.hosts[host];
            h.deferred_status = true;
            h.deferred_kill |= kill_on_fail;
            return SendOutcome::Deferred;
        }
        let roles = self.roles.host_roles(host);
        let master = master.unwrap_or_else(|| self.roles.active_master());
        let master_name = master.map(|m| self.name(m)).unwrap_or_default();
        let retry = self.config.ext.status_retry_interval;
        let now = self.now;
        let ping_ok = self.ping_ok(host);
        let h = &mut self.hosts[host];
        h.roles = roles.clone();
        h.deferred_status = false;
        let kill_on_fail = kill_on_fail || std::mem::take(&mut h.deferred_kill);
        if !ping_ok {
            h.status_retry_at = Some(now + retry);
            if kill_on_fail {
                self.kill_on_fail(host);
            }
            return SendOutcome::Failed;
        }
        let request = AgentRequest::new(
            h.name.clone(),
            AgentCommand::SetStatus {
                state: h.state,
                roles,
                master: master_name,
            },
        );
        let token = self.alloc_token();
        let gives_writer = self.holds_am_role(&roles_of(&request));
        let h = &mut self.hosts[host];
        if gives_writer {
            h.writer_released = false;
        }
        // Until a reply confirms it, the agent may hold the old roles or the new ones.
        for r in &h.roles {
            if !h.sent_roles.contains(r) {
                h.sent_roles.push(r.clone());
            }
        }
        h.sent_roles.sort();
        let roles = h.roles.clone();
        h.status_in_flight.push(token);
        h.latest_status = Some(token);
        self.pending.insert(
            token,
            Pending::Status {
                host,
                kill_on_fail,
                roles,
            },
        );
        self.actions.push_back(Action::Send {
            token,
            host,
            request,
        });
        SendOutcome::Sent(token)
    }

    /// Whether `roles` include the active-master role.
    fn holds_am_role(&self, roles: &[mmm_common::role::RoleIp]) -> bool {
        let Some(am_role) = self.roles.am_role.and_then(|i| self.roles.roles.get(i)) else {
            return false;
        };
        roles.iter().any(|r| r.role == am_role.name)
    }

    /// Sends a command other than SET_STATUS (PING, CLEAR_BAD_ROLES). Fails without IO
    /// when the network is down or the host's ping check is failed.
    pub(crate) fn send_other(
        &mut self,
        host: usize,
        command: AgentCommand,
        pending: Pending,
    ) -> SendOutcome {
        if host >= self.hosts.len() || !self.network_up || !self.ping_ok(host) {
            return SendOutcome::Failed;
        }
        let token = self.alloc_token();
        let request = AgentRequest::new(self.name(host), command);
        self.pending.insert(token, pending);
        self.actions.push_back(Action::Send {
            token,
            host,
            request,
        });
        SendOutcome::Sent(token)
    }

    /// Kill-on-fail (spec §3.6): log and run kill_host with the host's ping status. Never
    /// in PASSIVE (mmm-rs decision: PASSIVE changes nothing and runs no kill_host).
    pub(crate) fn kill_on_fail(&mut self, host: usize) {
        if self.mode == MonitorMode::Passive {
            return;
        }
        match self.hosts.get_mut(host) {
            Some(h) if !h.fenced => h.fenced = true,
            _ => return,
        }
        let name = self.name(host);
        self.decide(
            Level::Error,
            Some(host),
            format!("Can't send offline status notification to '{name}' - killing it!"),
        );
        let ping_ok = self.ping_ok(host);
        self.actions.push_back(Action::KillHost { host, ping_ok });
    }

    /// An agent reply (or failure) came back.
    pub(crate) fn handle_agent_reply(
        &mut self,
        token: Token,
        reply: Result<AgentReply, String>,
        maybe_delivered: bool,
    ) {
        let Some(p) = self.pending.remove(&token) else {
            return;
        };
        let host = p.host();
        let now = self.now;
        if let Some(h) = self.hosts.get_mut(host) {
            if maybe_delivered {
                h.lease_anchor = h.lease_anchor.max(now);
            }
        }
        if matches!(p, Pending::Keepalive { .. }) {
            if let Err(e) = &reply {
                self.decide(
                    Level::Debug,
                    Some(host),
                    format!("Lease keepalive to '{}' failed: {e}", self.name(host)),
                );
            }
            self.lease_recheck();
            return;
        }
        let name = self.name(host);
        let was_failing = self.hosts.get(host).is_some_and(|h| h.failing);
        let level = if was_failing {
            Level::Debug
        } else {
            Level::Warn
        };
        let ok = match &reply {
            Ok(r) => {
                if let (Some(u), Some(h)) = (r.uptime, self.hosts.get_mut(host)) {
                    h.record_uptime(u);
                }
                if !r.is_ok() {
                    self.decide(
                        level,
                        Some(host),
                        format!("Agent on host '{name}' answered '{}'", r.result),
                    );
                }
                r.is_ok()
            }
            Err(e) => {
                self.decide(
                    level,
                    Some(host),
                    format!("Received undefined answer from host {name}. $!: {e}"),
                );
                false
            }
        };
        if let Some(h) = self.hosts.get_mut(host) {
            h.failing = !ok;
        }
        let ping_ok = self.ping_ok(host);
        // An `ERROR:` answer to CLEAR_BAD_ROLES is a helper failure on a reachable agent:
        // logged above, but it does not make the agent "down".
        let reached = matches!(p, Pending::Other { .. }) && reply.is_ok();
        if let Some(h) = self.hosts.get_mut(host) {
            if !ok && !reached && ping_ok && !h.agent_down {
                h.agent_down = true;
                self.decide(
                    Level::Fatal,
                    Some(host),
                    format!("Can't reach agent on host '{name}'"),
                );
            } else if ok && h.agent_down {
                h.agent_down = false;
                self.decide(
                    Level::Fatal,
                    Some(host),
                    format!("Agent on host '{name}' is reachable again"),
                );
            }
        }
        match p {
            Pending::Status {
                host,
                kill_on_fail,
                roles,
            } => {
                let retry = self.config.ext.status_retry_interval;
                let now = self.now;
                // A reply line to a SET_STATUS without the writer role: the agent dropped it
                // (unless one with it is still on the way).
                let released = reply.is_ok()
                    && !self.holds_am_role(&roles)
                    && !self.pending.values().any(|p| match p {
                        Pending::Status {
                            host: ph,
                            roles: pr,
                            ..
                        } => *ph == host && self.holds_am_role(pr),
                        _ => false,
                    });
                if let Some(h) = self.hosts.get_mut(host) {
                    if released {
                        h.writer_released = true;
                    }
                    h.status_in_flight.retain(|t| *t != token);
                    if ok {
                        h.fenced = false;
                        if h.status_in_flight.is_empty() {
                            // confirmed, and nothing newer on the way
                            h.sent_roles = roles;
                        }
                    }
                    if h.latest_status == Some(token) {
                        h.status_retry_at = if ok { None } else { Some(now + retry) };
                    }
                }
                let settling = self
                    .sequence
                    .as_ref()
                    .is_some_and(|q| q.settling.contains(&host) && q.current.contains(&token));
                if !ok && (kill_on_fail || settling) {
                    self.kill_on_fail(host);
                }
            }
            Pending::Ping { parked, .. } => self.resume_command(parked, ok),
            Pending::Other { .. } | Pending::Keepalive { .. } => {}
        }
        self.sequence_token_done(token);
        self.lease_recheck();
    }

    /// A step held back for a lease is checked again (an exchange ended).
    fn lease_recheck(&mut self) {
        if self
            .sequence
            .as_ref()
            .is_some_and(|s| s.lease_waiting && s.current.is_empty())
        {
            self.advance_sequence();
        }
    }

    /// With `agent_lease` on: whether `step` gives the writer role to a host while another
    /// host that may hold it could still be within its lease.
    fn lease_wait(&self, step: &[Step]) -> Option<LeaseWait> {
        let lease = self.config.ext.agent_lease;
        if lease.is_zero() {
            return None;
        }
        let am_role = self.roles.am_role.and_then(|i| self.roles.roles.get(i))?;
        let gainers: Vec<usize> = step
            .iter()
            .filter_map(|st| match st {
                Step::Status { host, .. } | Step::StatusAndClear { host } => Some(*host),
                _ => None,
            })
            .filter(|&h| {
                self.roles
                    .host_roles(h)
                    .iter()
                    .any(|r| r.role == am_role.name)
            })
            .collect();
        if gainers.is_empty() {
            return None;
        }
        let mut until: Option<(Instant, usize)> = None;
        for h in self.writer_holders() {
            if gainers.contains(&h) || self.hosts.get(h).is_some_and(|x| x.writer_released) {
                continue;
            }
            if self.pending.values().any(|p| p.host() == h) {
                return Some(LeaseWait::Open(h));
            }
            let Some(host) = self.hosts.get(h) else {
                continue;
            };
            let t = host.lease_anchor + lease + super::LEASE_GRACE;
            if t > self.now && until.is_none_or(|(u, _)| t > u) {
                until = Some((t, h));
            }
        }
        until.map(|(t, h)| LeaseWait::Until(t, h))
    }

    /// Logs a lease wait (at most once per step for an open exchange, once with the time).
    fn log_lease_wait(&mut self, wait: &LeaseWait, step: &[Step]) {
        let Some(seq) = &mut self.sequence else {
            return;
        };
        let logged = match wait {
            LeaseWait::Open(_) => &mut seq.lease_logged.0,
            LeaseWait::Until(..) => &mut seq.lease_logged.1,
        };
        if *logged {
            return;
        }
        *logged = true;
        let new = step
            .iter()
            .find(|st| matches!(st, Step::Status { .. } | Step::StatusAndClear { .. }))
            .map(|st| self.name(st.host()))
            .unwrap_or_default();
        let text = match wait {
            LeaseWait::Until(t, h) => format!(
                "Waiting {:.1} s for the lease of '{}' to expire before giving the writer role \
                 to '{new}'",
                t.saturating_duration_since(self.now).as_secs_f64(),
                self.name(*h)
            ),
            LeaseWait::Open(h) => format!(
                "Waiting for the request in flight to '{}' to end and for its lease to expire \
                 before giving the writer role to '{new}'",
                self.name(*h)
            ),
        };
        self.decide(Level::Warn, None, text);
    }

    /// Re-sends SET_STATUS to hosts whose latest one failed, once their retry time came.
    pub(crate) fn retry_due(&mut self) {
        for host in 0..self.hosts.len() {
            if self.hosts[host]
                .status_retry_at
                .is_some_and(|t| t <= self.now)
            {
                self.hosts[host].status_retry_at = None;
                if self.hosts[host].status_in_flight.is_empty() {
                    self.send_status(host, None, false, false);
                }
            }
        }
    }

    /// The periodic broadcast: SET_STATUS to every host without one in flight.
    pub(crate) fn broadcast(&mut self) {
        if !self.network_up {
            return;
        }
        if self.mode == MonitorMode::Passive {
            // PASSIVE changes nothing, but with the lease on it must not make every writer
            // fence itself: a PING renews the agents' leases.
            if !self.config.ext.agent_lease.is_zero() {
                for host in 0..self.hosts.len() {
                    if !self.pending.values().any(|p| p.host() == host) {
                        self.send_other(host, AgentCommand::Ping, Pending::Keepalive { host });
                    }
                }
            }
            return;
        }
        for host in 0..self.hosts.len() {
            if self.hosts[host].status_in_flight.is_empty() {
                self.send_status(host, None, false, false);
            }
        }
    }

    /// Starts the §3.9 step 5 sequence for an active-master change `old` → `new`: the old
    /// master settles (its sends in flight return, or it gets one), then every slave-mode
    /// host is told the new master, then the new master gets its status.
    pub(crate) fn start_master_switch(&mut self, old: Option<usize>, new: Option<usize>) {
        if new != old {
            self.am_since = Some(self.now);
        }
        // Issue 13: a new active master whose replication was known not to be current is
        // said so (2.2.1 promoted it silently).
        if let (Some(o), Some(n)) = (old, new.filter(|&n| Some(n) != old)) {
            if let Some(why) = self.replication_doubt(n, false) {
                let (on, nn) = (self.name(o), self.name(n));
                self.decide(Level::Error, Some(n), format!("Host '{nn}' becomes the active master although its replication is not current ({why}): writes made on '{on}' that had not reached it are missing on it"));
            }
        }
        let mut steps = Vec::new();
        let mut settle: Vec<usize> = old.filter(|&o| Some(o) != new).into_iter().collect();
        for h in self.writer_holders() {
            if Some(h) != new && !settle.contains(&h) {
                settle.push(h);
            }
        }
        steps.push(
            settle
                .into_iter()
                .map(|h| Step::Settle {
                    host: h,
                    master: new,
                })
                .collect(),
        );
        let slaves: Vec<Step> = (0..self.hosts.len())
            .filter(|&h| !self.hosts[h].is_master_mode() && Some(h) != old && Some(h) != new)
            .map(|h| Step::Status {
                host: h,
                master: new,
            })
            .collect();
        if !slaves.is_empty() {
            steps.push(slaves);
        }
        if let Some(n) = new {
            steps.push(vec![Step::Status {
                host: n,
                master: new,
            }]);
        }
        self.start_sequence(steps);
    }

    /// Cleanup and send (spec §3.14.4): SET_STATUS + CLEAR_BAD_ROLES to the passive master,
    /// then the non-master hosts, then the active master. Without an active master the
    /// master hosts get nothing here.
    pub(crate) fn cleanup_and_send(&mut self) {
        let mut steps = Vec::new();
        let am = self.roles.active_master();
        // Hosts that may still hold the writer role but must not: settle them first
        // (fenced if they cannot be told), with CLEAR_BAD_ROLES.
        let holders: Vec<usize> = self
            .writer_holders()
            .into_iter()
            .filter(|&h| Some(h) != am)
            .collect();
        let mut first: Vec<Step> = Vec::new();
        for &h in &holders {
            first.push(Step::Settle {
                host: h,
                master: am,
            });
            first.push(Step::Clear { host: h });
        }
        steps.push(first);
        if let Some(pm) = self
            .roles
            .passive_master()
            .filter(|pm| !holders.contains(pm))
        {
            steps.push(vec![Step::StatusAndClear { host: pm }]);
        }
        let others: Vec<Step> = (0..self.hosts.len())
            .filter(|&h| !self.roles.is_master(h) && !holders.contains(&h))
            .map(|h| Step::StatusAndClear { host: h })
            .collect();
        if !others.is_empty() {
            steps.push(others);
        }
        if let Some(am) = self.roles.active_master() {
            steps.push(vec![Step::StatusAndClear { host: am }]);
        }
        self.last_am = self.roles.active_master();
        self.start_sequence(steps);
    }

    /// Hosts that, as far as the monitor knows, may hold an IP of the active-master role
    /// (config order).
    fn writer_holders(&self) -> Vec<usize> {
        let Some(am_role) = self.roles.am_role.and_then(|i| self.roles.roles.get(i)) else {
            return Vec::new();
        };
        (0..self.hosts.len())
            .filter(|&h| {
                self.hosts[h]
                    .sent_roles
                    .iter()
                    .any(|r| r.role == am_role.name)
            })
            .collect()
    }

    /// Replaces any running sequence (hosts of its unstarted steps are sent at the end of
    /// the new one) and starts the first step.
    fn start_sequence(&mut self, steps: Vec<Vec<Step>>) {
        if let Some(old) = self.sequence.take() {
            for st in old.steps.iter().flatten() {
                if let Some(h) = self.hosts.get_mut(st.host()) {
                    h.deferred_status = true;
                }
            }
        }
        self.sequence = Some(Sequence {
            current: BTreeSet::new(),
            steps: steps.into_iter().filter(|s| !s.is_empty()).collect(),
            settling: Vec::new(),
            deadline: None,
            lease_waiting: false,
            lease_logged: (false, false),
        });
        self.advance_sequence();
    }

    /// The current step's deadline passed: stop waiting for its replies and go on.
    pub(crate) fn sequence_timeout(&mut self) {
        let now = self.now;
        let expired = match &mut self.sequence {
            Some(seq) if seq.deadline.is_some_and(|d| d <= now) => {
                seq.current.clear();
                seq.deadline = None;
                true
            }
            _ => false,
        };
        if expired {
            self.advance_sequence();
        }
    }

    /// A reply for `token` came back: advance the sequence if its step is complete.
    fn sequence_token_done(&mut self, token: Token) {
        let advance = match &mut self.sequence {
            Some(seq) => seq.current.remove(&token) && seq.current.is_empty(),
            None => false,
        };
        if advance {
            self.advance_sequence();
        }
    }

    /// Starts steps until one waits for replies; ends the sequence when none is left.
    fn advance_sequence(&mut self) {
        loop {
            let Some(seq) = &mut self.sequence else {
                return;
            };
            if !seq.current.is_empty() {
                return;
            }
            let Some(step) = seq.steps.pop_front() else {
                self.sequence = None;
                self.release_deferred();
                return;
            };
            if let Some(wait) = self.lease_wait(&step) {
                self.log_lease_wait(&wait, &step);
                if let Some(seq) = &mut self.sequence {
                    seq.steps.push_front(step);
                    seq.settling.clear();
                    seq.lease_waiting = true;
                    seq.deadline = match wait {
                        LeaseWait::Until(t, _) => Some(t),
                        LeaseWait::Open(_) => None,
                    };
                }
                return;
            }
            let Some(seq) = &mut self.sequence else {
                return;
            };
            seq.lease_waiting = false;
            seq.lease_logged = (false, false);
            seq.settling.clear();
            seq.deadline = None;
            let bounded = !step.is_empty()
                && step.iter().all(|st| {
                    matches!(st, Step::Status { host, .. } if !self.hosts[*host].is_master_mode())
                });
            let mut tokens = BTreeSet::new();
            let mut settling = Vec::new();
            for st in step {
                match st {
                    Step::Status { host, master } => {
                        if let SendOutcome::Sent(t) =
                            self.send_status(host, Some(master), false, true)
                        {
                            tokens.insert(t);
                        }
                    }
                    Step::StatusAndClear { host } => {
                        if let SendOutcome::Sent(t) = self.send_status(host, None, false, true) {
                            tokens.insert(t);
                        }
                        if let SendOutcome::Sent(t) = self.send_other(
                            host,
                            AgentCommand::ClearBadRoles,
                            Pending::Other { host },
                        ) {
                            tokens.insert(t);
                        }
                    }
                    Step::Clear { host } => {
                        if let SendOutcome::Sent(t) = self.send_other(
                            host,
                            AgentCommand::ClearBadRoles,
                            Pending::Other { host },
                        ) {
                            tokens.insert(t);
                        }
                    }
                    Step::Settle { host, master } => {
                        settling.push(host);
                        // Wait for the SET_STATUS in flight only if the latest one already
                        // left out the active-master role; otherwise send a fresh one.
                        let am_role = self.roles.am_role.and_then(|i| self.roles.roles.get(i));
                        let latest_lacks_writer = self
                            .hosts
                            .get(host)
                            .and_then(|h| {
                                h.latest_status.filter(|t| h.status_in_flight.contains(t))
                            })
                            .and_then(|t| self.pending.get(&t))
                            .is_some_and(|p| match p {
                                Pending::Status { roles, .. } => !roles
                                    .iter()
                                    .any(|r| am_role.is_some_and(|a| a.name == r.role)),
                                _ => false,
                            });
                        let in_flight = if latest_lacks_writer {
                            self.hosts
                                .get(host)
                                .map(|h| h.status_in_flight.clone())
                                .unwrap_or_default()
                        } else {
                            Vec::new()
                        };
                        if in_flight.is_empty() {
                            if let SendOutcome::Sent(t) =
                                self.send_status(host, Some(master), true, true)
                            {
                                tokens.insert(t);
                            }
                        } else {
                            tokens.extend(in_flight);
                        }
                    }
                }
            }
            let deadline = bounded.then(|| self.now + super::SLAVE_SWITCH_WAIT);
            if let Some(seq) = &mut self.sequence {
                seq.current = tokens;
                seq.settling = settling;
                seq.deadline = deadline;
            }
        }
    }

    /// Sends the SET_STATUS that a finished sequence held back.
    fn release_deferred(&mut self) {
        for host in 0..self.hosts.len() {
            if self.hosts[host].deferred_status {
                self.send_status(host, None, false, false);
            }
        }
    }
}
