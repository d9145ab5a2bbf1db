//! Lossless crash failover (issue 13, extension directive `semi_sync`): what the core does
//! with the shell's semi-sync verdict ([`Durability`], from `checks/semi_sync.rs`).
//!
//! - With `semi_sync 1`, when the active master has failed (HARD_OFFLINE or its agent
//!   down) and the writer role is orphaned, the role goes to another master only if the
//!   latest verdict says that master holds every acknowledged write. Otherwise the
//!   promotion is refused ([`Decision::PromotionRefused`], ERROR): the writer role is held
//!   for the old master (it gets it back once ONLINE again) until an operator runs
//!   `move_role --force`; `show` says why and what to do.
//! - A promotion after a failure is always said: lossless with semi-sync
//!   ([`Decision::LosslessFailover`]), or, without `semi_sync`, that acknowledged writes may
//!   be lost ([`Decision::FailoverMayLoseWrites`], ERROR).
//! - A switch away from a reachable old master (`move_role`, `set_offline`) is not a
//!   failover: the new master waits until it has applied everything the old one wrote.

use mmm_common::state::HostState;

use super::decision::Decision;
use super::ids::HostId;
use super::Monitor;

/// The shell's verdict on semi-synchronous replication (sent when it changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    /// Every write the active master acknowledged is provably on the standby master:
    /// semi-sync was on (writer waiting, the standby acknowledging and connected) at the
    /// last look at the writer, and the standby received everything the writer had
    /// acknowledged by then (the ack ledger).
    pub lossless: bool,
    /// Why not, or what was seen (for the log and `show`).
    pub why: String,
}

/// A writer role held for the old active master after a refused promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriterHold {
    /// The failed active master (the writer role may only go back to it).
    pub(crate) old: HostId,
    /// Why the promotion was refused.
    pub(crate) why: String,
}

impl Monitor {
    /// A new verdict from the shell.
    pub(super) fn set_durability(&mut self, d: Durability) {
        if self.durability.as_ref() == Some(&d) {
            return;
        }
        if self.config.ext.semi_sync {
            self.decide(Decision::SemiSyncState {
                lossless: d.lossless,
                why: d.why.clone(),
            });
        }
        self.durability = Some(d);
    }

    /// Whether `host` failed (its server or its agent): a switch away from it is a
    /// failover, in which it cannot hand over what it wrote.
    fn failed(&self, host: HostId) -> bool {
        self.hosts
            .get(host)
            .is_some_and(|h| h.state == HostState::HardOffline || h.agent_down)
    }

    /// Before the distribution: with `semi_sync`, holds the orphaned writer role for the
    /// failed active master when the verdict does not say the others hold every
    /// acknowledged write; releases a hold the old master has taken back.
    pub(super) fn guard_promotion(&mut self) {
        if let Some(hold) = &self.writer_hold {
            if self.roles.active_master() == Some(hold.old) {
                self.release_hold();
            }
            return;
        }
        if !self.config.ext.semi_sync || self.roles.active_master().is_some() {
            return;
        }
        let Some(old) = self.last_am.filter(|&o| self.failed(o)) else {
            return;
        };
        let why = match &self.durability {
            Some(d) if d.lossless => return,
            Some(d) => d.why.clone(),
            None => "no semi-sync status of the writer was seen yet".to_string(),
        };
        let candidates = self.hold_candidates(old);
        self.roles.am_only = Some(old);
        self.writer_hold = Some(WriterHold {
            old,
            why: why.clone(),
        });
        self.decide(Decision::PromotionRefused {
            host: old,
            old: self.name(old),
            candidates,
            role: self.roles.am().map(|r| r.name.clone()).unwrap_or_default(),
            why,
        });
    }

    /// The masters that could have taken the writer role from `old`.
    fn hold_candidates(&self, old: HostId) -> Vec<String> {
        self.roles
            .masters()
            .iter()
            .filter(|&&h| h != old)
            .map(|&h| self.name(h))
            .collect()
    }

    /// Ends a hold (the old master is back, or `move_role --force`).
    pub(super) fn release_hold(&mut self) {
        self.writer_hold = None;
        self.roles.am_only = None;
    }

    /// Why `move_role` may not give the writer role to `host` now (a hold for another
    /// host), for its `ERROR:` reply.
    pub(super) fn hold_refuses(&self, host: HostId) -> Option<String> {
        let hold = self.writer_hold.as_ref().filter(|h| h.old != host)?;
        Some(format!(
            "the automatic promotion after the failure of '{}' was refused ({}). Wait for '{}' to come back, or use move_role --force",
            self.name(hold.old),
            hold.why,
            self.name(hold.old)
        ))
    }

    /// `show`'s line for a hold (empty without one).
    pub(super) fn hold_show(&self) -> String {
        let Some(hold) = &self.writer_hold else {
            return String::new();
        };
        let role = self.roles.am().map(|r| r.name.clone()).unwrap_or_default();
        let old = self.name(hold.old);
        let cands = self.hold_candidates(hold.old);
        let force = cands
            .iter()
            .map(|c| format!("'move_role --force {role} {c}'"))
            .collect::<Vec<_>>()
            .join(" or ");
        format!(
            "# Warning: role {role} was not given to {} after {old} failed: semi_sync could not prove that it holds every acknowledged write ({}). Wait for {old} to come back ONLINE (it gets the role back), or run {force} (writes acknowledged by {old} may be lost).\n",
            cands.join("/"),
            hold.why
        )
    }

    /// After a switch of the active master `old` → `new`: a failover says whether it may
    /// have lost acknowledged writes.
    pub(super) fn say_failover(&mut self, old: HostId, new: HostId) {
        if !self.failed(old) {
            return;
        }
        let (name, old_name) = (self.name(new), self.name(old));
        if !self.config.ext.semi_sync {
            self.decide(Decision::FailoverMayLoseWrites {
                host: new,
                name,
                old: old_name,
            });
        } else if let Some(d) = self.durability.as_ref().filter(|d| d.lossless) {
            self.decide(Decision::LosslessFailover {
                host: new,
                name,
                old: old_name,
                seen: d.why.clone(),
            });
        }
    }
}
