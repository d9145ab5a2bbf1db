//! The cross-host send sequences of the outbox (spec §3.9 step 5, §3.14.4): a master
//! switch (old master settles, slaves switch, new master gains the writer role; the last
//! two at once when the old master failed) and
//! cleanup-and-send; each step waits for its replies (the slaves' step at most
//! [`SLAVE_SWITCH_WAIT`]), and the step that gives the writer role waits for the leases of
//! hosts that may still hold it (`agent_lease`, [`LEASE_GRACE`]).

use std::collections::BTreeSet;
use std::time::Instant;

use mmm_common::proto::agent::AgentCommand;

use super::super::decision::Decision;
use super::super::ids::HostId;
use super::super::types::Token;
use super::{
    Facts, LeaseWait, Outbox, Pending, Sequence, Step, Via, LEASE_GRACE, SLAVE_SWITCH_WAIT,
};

impl Outbox {
    /// The current step's deadline passed: stop waiting for its replies and go on.
    pub(crate) fn sequence_due(&mut self, f: &Facts<'_>) {
        let expired = match &mut self.sequence {
            Some(seq) if seq.deadline.is_some_and(|d| d <= f.now) => {
                seq.current.clear();
                seq.deadline = None;
                true
            }
            _ => false,
        };
        if expired {
            self.advance(f);
        }
    }

    /// Starts the §3.9 step 5 sequence for an active-master change `old` → `new`: the old
    /// master settles (its sends in flight return, or it gets one), then every slave-mode
    /// host is told the new master, then the new master gets its status.
    pub(crate) fn master_switch(
        &mut self,
        f: &Facts<'_>,
        old: Option<HostId>,
        new: Option<HostId>,
    ) {
        let mut steps = Vec::new();
        let mut settle: Vec<HostId> = old.filter(|&o| Some(o) != new).into_iter().collect();
        for h in self.writer_holders(f) {
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
        let mut slaves: Vec<Step> = f
            .hosts
            .enumerate()
            .filter(|&(h, r)| !r.is_master_mode() && Some(h) != old && Some(h) != new)
            .map(|(h, _)| Step::Status {
                host: h,
                master: new,
            })
            .collect();
        let new_master = new.map(|n| Step::Status {
            host: n,
            master: new,
        });
        // A failed old master (HARD_OFFLINE: its server or its host stopped answering, or
        // its ping failed): the slaves and the new master are told at once instead of one
        // after the other (issue 14). Each of their agents gives up on the old master after
        // its own bounded probe (0.2 s for a cut host, 0.5 s for a hung server's
        // handshake); in a row those probes cost the failover twice. The order matters
        // only for a planned move, where the slaves wait for the old master's final
        // position first. With `agent_lease` the new master's step waits for the old
        // one's lease while the slaves switch: kept apart.
        let old_failed = self.lease.is_zero() && old.is_some_and(|o| Some(o) != new && f.failed(o));
        match new_master {
            Some(nm) if old_failed => {
                slaves.push(nm);
                steps.push(slaves);
            }
            nm => {
                if !slaves.is_empty() {
                    steps.push(slaves);
                }
                steps.extend(nm.map(|s| vec![s]));
            }
        }
        self.start_sequence(f, steps);
    }

    /// Cleanup and send (spec §3.14.4): SET_STATUS + CLEAR_BAD_ROLES to the passive master,
    /// then the non-master hosts, then the active master. Without an active master the
    /// master hosts get nothing here.
    pub(crate) fn cleanup_and_send(&mut self, f: &Facts<'_>) {
        let mut steps = Vec::new();
        let am = f.roles.active_master();
        // Hosts that may still hold the writer role but must not: settle them first
        // (fenced if they cannot be told), with CLEAR_BAD_ROLES.
        let holders: Vec<HostId> = self
            .writer_holders(f)
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
        if let Some(pm) = f.roles.passive_master().filter(|pm| !holders.contains(pm)) {
            steps.push(vec![Step::StatusAndClear { host: pm }]);
        }
        let others: Vec<Step> = f
            .hosts
            .ids()
            .filter(|&h| !f.roles.is_master(h) && !holders.contains(&h))
            .map(|h| Step::StatusAndClear { host: h })
            .collect();
        if !others.is_empty() {
            steps.push(others);
        }
        if let Some(am) = am {
            steps.push(vec![Step::StatusAndClear { host: am }]);
        }
        self.start_sequence(f, steps);
    }

    /// Hosts that, as far as the monitor knows, may hold an IP of the active-master role
    /// (config order).
    fn writer_holders(&self, f: &Facts<'_>) -> Vec<HostId> {
        self.hosts
            .enumerate()
            .filter(|(_, h)| f.roles.has_am_role(&h.sent_roles))
            .map(|(id, _)| id)
            .collect()
    }

    /// Whether `host` is named in a step of the running sequence that has not started.
    pub(super) fn sequence_blocks(&self, host: HostId) -> bool {
        self.sequence
            .as_ref()
            .is_some_and(|s| s.steps.iter().flatten().any(|st| st.host() == host))
    }

    /// Replaces any running sequence (hosts of its unstarted steps are sent at the end of
    /// the new one) and starts the first step.
    fn start_sequence(&mut self, f: &Facts<'_>, steps: Vec<Vec<Step>>) {
        if let Some(old) = self.sequence.take() {
            for st in old.steps.iter().flatten() {
                if let Some(h) = self.hosts.get_mut(st.host()) {
                    h.deferred = true;
                }
            }
        }
        self.sequence = Some(Sequence {
            steps: steps.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Sequence::default()
        });
        self.advance(f);
    }

    /// A reply for `token` came back: advance the sequence if its step is complete.
    pub(super) fn sequence_token_done(&mut self, f: &Facts<'_>, token: Token) {
        let advance = match &mut self.sequence {
            Some(seq) => seq.current.remove(&token) && seq.current.is_empty(),
            None => false,
        };
        if advance {
            self.advance(f);
        }
    }

    /// A step held back for a lease is checked again (an exchange ended).
    pub(super) fn lease_recheck(&mut self, f: &Facts<'_>) {
        if self
            .sequence
            .as_ref()
            .is_some_and(|s| s.lease_waiting && s.current.is_empty())
        {
            self.advance(f);
        }
    }

    /// Starts steps until one waits for replies; ends the sequence when none is left.
    fn advance(&mut self, f: &Facts<'_>) {
        loop {
            let Some(seq) = &mut self.sequence else {
                return;
            };
            if !seq.current.is_empty() {
                return;
            }
            let Some(step) = seq.steps.pop_front() else {
                self.sequence = None;
                self.release_deferred(f);
                return;
            };
            if let Some(wait) = self.lease_wait(f, &step) {
                self.log_lease_wait(f, &wait, &step);
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
            if let Some(seq) = &mut self.sequence {
                seq.lease_waiting = false;
                seq.lease_logged = (false, false);
                seq.settling.clear();
                seq.deadline = None;
            }
            let (tokens, settling) = self.start_step(f, step);
            let Some(seq) = &mut self.sequence else {
                return;
            };
            seq.current = tokens;
            seq.settling = settling;
        }
    }

    /// Sends one step; returns the replies it waits for and the hosts it settles. A step
    /// of slave switches only is bounded by [`SLAVE_SWITCH_WAIT`].
    fn start_step(&mut self, f: &Facts<'_>, step: Vec<Step>) -> (BTreeSet<Token>, Vec<HostId>) {
        let bounded = !step.is_empty()
            && step.iter().all(|st| {
                matches!(st, Step::Status { host, .. }
                    if f.hosts.get(*host).is_some_and(|h| !h.is_master_mode()))
            });
        let mut tokens = BTreeSet::new();
        let mut settling = Vec::new();
        for st in step {
            match st {
                Step::Status { host, master } => {
                    tokens.extend(self.set_status(f, host, master, false, Via::Step));
                }
                Step::StatusAndClear { host } => {
                    let am = f.roles.active_master();
                    tokens.extend(self.set_status(f, host, am, false, Via::Step));
                    let clear = Pending::Clear { host };
                    tokens.extend(self.send_other(f, host, AgentCommand::ClearBadRoles, clear));
                }
                Step::Clear { host } => {
                    let clear = Pending::Clear { host };
                    tokens.extend(self.send_other(f, host, AgentCommand::ClearBadRoles, clear));
                }
                Step::Settle { host, master } => {
                    settling.push(host);
                    // Wait for the SET_STATUS in flight only if the latest one already
                    // left out the active-master role; otherwise send a fresh one.
                    let latest_lacks_writer = self
                        .hosts
                        .get(host)
                        .and_then(|h| h.latest)
                        .and_then(|t| self.pending.get(&t))
                        .is_some_and(|p| match p {
                            Pending::Status { roles, .. } => !f.roles.has_am_role(roles),
                            _ => false,
                        });
                    let in_flight: Vec<Token> = if latest_lacks_writer {
                        self.status_in_flight(host).collect()
                    } else {
                        Vec::new()
                    };
                    if in_flight.is_empty() {
                        tokens.extend(self.set_status(f, host, master, true, Via::Step));
                    } else {
                        tokens.extend(in_flight);
                    }
                }
            }
        }
        if bounded {
            if let Some(seq) = &mut self.sequence {
                seq.deadline = Some(f.now + SLAVE_SWITCH_WAIT);
            }
        }
        (tokens, settling)
    }

    /// Sends the SET_STATUS that a finished sequence held back.
    fn release_deferred(&mut self, f: &Facts<'_>) {
        for host in self.hosts.ids() {
            if self.hosts[host].deferred {
                self.tell(f, host);
            }
        }
    }

    /// With `agent_lease` on: whether `step` gives the writer role to a host while another
    /// host that may hold it could still be within its lease.
    fn lease_wait(&self, f: &Facts<'_>, step: &[Step]) -> Option<LeaseWait> {
        if self.lease.is_zero() {
            return None;
        }
        f.roles.am()?;
        let gainers: Vec<HostId> = step
            .iter()
            .filter_map(|st| match st {
                Step::Status { host, .. } | Step::StatusAndClear { host } => Some(*host),
                _ => None,
            })
            .filter(|&h| f.roles.has_am_role(&f.roles.host_roles(h)))
            .collect();
        if gainers.is_empty() {
            return None;
        }
        let mut until: Option<(Instant, HostId)> = None;
        for h in self.writer_holders(f) {
            if gainers.contains(&h) || self.hosts[h].writer_released {
                continue;
            }
            if self.pending.values().any(|p| p.host() == h) {
                return Some(LeaseWait::Open(h));
            }
            let t = self.hosts[h].lease_anchor + self.lease + LEASE_GRACE;
            if t > f.now && until.is_none_or(|(u, _)| t > u) {
                until = Some((t, h));
            }
        }
        until.map(|(t, h)| LeaseWait::Until(t, h))
    }

    /// Logs a lease wait (at most once per step for an open exchange, once with the time).
    fn log_lease_wait(&mut self, f: &Facts<'_>, wait: &LeaseWait, step: &[Step]) {
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
        let gainer = step
            .iter()
            .find(|st| matches!(st, Step::Status { .. } | Step::StatusAndClear { .. }))
            .map(|st| f.name(st.host()))
            .unwrap_or_default();
        let (holder, wait) = match wait {
            LeaseWait::Until(t, h) => (*h, Some(t.saturating_duration_since(f.now))),
            LeaseWait::Open(h) => (*h, None),
        };
        self.decide(Decision::LeaseWait {
            holder: f.name(holder),
            gainer,
            wait,
        });
    }
}
