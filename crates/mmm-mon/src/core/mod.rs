//! The monitor core: MMM's decision logic as a pure state machine (spec §3.5-§3.14, §5.3).
//!
//! [`Monitor`] is the only entry point. It takes check results, agent replies, admin
//! commands, network verdicts and the current time, and returns the [`Action`]s to carry
//! out. It never does IO, never reads a clock, never waits; whatever depends on an effect's
//! outcome (kill-on-fail, agent_down, uptime, a command waiting for an agent PING, the next
//! step of a master switch) happens when that outcome comes back as an
//! [`Input::AgentReply`] with the same [`Token`].
//!
//! Calls, in quinn-proto's shape:
//! - inputs: [`Monitor::handle`] (one [`Input`]), [`Monitor::handle_timeout`] (time passed);
//! - outputs: [`Monitor::poll_action`] (drain after every `handle_*`), [`Monitor::poll_timeout`]
//!   (the next deadline: trap period, status retry, broadcast, peer grace, auto_set_online,
//!   wait_for_other_master).
//!
//! Contract with the shell: feed the initial check results (spec §3.3.3) first, then one
//! [`Input::Startup`]; then everything as it happens. Time never goes backwards.
//!
//! Where the core deliberately differs from 2.2.1 (DESIGN.md, spec §9.2):
//! - a failed check counts the moment its trap period ends, not at the next check round;
//! - an `ERROR:` agent reply is a failed send; a failed SET_STATUS is retried every
//!   `status_retry_interval`; the broadcast skips a host with a SET_STATUS still in flight;
//! - PASSIVE mode changes nothing: failing hosts keep their roles in memory, no kill_host;
//! - a master switch is sequenced across hosts by waiting for replies: the old master
//!   loses the writer role, then the slaves switch, then the new master gains it; an old
//!   master that cannot be told (send failed) is fenced with kill_host first (once per
//!   incident: a host is not killed again until a SET_STATUS got through);
//! - leaving PASSIVE with `set_active` clears, tells and (on failure) kills hosts that
//!   failed while PASSIVE and still hold roles, as ACTIVE would have done;
//! - a check that recovers within its trap period after an earlier *reported* failure is
//!   reported OK (2.2.1 kept the stale failure until the next failure cycle);
//! - roles that changed in the distribution are sent at once (2.2.1: in the broadcast of
//!   the same loop iteration), and an `ERROR:` reply to CLEAR_BAD_ROLES is logged but does
//!   not mark the agent down;
//! - configuration order everywhere (hosts, roles, IPs, `checks all`);
//! - with the optional agent lease (`agent_lease`, off by default): the broadcast runs at
//!   least every lease/3 (in PASSIVE as a PING that only renews the leases), and a master
//!   switch does not give the writer role to the new master while a host that may still
//!   hold it could still be within its lease (the last exchange that got past the connect
//!   + lease + [`LEASE_GRACE`]).
//!
//! Known simplifications: the time in `checks` is formatted by a function the shell sets
//! ([`Monitor::set_time_format`], UTC by default); a (host, check) without an initial
//! result counts as failed with an empty message.
//!
//! Layout (each file imports only files listed before it; the `impl` parts of [`Monitor`]
//! and of the outbox import the file they extend, which imports nothing back):
//! - `ids.rs` ([`HostId`], `RoleId`, `PerHost`), `types.rs` (tokens, checks, status line),
//!   `decision.rs` ([`Decision`], [`Reason`], [`Level`]), `io.rs` ([`Input`], [`Action`]);
//! - `host.rs` (MMM's record of a host: state setter, flapping, uptime, `agent_down`),
//!   `checks_status.rs` (check table and trap periods), `roles.rs` (role table and
//!   distribution);
//! - `outbox/` (everything sent to agents; reads the record through `Facts`): `mod.rs`
//!   (SET_STATUS sends and retries, exchanges in flight, replies, broadcast),
//!   `sequence.rs` (master switch and cleanup-and-send sequencing, lease waits);
//! - this file ([`Monitor`]: inputs, timeouts, evaluation) and its `impl Monitor` parts:
//!   `transitions.rs` (§3.6 table as `next_state`, WAIT exit), `commands.rs` (§5.3),
//!   `startup.rs` (§3.14), `snapshot.rs` (the facts of `show` and `checks` as values).

#![warn(missing_docs, unreachable_pub)]

mod carried;
mod checks_status;
mod commands;
mod decision;
mod durability;
mod errant;
mod failover_gate;
mod host;
mod ids;
mod io;
mod outbox;
mod roles;
mod snapshot;
mod startup;
mod transitions;
mod types;

#[cfg(test)]
mod sim;
#[cfg(test)]
pub(crate) mod tests;

pub use carried::{Carried, Flap};
pub use commands::HELP;
pub use decision::{Decision, Level, Reason, StartupQuery};
pub use durability::Durability;
pub use ids::HostId;
pub use io::{Action, Input};
pub use outbox::{BROADCAST_INTERVAL, LEASE_GRACE, SLAVE_SWITCH_WAIT};
pub use snapshot::{CheckView, HostView, RoleIpView, RoleView, Snapshot};
pub use types::{CheckKind, CheckResult, CheckStatus, StatusLine, Token};

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use mmm_common::config::MonitorSettings;
use mmm_common::state::{HostState, MonitorMode};

use checks_status::ChecksStatus;
use host::Host;
use ids::PerHost;
use outbox::{Facts, Out, Outbox};
use roles::RoleTable;

/// Grace period after a peer came ONLINE, and the "short downtime" bound (spec §3.6).
pub const PEER_GRACE: Duration = Duration::from_secs(60);

/// The MMM monitor's decision core. See the module documentation for the calling contract.
#[derive(Debug)]
pub struct Monitor {
    /// Counts the inputs and timeouts that may have changed something
    /// ([`Monitor::generation`]).
    generation: u64,
    config: MonitorSettings,
    /// Per-host records, config order.
    hosts: PerHost<Host>,
    /// Host names, config order (for log lines).
    names: Vec<String>,
    checks: ChecksStatus,
    roles: RoleTable,
    /// Everything sent to agents.
    outbox: Outbox,
    mode: MonitorMode,
    /// Why the monitor is PASSIVE (shown by `show`).
    passive_cause: String,
    /// Monitor HA: held ([`Input::Hold`]), with the mode and PASSIVE cause before.
    held_from: Option<(MonitorMode, String)>,
    /// Monitor HA: this core starts as a follower's that took over ([`Monitor::set_warm`]).
    warm: bool,
    network_up: bool,
    /// Startup reconstruction done (before it, check results are initial checks).
    started: bool,
    /// (monotonic, epoch seconds) at construction, to derive wall times of deadlines.
    wall_base: (Instant, i64),
    now: Instant,
    actions: VecDeque<Action>,
    /// Admin commands waiting for an agent PING: the PING's token → (command token, line).
    parked: BTreeMap<Token, (Token, String)>,
    /// An [`Action::ProbeNetwork`] is out and its round has not been reported yet.
    network_probe_requested: bool,
    /// The active master as of the last distribution (to detect a change).
    last_am: Option<HostId>,
    /// When the active master last changed (issue 13: the slaves' peer grace runs from it).
    am_since: Option<Instant>,
    /// The status file content last written.
    last_status: Option<Vec<StatusLine>>,
    /// The errant-transaction guard (issue 13, `errant.rs`).
    errant: errant::ErrantGuard,
    /// The latest semi-sync verdict (`semi_sync`, core/durability.rs).
    durability: Option<Durability>,
    /// The writer role held for a failed active master after a refused promotion.
    writer_hold: Option<durability::WriterHold>,
    time_format: fn(i64) -> String,
    /// The failover gate (`pre_failover_bin`, `post_failover_bin`).
    gate: failover_gate::Gate,
}

impl Monitor {
    /// A monitor for `config` (validated for the monitor class), started at `now` / `wall`
    /// (epoch seconds, used as `last_change` of the initial checks).
    pub fn new(config: &MonitorSettings, now: Instant, wall: i64) -> Monitor {
        let mode = config.monitor.mode;
        let names: Vec<String> = config.hosts.iter().map(|h| h.name.clone()).collect();
        let hosts = config
            .hosts
            .iter()
            .map(|h| {
                let peer = h
                    .peer
                    .as_deref()
                    .and_then(|p| names.iter().position(|n| n == p))
                    .map(HostId);
                Host::new(h, peer, now)
            })
            .collect();
        let c = &config.checks;
        let traps = [
            c.ping.trap_period,
            c.mysql.trap_period,
            c.rep_threads.trap_period,
            c.rep_backlog.trap_period,
        ];
        let ext = &config.ext;
        Monitor {
            checks: ChecksStatus::new(names.len(), traps, now, wall),
            roles: RoleTable::new(config),
            outbox: Outbox::new(names.len(), now, ext.status_retry_interval, ext.agent_lease),
            config: config.clone(),
            hosts: PerHost::new(hosts),
            names,
            mode,
            held_from: None,
            warm: false,
            passive_cause: if mode == MonitorMode::Passive {
                "Configured to start up in passive mode.".to_string()
            } else {
                String::new()
            },
            network_up: true,
            started: false,
            wall_base: (now, wall),
            now,
            actions: VecDeque::new(),
            parked: BTreeMap::new(),
            network_probe_requested: false,
            last_am: None,
            am_since: None,
            last_status: None,
            errant: errant::ErrantGuard::default(),
            durability: None,
            writer_hold: None,
            time_format: format_utc,
            gate: failover_gate::Gate::default(),
            generation: 0,
        }
    }

    /// Sets how `checks` prints a `last_change` epoch time (`yyyy/MM/dd HH:mm:ss` in the
    /// monitor's local time in 2.2.1). The default prints UTC; the shell installs a
    /// local-time formatter.
    pub fn set_time_format(&mut self, f: fn(i64) -> String) {
        self.time_format = f;
    }

    /// Changes whenever an input or a timeout may have changed the core (its deadlines,
    /// states, roles): [`Monitor::poll_timeout`] is the same as long as this is (the
    /// driver recomputes it only then). An `OK` that repeats a reported `OK` leaves it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Feeds one input, then re-evaluates host states and roles.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = self.now.max(now);
        // Issue 14: most results repeat an OK that is already reported, which changes no
        // state, no trap timer and no role: nothing to re-evaluate (with 200 hosts,
        // re-evaluating every host after each of their results was most of the
        // monitor's CPU). Time-driven rules have their own deadlines (`poll_timeout`).
        if let Input::Check {
            host,
            check,
            result,
            ..
        } = &input
        {
            if self.started
                && result.status == CheckStatus::Ok
                && self.checks.steady_ok(*host, *check)
            {
                return;
            }
        }
        self.generation += 1;
        match input {
            Input::Check {
                host,
                check,
                result,
                wall,
            } => {
                if self.hosts.get(host).is_none() {
                    return;
                }
                if !self.started {
                    self.checks.initial(host, check, &result, self.now);
                    return;
                }
                let name = self.name(host);
                let ping_was_ok = self.ping_ok(host);
                let out =
                    self.checks
                        .result(host, &name, check, result, self.now, wall, self.network_up);
                self.decide_all(out.decisions);
                // A host that becomes reachable again (a healed link) and still owes a
                // SET_STATUS is told at once, not at its next retry: it may hold the writer
                // role that has moved on (2.2.1 left both masters writable for ~5 s here).
                if check == CheckKind::Ping && !ping_was_ok && self.ping_ok(host) {
                    self.with_outbox(|o, f| o.retry_now(f, host));
                }
            }
            Input::CheckConnLost { host, silent_for } => {
                if self.started && self.network_up {
                    let since = self.now.checked_sub(silent_for).unwrap_or(self.now);
                    self.checks.conn_lost(host, since, self.now);
                }
            }
            Input::Network { up } => {
                self.network_probe_requested = false;
                if up != self.network_up {
                    self.network_up = up;
                    self.decide(Decision::Network { up });
                    if up {
                        self.checks.disarm_all();
                    }
                }
            }
            Input::NetworkConfirmed { probed_at } => {
                self.network_probe_requested = false;
                self.checks.network_confirmed(probed_at.min(self.now));
                if self.started && self.network_up {
                    let wall = self.wall_at(self.now);
                    let out = self.checks.fire_due(&self.names, self.now, wall);
                    self.decide_all(out.decisions);
                }
            }
            Input::AgentReply {
                token,
                reply,
                maybe_delivered,
            } => {
                self.handle_agent_reply(token, reply, maybe_delivered);
                self.gate_sync();
            }
            Input::Command { token, line } => {
                self.handle_command(token, line);
                self.gate_sync();
            }
            Input::Errant {
                host,
                against,
                result,
            } => {
                if self.started {
                    self.handle_errant(host, against, result);
                }
            }
            Input::Durability(d) => self.set_durability(d),
            Input::Hold { on, cause } => {
                self.hold(on, cause);
                self.gate_sync();
            }
            Input::PreFailoverResult { seq, allowed, why } => {
                self.pre_failover_result(seq, allowed, why)
            }
            Input::Startup {
                stored,
                agents,
                systems,
            } => {
                if !self.started {
                    if self.warm {
                        self.checks.warm_start(self.now);
                    }
                    self.outbox.start(self.now);
                    self.startup(stored, agents, systems);
                    self.gate_sync();
                }
            }
        }
        self.evaluate();
    }

    /// Lets time pass: fires every deadline ≤ `now` (trap periods, retries, broadcast, time
    /// rules). A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.generation += 1;
        if !self.started {
            return;
        }
        if self.network_up {
            let wall = self.wall_at(self.now);
            let out = self.checks.fire_due(&self.names, self.now, wall);
            self.decide_all(out.decisions);
            // A failure whose trap period ended waits for the network check to confirm
            // that the monitor itself is connected: ask for that round now rather than
            // at the next ping_interval (up to 1 s later by default).
            if !self.network_probe_requested
                && self
                    .checks
                    .next_unconfirmed_deadline()
                    .is_some_and(|d| d <= self.now)
            {
                self.network_probe_requested = true;
                self.actions.push_back(Action::ProbeNetwork);
            }
        }
        self.with_outbox(|o, f| o.sequence_due(f));
        self.evaluate();
        self.with_outbox(|o, f| o.due(f));
        self.write_status_if_changed();
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest deadline at which [`Monitor::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return None;
        }
        let mut checks = None;
        if self.network_up {
            checks = self.checks.next_deadline();
            if !self.network_probe_requested {
                checks = checks
                    .into_iter()
                    .chain(self.checks.next_unconfirmed_deadline())
                    .min();
            }
        }
        [
            checks,
            self.outbox.next_deadline(),
            self.rule_deadline(),
            self.gate_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Monitor HA: the check results before [`Input::Startup`] are a follower's, running
    /// since long: a failure younger than its trap period is timed, not counted at once.
    pub fn set_warm(&mut self, warm: bool) {
        self.warm = warm;
    }

    /// The current monitor mode.
    pub fn mode(&self) -> MonitorMode {
        self.mode
    }

    /// The configuration the monitor runs with.
    pub fn config(&self) -> &MonitorSettings {
        &self.config
    }

    /// The state of `host`.
    pub fn host_state(&self, host: HostId) -> Option<HostState> {
        self.hosts.get(host).map(|h| h.state)
    }

    /// The roles `host` holds in the role table (sorted).
    pub fn host_roles(&self, host: HostId) -> Vec<mmm_common::role::RoleIp> {
        self.roles.host_roles(host)
    }

    /// The active master, if any.
    pub fn active_master(&self) -> Option<HostId> {
        self.roles.active_master()
    }

    /// The status file lines as they would be written now (config order).
    pub fn status_lines(&self) -> Vec<StatusLine> {
        self.hosts
            .iter()
            .map(|h| StatusLine {
                host: h.name.clone(),
                state: h.state,
                roles: h.roles.clone(),
            })
            .collect()
    }

    /// The periodic broadcast's interval: [`BROADCAST_INTERVAL`], or a third of
    /// `agent_lease` when that is shorter (a healthy agent's lease never runs out).
    pub fn broadcast_interval(&self) -> Duration {
        self.outbox.broadcast_interval()
    }

    // ----- internals shared by the other files -----

    fn wall_at(&self, now: Instant) -> i64 {
        let (base, wall) = self.wall_base;
        wall + now.saturating_duration_since(base).as_secs() as i64
    }

    fn manual(&self) -> bool {
        matches!(self.mode, MonitorMode::Manual | MonitorMode::Wait)
    }

    fn name(&self, host: HostId) -> String {
        self.names.get(host.index()).cloned().unwrap_or_default()
    }

    fn decide(&mut self, d: Decision) {
        self.actions.push_back(Action::Decision(d));
    }

    fn decide_all(&mut self, ds: Vec<Decision>) {
        for d in ds {
            self.decide(d);
        }
    }

    fn reply(&mut self, token: Token, text: String) {
        self.actions.push_back(Action::Reply { token, text });
    }

    /// Issue 13 (docs/differences.md): why `host`'s replication from the active master
    /// cannot be taken as current — its `rep_threads` or `rep_backlog` check failed (with
    /// `unreported`, also one failing within its trap period). `None` when both are OK.
    fn replication_doubt(&self, host: HostId, unreported: bool) -> Option<String> {
        [CheckKind::RepThreads, CheckKind::RepBacklog]
            .into_iter()
            .find_map(|c| {
                Some(format!(
                    "{c}: {}",
                    self.checks.failing(host, c, unreported)?
                ))
            })
    }

    fn ping_ok(&self, host: HostId) -> bool {
        self.checks.ok(host, CheckKind::Ping)
    }

    /// Runs `op` on the outbox with a view of the record, then takes what it did: its
    /// actions (in order) and the roles it told hosts.
    fn with_outbox<R>(&mut self, op: impl FnOnce(&mut Outbox, &Facts<'_>) -> R) -> R {
        let facts = Facts {
            now: self.now,
            mode: self.mode,
            network_up: self.network_up,
            hosts: &self.hosts,
            roles: &self.roles,
            checks: &self.checks,
        };
        let r = op(&mut self.outbox, &facts);
        while let Some(out) = self.outbox.pop() {
            match out {
                Out::Action(a) => self.actions.push_back(a),
                Out::Told { host, roles } => {
                    if let Some(h) = self.hosts.get_mut(host) {
                        h.roles = roles;
                    }
                }
            }
        }
        r
    }

    /// `send(host)` of spec §3.10: tells `host` its roles and the active master.
    fn tell(&mut self, host: HostId) {
        self.with_outbox(|o, f| o.tell(f, host));
    }

    /// [`Monitor::tell`] with kill-on-fail (§3.6): kill_host runs if it fails.
    fn tell_or_kill(&mut self, host: HostId) {
        self.with_outbox(|o, f| o.tell_or_kill(f, host));
    }

    /// An agent reply (or failure) came back: the outbox's bookkeeping, then MMM's record
    /// of the host (uptime, `agent_down`), a parked command, and the rest of the outbox's.
    fn handle_agent_reply(
        &mut self,
        token: Token,
        reply: Result<mmm_common::proto::agent::AgentReply, String>,
        maybe_delivered: bool,
    ) {
        let Some(replied) = self.with_outbox(|o, f| o.replied(f, token, &reply, maybe_delivered))
        else {
            if let Some(host) = self.outbox.take_resume_reply(token) {
                let answer = match &reply {
                    Ok(r) => r.result.clone(),
                    Err(e) => e.clone(),
                };
                let ok = reply.as_ref().is_ok_and(|r| r.is_ok());
                self.resume_replied(host, ok, answer);
            }
            return;
        };
        let host = replied.host;
        let ok = replied.ok;
        let ping_ok = self.ping_ok(host);
        let name = self.name(host);
        let mut decision = None;
        if let Some(h) = self.hosts.get_mut(host) {
            if let Some(u) = reply.as_ref().ok().and_then(|r| r.uptime) {
                h.record_uptime(u);
            }
            if !ok && !replied.reached && ping_ok && !h.agent_down {
                h.agent_down = true;
                decision = Some(Decision::AgentUnreachable {
                    host,
                    name,
                    at_startup: false,
                });
            } else if ok && h.agent_down {
                h.agent_down = false;
                decision = Some(Decision::AgentReachable { host, name });
            }
        }
        if let Some(d) = decision {
            self.decide(d);
        }
        if let Some((command, line)) = self.parked.remove(&token) {
            self.run_command(command, &line, Some(ok));
        }
        self.with_outbox(|o, f| o.finish(f, replied));
    }

    /// The state setter with its log line for flapping.
    fn set_state(&mut self, host: HostId, new: HostState) {
        let (fc, fd) = (
            self.config.monitor.flap_count,
            self.config.monitor.flap_duration,
        );
        let now = self.now;
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        if h.set_state(new, now, fc, fd) {
            let name = h.name.clone();
            self.decide(Decision::Flapping { host, name });
        }
    }

    /// `clear_roles(host)` with its log lines.
    fn clear_roles(&mut self, host: HostId) {
        let name = self.name(host);
        let ds = self.roles.clear_host(host, &name);
        self.decide_all(ds);
    }

    /// Re-evaluates after an input: transitions (network up), WAIT exit, distribution
    /// (not PASSIVE), status file.
    fn evaluate(&mut self) {
        if !self.started {
            return;
        }
        if self.network_up {
            self.transitions();
            if self.mode == MonitorMode::Wait {
                self.wait_exit();
            }
        }
        if self.mode != MonitorMode::Passive {
            self.distribute();
        }
        self.write_status_if_changed();
    }

    /// The distribution step (spec §3.9) and the master switch when the AM changed.
    fn distribute(&mut self) {
        self.guard_promotion();
        let ok: Vec<bool> = self
            .hosts
            .iter()
            .map(|h| h.state == HostState::Online && !h.agent_down)
            .collect();
        let eligible = |h: HostId| ok.get(h.index()).copied().unwrap_or(false);
        let held = self.gate_before_distribution(&eligible);
        let ds = self.roles.distribute(
            &eligible,
            self.mode == MonitorMode::Active,
            &self.names,
            &held,
        );
        self.decide_all(ds);
        self.gate_after_distribution();
        self.check_master_change();
        self.guard_promotion();
        // Tell every host whose roles changed at once (2.2.1: the broadcast of the same
        // loop iteration); a host held back by a switch sequence is deferred.
        // A host that holds no IP in the table and was told none holds exactly its roles
        // (issue 14: most of 200 hosts; `holds_exactly` walks every role's IPs).
        let owners = self.roles.owner_mask(self.hosts.len());
        for host in self.hosts.ids() {
            let told = &self.hosts[host].roles;
            if told.is_empty() && !owners.get(host.index()).copied().unwrap_or(true) {
                continue;
            }
            if !self.roles.holds_exactly(host, told) && !self.outbox.deferred(host) {
                self.tell(host);
            }
        }
    }

    /// Starts the switch sequence if the active master changed since last time.
    fn check_master_change(&mut self) {
        let am = self.roles.active_master();
        if am != self.last_am {
            let old = self.last_am;
            self.last_am = am;
            self.master_switch(old, am);
        }
    }

    /// Starts the §3.9 step 5 switch `old` → `new` in the outbox; remembers when the active
    /// master changed and says so when the new one was known not to be current (issue 13:
    /// 2.2.1 promoted it silently).
    fn master_switch(&mut self, old: Option<HostId>, new: Option<HostId>) {
        if new != old {
            self.am_since = Some(self.now);
            self.errant_master_changed(old, new);
        }
        if let (Some(o), Some(n)) = (old, new.filter(|&n| Some(n) != old)) {
            if let Some(why) = self.replication_doubt(n, false) {
                self.decide(Decision::StaleActiveMaster {
                    host: n,
                    name: self.name(n),
                    old: self.name(o),
                    why,
                });
            }
            self.say_failover(o, n);
        }
        self.with_outbox(|o, f| o.master_switch(f, old, new));
    }

    /// Cleanup and send (spec §3.14.4), see [`Outbox::cleanup_and_send`].
    fn cleanup_and_send(&mut self) {
        self.last_am = self.roles.active_master();
        self.with_outbox(|o, f| o.cleanup_and_send(f));
    }

    fn write_status_if_changed(&mut self) {
        if self.mode == MonitorMode::Passive || !self.started {
            return;
        }
        // Compared in place: the lines are built only when they changed.
        let same = self.last_status.as_ref().is_some_and(|last| {
            last.len() == self.hosts.len()
                && last
                    .iter()
                    .zip(self.hosts.iter())
                    .all(|(l, h)| l.host == h.name && l.state == h.state && l.roles == h.roles)
        });
        if same {
            return;
        }
        let lines = self.status_lines();
        if self.last_status.as_ref() != Some(&lines) {
            self.last_status = Some(lines.clone());
            self.actions.push_back(Action::WriteStatus(lines));
        }
    }
}

/// Formats epoch seconds as `yyyy/MM/dd HH:mm:ss` in UTC (civil-from-days, no clock read).
pub fn format_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}
