//! The JSON of `/api/v1/status`, `/api/v1/checks` and `/api/v1/events` (docs/operations.md
//! "HTTP API"). `status` and `checks` keep the schema of `mmm_control --json show` and
//! `--json checks all` (crates/mmm-control/src/json.rs: the same field names and values, so
//! one client reads both) and add the facts that `show` has no line for.

use serde::Serialize;

use crate::audit::AuditEvent;
use crate::core::Snapshot;

/// One role instance a host holds (`mmm_control --json`'s `RoleJson`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleJson {
    /// The role name.
    pub role: String,
    /// Its IP.
    pub ip: String,
}

/// One host (`mmm_control --json`'s `HostJson`, plus `flapping`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostJson {
    /// Name.
    pub name: String,
    /// IP.
    pub ip: String,
    /// `master` or `slave`.
    pub mode: String,
    /// State.
    pub state: String,
    /// The roles it holds.
    pub roles: Vec<RoleJson>,
    /// Its agent answers.
    pub agent_reachable: bool,
    /// It flapped (cleared by `set_online`).
    pub flapping: bool,
}

/// `/api/v1/status`: `mmm_control --json show` plus `mode`, `network_up`,
/// `active_master` and the role table.
#[derive(Debug, Clone, Serialize)]
pub struct StatusJson<'a> {
    /// PASSIVE mode.
    pub passive: bool,
    /// Why, when passive.
    pub passive_cause: Option<&'a str>,
    /// The hosts, in `show`'s order (by name).
    pub hosts: Vec<HostJson>,
    /// `show`'s other `# ` lines.
    pub notes: &'a [String],
    /// `ACTIVE`, `MANUAL`, `WAIT` or `PASSIVE`.
    pub mode: &'a str,
    /// The monitor's network check.
    pub network_up: bool,
    /// The writer's host.
    pub active_master: Option<&'a str>,
    /// Every role, its preferred host and who holds each IP.
    pub roles: &'a [crate::core::RoleView],
}

/// One line of `checks all` (`mmm_control --json`'s `CheckRow`, plus `ok` and the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckJson<'a> {
    /// Host.
    pub host: &'a str,
    /// `ping`, `mysql`, `rep_threads` or `rep_backlog`.
    pub check: &'a str,
    /// `[last change: …]` as `checks` prints it.
    pub last_change: &'a str,
    /// `ok`, `error` or `unknown` (from the message's first word, as mmm_control does).
    pub status: &'static str,
    /// The result line.
    pub message: &'a str,
    /// The status the monitor acts on (trap periods applied).
    pub ok: bool,
    /// `last_change` in epoch seconds.
    pub last_change_epoch: i64,
}

/// `/api/v1/events`.
#[derive(Debug, Clone, Serialize)]
pub struct EventsJson<'a> {
    /// The events after `since` (oldest first).
    pub events: Vec<&'a AuditEvent>,
    /// The highest sequence number known (pass it as `since` next time).
    pub last_seq: u64,
}

/// Splits `writer(192.168.0.50)`.
fn role_json(text: &str) -> RoleJson {
    match text.strip_suffix(')').and_then(|t| t.split_once('(')) {
        Some((role, ip)) => RoleJson {
            role: role.to_string(),
            ip: ip.to_string(),
        },
        None => RoleJson {
            role: text.to_string(),
            ip: String::new(),
        },
    }
}

/// `/api/v1/status` of a snapshot.
pub fn status(s: &Snapshot) -> StatusJson<'_> {
    let mut hosts: Vec<HostJson> = s
        .hosts
        .iter()
        .map(|h| HostJson {
            name: h.name.clone(),
            ip: h.ip.clone(),
            mode: h.mode.clone(),
            state: h.state.clone(),
            roles: h.roles.iter().map(|r| role_json(r)).collect(),
            agent_reachable: h.agent_reachable,
            flapping: h.flapping,
        })
        .collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    StatusJson {
        passive: s.mode == "PASSIVE",
        passive_cause: s.passive_cause.as_deref(),
        hosts,
        notes: &s.notes,
        mode: &s.mode,
        network_up: s.network_up,
        active_master: s.active_master.as_deref(),
        roles: &s.roles,
    }
}

/// `/api/v1/checks` of a snapshot (`checks all`'s order).
pub fn checks(s: &Snapshot) -> Vec<CheckJson<'_>> {
    s.checks
        .iter()
        .map(|c| {
            let first = c
                .message
                .split(|ch: char| ch == ':' || ch.is_whitespace())
                .next()
                .unwrap_or("");
            CheckJson {
                host: &c.host,
                check: &c.check,
                last_change: &c.last_change_text,
                status: match first {
                    "OK" => "ok",
                    "UNKNOWN" => "unknown",
                    _ => "error",
                },
                message: &c.message,
                ok: c.ok,
                last_change_epoch: c.last_change,
            }
        })
        .collect()
}

/// `/api/v1/events?since=<seq>`: the ring's events with a higher sequence number.
pub fn events(ring: &[AuditEvent], since: Option<u64>) -> EventsJson<'_> {
    EventsJson {
        events: ring
            .iter()
            .filter(|e| since.is_none_or(|s| e.seq > s))
            .collect(),
        last_seq: ring.last().map(|e| e.seq).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_split() {
        assert_eq!(
            role_json("writer(192.168.0.50)"),
            RoleJson {
                role: "writer".into(),
                ip: "192.168.0.50".into()
            }
        );
        assert_eq!(role_json("odd").ip, "");
    }
}
