//! `mmm_control --json show` / `--json checks …`: the monitor's text answers (2.2.1's
//! bytes, spec §5.3) parsed into a documented JSON schema. Parsing the text (rather than an
//! extension command) keeps it working against a Perl 2.2.1 monitor too, and keeps the
//! monitor's control protocol exactly 2.2.1's.
//!
//! Schema (docs/operations.md "mmm_control --json"):
//! - `show` → [`Show`]: `{"passive": bool, "passive_cause": string|null, "hosts": [{"name",
//!   "ip", "mode", "state", "roles": [{"role", "ip"}], "agent_reachable": bool}], "notes":
//!   [string]}` (`notes`: every other `# ` line, without the `# `, in order);
//! - `checks` → `[{"host", "check", "last_change", "status", "message"}]` ([`CheckRow`];
//!   `status` is `ok`, `error` or `unknown`, from the message's first word);
//! - an `ERROR:` answer → `{"error": "<the answer>"}`.

use serde::{Deserialize, Serialize};

/// One role instance a host holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleJson {
    /// The role name (`writer`).
    pub role: String,
    /// Its IP.
    pub ip: String,
}

/// One host line of `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostJson {
    /// The host's name.
    pub name: String,
    /// Its IP.
    pub ip: String,
    /// `master` or `slave`.
    pub mode: String,
    /// Its state (`ONLINE`, `HARD_OFFLINE`, …).
    pub state: String,
    /// The roles it holds.
    pub roles: Vec<RoleJson>,
    /// False when `show` warns that its agent is not reachable.
    pub agent_reachable: bool,
}

/// `show` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Show {
    /// The monitor is in PASSIVE mode.
    pub passive: bool,
    /// Why (the `# Cause:` lines joined by newlines), when passive.
    pub passive_cause: Option<String>,
    /// The hosts, in `show`'s order (by name).
    pub hosts: Vec<HostJson>,
    /// Every other `# ` line (preferred-host notes, a held failover), without the `# `.
    pub notes: Vec<String>,
}

/// One line of `checks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    /// The host.
    pub host: String,
    /// The check (`ping`, `mysql`, `rep_threads`, `rep_backlog`).
    pub check: String,
    /// `[last change: …]` as printed (`yyyy/mm/dd HH:MM:SS`, the monitor's local time).
    pub last_change: String,
    /// `ok`, `error` or `unknown`.
    pub status: String,
    /// The check's message (`OK: Backlog is null`, `ERROR: …`).
    pub message: String,
}

/// The monitor's answer was not what the parser expects.
#[derive(Debug, thiserror::Error)]
#[error("can't parse the monitor's answer line {line}: {text:?}")]
pub struct ParseError {
    /// 1-based line number in the answer.
    pub line: usize,
    /// The line.
    pub text: String,
}

/// Parses `show`'s answer.
pub fn parse_show(answer: &str) -> Result<Show, ParseError> {
    let mut show = Show {
        passive: false,
        passive_cause: None,
        hosts: Vec::new(),
        notes: Vec::new(),
    };
    let mut unreachable = Vec::new();
    let mut in_cause = false;
    for (i, line) in answer.lines().enumerate() {
        let err = || ParseError {
            line: i + 1,
            text: line.to_string(),
        };
        if line.is_empty() {
            continue;
        }
        if let Some(note) = line.strip_prefix("# ") {
            if note == "--- Monitor is in PASSIVE MODE ---" {
                show.passive = true;
                in_cause = false;
            } else if let Some(c) = note.strip_prefix("Cause: ") {
                show.passive_cause = Some(c.to_string());
                in_cause = true;
            } else if let Some(h) = note
                .strip_prefix("Warning: agent on host ")
                .and_then(|r| r.strip_suffix(" is not reachable"))
            {
                unreachable.push(h.to_string());
                in_cause = false;
            } else if in_cause && show.hosts.is_empty() {
                if let Some(c) = show.passive_cause.as_mut() {
                    c.push('\n');
                    c.push_str(note);
                }
            } else {
                in_cause = false;
                show.notes.push(note.to_string());
            }
            continue;
        }
        in_cause = false;
        let rest = line.strip_prefix("  ").ok_or_else(err)?;
        let (name, rest) = rest.split_once('(').ok_or_else(err)?;
        let (ip, rest) = rest.split_once(") ").ok_or_else(err)?;
        let (mode_state, roles) = rest.split_once(". Roles: ").ok_or_else(err)?;
        let (mode, state) = mode_state.split_once('/').ok_or_else(err)?;
        let mut parsed = Vec::new();
        for r in roles.split(", ").filter(|r| !r.is_empty()) {
            let (role, ip) = r
                .strip_suffix(')')
                .and_then(|r| r.split_once('('))
                .ok_or_else(err)?;
            parsed.push(RoleJson {
                role: role.to_string(),
                ip: ip.to_string(),
            });
        }
        show.hosts.push(HostJson {
            name: name.to_string(),
            ip: ip.to_string(),
            mode: mode.to_string(),
            state: state.to_string(),
            roles: parsed,
            agent_reachable: true,
        });
    }
    for h in &mut show.hosts {
        h.agent_reachable = !unreachable.contains(&h.name);
    }
    Ok(show)
}

/// Parses `checks`' answer (any of its forms: one line, one host, all hosts).
pub fn parse_checks(answer: &str) -> Result<Vec<CheckRow>, ParseError> {
    let mut rows = Vec::new();
    for (i, line) in answer.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let err = || ParseError {
            line: i + 1,
            text: line.to_string(),
        };
        let (head, rest) = line.split_once("[last change: ").ok_or_else(err)?;
        let mut words = head.split_whitespace();
        let (Some(host), Some(check), None) = (words.next(), words.next(), words.next()) else {
            return Err(err());
        };
        let (last_change, message) = rest.split_once("]  ").ok_or_else(err)?;
        let first = message
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or("");
        let status = match first {
            "OK" => "ok",
            "UNKNOWN" => "unknown",
            _ => "error",
        };
        rows.push(CheckRow {
            host: host.to_string(),
            check: check.to_string(),
            last_change: last_change.to_string(),
            status: status.to_string(),
            message: message.to_string(),
        });
    }
    Ok(rows)
}

/// Whether a monitor's answer reports a failed command: `ERROR: …` (2.2.1's commands),
/// `Error: …` (`move_role` of a role without IP) or `Invalid command …` (a wrong command
/// line, followed by the help text).
pub fn is_error_answer(answer: &str) -> bool {
    answer.starts_with("ERROR:")
        || answer.starts_with("Error:")
        || answer.starts_with("Invalid command")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_of_the_transcript() {
        let text = "  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)\n  db2(198.18.2.102) master/ONLINE. Roles: \n  db4(198.18.2.105) slave/ONLINE. Roles: reader(198.18.2.198), reader(198.18.2.199)\n";
        let s = parse_show(text).unwrap();
        assert!(!s.passive);
        assert_eq!(s.hosts.len(), 3);
        assert_eq!(s.hosts[0].roles[0].role, "writer");
        assert_eq!(s.hosts[0].roles[0].ip, "198.18.2.188");
        assert!(s.hosts[1].roles.is_empty());
        assert_eq!(s.hosts[2].roles.len(), 2);
        assert_eq!(s.hosts[2].mode, "slave");
    }

    #[test]
    fn show_passive_with_warnings_and_notes() {
        let text = "# --- Monitor is in PASSIVE MODE ---\n# Cause: Configured to start up in passive mode.\n# second line\n# Warning: agent on host db2 is not reachable\n  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)\n  db2(198.18.2.102) master/HARD_OFFLINE. Roles: \n# Role writer has db1 configured as it's preferred host.\n";
        let s = parse_show(text).unwrap();
        assert!(s.passive);
        assert_eq!(
            s.passive_cause.as_deref(),
            Some("Configured to start up in passive mode.\nsecond line")
        );
        assert!(s.hosts[0].agent_reachable);
        assert!(!s.hosts[1].agent_reachable);
        assert_eq!(s.hosts[1].state, "HARD_OFFLINE");
        assert_eq!(
            s.notes,
            vec!["Role writer has db1 configured as it's preferred host."]
        );
    }

    #[test]
    fn show_garbage_is_an_error_with_its_line() {
        let e = parse_show("  db1(198.18.2.100) master/ONLINE. Roles: writer(1\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(parse_show("hello\n").is_err());
    }

    #[test]
    fn checks_lines() {
        let text = "db2  ping         [last change: 2026/11/25 13:59:23]  OK\ndb2  rep_backlog  [last change: 2026/11/25 13:59:23]  OK: Backlog is null\ndb1  mysql        [last change: 2026/11/25 14:00:27]  ERROR: Connect error (host = 198.18.2.100:3306, user = mmm_monitor)! Can't connect\n\n";
        let rows = parse_checks(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].host, "db2");
        assert_eq!(rows[0].check, "ping");
        assert_eq!(rows[0].status, "ok");
        assert_eq!(rows[1].message, "OK: Backlog is null");
        assert_eq!(rows[2].status, "error");
        assert_eq!(rows[2].last_change, "2026/11/25 14:00:27");
        let one = parse_checks("db1  mysql  [last change: 2026/11/25 13:59:23]  OK").unwrap();
        assert_eq!(one[0].check, "mysql");
        assert!(parse_checks("ERROR: Unknown host name 'db9'!").is_err());
    }

    #[test]
    fn error_answers() {
        assert!(is_error_answer("ERROR: Unknown host name 'db9'!"));
        assert!(is_error_answer("Error: Role writer has no IP."));
        assert!(is_error_answer(
            "Invalid command 'move_role writer'\n\nValid"
        ));
        assert!(!is_error_answer("OK: Pinged successfully!"));
        assert!(!is_error_answer(
            "# Warning: agent on host db1 is not reachable\n"
        ));
    }
}
