//! The per-host record of the monitor (spec §3.5): state and its setter with flap
//! accounting (§3.7), the roles last sent, uptime bookkeeping and `agent_down`. What is
//! sent to the host's agent and how that went is the outbox's (`outbox.rs`).

use std::time::{Duration, Instant};

use mmm_common::config::HostConfig;
use mmm_common::role::RoleIp;
use mmm_common::state::{HostMode, HostState};

use super::ids::HostId;

/// One host as the monitor sees it.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// Host name (`db1`).
    pub(crate) name: String,
    /// Its `ip` (shown by `show`).
    pub(crate) ip: String,
    /// `master` or `slave` from the config.
    pub(crate) mode: HostMode,
    /// Configured `peer`, resolved.
    pub(crate) peer: Option<HostId>,
    /// Current state (UNKNOWN until startup completes).
    pub(crate) state: HostState,
    /// Roles last sent to / loaded for the agent (what `show` and the status file print).
    pub(crate) roles: Vec<RoleIp>,
    /// Uptime from the latest agent reply.
    pub(crate) uptime: f64,
    /// Uptime from the latest agent reply received while ONLINE.
    pub(crate) last_uptime: f64,
    /// When the state last changed.
    pub(crate) last_state_change: Instant,
    /// When the host last became ONLINE.
    pub(crate) online_since: Option<Instant>,
    /// Set when the host flapped; cleared only by `set_online`.
    pub(crate) flapping: bool,
    /// Start of the current flap window.
    pub(crate) flapstart: Option<Instant>,
    /// Departures from ONLINE in the current window.
    pub(crate) flapcount: u32,
    /// A send failed while the ping check was OK (not eligible for roles).
    pub(crate) agent_down: bool,
}

impl Host {
    /// The record for a configured host, state UNKNOWN.
    pub(crate) fn new(cfg: &HostConfig, peer: Option<HostId>, now: Instant) -> Host {
        Host {
            name: cfg.name.clone(),
            ip: cfg.ip.to_string(),
            mode: cfg.mode,
            peer,
            state: HostState::Unknown,
            roles: Vec::new(),
            uptime: 0.0,
            last_uptime: 0.0,
            last_state_change: now,
            online_since: None,
            flapping: false,
            flapstart: None,
            flapcount: 0,
            agent_down: false,
        }
    }

    /// The state setter of spec §3.5: records the change time, `online_since`, and counts
    /// departures from ONLINE for flapping. Returns `true` when the host just started
    /// flapping (the caller logs `Host <h> is flapping!`).
    pub(crate) fn set_state(
        &mut self,
        new: HostState,
        now: Instant,
        flap_count: u32,
        flap_duration: Duration,
    ) -> bool {
        let old = self.state;
        if new == old {
            return false;
        }
        self.state = new;
        self.last_state_change = now;
        if new == HostState::Online {
            self.online_since = Some(now);
        }
        if flap_count == 0 || old != HostState::Online || new == HostState::AdminOffline {
            return false;
        }
        let window_over = match self.flapstart {
            None => true,
            Some(start) => now.saturating_duration_since(start) > flap_duration,
        };
        if window_over {
            self.flapstart = Some(now);
            self.flapcount = 1;
            return false;
        }
        self.flapcount += 1;
        if self.flapcount > flap_count {
            self.flapping = true;
            self.flapstart = None;
            return true;
        }
        false
    }

    /// Uptime bookkeeping on every agent reply (spec §3.5).
    pub(crate) fn record_uptime(&mut self, uptime: f64) {
        self.uptime = uptime;
        if self.state == HostState::Online {
            self.last_uptime = uptime;
        }
    }

    /// Whether this host is a master (config `mode master`).
    pub(crate) fn is_master_mode(&self) -> bool {
        self.mode == HostMode::Master
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(now: Instant) -> Host {
        let cfg = crate::core::tests::host_cfg("db1", "198.18.2.100", HostMode::Master, None);
        Host::new(&cfg, None, now)
    }

    /// §3.5 flap accounting: more than flap_count departures within flap_duration flap;
    /// ADMIN_OFFLINE departures do not count; a new window starts after flap_duration.
    #[test]
    fn flap_accounting() {
        let t0 = Instant::now();
        let d = Duration::from_secs(100);
        let mut h = host(t0);
        h.set_state(HostState::Online, t0, 2, d);
        assert_eq!(h.online_since, Some(t0));
        let mut t = t0;
        let mut flapped = Vec::new();
        for _ in 0..3 {
            t += Duration::from_secs(1);
            flapped.push(h.set_state(HostState::HardOffline, t, 2, d));
            h.set_state(HostState::Online, t, 2, d);
        }
        assert_eq!(flapped, vec![false, false, true]);
        assert!(h.flapping);

        let mut h = host(t0);
        h.set_state(HostState::Online, t0, 2, d);
        assert!(!h.set_state(HostState::AdminOffline, t0, 2, d));
        assert_eq!(h.flapcount, 0);
        h.set_state(HostState::Online, t0, 2, d);
        h.set_state(HostState::HardOffline, t0, 2, d);
        h.set_state(HostState::Online, t0, 2, d);
        let later = t0 + Duration::from_secs(200);
        assert!(!h.set_state(HostState::HardOffline, later, 2, d));
        assert_eq!(h.flapcount, 1);
        assert_eq!(h.flapstart, Some(later));
    }
}
