//! What a new monitor HA leader takes over besides the status file's content (issue 16,
//! docs/ha.md): the mode (with PASSIVE's cause) and the flapping bookkeeping. The leader
//! stores [`Carried`] in etcd beside the status; a new leader restores it before its
//! startup. A hold (etcd not confirming the leadership) is not carried: the mode before
//! it is.

use std::time::Duration;

use mmm_common::state::MonitorMode;
use serde::{Deserialize, Serialize};

use super::Monitor;

/// The mode and the flapping bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// `ACTIVE`, `MANUAL`, `WAIT` or `PASSIVE`.
    pub mode: String,
    /// PASSIVE's cause (what `show` prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_cause: Option<String>,
    /// Every host with flapping bookkeeping (flapping, or departures in the window).
    #[serde(default)]
    pub flapping: Vec<Flap>,
}

/// One host's flapping bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flap {
    /// The host.
    pub host: String,
    /// Held as flapping (until `set_online`).
    pub flapping: bool,
    /// Departures from ONLINE in the current window.
    pub count: u32,
    /// The window's start, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

fn parse_mode(s: &str) -> Option<MonitorMode> {
    [
        MonitorMode::Active,
        MonitorMode::Manual,
        MonitorMode::Wait,
        MonitorMode::Passive,
    ]
    .into_iter()
    .find(|m| m.as_str() == s)
}

impl Monitor {
    /// What a new leader would take over now.
    pub fn carried(&self) -> Carried {
        let (mode, cause) = match &self.held_from {
            Some((m, c)) => (*m, c.clone()),
            None => (self.mode, self.passive_cause.clone()),
        };
        Carried {
            mode: mode.as_str().to_string(),
            passive_cause: (mode == MonitorMode::Passive).then_some(cause),
            flapping: self
                .hosts
                .iter()
                .filter(|h| h.flapping || h.flapcount > 0)
                .map(|h| Flap {
                    host: h.name.clone(),
                    flapping: h.flapping,
                    count: h.flapcount,
                    since: h.flapstart.map(|t| self.wall_at(t)),
                })
                .collect(),
        }
    }

    /// Takes over `c` (before [`super::Input::Startup`]; ignored after it). `wall_now`:
    /// the current epoch seconds, to place the flap windows. Unknown modes and hosts are
    /// skipped.
    pub fn restore_carried(&mut self, c: &Carried, wall_now: i64) {
        if self.started {
            return;
        }
        if let Some(mode) = parse_mode(&c.mode) {
            self.mode = mode;
            self.passive_cause = match mode {
                MonitorMode::Passive => c.passive_cause.clone().unwrap_or_default(),
                _ => String::new(),
            };
        }
        for f in &c.flapping {
            let Some(id) = self.names.iter().position(|n| *n == f.host) else {
                continue;
            };
            let now = self.now;
            let Some(h) = self.hosts.get_mut(super::HostId(id)) else {
                continue;
            };
            h.flapping = f.flapping;
            h.flapcount = f.count;
            h.flapstart = f.since.map(|w| {
                let age = Duration::from_secs(u64::try_from(wall_now - w).unwrap_or(0));
                now.checked_sub(age).unwrap_or(now)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_back() {
        for m in [
            MonitorMode::Active,
            MonitorMode::Manual,
            MonitorMode::Wait,
            MonitorMode::Passive,
        ] {
            assert_eq!(parse_mode(m.as_str()), Some(m));
        }
        assert_eq!(parse_mode("active"), None);
    }

    #[test]
    fn json_shape() {
        let c = Carried {
            mode: "PASSIVE".into(),
            passive_cause: Some("Admin switched to passive mode.".into()),
            flapping: vec![Flap {
                host: "db3".into(),
                flapping: true,
                count: 4,
                since: Some(1_796_000_000),
            }],
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"mode":"PASSIVE","passive_cause":"Admin switched to passive mode.","flapping":[{"host":"db3","flapping":true,"count":4,"since":1796000000}]}"#
        );
        assert_eq!(serde_json::from_str::<Carried>(&text).unwrap(), c);
    }
}
