//! Host states and host modes with their exact MMM wire words (spec §3.5, §3.6, §3.8).
//!
//! `Display` and `FromStr` round-trip through the words used on the wire, in the status
//! file and in `mmm_control` output (`ONLINE`, `HARD_OFFLINE`, `master`, `ACTIVE`...).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The state of a host as the monitor sees it (spec §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HostState {
    /// Before startup completed; an agent that has not yet been told anything.
    Unknown,
    /// Healthy and eligible for roles.
    Online,
    /// Taken offline by an administrator.
    AdminOffline,
    /// ping or mysql check failed.
    HardOffline,
    /// Back from HARD_OFFLINE, waiting for set_online or an automatic rule.
    AwaitingRecovery,
    /// Replication backlog too large.
    ReplicationDelay,
    /// Replication threads not running.
    ReplicationFail,
}

impl HostState {
    /// Every state, in the order of the spec's list.
    pub const ALL: [HostState; 7] = [
        HostState::Unknown,
        HostState::Online,
        HostState::AdminOffline,
        HostState::HardOffline,
        HostState::AwaitingRecovery,
        HostState::ReplicationDelay,
        HostState::ReplicationFail,
    ];

    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Unknown => "UNKNOWN",
            HostState::Online => "ONLINE",
            HostState::AdminOffline => "ADMIN_OFFLINE",
            HostState::HardOffline => "HARD_OFFLINE",
            HostState::AwaitingRecovery => "AWAITING_RECOVERY",
            HostState::ReplicationDelay => "REPLICATION_DELAY",
            HostState::ReplicationFail => "REPLICATION_FAIL",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a known state, host mode or monitor mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{word}'")]
pub struct UnknownWord {
    /// What kind of word was expected.
    pub what: &'static str,
    /// The word found.
    pub word: String,
}

impl FromStr for HostState {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownWord {
                what: "state",
                word: s.to_string(),
            })
    }
}

/// A host's configured `mode` (spec §2.4 `<host>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// One of the two masters.
    Master,
    /// A slave of the active master.
    Slave,
}

impl HostMode {
    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            HostMode::Master => "master",
            HostMode::Slave => "slave",
        }
    }
}

impl fmt::Display for HostMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostMode {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "master" => Ok(HostMode::Master),
            "slave" => Ok(HostMode::Slave),
            _ => Err(UnknownWord {
                what: "host mode",
                word: s.to_string(),
            }),
        }
    }
}

/// The monitor's mode (spec §3.8). Config words are lowercase, `mode` output uppercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorMode {
    /// Full automation.
    Active,
    /// Transitions but no role removal from failing hosts.
    Manual,
    /// Like manual until both masters are ONLINE (or wait_for_other_master passed).
    Wait,
    /// Nothing is sent to agents.
    Passive,
}

impl MonitorMode {
    /// The config word (`active`, ...).
    pub fn config_word(self) -> &'static str {
        match self {
            MonitorMode::Active => "active",
            MonitorMode::Manual => "manual",
            MonitorMode::Wait => "wait",
            MonitorMode::Passive => "passive",
        }
    }
    /// The word `mmm_control mode` prints (`ACTIVE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorMode::Active => "ACTIVE",
            MonitorMode::Manual => "MANUAL",
            MonitorMode::Wait => "WAIT",
            MonitorMode::Passive => "PASSIVE",
        }
    }
}

impl fmt::Display for MonitorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MonitorMode {
    type Err = UnknownWord;
    /// Accepts the config words (lowercase) and the display words (uppercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" | "ACTIVE" => Ok(MonitorMode::Active),
            "manual" | "MANUAL" => Ok(MonitorMode::Manual),
            "wait" | "WAIT" => Ok(MonitorMode::Wait),
            "passive" | "PASSIVE" => Ok(MonitorMode::Passive),
            _ => Err(UnknownWord {
                what: "monitor mode",
                word: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for st in HostState::ALL {
            assert_eq!(st.as_str().parse::<HostState>().unwrap(), st);
        }
        assert!("online".parse::<HostState>().is_err());
    }

    #[test]
    fn modes_round_trip() {
        assert_eq!("master".parse::<HostMode>().unwrap(), HostMode::Master);
        assert_eq!(
            "passive".parse::<MonitorMode>().unwrap().to_string(),
            "PASSIVE"
        );
    }
}
