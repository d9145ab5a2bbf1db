//! The host state machine (spec §3.6): the transition table as one pure function,
//! [`next_state`], with one match arm per row; one pass over all hosts in config order that
//! applies it with each row's side effects; and the WAIT-mode exit. Also the deadlines of
//! the time-based rows (peer grace, auto_set_online, flap_duration, wait_for_other_master)
//! for [`Monitor::poll_timeout`].
//!
//! "manual" = MANUAL or WAIT. mmm-rs decision: PASSIVE behaves like manual here (an ONLINE
//! host that fails keeps its roles in memory and no kill_host runs; 2.2.1 cleared them).

use std::time::{Duration, Instant};

use mmm_common::state::{HostState, MonitorMode};

use super::decision::{Decision, Reason};
use super::ids::HostId;
use super::types::CheckKind;
use super::{Monitor, PEER_GRACE};

/// The four check verdicts of one host (P, M, T, B in the spec's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdicts {
    pub(crate) ping: bool,
    pub(crate) mysql: bool,
    pub(crate) rep_threads: bool,
    pub(crate) rep_backlog: bool,
}

impl Verdicts {
    /// P and M.
    fn reachable(self) -> bool {
        self.ping && self.mysql
    }

    /// T and B.
    fn replicating(self) -> bool {
        self.rep_threads && self.rep_backlog
    }
}

/// The host's peer for the §3.6 rules (its configured peer, or the active master for a
/// slave-mode host without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerView {
    /// PS.
    pub(crate) state: HostState,
    /// The peer's ping and mysql checks are OK.
    pub(crate) reachable: bool,
    /// How long ago the peer last became ONLINE.
    pub(crate) online_for: Option<Duration>,
}

/// What one row of the §3.6 table looks at for one host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct View {
    /// The host's state.
    pub(crate) state: HostState,
    /// Its check verdicts.
    pub(crate) checks: Verdicts,
    /// It is the active master (AM, computed once per pass).
    pub(crate) is_active_master: bool,
    /// There is an active master (AM ≠ '').
    pub(crate) has_active_master: bool,
    /// It is listed in the active-master role.
    pub(crate) can_be_master: bool,
    /// Its peer, if any.
    pub(crate) peer: Option<PeerView>,
    /// Its flapping flag (§3.7).
    pub(crate) flapping: bool,
    /// How long since its state last changed.
    pub(crate) in_state_for: Duration,
    /// How long since the latest change of any of its checks.
    pub(crate) checks_quiet_for: Option<Duration>,
    /// Uptime from the latest agent reply.
    pub(crate) uptime: f64,
    /// Uptime from the latest agent reply received while ONLINE.
    pub(crate) last_uptime: f64,
    /// `auto_set_online` (zero: off).
    pub(crate) auto_set_online: Duration,
    /// `flap_duration`.
    pub(crate) flap_duration: Duration,
    /// Kept out of ONLINE by the errant-transaction guard (issue 13, `errant.rs`): errant
    /// transactions found, or not compared yet after a change of active master.
    pub(crate) errant_hold: bool,
    /// Errant transactions found (or the guard cannot run): also taken out of ONLINE.
    pub(crate) errant_found: bool,
}

/// The §3.6 transition table: the state `view`'s host goes to and why, or `None` if it
/// stays. One arm per row, first match wins, in the spec's order.
pub(crate) fn next_state(v: &View) -> Option<(HostState, Reason)> {
    use HostState::*;
    let c = v.checks;
    let peer_online = v.peer.is_some_and(|p| p.state == Online);
    let peer_reachable = v.peer.is_some_and(|p| p.reachable);
    let in_grace = v
        .peer
        .is_some_and(|p| p.state == Online && p.online_for.is_some_and(|d| d <= PEER_GRACE));
    let ping_mysql = Reason::PingMysql {
        ping: c.ping,
        mysql: c.mysql,
    };
    let in_state_secs = v.in_state_for.as_secs();
    let down = v.uptime - v.last_uptime;
    match v.state {
        // ADMIN_OFFLINE | always | (unchanged): host skipped entirely.
        AdminOffline | Unknown => None,
        // ONLINE | not (P and M) | HARD_OFFLINE
        Online if !c.reachable() => Some((HardOffline, ping_mysql)),
        // ONLINE | host = AM | (unchanged)
        Online if v.is_active_master => None,
        // mmm-rs (issue 13): a master with errant transactions is kept out.
        Online if v.errant_found => Some((AwaitingRecovery, Reason::ErrantTransactions)),
        // ONLINE | PS = ONLINE and peer.online_since ≥ now − 60 | (unchanged)
        Online if in_grace => None,
        // ONLINE | P, M, not T, PS = ONLINE, peer P and M | REPLICATION_FAIL
        Online if !c.rep_threads && peer_online && peer_reachable => {
            Some((ReplicationFail, Reason::Checks))
        }
        // ONLINE | P, M, T, not B, PS = ONLINE, peer P and M | REPLICATION_DELAY
        Online if !c.rep_backlog && peer_online && peer_reachable => {
            Some((ReplicationDelay, Reason::Checks))
        }
        Online => None,
        // AWAITING_RECOVERY | not (P and M) | HARD_OFFLINE
        AwaitingRecovery if !c.reachable() => Some((HardOffline, Reason::Checks)),
        AwaitingRecovery if !c.replicating() || v.errant_hold => None,
        // AWAITING_RECOVERY | P, M, T, B and flapping | ONLINE only if auto_set_online > 0
        // and flap_duration passed since the host's last check change
        AwaitingRecovery if v.flapping => {
            let quiet = v.checks_quiet_for.is_some_and(|q| q >= v.flap_duration);
            (!v.auto_set_online.is_zero() && quiet).then_some((
                Online,
                Reason::FlapQuiet {
                    flap_duration: v.flap_duration,
                    in_state_secs,
                },
            ))
        }
        // AWAITING_RECOVERY | P, M, T, B, not flapping, last_uptime > 0 and
        // 0 < uptime − last_uptime < 60 | ONLINE
        AwaitingRecovery
            if v.last_uptime > 0.0 && down > 0.0 && down < PEER_GRACE.as_secs_f64() =>
        {
            let down_secs = down as u64;
            Some((Online, Reason::ShortDowntime { down_secs }))
        }
        // AWAITING_RECOVERY | P, M, T, B, not flapping, auto_set_online > 0 and
        // now − last_state_change ≥ auto_set_online | ONLINE
        AwaitingRecovery if !v.auto_set_online.is_zero() && v.in_state_for >= v.auto_set_online => {
            Some((
                Online,
                Reason::AutoSetOnline {
                    after: v.auto_set_online,
                    in_state_secs,
                },
            ))
        }
        AwaitingRecovery => None,
        HardOffline if !c.reachable() => None,
        // HARD_OFFLINE | P and M, (AM ≠ '' or host cannot hold the active-master role),
        // not T | REPLICATION_FAIL; same guard, T, not B | REPLICATION_DELAY; otherwise
        // AWAITING_RECOVERY
        HardOffline => {
            let guard = v.has_active_master || !v.can_be_master;
            let to = if guard && !c.rep_threads {
                ReplicationFail
            } else if guard && !c.rep_backlog {
                ReplicationDelay
            } else {
                AwaitingRecovery
            };
            Some((to, Reason::Checks))
        }
        // REPLICATION_FAIL / _DELAY | not (P and M) | HARD_OFFLINE
        ReplicationFail | ReplicationDelay if !c.reachable() => Some((HardOffline, ping_mysql)),
        // REPLICATION_FAIL | P, M, T, not B | REPLICATION_DELAY
        ReplicationFail if c.rep_threads && !c.rep_backlog => {
            Some((ReplicationDelay, Reason::Checks))
        }
        // REPLICATION_DELAY | P, M, not T | REPLICATION_FAIL
        ReplicationDelay if !c.rep_threads => Some((ReplicationFail, Reason::Checks)),
        // REPLICATION_FAIL / _DELAY | P, M and ((T and B) or PS ≠ ONLINE), flapping |
        // AWAITING_RECOVERY; not flapping | ONLINE
        ReplicationFail | ReplicationDelay if c.replicating() || !peer_online => {
            if v.errant_found {
                Some((AwaitingRecovery, Reason::ErrantTransactions))
            } else if v.errant_hold {
                None
            } else if v.flapping {
                Some((AwaitingRecovery, Reason::Flapping))
            } else {
                Some((Online, Reason::Checks))
            }
        }
        ReplicationFail | ReplicationDelay => None,
    }
}

/// The side effect of a §3.6 transition (the table's last column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing besides the log line.
    None,
    /// Send.
    Tell,
    /// Send with kill-on-fail.
    TellOrKill,
    /// Unless manual (or PASSIVE): clear all roles of the host, send, kill-on-fail.
    Fail,
}

/// The side effect of the transition `from` → `to`.
pub(crate) fn effect(from: HostState, to: HostState) -> Effect {
    use HostState::*;
    match (from, to) {
        (Online, _) => Effect::Fail,
        (AwaitingRecovery, HardOffline) => Effect::None,
        (ReplicationFail | ReplicationDelay, HardOffline) => Effect::TellOrKill,
        (ReplicationFail, ReplicationDelay) | (ReplicationDelay, ReplicationFail) => Effect::None,
        _ => Effect::Tell,
    }
}

impl Monitor {
    fn verdicts(&self, host: HostId) -> Verdicts {
        Verdicts {
            ping: self.checks.ok(host, CheckKind::Ping),
            mysql: self.checks.ok(host, CheckKind::Mysql),
            rep_threads: self.checks.ok(host, CheckKind::RepThreads),
            rep_backlog: self.checks.ok(host, CheckKind::RepBacklog),
        }
    }

    fn auto_set_online(&self) -> Duration {
        self.config.monitor.auto_set_online
    }

    fn flap_duration(&self) -> Duration {
        self.config.monitor.flap_duration
    }

    /// The peer of `host` for the §3.6 rules: its configured peer, or the active master
    /// for a slave-mode host without one.
    fn rule_peer(&self, host: HostId, am: Option<HostId>) -> Option<HostId> {
        let h = self.hosts.get(host)?;
        match h.peer {
            Some(p) => Some(p),
            None if !h.is_master_mode() => am,
            None => None,
        }
    }

    /// When the §3.6 peer of `host` came ONLINE, for the peer grace. mmm-rs (issue 13): for a
    /// slave, whose peer is the active master, also when that host became the active
    /// master — until its agent has switched it, a slave replicates from the old one, and
    /// since `rep_threads` fails an IO thread that is not connected, a failover would
    /// otherwise push the slaves through REPLICATION_FAIL (2.2.1 counted `Connecting` OK).
    fn peer_online_since(&self, host: HostId, peer: Option<HostId>) -> Option<Instant> {
        let since = peer
            .and_then(|p| self.hosts.get(p))
            .and_then(|p| p.online_since);
        match self.hosts.get(host) {
            Some(h) if h.peer.is_none() && !h.is_master_mode() => since.max(self.am_since),
            _ => since,
        }
    }

    /// What the §3.6 table looks at for `host`, with `am` the pass's active master.
    pub(crate) fn view(&self, host: HostId, am: Option<HostId>) -> Option<View> {
        let now = self.now;
        let h = self.hosts.get(host)?;
        let peer = self.rule_peer(host, am).map(|p| {
            let rec = self.hosts.get(p);
            PeerView {
                state: rec.map_or(HostState::Unknown, |r| r.state),
                reachable: self.checks.ok(p, CheckKind::Ping)
                    && self.checks.ok(p, CheckKind::Mysql),
                online_for: self
                    .peer_online_since(host, Some(p))
                    .map(|s| now.saturating_duration_since(s)),
            }
        });
        Some(View {
            state: h.state,
            checks: self.verdicts(host),
            is_active_master: Some(host) == am,
            has_active_master: am.is_some(),
            can_be_master: self.roles.is_master(host),
            peer,
            flapping: h.flapping,
            in_state_for: now.saturating_duration_since(h.last_state_change),
            checks_quiet_for: self
                .checks
                .host_last_change(host)
                .map(|lc| now.saturating_duration_since(lc)),
            uptime: h.uptime,
            last_uptime: h.last_uptime,
            auto_set_online: self.auto_set_online(),
            flap_duration: self.flap_duration(),
            errant_hold: self.errant_hold(host),
            errant_found: self.errant_found(host),
        })
    }

    /// Whether [`next_state`] keeps `host` where it is whatever the rest of its view says
    /// (issue 14: with 200 hosts, building every host's view after every input was most of
    /// the core's time): ADMIN_OFFLINE, or ONLINE with its four checks OK and no errant
    /// transactions found (every ONLINE row that moves a host needs a failed check or
    /// `errant_found`). Pure, like the view: the pass's outcome is the same.
    fn stays_without_view(&self, host: HostId) -> bool {
        let Some(h) = self.hosts.get(host) else {
            return false;
        };
        match h.state {
            HostState::AdminOffline | HostState::Unknown => true,
            HostState::Online => {
                let v = self.verdicts(host);
                v.reachable()
                    && v.rep_threads
                    && v.rep_backlog
                    && !(h.is_master_mode() && self.errant_found(host))
            }
            _ => false,
        }
    }

    /// One transition pass over all hosts (spec §3.6), AM computed once at the start.
    pub(crate) fn transitions(&mut self) {
        let am = self.roles.active_master();
        for host in self.hosts.ids() {
            if self.stays_without_view(host) {
                continue;
            }
            let Some(view) = self.view(host, am) else {
                continue;
            };
            let Some((to, reason)) = next_state(&view) else {
                continue;
            };
            let from = view.state;
            let name = self.name(host);
            self.decide(Decision::StateChanged {
                host,
                name,
                from,
                to,
                reason,
            });
            self.set_state(host, to);
            match effect(from, to) {
                Effect::None => {}
                Effect::Tell => self.tell(host),
                Effect::TellOrKill => self.tell_or_kill(host),
                Effect::Fail => {
                    if !self.manual() && self.mode != MonitorMode::Passive {
                        self.clear_roles(host);
                        self.tell_or_kill(host);
                    }
                }
            }
        }
    }

    /// WAIT mode exit (spec §3.6, after the per-host pass).
    pub(crate) fn wait_exit(&mut self) {
        let masters = self.roles.masters().to_vec();
        let (Some(&m1), Some(&m2)) = (masters.first(), masters.get(1)) else {
            // 2.2.1 crashes with a single master; we stay in WAIT.
            return;
        };
        let on = |h: HostId| {
            self.hosts
                .get(h)
                .is_some_and(|h| h.state == HostState::Online)
        };
        let wfom = self.config.monitor.wait_for_other_master;
        if on(m1) && on(m2) {
            self.decide(Decision::WaitEndedBothOnline {
                first: self.name(m1),
                second: self.name(m2),
            });
        } else if !wfom.is_zero() && on(m1) != on(m2) {
            let (living, dead) = if on(m1) { (m1, m2) } else { (m2, m1) };
            let since = self.hosts[living].online_since;
            let waited = match since {
                Some(s) => self.now.saturating_duration_since(s) >= wfom,
                None => false,
            };
            if !waited {
                return;
            }
            self.decide(Decision::WaitEndedTimeout {
                dead: self.name(dead),
                waited: wfom,
            });
        } else {
            return;
        }
        self.mode = MonitorMode::Active;
        self.clear_non_online_holders();
    }

    /// For every host not ONLINE that still holds roles: clear roles, send, kill-on-fail
    /// (leaving WAIT, `set_active` from MANUAL/WAIT).
    pub(crate) fn clear_non_online_holders(&mut self) {
        for host in self.hosts.ids() {
            if self.hosts[host].state != HostState::Online
                && !self.roles.host_roles(host).is_empty()
            {
                self.clear_roles(host);
                self.tell_or_kill(host);
            }
        }
    }

    /// The earliest future deadline of a time-based rule, for `poll_timeout`.
    pub(crate) fn rule_deadline(&self) -> Option<Instant> {
        let now = self.now;
        let mut best: Option<Instant> = None;
        let mut add = |d: Instant| {
            if d > now {
                best = Some(best.map_or(d, |b: Instant| b.min(d)));
            }
        };
        let auto = self.auto_set_online();
        let am = self.roles.active_master();
        for (i, h) in self.hosts.enumerate() {
            match h.state {
                HostState::AwaitingRecovery if !auto.is_zero() => {
                    if h.flapping {
                        if let Some(lc) = self.checks.host_last_change(i) {
                            add(lc + self.flap_duration());
                        }
                    } else {
                        add(h.last_state_change + auto);
                    }
                }
                HostState::Online => {
                    if let Some(s) = self.peer_online_since(i, self.rule_peer(i, am)) {
                        add(s + PEER_GRACE + Duration::from_millis(1));
                    }
                }
                _ => {}
            }
        }
        if self.mode == MonitorMode::Wait {
            let wfom = self.config.monitor.wait_for_other_master;
            if !wfom.is_zero() {
                for &m in self.roles.masters() {
                    if let Some(s) = self.hosts.get(m).and_then(|h| h.online_since) {
                        add(s + wfom);
                    }
                }
            }
        }
        best
    }
}
