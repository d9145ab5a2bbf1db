//! The outbox: everything the monitor sends to agents and what it remembers about those
//! sends (spec §3.10, §3.2 step 5, §3.9 step 5, §3.14.4).
//!
//! - SET_STATUS sends ("tell a host") and their bookkeeping per host: the latest one, its
//!   retry every `status_retry_interval` when it did not get through (backing off up to the
//!   broadcast interval while the agent's port refuses the connection, see
//!   [`Outbox::retry_delay`]), a send held back by a
//!   switch sequence (deferred), kill-on-fail (once per incident: `fenced`), the roles the
//!   agent may hold (`sent_roles`), whether the last exchange failed (for the log level);
//! - the exchanges in flight ([`Token`] → what it is for); a host has a SET_STATUS in
//!   flight iff one of them is a SET_STATUS to it;
//! - the periodic broadcast (§3.2 step 5; in PASSIVE with `agent_lease`: PINGs that only
//!   renew the leases);
//! - the cross-host sequencing of a master switch and of cleanup-and-send;
//! - the lease waits (`agent_lease`).
//!
//! The outbox reads the monitor's record through [`Facts`] (one borrow per call) and never
//! changes it: what it does comes out of [`Outbox::pop`] in order, as [`Out`] values
//! (actions for the shell, and the roles a host was told, which the monitor records).
//!
//! A send "fails without IO" in PASSIVE, while the network is down, or when the host's
//! ping check is failed. Otherwise an [`Action::Send`] goes out and the rest happens when
//! the reply with its token comes back ([`Outbox::replied`], then [`Outbox::finish`]).
//!
//! Layout: this file (the outbox, its per-host send state, SET_STATUS and other sends,
//! replies, retries, broadcast) and `sequence.rs` (the cross-host sequences below and the
//! lease waits).
//!
//! Sequencing: the shell keeps per-host order but runs hosts in parallel, so an order
//! between hosts ("old master loses the writer role before the slaves switch before the new
//! master gains it") is kept here: a `Sequence` holds steps; a step's sends all go out at
//! once and the next step starts when every reply of the current one came back. A host
//! named in a later step gets no other SET_STATUS meanwhile (it is deferred and sent when
//! the sequence ends).
//!
//! With the optional agent lease (`agent_lease`), the step that gives the writer role to a
//! new master does not start while another host that may hold the writer role (per
//! `sent_roles`) could still be within its lease: until no exchange with it is open and its
//! lease anchor + lease + [`LEASE_GRACE`] has passed (its agent has fenced itself by
//! then), unless its agent answered a SET_STATUS without the role since (even with an
//! `ERROR:`: the agent applies the role list regardless). Earlier steps (the slaves'
//! switch) are not held back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use mmm_common::proto::agent::{AgentCommand, AgentReply, AgentRequest};
use mmm_common::role::RoleIp;
use mmm_common::state::{HostState, MonitorMode};

use super::checks_status::ChecksStatus;
use super::decision::Decision;
use super::host::Host;
use super::ids::{HostId, PerHost};
use super::io::Action;
use super::roles::RoleTable;
use super::types::{CheckKind, Token};

mod sequence;

/// Interval of the periodic SET_STATUS broadcast to every host (spec §3.2 step 5: ~3 s).
pub const BROADCAST_INTERVAL: Duration = Duration::from_secs(3);

/// How long a master switch waits for the slaves' replies before the new master gets the
/// writer role (mmm-rs). Healthy slaves answer in milliseconds (a GTID switch); a hung slave
/// (frozen mysqld, unreachable agent) must not keep the writer role on no host for the
/// length of its timeout (2.2.1 blocked the whole switch on it, spec §9.1 item 5). The
/// slave's switch still completes or is retried; with GTID positioning the order does not
/// matter for correctness.
pub const SLAVE_SWITCH_WAIT: Duration = Duration::from_secs(1);

/// With `agent_lease` on: how long after an untold old writer's lease ran out the monitor
/// still waits before giving the writer role to another master (the agent's lease tick,
/// 100 ms, plus removing the IP and setting read_only).
pub const LEASE_GRACE: Duration = Duration::from_millis(500);

/// What the outbox reads of the monitor during one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The monitor's time.
    pub(crate) now: Instant,
    /// The monitor mode.
    pub(crate) mode: MonitorMode,
    /// The monitor's own network is up.
    pub(crate) network_up: bool,
    /// The host records (name, state, mode).
    pub(crate) hosts: &'a PerHost<Host>,
    /// The role table (what each host is to be told).
    pub(crate) roles: &'a RoleTable,
    /// The check table (a send to a host whose ping check failed fails without IO).
    pub(crate) checks: &'a ChecksStatus,
}

impl Facts<'_> {
    fn ping_ok(&self, host: HostId) -> bool {
        self.checks.ok(host, CheckKind::Ping)
    }

    fn name(&self, host: HostId) -> String {
        self.hosts
            .get(host)
            .map(|h| h.name.clone())
            .unwrap_or_default()
    }

    fn passive(&self) -> bool {
        self.mode == MonitorMode::Passive
    }

    /// Whether the monitor found `host` failed: HARD_OFFLINE (its server or host stopped
    /// answering) or its ping check failed.
    pub(crate) fn failed(&self, host: HostId) -> bool {
        !self.ping_ok(host)
            || self
                .hosts
                .get(host)
                .is_some_and(|h| h.state == HostState::HardOffline)
    }

    /// The master-mode hosts other than `to` that the monitor found failed (config order):
    /// SET_STATUS's `failed=` field to a host given the writer role (issue 14; empty in a
    /// healthy cluster and on a planned move, so the line is 2.2.1's).
    fn failed_masters(&self, to: HostId) -> Vec<String> {
        self.hosts
            .enumerate()
            .filter(|&(h, r)| h != to && r.is_master_mode() && self.failed(h))
            .map(|(_, r)| r.name.clone())
            .collect()
    }
}

/// What the outbox did, in order (drain with [`Outbox::pop`] after every call).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    /// An action for the shell (a send, kill_host, a log line).
    Action(Action),
    /// `host` was told `roles` (its SET_STATUS went out, or failed only because its ping
    /// check is failed): the roles MMM now records for it.
    Told { host: HostId, roles: Vec<RoleIp> },
}

/// What an outstanding agent exchange is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// A SET_STATUS with these roles; `kill_on_fail` runs kill_host if it fails.
    Status {
        host: HostId,
        kill_on_fail: bool,
        roles: Vec<RoleIp>,
    },
    /// A PING for an admin command parked until the reply.
    Ping { host: HostId },
    /// CLEAR_BAD_ROLES (result ignored).
    Clear { host: HostId },
    /// With `agent_lease` on, in PASSIVE: a PING that only renews the agent's lease (its
    /// outcome moves the lease anchor and nothing else).
    Keepalive { host: HostId },
    /// `RESUME_PEER_LINK` (issue 13): the reply goes to the errant guard.
    Resume { host: HostId },
}

impl Pending {
    fn host(&self) -> HostId {
        match self {
            Pending::Status { host, .. }
            | Pending::Ping { host }
            | Pending::Clear { host }
            | Pending::Keepalive { host }
            | Pending::Resume { host } => *host,
        }
    }
}

/// A reply that came back, for the monitor's part ([`Outbox::replied`]); hand it back to
/// [`Outbox::finish`].
#[derive(Debug)]
pub(crate) struct Replied {
    /// The exchange's token.
    pub(crate) token: Token,
    /// The host.
    pub(crate) host: HostId,
    /// An `OK` reply.
    pub(crate) ok: bool,
    /// A reply line to CLEAR_BAD_ROLES (even `ERROR:`): the agent is reachable.
    pub(crate) reached: bool,
    /// A reply line (any).
    answered: bool,
    /// The request may have reached the agent (false: the connect failed).
    maybe_delivered: bool,
    pending: Pending,
}

/// The send bookkeeping of one host.
#[derive(Debug, Clone)]
struct SendState {
    /// Roles the agent may hold as far as the monitor knows: those of the latest SET_STATUS
    /// that went out (or, at startup, what the agent and the system reported). Unlike the
    /// roles MMM records it is not refreshed by `set_ip` or by sends that failed without
    /// IO; a master switch settles every host this says may still hold the writer role.
    sent_roles: Vec<RoleIp>,
    /// Token of the latest SET_STATUS sent.
    latest: Option<Token>,
    /// The latest SET_STATUS failed: re-send at this time.
    retry_at: Option<Instant>,
    /// A SET_STATUS was held back by a master switch in progress; send when it ends.
    deferred: bool,
    /// The deferred SET_STATUS must run kill_host if it fails.
    deferred_kill: bool,
    /// kill_host ran and no SET_STATUS got through since: do not kill it again.
    fenced: bool,
    /// The latest agent reply was a failure (repeats are logged at DEBUG, not WARN, so a
    /// dead agent retried every status_retry_interval does not flood the log).
    failing: bool,
    /// SET_STATUS failures in a row that never reached the agent (its connect failed):
    /// the retry backs off ([`Outbox::retry_delay`]).
    undelivered: u32,
    /// The lease anchor (`agent_lease`): the last time a request may have reached the
    /// agent, i.e. when an exchange ended that got past the connect (any reply, or a
    /// send/read/no-reply error). Starts at the monitor's start (and its startup queries):
    /// an earlier monitor may have reached the agent until then.
    lease_anchor: Instant,
    /// The agent answered (any reply line, `OK` or `ERROR`) a SET_STATUS without the
    /// active-master role, and none with it is on the way: it has dropped the role from its
    /// list (the agent applies the role list even when an effect fails), so its lease no
    /// longer matters. Cleared when a SET_STATUS with the role is sent.
    writer_released: bool,
}

/// One send of a sequence step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// SET_STATUS with this master (None = no active master).
    Status {
        host: HostId,
        master: Option<HostId>,
    },
    /// SET_STATUS (current master) then CLEAR_BAD_ROLES.
    StatusAndClear { host: HostId },
    /// Wait for the SET_STATUS sends in flight to `host`; if there are none, send one with
    /// this master.
    Settle {
        host: HostId,
        master: Option<HostId>,
    },
    /// CLEAR_BAD_ROLES.
    Clear { host: HostId },
}

impl Step {
    fn host(&self) -> HostId {
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
struct Sequence {
    /// Replies the current step still waits for.
    current: BTreeSet<Token>,
    /// Steps not started yet.
    steps: VecDeque<Vec<Step>>,
    /// Hosts that may still hold the writer role while the current step waits for them
    /// to settle: if their SET_STATUS fails they are fenced (kill_host) before the new
    /// master gets the role. (mmm-rs: 2.2.1 went on regardless.)
    settling: Vec<HostId>,
    /// When the current step stops waiting for its replies (bounded steps only: the slaves'
    /// switch, [`SLAVE_SWITCH_WAIT`]), or when a step held back for a lease is checked
    /// again. Late replies are still handled as usual.
    deadline: Option<Instant>,
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
    Until(Instant, HostId),
    /// An exchange with this host is open: its request may reach the agent any time.
    Open(HostId),
}

/// Whether a SET_STATUS bypasses the running sequence (it is one of its steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Direct,
    Step,
}

/// Everything sent to agents. See the module documentation.
#[derive(Debug)]
pub(crate) struct Outbox {
    hosts: PerHost<SendState>,
    next_token: u64,
    pending: BTreeMap<Token, Pending>,
    /// A cross-host send sequence in progress (master switch, cleanup-and-send).
    sequence: Option<Sequence>,
    next_broadcast: Option<Instant>,
    /// `status_retry_interval`.
    retry_interval: Duration,
    /// `agent_lease` (zero: off).
    lease: Duration,
    out: VecDeque<Out>,
    /// `RESUME_PEER_LINK` exchanges that ended, for the errant guard.
    resumed: Vec<(Token, HostId)>,
}

impl Outbox {
    /// An empty outbox for `hosts` hosts at `now`.
    pub(crate) fn new(
        hosts: usize,
        now: Instant,
        retry_interval: Duration,
        lease: Duration,
    ) -> Self {
        let state = SendState {
            sent_roles: Vec::new(),
            latest: None,
            retry_at: None,
            deferred: false,
            deferred_kill: false,
            fenced: false,
            failing: false,
            undelivered: 0,
            lease_anchor: now,
            writer_released: false,
        };
        Outbox {
            hosts: PerHost::new(vec![state; hosts]),
            next_token: 1,
            pending: BTreeMap::new(),
            sequence: None,
            next_broadcast: None,
            retry_interval,
            lease,
            out: VecDeque::new(),
            resumed: Vec::new(),
        }
    }

    /// The next thing the outbox did.
    pub(crate) fn pop(&mut self) -> Option<Out> {
        self.out.pop_front()
    }

    /// How long after a failed SET_STATUS it is sent again: `status_retry_interval`, but
    /// after the `n`-th send in a row whose connect failed (no agent listening, host up)
    /// twice as long each time, up to `cap` (the broadcast interval, which tells every host
    /// again anyway; issue 14: 200 configured hosts without an agent made 400 refused
    /// connects a second). An agent that starts again is told within `cap` as before, and
    /// at once when its ping recovers ([`Outbox::retry_now`]). docs/differences.md.
    pub(crate) fn retry_delay(base: Duration, cap: Duration, n: u32) -> Duration {
        let doubled = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
        doubled.min(cap.max(base))
    }

    /// The periodic broadcast's interval: [`BROADCAST_INTERVAL`], or a third of
    /// `agent_lease` when that is shorter (a healthy agent's lease never runs out).
    pub(crate) fn broadcast_interval(&self) -> Duration {
        if self.lease.is_zero() {
            BROADCAST_INTERVAL
        } else {
            BROADCAST_INTERVAL.min(self.lease / 3)
        }
    }

    /// The startup begins at `now`: the startup queries may have reached every agent until
    /// now; the broadcast starts one interval later.
    pub(crate) fn start(&mut self, now: Instant) {
        for h in self.hosts.iter_mut() {
            h.lease_anchor = h.lease_anchor.max(now);
        }
        self.next_broadcast = Some(now + self.broadcast_interval());
    }

    /// What `host`'s agent may hold as far as the monitor knows (startup: its own roles and
    /// the VIPs found on its system).
    pub(crate) fn set_may_hold(&mut self, host: HostId, roles: Vec<RoleIp>) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.sent_roles = roles;
        }
    }

    /// The earliest time [`Outbox::due`] or [`Outbox::sequence_due`] has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.hosts
            .iter()
            .filter_map(|h| h.retry_at)
            .chain(self.next_broadcast)
            .chain(self.sequence.as_ref().and_then(|s| s.deadline))
            .min()
    }

    /// A SET_STATUS to `host` is held back until the running sequence ends.
    pub(crate) fn deferred(&self, host: HostId) -> bool {
        self.hosts.get(host).is_some_and(|h| h.deferred)
    }

    /// The lease anchor of `host` (`agent_lease`).
    #[cfg(test)]
    pub(crate) fn lease_anchor(&self, host: HostId) -> Option<Instant> {
        self.hosts.get(host).map(|h| h.lease_anchor)
    }

    // ----- telling hosts -----

    /// `send(host)` of spec §3.10: SET_STATUS with the host's roles of the role table and
    /// the current active master.
    pub(crate) fn tell(&mut self, f: &Facts<'_>, host: HostId) {
        self.set_status(f, host, f.roles.active_master(), false, Via::Direct);
    }

    /// [`Outbox::tell`] with kill-on-fail (spec §3.6): if the send fails, kill_host runs.
    pub(crate) fn tell_or_kill(&mut self, f: &Facts<'_>, host: HostId) {
        self.set_status(f, host, f.roles.active_master(), true, Via::Direct);
    }

    /// Sends `RESUME_PEER_LINK` to `host` (issue 13); `None` when it cannot go out now.
    pub(crate) fn resume_peer_link(
        &mut self,
        f: &Facts<'_>,
        host: HostId,
        command: AgentCommand,
    ) -> Option<Token> {
        self.send_other(f, host, command, Pending::Resume { host })
    }

    /// The host of a `RESUME_PEER_LINK` exchange that ended with `token`.
    pub(crate) fn take_resume_reply(&mut self, token: Token) -> Option<HostId> {
        let i = self.resumed.iter().position(|(t, _)| *t == token)?;
        Some(self.resumed.remove(i).1)
    }

    /// PINGs `host`'s agent for an admin command; `None` when it fails without IO
    /// (network down, ping check failed). The reply comes back with the token.
    pub(crate) fn ping(&mut self, f: &Facts<'_>, host: HostId) -> Option<Token> {
        self.send_other(f, host, AgentCommand::Ping, Pending::Ping { host })
    }

    /// The SET_STATUS of spec §3.10 with `master` as the active master.
    fn set_status(
        &mut self,
        f: &Facts<'_>,
        host: HostId,
        master: Option<HostId>,
        kill_on_fail: bool,
        via: Via,
    ) -> Option<Token> {
        let record = f.hosts.get(host)?;
        if f.passive() || !f.network_up {
            if kill_on_fail {
                self.kill(f, host);
            }
            return None;
        }
        if via == Via::Direct && self.sequence_blocks(host) {
            let h = &mut self.hosts[host];
            h.deferred = true;
            h.deferred_kill |= kill_on_fail;
            return None;
        }
        let roles = f.roles.host_roles(host);
        let master_name = master.map(|m| f.name(m)).unwrap_or_default();
        self.out.push_back(Out::Told {
            host,
            roles: roles.clone(),
        });
        let h = &mut self.hosts[host];
        h.deferred = false;
        let kill_on_fail = kill_on_fail || std::mem::take(&mut h.deferred_kill);
        if !f.ping_ok(host) {
            h.retry_at = Some(f.now + self.retry_interval);
            if kill_on_fail {
                self.kill(f, host);
            }
            return None;
        }
        let gains_writer = f.roles.has_am_role(&roles);
        if gains_writer {
            h.writer_released = false;
        }
        // Until a reply confirms it, the agent may hold the old roles or the new ones.
        for r in &roles {
            if !h.sent_roles.contains(r) {
                h.sent_roles.push(r.clone());
            }
        }
        h.sent_roles.sort();
        let failed = if gains_writer {
            f.failed_masters(host)
        } else {
            Vec::new()
        };
        let request = AgentRequest::new(
            record.name.clone(),
            AgentCommand::SetStatus {
                state: record.state,
                roles: roles.clone(),
                master: master_name,
            },
        )
        .with_failed(failed);
        let token = self.alloc_token();
        self.hosts[host].latest = Some(token);
        self.pending.insert(
            token,
            Pending::Status {
                host,
                kill_on_fail,
                roles,
            },
        );
        self.emit(Action::Send {
            token,
            host,
            request,
        });
        Some(token)
    }

    /// Sends a command other than SET_STATUS (PING, CLEAR_BAD_ROLES). Fails without IO
    /// when the network is down or the host's ping check is failed.
    fn send_other(
        &mut self,
        f: &Facts<'_>,
        host: HostId,
        command: AgentCommand,
        pending: Pending,
    ) -> Option<Token> {
        if f.hosts.get(host).is_none() || !f.network_up || !f.ping_ok(host) {
            return None;
        }
        let token = self.alloc_token();
        let request = AgentRequest::new(f.name(host), command);
        self.pending.insert(token, pending);
        self.emit(Action::Send {
            token,
            host,
            request,
        });
        Some(token)
    }

    /// Kill-on-fail (spec §3.6): log and run kill_host with the host's ping status. Never
    /// in PASSIVE (mmm-rs decision: PASSIVE changes nothing and runs no kill_host).
    fn kill(&mut self, f: &Facts<'_>, host: HostId) {
        if f.passive() {
            return;
        }
        match self.hosts.get_mut(host) {
            Some(h) if !h.fenced => h.fenced = true,
            _ => return,
        }
        self.decide(Decision::KillHost {
            host,
            name: f.name(host),
        });
        let ping_ok = f.ping_ok(host);
        self.emit(Action::KillHost { host, ping_ok });
    }

    // ----- replies -----

    /// An agent reply (or failure) came back: the exchange ends, the lease anchor moves,
    /// a reply other than `OK` is logged. `None` for an unknown token, or when nothing is
    /// left for the monitor (a lease keepalive); otherwise the monitor records what it
    /// learnt and hands the result to [`Outbox::finish`].
    pub(crate) fn replied(
        &mut self,
        f: &Facts<'_>,
        token: Token,
        reply: &Result<AgentReply, String>,
        maybe_delivered: bool,
    ) -> Option<Replied> {
        let pending = self.pending.remove(&token)?;
        let host = pending.host();
        let h = self.hosts.get_mut(host)?;
        if maybe_delivered {
            h.lease_anchor = h.lease_anchor.max(f.now);
        }
        if let Pending::Resume { host } = pending {
            self.resumed.push((token, host));
            return None;
        }
        if matches!(pending, Pending::Keepalive { .. }) {
            if let Err(e) = reply {
                self.decide(Decision::LeaseKeepaliveFailed {
                    host,
                    name: f.name(host),
                    error: e.clone(),
                });
            }
            self.lease_recheck(f);
            return None;
        }
        let repeated = h.failing;
        let ok = match reply {
            Ok(r) => {
                if !r.is_ok() {
                    self.decide(Decision::AgentAnswered {
                        host,
                        name: f.name(host),
                        answer: r.result.clone(),
                        repeated,
                    });
                }
                r.is_ok()
            }
            Err(e) => {
                self.decide(Decision::AgentNoAnswer {
                    host,
                    name: f.name(host),
                    error: e.clone(),
                    repeated,
                });
                false
            }
        };
        self.hosts[host].failing = !ok;
        // An `ERROR:` answer to CLEAR_BAD_ROLES is a helper failure on a reachable agent:
        // logged above, but it does not make the agent "down".
        let reached = matches!(pending, Pending::Clear { .. }) && reply.is_ok();
        Some(Replied {
            token,
            host,
            ok,
            reached,
            answered: reply.is_ok(),
            maybe_delivered,
            pending,
        })
    }

    /// The outbox's part of a reply after the monitor's: SET_STATUS bookkeeping (retry,
    /// fencing, what the agent may hold), kill-on-fail, the next step of a sequence.
    pub(crate) fn finish(&mut self, f: &Facts<'_>, replied: Replied) {
        let Replied {
            token, ok, pending, ..
        } = replied;
        if let Pending::Status {
            host,
            kill_on_fail,
            roles,
        } = pending
        {
            // A reply line to a SET_STATUS without the writer role: the agent dropped it
            // (unless one with it is still on the way).
            let released = replied.answered
                && !f.roles.has_am_role(&roles)
                && !self.pending.values().any(|p| match p {
                    Pending::Status {
                        host: ph,
                        roles: pr,
                        ..
                    } => *ph == host && f.roles.has_am_role(pr),
                    _ => false,
                });
            let in_flight = self.status_in_flight(host).next().is_some();
            let cap = self.broadcast_interval();
            let base = self.retry_interval;
            if let Some(h) = self.hosts.get_mut(host) {
                if ok || replied.maybe_delivered {
                    h.undelivered = 0;
                } else {
                    h.undelivered = h.undelivered.saturating_add(1);
                }
                let retry = f.now + Self::retry_delay(base, cap, h.undelivered);
                if released {
                    h.writer_released = true;
                }
                if ok {
                    h.fenced = false;
                    if !in_flight {
                        // confirmed, and nothing newer on the way
                        h.sent_roles = roles;
                    }
                }
                if h.latest == Some(token) {
                    h.retry_at = if ok { None } else { Some(retry) };
                }
            }
            let settling = self
                .sequence
                .as_ref()
                .is_some_and(|q| q.settling.contains(&host) && q.current.contains(&token));
            if !ok && (kill_on_fail || settling) {
                self.kill(f, host);
            }
        }
        self.sequence_token_done(f, token);
        self.lease_recheck(f);
    }

    // ----- what is due -----

    /// Re-sends SET_STATUS to hosts whose latest one failed once their retry time came,
    /// and runs the periodic broadcast when it is due.
    pub(crate) fn due(&mut self, f: &Facts<'_>) {
        self.retry_due(f);
        if self.next_broadcast.is_some_and(|b| b <= f.now) {
            self.broadcast(f);
            self.next_broadcast = Some(f.now + self.broadcast_interval());
        }
    }

    /// `host` became reachable again: if it still owes a SET_STATUS, it is told now, not
    /// at its next retry (it may hold the writer role that has moved on).
    pub(crate) fn retry_now(&mut self, f: &Facts<'_>, host: HostId) {
        if let Some(h) = self.hosts.get_mut(host) {
            if h.retry_at.is_some() {
                h.retry_at = Some(f.now);
            }
        }
        self.retry_due(f);
    }

    fn retry_due(&mut self, f: &Facts<'_>) {
        for host in self.hosts.ids() {
            if self.hosts[host].retry_at.is_some_and(|t| t <= f.now) {
                self.hosts[host].retry_at = None;
                if self.status_in_flight(host).next().is_none() {
                    self.tell(f, host);
                }
            }
        }
    }

    /// The periodic broadcast: SET_STATUS to every host without one in flight.
    fn broadcast(&mut self, f: &Facts<'_>) {
        if !f.network_up {
            return;
        }
        if f.passive() {
            // PASSIVE changes nothing, but with the lease on it must not make every writer
            // fence itself: a PING renews the agents' leases.
            if !self.lease.is_zero() {
                for host in self.hosts.ids() {
                    if !self.pending.values().any(|p| p.host() == host) {
                        let ping = Pending::Keepalive { host };
                        self.send_other(f, host, AgentCommand::Ping, ping);
                    }
                }
            }
            return;
        }
        for host in self.hosts.ids() {
            if self.status_in_flight(host).next().is_none() {
                self.tell(f, host);
            }
        }
    }

    // ----- helpers -----

    /// The SET_STATUS exchanges to `host` in flight (oldest first).
    fn status_in_flight(&self, host: HostId) -> impl Iterator<Item = Token> + '_ {
        self.pending.iter().filter_map(move |(t, p)| match p {
            Pending::Status { host: h, .. } if *h == host => Some(*t),
            _ => None,
        })
    }

    fn alloc_token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    fn emit(&mut self, action: Action) {
        self.out.push_back(Out::Action(action));
    }

    fn decide(&mut self, d: Decision) {
        self.emit(Action::Decision(d));
    }
}
