//! The monitor ↔ agent protocol, version 1 (spec §4.2, §4.3), byte-compatible with 2.2.1.
//!
//! Request: `<COMMAND>|<version>|<host>|<params…>`; reply: `<result>|UP:<uptime>`.
//! This file only encodes and decodes lines; the agent and the monitor's agent client own
//! the sockets.

use std::fmt;

use crate::role::{format_role_list, parse_role_list, RoleIp};
use crate::state::HostState;
use crate::PROTOCOL_VERSION;

/// A request's command and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// `PING`.
    Ping,
    /// `SET_STATUS|state|roles|active master`.
    SetStatus {
        /// New host state.
        state: HostState,
        /// Roles the host must hold (sorted).
        roles: Vec<RoleIp>,
        /// Active master host name, or empty.
        master: String,
    },
    /// `GET_AGENT_STATUS`.
    GetAgentStatus,
    /// `GET_SYSTEM_STATUS`.
    GetSystemStatus,
    /// `CLEAR_BAD_ROLES`.
    ClearBadRoles,
    /// `RESUME_PEER_LINK` (mmm-rs extension, issue 13): the active master's replication
    /// from its peer, held after a crash failover, may run again (the monitor found no
    /// errant transactions on the peer, or an operator accepted them).
    ResumePeerLink,
}

impl AgentCommand {
    /// The wire name.
    pub fn name(&self) -> &'static str {
        match self {
            AgentCommand::Ping => "PING",
            AgentCommand::SetStatus { .. } => "SET_STATUS",
            AgentCommand::GetAgentStatus => "GET_AGENT_STATUS",
            AgentCommand::GetSystemStatus => "GET_SYSTEM_STATUS",
            AgentCommand::ClearBadRoles => "CLEAR_BAD_ROLES",
            AgentCommand::ResumePeerLink => "RESUME_PEER_LINK",
        }
    }
}

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRequest {
    /// Target host name (must be the agent's `this`).
    pub host: String,
    /// Protocol version sent by the peer.
    pub version: String,
    /// Command and parameters.
    pub command: AgentCommand,
    /// Monitor HA (issue 16, docs/ha.md): the sending leader's term, carried as a trailing
    /// `|term=<n>` field after the command's parameters. `None`: the 2.2.1 line, byte for
    /// byte (2.2.1's Perl agent ignores extra trailing fields, so it cannot fence).
    pub term: Option<u64>,
    /// SET_STATUS only (issue 14): masters the monitor found failed (HARD_OFFLINE, or its
    /// ping failed), carried as a `|failed=<host>[,<host>…]` field after the command's
    /// parameters (before a term). An mmm-rs agent taking the writer role does not wait
    /// for a handshake or position from its peer when the peer is named here. Empty: the
    /// 2.2.1 line, byte for byte (2.2.1's Perl agent passes only the first three
    /// parameters of SET_STATUS on and ignores the rest).
    pub failed: Vec<String>,
}

impl AgentRequest {
    /// A version-1 request for `host`.
    pub fn new(host: impl Into<String>, command: AgentCommand) -> Self {
        AgentRequest {
            host: host.into(),
            version: PROTOCOL_VERSION.to_string(),
            command,
            term: None,
            failed: Vec::new(),
        }
    }

    /// The same request carrying `term` (monitor HA).
    pub fn with_term(mut self, term: Option<u64>) -> Self {
        self.term = term;
        self
    }

    /// The same SET_STATUS naming the masters the monitor found failed (issue 14; ignored
    /// for other commands).
    pub fn with_failed(mut self, failed: Vec<String>) -> Self {
        self.failed = failed;
        self
    }
}

impl fmt::Display for AgentRequest {
    /// The request line without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}|{}", self.command.name(), self.version, self.host)?;
        if let AgentCommand::SetStatus {
            state,
            roles,
            master,
        } = &self.command
        {
            write!(f, "|{}|{}|{}", state, format_role_list(roles), master)?;
            if !self.failed.is_empty() {
                write!(f, "|{FAILED_FIELD}{}", self.failed.join(","))?;
            }
        }
        if let Some(term) = self.term {
            write!(f, "|{TERM_FIELD}{term}")?;
        }
        Ok(())
    }
}

/// A request that the agent rejects; `reply_text` is the result part of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// e.g. `ERROR: Invalid command 'FOO'!`
    pub reply_text: String,
}

/// What decoding a request produced besides the request: 2.2.1 only warns about a newer
/// protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The request.
    pub request: AgentRequest,
    /// `Version in command '<cmd>' (<v>) is greater than mine (1)` when applicable.
    pub warning: Option<String>,
}

/// The prefix of the trailing term field (monitor HA).
pub const TERM_FIELD: &str = "term=";

/// The prefix of SET_STATUS's field naming the masters found failed (issue 14).
pub const FAILED_FIELD: &str = "failed=";

/// The fields a command takes (command, version, host and its parameters): a field after
/// them is a term field when it starts with [`TERM_FIELD`].
fn fixed_fields(cmd: &str) -> usize {
    if cmd == "SET_STATUS" {
        6
    } else {
        3
    }
}

/// Splits off a trailing `term=<n>` field after the command's own fields.
fn split_term(fields: &mut Vec<&str>, line: &str) -> Result<Option<u64>, RequestError> {
    let fixed = fixed_fields(fields[0]);
    match fields.last() {
        Some(last) if fields.len() > fixed && last.starts_with(TERM_FIELD) => {
            let term = last[TERM_FIELD.len()..]
                .parse::<u64>()
                .map_err(|_| RequestError {
                    reply_text: format!("ERROR: Invalid term '{last}' in command '{line}'!"),
                })?;
            fields.pop();
            Ok(Some(term))
        }
        _ => Ok(None),
    }
}

/// Decodes a request line (newline already stripped) for the agent named `this`,
/// validating in 2.2.1's order (spec §4.2).
pub fn decode_request(line: &str, this: &str) -> Result<Decoded, RequestError> {
    let err = |t: String| RequestError { reply_text: t };
    let mut fields: Vec<&str> = line.split('|').collect();
    if fields.len() < 3 {
        return Err(err(format!("ERROR: Invalid command '{line}'!")));
    }
    let term = split_term(&mut fields, line)?;
    let (cmd, version, host) = (fields[0], fields[1], fields[2]);
    if host != this {
        return Err(err(format!(
            "ERROR: Invalid hostname in command ({host})! My name is '{this}'"
        )));
    }
    let warning = match version.trim().parse::<u64>() {
        Ok(v) if v > u64::from(PROTOCOL_VERSION) => Some(format!(
            "Version in command '{cmd}' ({version}) is greater than mine ({PROTOCOL_VERSION})"
        )),
        Ok(_) => None,
        Err(_) => {
            return Err(err(format!(
                "ERROR: Invalid protocol version '{version}' in command '{cmd}'!"
            )))
        }
    };
    let command = match cmd {
        "PING" => AgentCommand::Ping,
        "GET_AGENT_STATUS" => AgentCommand::GetAgentStatus,
        "GET_SYSTEM_STATUS" => AgentCommand::GetSystemStatus,
        "CLEAR_BAD_ROLES" => AgentCommand::ClearBadRoles,
        "RESUME_PEER_LINK" => AgentCommand::ResumePeerLink,
        "SET_STATUS" => {
            if fields.len() < 6 {
                return Err(err(format!(
                    "ERROR: Invalid parameters for command 'SET_STATUS' (expected state, roles and master): '{line}'!"
                )));
            }
            let state = fields[3].parse::<HostState>().map_err(|_| {
                err(format!(
                    "ERROR: Invalid state '{}' in command 'SET_STATUS'!",
                    fields[3]
                ))
            })?;
            AgentCommand::SetStatus {
                state,
                roles: parse_role_list(fields[4]),
                master: fields[5].to_string(),
            }
        }
        _ => return Err(err(format!("ERROR: Invalid command '{cmd}'!"))),
    };
    // Extension fields after SET_STATUS's parameters: `failed=…` is read, anything else is
    // ignored (as 2.2.1 does with every extra field).
    let failed = match &command {
        AgentCommand::SetStatus { .. } => fields[6..]
            .iter()
            .find_map(|f| f.strip_prefix(FAILED_FIELD))
            .map(|list| {
                list.split(',')
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Decoded {
        request: AgentRequest {
            host: host.to_string(),
            version: version.to_string(),
            command,
            term,
            failed,
        },
        warning,
    })
}

/// Formats the agent's uptime as 2.2.1 reads it from `/proc/uptime` (two decimals).
pub fn format_uptime(secs: f64) -> String {
    format!("{secs:.2}")
}

/// Encodes a reply line (with newline): `<result>|UP:<uptime>\n`.
pub fn encode_reply(result: &str, uptime: &str) -> String {
    format!("{result}|UP:{uptime}\n")
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReply {
    /// The result part (`OK: Pinged!`, `ERROR: …`, `OK: Returning status!|…`).
    pub result: String,
    /// The agent host's uptime in seconds, when the reply carried a parsable `|UP:`.
    pub uptime: Option<f64>,
}

impl AgentReply {
    /// Whether the result reports success (`OK` prefix). `ERROR:` replies are failures
    /// for mmm-rs (2.2.1 counted any reply as success).
    pub fn is_ok(&self) -> bool {
        self.result.starts_with("OK")
    }
}

/// Decodes a reply line (newline stripped), splitting at the last `|UP:`.
pub fn decode_reply(line: &str) -> AgentReply {
    match line.rfind("|UP:") {
        Some(i) => AgentReply {
            result: line[..i].to_string(),
            uptime: line[i + 4..]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|u| u.is_finite()),
        },
        None => AgentReply {
            result: line.to_string(),
            uptime: None,
        },
    }
}

/// The parsed result of `GET_AGENT_STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// The agent's state (`UNKNOWN` for a fresh agent).
    pub state: HostState,
    /// Its roles.
    pub roles: Vec<RoleIp>,
    /// Its active master (may be empty).
    pub master: String,
}

/// The parsed result of `GET_SYSTEM_STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatus {
    /// read_only = 0.
    pub writable: bool,
    /// Role IPs configured on the cluster interface.
    pub roles: Vec<RoleIp>,
    /// Master_Host of SHOW SLAVE STATUS, or empty (also for 2.1 agents without the field).
    pub master_ip: String,
}

const RETURNING: &str = "OK: Returning status!";

/// Formats a GET_AGENT_STATUS result.
pub fn format_agent_status(s: &AgentStatus) -> String {
    format!(
        "{RETURNING}|{}|{}|{}",
        s.state,
        format_role_list(&s.roles),
        s.master
    )
}

/// Parses a GET_AGENT_STATUS result.
pub fn parse_agent_status(result: &str) -> Option<AgentStatus> {
    let rest = result.strip_prefix(RETURNING)?.strip_prefix('|')?;
    let f: Vec<&str> = rest.split('|').collect();
    Some(AgentStatus {
        state: f.first()?.parse().ok()?,
        roles: parse_role_list(f.get(1).copied().unwrap_or("")),
        master: f.get(2).copied().unwrap_or("").to_string(),
    })
}

/// Formats a GET_SYSTEM_STATUS result. Roles are written in the order given (2.2.1 does
/// not sort them).
pub fn format_system_status(s: &SystemStatus) -> String {
    let roles: Vec<String> = s.roles.iter().map(ToString::to_string).collect();
    format!(
        "{RETURNING}|{}|{}|{}",
        if s.writable { "1" } else { "" },
        roles.join(","),
        s.master_ip
    )
}

/// Parses a GET_SYSTEM_STATUS result (a missing 4th field is tolerated, as 2.2.1 does).
pub fn parse_system_status(result: &str) -> Option<SystemStatus> {
    let rest = result.strip_prefix(RETURNING)?.strip_prefix('|')?;
    let f: Vec<&str> = rest.split('|').collect();
    Some(SystemStatus {
        writable: matches!(f.first().copied(), Some("1")),
        roles: parse_role_list(f.get(1).copied().unwrap_or("")),
        master_ip: f.get(2).copied().unwrap_or("").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_spec_examples() {
        let r = AgentRequest::new(
            "db1",
            AgentCommand::SetStatus {
                state: HostState::Online,
                roles: parse_role_list("writer(192.168.0.50),reader(192.168.0.51)"),
                master: "db1".into(),
            },
        );
        assert_eq!(
            r.to_string(),
            "SET_STATUS|1|db1|ONLINE|reader(192.168.0.51),writer(192.168.0.50)|db1"
        );
        let r = AgentRequest::new(
            "db2",
            AgentCommand::SetStatus {
                state: HostState::AwaitingRecovery,
                roles: vec![],
                master: String::new(),
            },
        );
        assert_eq!(r.to_string(), "SET_STATUS|1|db2|AWAITING_RECOVERY||");
        assert_eq!(
            AgentRequest::new("db1", AgentCommand::Ping).to_string(),
            "PING|1|db1"
        );
    }

    /// mmm-rs's `RESUME_PEER_LINK` (issue 13) round-trips like the 2.2.1 commands.
    #[test]
    fn resume_peer_link_round_trips() {
        let r = AgentRequest::new("db2", AgentCommand::ResumePeerLink);
        assert_eq!(r.to_string(), "RESUME_PEER_LINK|1|db2");
        let d = decode_request("RESUME_PEER_LINK|1|db2", "db2").unwrap();
        assert_eq!(d.request, r);
    }

    #[test]
    fn decodes_and_validates() {
        let d = decode_request("SET_STATUS|1|db3|HARD_OFFLINE||db1", "db3").unwrap();
        assert_eq!(d.request.to_string(), "SET_STATUS|1|db3|HARD_OFFLINE||db1");
        assert_eq!(
            decode_request("PING|1", "db1").unwrap_err().reply_text,
            "ERROR: Invalid command 'PING|1'!"
        );
        assert_eq!(
            decode_request("PING|1|db2", "db1").unwrap_err().reply_text,
            "ERROR: Invalid hostname in command (db2)! My name is 'db1'"
        );
        assert_eq!(
            decode_request("FOO|1|db1", "db1").unwrap_err().reply_text,
            "ERROR: Invalid command 'FOO'!"
        );
        assert!(decode_request("PING|2|db1", "db1")
            .unwrap()
            .warning
            .is_some());
        assert!(decode_request("SET_STATUS|1|db1|ONLINE", "db1").is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(
            encode_reply("OK: Pinged!", "8463.27"),
            "OK: Pinged!|UP:8463.27\n"
        );
        let r = decode_reply("OK: Returning status!|ONLINE|writer(1.2.3.4)|db1|UP:12.5");
        assert_eq!(r.uptime, Some(12.5));
        let s = parse_agent_status(&r.result).unwrap();
        assert_eq!(s.state, HostState::Online);
        assert_eq!(format_agent_status(&s), r.result);
        let sys = parse_system_status("OK: Returning status!||reader(192.168.0.52)|192.168.0.31")
            .unwrap();
        assert!(!sys.writable);
        assert_eq!(sys.master_ip, "192.168.0.31");
        assert_eq!(
            format_system_status(&sys),
            "OK: Returning status!||reader(192.168.0.52)|192.168.0.31"
        );
        assert_eq!(
            parse_system_status("OK: Returning status!|1|")
                .unwrap()
                .master_ip,
            ""
        );
    }

    /// Monitor HA terms: absent = 2.2.1's bytes; present = a trailing `term=<n>` field that
    /// decodes back; a bad term is an `ERROR:`; a master named `term=…` is not a term.
    #[test]
    fn term_field() {
        let set = AgentCommand::SetStatus {
            state: HostState::Online,
            roles: vec![],
            master: "db1".into(),
        };
        let plain = AgentRequest::new("db2", set.clone());
        assert_eq!(plain.to_string(), "SET_STATUS|1|db2|ONLINE||db1");
        let termed = plain.clone().with_term(Some(42));
        assert_eq!(termed.to_string(), "SET_STATUS|1|db2|ONLINE||db1|term=42");
        assert_eq!(
            decode_request(&termed.to_string(), "db2").unwrap().request,
            termed
        );
        assert_eq!(
            decode_request(&plain.to_string(), "db2").unwrap().request,
            plain
        );
        let ping = AgentRequest::new("db2", AgentCommand::Ping).with_term(Some(7));
        assert_eq!(ping.to_string(), "PING|1|db2|term=7");
        assert_eq!(
            decode_request("PING|1|db2|term=7", "db2").unwrap().request,
            ping
        );
        let e = decode_request("PING|1|db2|term=x", "db2").unwrap_err();
        assert_eq!(
            e.reply_text,
            "ERROR: Invalid term 'term=x' in command 'PING|1|db2|term=x'!"
        );
        let d = decode_request("SET_STATUS|1|db2|ONLINE||term=9", "db2").unwrap();
        assert_eq!(d.request.term, None);
    }

    /// Issue 14's `failed=` field: absent = 2.2.1's bytes; present after SET_STATUS's
    /// parameters and before a term; decodes back; unknown extra fields are ignored; other
    /// commands never carry it.
    #[test]
    fn failed_field() {
        let set = AgentCommand::SetStatus {
            state: HostState::Online,
            roles: parse_role_list("writer(10.0.0.1)"),
            master: "db2".into(),
        };
        let hinted = AgentRequest::new("db2", set.clone()).with_failed(vec!["db1".into()]);
        assert_eq!(
            hinted.to_string(),
            "SET_STATUS|1|db2|ONLINE|writer(10.0.0.1)|db2|failed=db1"
        );
        assert_eq!(
            decode_request(&hinted.to_string(), "db2").unwrap().request,
            hinted
        );
        let both = hinted.clone().with_term(Some(3));
        assert_eq!(
            both.to_string(),
            "SET_STATUS|1|db2|ONLINE|writer(10.0.0.1)|db2|failed=db1|term=3"
        );
        assert_eq!(
            decode_request(&both.to_string(), "db2").unwrap().request,
            both
        );
        let two = decode_request("SET_STATUS|1|db2|ONLINE||db2|x=1|failed=db1,db3", "db2")
            .unwrap()
            .request;
        assert_eq!(two.failed, vec!["db1".to_string(), "db3".to_string()]);
        assert!(decode_request("SET_STATUS|1|db2|ONLINE||db2|other", "db2")
            .unwrap()
            .request
            .failed
            .is_empty());
        let ping = AgentRequest::new("db2", AgentCommand::Ping).with_failed(vec!["db1".into()]);
        assert_eq!(ping.to_string(), "PING|1|db2");
    }
}
