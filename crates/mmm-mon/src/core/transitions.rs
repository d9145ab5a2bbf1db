//! The host state machine (spec §3.6): one pass over all hosts in config order, one match
//! arm per row of the transition table, and the WAIT-mode exit. Also the deadlines of the
//! time-based rows (peer grace, auto_set_online, flap_duration, wait_for_other_master) for
//! [`Monitor::poll_timeout`].
//!
//! "manual" = MANUAL or WAIT. mmm-rs decision: PASSIVE behaves like manual here (an ONLINE
//! host that fails keeps its roles in memory and no kill_host runs; 2.2.1 cleared them).

use std::time::{Duration, Instant};

use mmm_common::state::{HostState, MonitorMode};

use super::{CheckKind, Level, Monitor, PEER_GRACE};

/// The four check statuses of one host.
#[derive(Debug, Clone, Copy)]
struct Pmtb {
    p: bool,
    m: bool,
    t: bool,
    b: bool,
}

fn ok_word(b: bool) -> &'static str {
    if b {
        "OK"
    } else {
        "not OK"
    }
}

impl Monitor {
    fn pmtb(&self, host: usize) -> Pmtb {
        Pmtb {
            p: self.checks.ok(host, CheckKind::Ping),
            m: self.checks.ok(host, CheckKind::Mysql),
            t: self.checks.ok(host, CheckKind::RepThreads),
            b: self.checks.ok(host, CheckKind::RepBacklog),
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
    fn rule_peer(&self, host: usize, am: Option<usize>) -> Option<usize> {
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
    fn peer_online_since(&self, host: usize, peer: Option<usize>) -> Option<Instant> {
        let since = peer
            .and_then(|p| self.hosts.get(p))
            .and_then(|p| p.online_since);
        match self.hosts.get(host) {
            Some(h) if h.peer.is_none() && !h.is_master_mode() => since.max(self.am_since),
            _ => since,
        }
    }

    /// One transition pass over all hosts (spec §3.6), AM computed once at the start.
    pub(crate) fn transitions(&mut self) {
        let am = self.roles.active_master();
        for host in 0..self.hosts.len() {
            self.transition_host(host, am);
        }
    }

    /// Clear roles, send, kill-on-fail — unless manual/PASSIVE.
    fn fail_host(&mut self, host: usize) {
        if self.manual() || self.mode == MonitorMode::Passive {
            return;
        }
        self.clear_roles(host);
        self.send_status(host, None, true, false);
    }

    fn change(&mut self, host: usize, to: HostState, text: String) {
        self.decide(Level::Fatal, Some(host), text);
        self.set_state(host, to);
    }

    fn transition_host(&mut self, host: usize, am: Option<usize>) {
        let now = self.now;
        let name = self.name(host);
        let state = self.hosts[host].state;
        let c = self.pmtb(host);
        let peer = self.rule_peer(host, am);
        let ps = peer.and_then(|p| self.hosts.get(p)).map(|p| p.state);
        let peer_online = ps == Some(HostState::Online);
        let peer_pm = peer.is_some_and(|p| {
            self.checks.ok(p, CheckKind::Ping) && self.checks.ok(p, CheckKind::Mysql)
        });
        let peer_online_since = self.peer_online_since(host, peer);
        let flapping = self.hosts[host].flapping;
        match state {
            // §3.6 ADMIN_OFFLINE: skipped entirely.
            HostState::AdminOffline | HostState::Unknown => {}
            HostState::Online => {
                if !(c.p && c.m) {
                    self.change(
                        host,
                        HostState::HardOffline,
                        format!(
                            "State of host '{name}' changed from ONLINE to HARD_OFFLINE (ping: {}, mysql: {})",
                            ok_word(c.p),
                            ok_word(c.m)
                        ),
                    );
                    self.fail_host(host);
                } else if Some(host) == am {
                    // replication problems of the active master are ignored
                } else if peer_online
                    && peer_online_since
                        .is_some_and(|s| now.saturating_duration_since(s) <= PEER_GRACE)
                {
                    // grace period after the peer came online
                } else if !c.t && peer_online && peer_pm {
                    self.change(
                        host,
                        HostState::ReplicationFail,
                        format!("State of host '{name}' changed from ONLINE to REPLICATION_FAIL"),
                    );
                    self.fail_host(host);
                } else if c.t && !c.b && peer_online && peer_pm {
                    self.change(
                        host,
                        HostState::ReplicationDelay,
                        format!("State of host '{name}' changed from ONLINE to REPLICATION_DELAY"),
                    );
                    self.fail_host(host);
                }
            }
            HostState::AwaitingRecovery => {
                let h = &self.hosts[host];
                let auto = self.auto_set_online();
                let in_state = now.saturating_duration_since(h.last_state_change).as_secs();
                if !(c.p && c.m) {
                    self.change(
                        host,
                        HostState::HardOffline,
                        format!(
                            "State of host '{name}' changed from AWAITING_RECOVERY to HARD_OFFLINE"
                        ),
                    );
                } else if !(c.t && c.b) {
                    // stays
                } else if flapping {
                    let fd = self.flap_duration();
                    let quiet = self
                        .checks
                        .host_last_change(host)
                        .is_some_and(|lc| now.saturating_duration_since(lc) >= fd);
                    if !auto.is_zero() && quiet {
                        self.change(
                            host,
                            HostState::Online,
                            format!(
                                "State of flapping host '{name}' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online and flap_duration({}) seconds passed without another failure. It was in state AWAITING_RECOVERY for {in_state} seconds",
                                fd.as_secs()
                            ),
                        );
                        self.send_status(host, None, false, false);
                    }
                } else if h.last_uptime > 0.0
                    && h.uptime - h.last_uptime > 0.0
                    && h.uptime - h.last_uptime < PEER_GRACE.as_secs_f64()
                {
                    let down = (h.uptime - h.last_uptime) as u64;
                    self.change(
                        host,
                        HostState::Online,
                        format!(
                            "State of host '{name}' changed from AWAITING_RECOVERY to ONLINE because it was down for only {down} seconds"
                        ),
                    );
                    self.send_status(host, None, false, false);
                } else if !auto.is_zero()
                    && now.saturating_duration_since(h.last_state_change) >= auto
                {
                    self.change(
                        host,
                        HostState::Online,
                        format!(
                            "State of host '{name}' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online({} seconds). It was in state AWAITING_RECOVERY for {in_state} seconds",
                            auto.as_secs()
                        ),
                    );
                    self.send_status(host, None, false, false);
                }
            }
            HostState::HardOffline => {
                if c.p && c.m {
                    let guard = am.is_some() || !self.roles.is_master(host);
                    let to = if guard && !c.t {
                        HostState::ReplicationFail
                    } else if guard && !c.b {
                        HostState::ReplicationDelay
                    } else {
                        HostState::AwaitingRecovery
                    };
                    self.change(
                        host,
                        to,
                        format!("State of host '{name}' changed from HARD_OFFLINE to {to}"),
                    );
                    self.send_status(host, None, false, false);
                }
            }
            HostState::ReplicationFail | HostState::ReplicationDelay => {
                if !(c.p && c.m) {
                    self.change(
                        host,
                        HostState::HardOffline,
                        format!(
                            "State of host '{name}' changed from {state} to HARD_OFFLINE (ping: {}, mysql: {})",
                            ok_word(c.p),
                            ok_word(c.m)
                        ),
                    );
                    self.send_status(host, None, true, false);
                } else if state == HostState::ReplicationFail && c.t && !c.b {
                    self.change(
                        host,
                        HostState::ReplicationDelay,
                        format!("State of host '{name}' changed from REPLICATION_FAIL to REPLICATION_DELAY"),
                    );
                } else if state == HostState::ReplicationDelay && !c.t {
                    self.change(
                        host,
                        HostState::ReplicationFail,
                        format!("State of host '{name}' changed from REPLICATION_DELAY to REPLICATION_FAIL"),
                    );
                } else if (c.t && c.b) || !peer_online {
                    if flapping {
                        self.change(
                            host,
                            HostState::AwaitingRecovery,
                            format!("State of host '{name}' changed from {state} to AWAITING_RECOVERY (because it's flapping)"),
                        );
                    } else {
                        self.change(
                            host,
                            HostState::Online,
                            format!("State of host '{name}' changed from {state} to ONLINE"),
                        );
                    }
                    self.send_status(host, None, false, false);
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
        let on = |h: usize| {
            self.hosts
                .get(h)
                .is_some_and(|h| h.state == HostState::Online)
        };
        let wfom = self.config.monitor.wait_for_other_master;
        if on(m1) && on(m2) {
            let text = format!(
                "Nodes {} and {} are ONLINE, switching from mode 'WAIT' to 'ACTIVE'.",
                self.name(m1),
                self.name(m2)
            );
            self.decide(Level::Fatal, None, text);
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
            let text = format!(
                "Master {} did not come online for {}(wait_for_other_master) seconds. Switching from mode 'WAIT' to 'ACTIVE'",
                self.name(dead),
                wfom.as_secs()
            );
            self.decide(Level::Warn, None, text);
        } else {
            return;
        }
        self.mode = MonitorMode::Active;
        self.clear_non_online_holders();
    }

    /// For every host not ONLINE that still holds roles: clear roles, send, kill-on-fail
    /// (leaving WAIT, `set_active` from MANUAL/WAIT).
    pub(crate) fn clear_non_online_holders(&mut self) {
        for host in 0..self.hosts.len() {
            if self.hosts[host].state != HostState::Online
                && !self.roles.host_roles(host).is_empty()
            {
                self.clear_roles(host);
                self.send_status(host, None, true, false);
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
        for (i, h) in self.hosts.iter().enumerate() {
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
