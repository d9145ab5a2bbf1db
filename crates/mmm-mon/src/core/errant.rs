//! The errant-transaction guard (issue 13; docs/data-safety.md): a master that is not the
//! active master and holds transactions the active master never had is kept out — no
//! roles, never ONLINE (not by the §3.6 table, `auto_set_online` or `set_online`) — until an
//! operator accepts them (`accept_errant <host>`) or re-seeds it. After a change of active
//! master the old one is held until it has been compared; the new active master's
//! replication from its peer (held by its agent at an unclean promotion) is resumed with
//! `RESUME_PEER_LINK` only once that peer is known clean or accepted.
//!
//! The comparison itself runs in the shell (`checks/gtid.rs`) and arrives as
//! [`Input::Errant`](super::Input::Errant); this file keeps the verdicts and applies them.
//! Off (no input ever holds anything) unless the shell arms it
//! ([`Monitor::set_errant_guard`]), which it does with `errant_transactions hold`.

use mmm_common::gtid::ErrantSet;
use mmm_common::proto::agent::AgentCommand;

use super::decision::Decision;
use super::ids::HostId;
use super::Monitor;

/// What the monitor knows about one master's errant transactions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Guard {
    /// Never compared, nothing to hold (the guard is not armed, or the host was never the
    /// old side of a change of active master).
    #[default]
    NotSeen,
    /// Was the active master until a change: held until compared with the new one.
    Pending,
    /// Compared: nothing errant.
    Clean,
    /// Compared: errant transactions.
    Found(ErrantSet),
    /// The comparison cannot run (GTID-less server): held until accepted.
    Unavailable(String),
    /// An operator accepted them (`accept_errant`): they replicate as in 2.2.1.
    Accepted,
}

impl Guard {
    /// Whether this verdict keeps the host out.
    fn holds(&self) -> bool {
        matches!(
            self,
            Guard::Pending | Guard::Found(_) | Guard::Unavailable(_)
        )
    }

    /// Whether the active master may replicate from this host.
    fn clears(&self) -> bool {
        matches!(self, Guard::Clean | Guard::Accepted)
    }
}

/// The guard's state in the monitor.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrantGuard {
    /// Armed by the shell (`errant_transactions hold` and the comparison task running).
    pub(crate) armed: bool,
    /// Per host (config order).
    pub(crate) hosts: Vec<Guard>,
    /// The active master's replication from its peer may be held: send `RESUME_PEER_LINK`
    /// once the peer clears.
    pub(crate) resume_owed: bool,
    /// A `RESUME_PEER_LINK` is on the way.
    pub(crate) resume_in_flight: bool,
}

impl Monitor {
    /// Arms the errant-transaction guard (the shell runs the comparison task).
    pub fn set_errant_guard(&mut self, on: bool) {
        self.errant.armed = on;
        self.errant.hosts = vec![Guard::NotSeen; self.names.len()];
    }

    fn guard(&self, host: HostId) -> Option<&Guard> {
        self.errant.hosts.get(host.index())
    }

    /// Whether `host` is kept out by the guard: a master other than the active master
    /// whose verdict holds.
    pub(crate) fn errant_hold(&self, host: HostId) -> bool {
        let am = self.roles.active_master();
        self.errant.armed
            && am.is_some()
            && am != Some(host)
            && self.hosts.get(host).is_some_and(|h| h.is_master_mode())
            && self.guard(host).is_some_and(Guard::holds)
    }

    /// Whether errant transactions were found on `host` (or cannot be ruled out because
    /// the comparison cannot run): an ONLINE host is taken out.
    pub(crate) fn errant_found(&self, host: HostId) -> bool {
        self.errant_hold(host)
            && matches!(
                self.guard(host),
                Some(Guard::Found(_) | Guard::Unavailable(_))
            )
    }

    /// Why `host` is kept out (for `set_online` and `show`).
    pub(crate) fn errant_text(&self, host: HostId) -> Option<String> {
        if !self.errant_hold(host) {
            return None;
        }
        let am = self.name(self.roles.active_master()?);
        Some(match self.guard(host)? {
            Guard::Found(set) => format!(
                "{} errant transaction(s) ({set}) that the active master {am} never had",
                set.count()
            ),
            Guard::Unavailable(why) => format!(
                "possibly errant transactions: the errant-transaction guard cannot run ({why})"
            ),
            _ => format!("not compared with the active master {am} yet"),
        })
    }

    /// The comparison of `host` with `against` came back.
    pub(crate) fn handle_errant(
        &mut self,
        host: HostId,
        against: HostId,
        result: Result<ErrantSet, String>,
    ) {
        let am = self.roles.active_master();
        if !self.errant.armed || am != Some(against) || host == against {
            return;
        }
        if !self.hosts.get(host).is_some_and(|h| h.is_master_mode()) {
            return;
        }
        let Some(old) = self.guard(host).cloned() else {
            return;
        };
        let new = match result {
            Ok(set) if set.is_empty() => Guard::Clean,
            _ if old == Guard::Accepted => Guard::Accepted,
            Ok(set) => Guard::Found(set),
            Err(why) => Guard::Unavailable(why),
        };
        if new == old {
            self.maybe_resume();
            return;
        }
        let name = self.name(host);
        let active = self.name(against);
        match &new {
            Guard::Found(set) if !matches!(old, Guard::Found(_)) => {
                self.decide(Decision::ErrantFound {
                    host,
                    name,
                    active,
                    count: set.count(),
                    ranges: set.to_string(),
                })
            }
            Guard::Unavailable(why) => self.decide(Decision::ErrantGuardUnavailable {
                host,
                name,
                why: why.clone(),
            }),
            Guard::Clean if matches!(old, Guard::Found(_) | Guard::Unavailable(_)) => {
                self.decide(Decision::ErrantCleared { host, name, active })
            }
            _ => {}
        }
        if let Some(g) = self.errant.hosts.get_mut(host.index()) {
            *g = new;
        }
        self.maybe_resume();
    }

    /// The active master changed `old` → `new`: the old one is held until compared with
    /// the new one, an acceptance no longer counts, and the new one's replication from
    /// its peer is resumed once the peer clears.
    pub(crate) fn errant_master_changed(&mut self, old: Option<HostId>, new: Option<HostId>) {
        if !self.errant.armed {
            return;
        }
        for g in &mut self.errant.hosts {
            if *g == Guard::Accepted {
                *g = Guard::NotSeen;
            }
        }
        if let (Some(o), Some(_)) = (old, new) {
            if let Some(g) = self.errant.hosts.get_mut(o.index()) {
                if !g.holds() {
                    *g = Guard::Pending;
                }
            }
        }
        self.errant.resume_owed = new.is_some();
        self.errant.resume_in_flight = false;
    }

    /// Sends `RESUME_PEER_LINK` to the active master when it is owed and every other
    /// master clears.
    pub(crate) fn maybe_resume(&mut self) {
        let Some(am) = self.roles.active_master() else {
            return;
        };
        if !self.errant.armed || !self.errant.resume_owed || self.errant.resume_in_flight {
            return;
        }
        let masters = self.roles.masters().to_vec();
        let clear = masters
            .iter()
            .filter(|&&m| m != am)
            .all(|&m| self.guard(m).is_some_and(Guard::clears));
        if !clear {
            return;
        }
        let sent = self.with_outbox(|o, f| o.resume_peer_link(f, am, AgentCommand::ResumePeerLink));
        self.errant.resume_in_flight = sent.is_some();
    }

    /// The reply to `RESUME_PEER_LINK` came back.
    pub(crate) fn resume_replied(&mut self, host: HostId, ok: bool, answer: String) {
        self.errant.resume_in_flight = false;
        if ok {
            self.errant.resume_owed = false;
            self.decide(Decision::PeerLinkResumed {
                host,
                name: self.name(host),
                answer,
            });
        }
    }

    /// `accept_errant <host>` (mmm-rs extension): the operator accepts `host`'s errant
    /// transactions; they replicate into the active master as in 2.2.1.
    pub(crate) fn accept_errant(&mut self, name: &str) -> String {
        let Some(host) = self.names.iter().position(|n| n == name).map(HostId) else {
            return format!("ERROR: Unknown host name '{name}'!");
        };
        if !self.errant_hold(host) {
            return format!(
                "OK: Host '{name}' has no errant transactions held. Nothing to accept."
            );
        }
        let what = self.errant_text(host).unwrap_or_default();
        if let Some(g) = self.errant.hosts.get_mut(host.index()) {
            *g = Guard::Accepted;
        }
        self.decide(Decision::ErrantAccepted {
            host,
            name: name.to_string(),
            what: what.clone(),
        });
        self.errant.resume_owed = true;
        self.maybe_resume();
        format!(
            "OK: Accepted the errant transactions of '{name}' ({what}): they now replicate into the active master. '{name}' can be set online."
        )
    }
}
