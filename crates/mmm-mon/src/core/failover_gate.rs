//! The failover gate (issue 17, extension directives `pre_failover_bin`,
//! `post_failover_bin`): an orphaned exclusive role (the writer) that would go to a host
//! other than its last holder in ACTIVE mode is a failover. With `pre_failover_bin` set the
//! core holds it, asks the shell to run the hook ([`Action::PreFailover`]) and assigns the
//! role only once the hook allowed it ([`Input::PreFailoverResult`]); a veto (non-zero exit
//! or timeout) is logged as [`Decision::FailoverHeld`] and the hook is asked again every
//! `pre_failover_retry`. With either hook set the failover itself is logged as
//! [`Decision::Failover`] (the shell runs `post_failover_bin` on it). `move_role` is an
//! admin switchover and is not gated. Without both directives nothing here runs and the
//! log is 2.2.1's.

use std::time::Instant;

use mmm_common::role::RoleIp;
use mmm_common::state::MonitorMode;

use super::decision::Decision;
use super::ids::HostId;
use super::io::Action;
use super::Monitor;

/// Where a gated failover stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateState {
    /// The hook runs (run number `seq`).
    Asking { seq: u64, since: Instant },
    /// The hook vetoed; ask again at `retry_at`.
    Vetoed { retry_at: Instant },
    /// The hook allowed it: the next distribution assigns the role.
    Allowed,
}

/// A failover the gate is deciding on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The role (index in the role table).
    pub(crate) role: usize,
    /// Its last holder.
    pub(crate) from: HostId,
    /// The host it would go to.
    pub(crate) to: HostId,
    /// Where it stands.
    pub(crate) state: GateState,
    /// The hook's last veto, for `show`.
    pub(crate) why: String,
}

/// The gate's record, kept by [`Monitor`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    /// Per role (table index): its last holder.
    pub(crate) last_owner: Vec<Option<HostId>>,
    /// The failover being decided, if any.
    pub(crate) pending: Option<Pending>,
    /// The next hook run number.
    pub(crate) next_seq: u64,
}

impl Monitor {
    fn gate_hooks(&self) -> (bool, bool) {
        let ext = &self.config.ext;
        let pre = ext.pre_failover_bin.is_some();
        (pre, pre || ext.post_failover_bin.is_some())
    }

    /// Before a distribution: which roles' orphans must not be assigned now (per role
    /// table index). Starts a hook run for a new failover.
    pub(crate) fn gate_before_distribution(
        &mut self,
        eligible: &dyn Fn(HostId) -> bool,
    ) -> Vec<bool> {
        let n = self.roles.roles.len();
        let mut held = vec![false; n];
        self.gate.last_owner.resize(n, None);
        let (pre, _) = self.gate_hooks();
        if !pre || self.mode != MonitorMode::Active {
            self.gate.pending = None;
            return held;
        }
        let mut wanted = None;
        for (ri, r) in self.roles.roles.iter().enumerate() {
            if !r.exclusive || r.ips.iter().all(|s| s.owner.is_some()) {
                continue;
            }
            let (Some(from), Some(to)) = (
                self.gate.last_owner[ri],
                self.roles.pick_orphan_host(ri, eligible),
            ) else {
                continue;
            };
            if from != to {
                wanted = Some((ri, from, to));
                break;
            }
        }
        let Some((ri, from, to)) = wanted else {
            self.gate.pending = None;
            return held;
        };
        let same = self
            .gate
            .pending
            .as_ref()
            .is_some_and(|p| p.role == ri && p.from == from && p.to == to);
        if !same {
            self.gate.pending = Some(Pending {
                role: ri,
                from,
                to,
                state: GateState::Vetoed { retry_at: self.now },
                why: String::new(),
            });
        }
        let pending = self.gate.pending.clone();
        match pending.map(|p| p.state) {
            Some(GateState::Allowed) => {}
            Some(GateState::Vetoed { retry_at }) if retry_at <= self.now => {
                self.ask_pre_failover();
                held[ri] = true;
            }
            _ => held[ri] = true,
        }
        held
    }

    /// After a distribution: remembers each exclusive role's holder and logs a failover.
    pub(crate) fn gate_after_distribution(&mut self) {
        let (_, any) = self.gate_hooks();
        let n = self.roles.roles.len();
        self.gate.last_owner.resize(n, None);
        for ri in 0..n {
            let r = &self.roles.roles[ri];
            if !r.exclusive {
                continue;
            }
            let Some(slot) = r.ips.first() else { continue };
            let Some(owner) = slot.owner else { continue };
            let role = RoleIp::new(r.name.clone(), slot.ip.clone());
            let last = self.gate.last_owner[ri].replace(owner);
            if let Some(from) = last.filter(|&l| l != owner) {
                if self.gate.pending.as_ref().is_some_and(|p| p.role == ri) {
                    self.gate.pending = None;
                }
                if any {
                    self.decide(Decision::Failover {
                        host: owner,
                        role,
                        from: self.name(from),
                        to: self.name(owner),
                    });
                }
            }
        }
    }

    /// Records the exclusive roles' holders without logging (after an admin command and
    /// the startup: `move_role` is a switchover, not a failover).
    pub(crate) fn gate_sync(&mut self) {
        let n = self.roles.roles.len();
        self.gate.last_owner.resize(n, None);
        for ri in 0..n {
            if let Some(owner) = self.roles.roles[ri].ips.first().and_then(|s| s.owner) {
                self.gate.last_owner[ri] = Some(owner);
            }
        }
    }

    /// Asks the shell to run `pre_failover_bin` for the pending failover.
    fn ask_pre_failover(&mut self) {
        let now = self.now;
        let seq = self.gate.next_seq;
        self.gate.next_seq += 1;
        let Some(p) = self.gate.pending.as_mut() else {
            return;
        };
        p.state = GateState::Asking { seq, since: now };
        let (ri, from, to) = (p.role, p.from, p.to);
        let r = &self.roles.roles[ri];
        let role = RoleIp::new(
            r.name.clone(),
            r.ips.first().map(|s| s.ip.clone()).unwrap_or_default(),
        );
        self.actions.push_back(Action::PreFailover {
            seq,
            role,
            from: self.name(from),
            to: self.name(to),
        });
    }

    /// The hook run `seq` ended: `allowed`, else vetoed with `why` (exit status, output).
    pub(crate) fn pre_failover_result(&mut self, seq: u64, allowed: bool, why: String) {
        let now = self.now;
        let retry = self.config.ext.pre_failover_retry;
        let Some(p) = self.gate.pending.as_mut() else {
            return;
        };
        if !matches!(p.state, GateState::Asking { seq: s, .. } if s == seq) {
            return;
        }
        let r = &self.roles.roles[p.role];
        let role = RoleIp::new(
            r.name.clone(),
            r.ips.first().map(|s| s.ip.clone()).unwrap_or_default(),
        );
        let (from, to) = (
            self.names[p.from.index()].clone(),
            self.names[p.to.index()].clone(),
        );
        if allowed {
            p.state = GateState::Allowed;
            self.decide(Decision::FailoverAllowed { role, from, to });
        } else {
            p.state = GateState::Vetoed {
                retry_at: now + retry,
            };
            p.why = why.clone();
            self.decide(Decision::FailoverHeld {
                role,
                from,
                to,
                why,
                retry,
            });
        }
    }

    /// The gate's next deadline (a vetoed failover's retry).
    pub(crate) fn gate_deadline(&self) -> Option<Instant> {
        match self.gate.pending.as_ref()?.state {
            GateState::Vetoed { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    /// `show`'s line about a held failover (only ever with `pre_failover_bin` set).
    pub(crate) fn gate_show_line(&self) -> Option<String> {
        let p = self.gate.pending.as_ref()?;
        let role = &self.roles.roles[p.role].name;
        let (from, to) = (self.name(p.from), self.name(p.to));
        match p.state {
            GateState::Allowed => None,
            GateState::Asking { .. } if p.why.is_empty() => Some(format!(
                "# Failover of role {role} from {from} to {to} waits for pre_failover_bin\n"
            )),
            _ => Some(format!(
                "# Failover of role {role} from {from} to {to} is held by pre_failover_bin: {}\n",
                p.why.lines().next().unwrap_or("")
            )),
        }
    }
}
