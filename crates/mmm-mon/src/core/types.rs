//! The small value types of the monitor core's vocabulary: tokens, the four checks and
//! their results (spec §3.3), and a status file line (§3.12).

use std::fmt;
use std::time::Duration;

use mmm_common::role::RoleIp;
use mmm_common::state::HostState;

/// Identifies one effect (agent send) or one control command, so its outcome can come back
/// as an input. Send tokens are allocated by the core; command tokens by the shell. The two
/// namespaces are separate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

/// The four host checks (spec §3.3.1), in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    /// `ping`.
    Ping,
    /// `mysql`.
    Mysql,
    /// `rep_threads`.
    RepThreads,
    /// `rep_backlog`.
    RepBacklog,
}

impl CheckKind {
    /// All checks in the order `checks` prints them.
    pub const ALL: [CheckKind; 4] = [
        CheckKind::Ping,
        CheckKind::Mysql,
        CheckKind::RepThreads,
        CheckKind::RepBacklog,
    ];

    /// The check's name (`ping`, `mysql`, `rep_threads`, `rep_backlog`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Ping => "ping",
            CheckKind::Mysql => "mysql",
            CheckKind::RepThreads => "rep_threads",
            CheckKind::RepBacklog => "rep_backlog",
        }
    }

    /// The check named `name`.
    pub fn from_name(name: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Index into per-host check arrays (the position in [`CheckKind::ALL`]).
    pub fn index(self) -> usize {
        match self {
            CheckKind::Ping => 0,
            CheckKind::Mysql => 1,
            CheckKind::RepThreads => 2,
            CheckKind::RepBacklog => 3,
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of a raw check result line (spec §3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// The line starts with `OK`.
    Ok,
    /// The line starts with `ERROR`.
    Error,
    /// Anything else (`UNKNOWN: …`).
    Unknown,
}

/// One raw check result: its class and the whole line (e.g. `OK: Backlog is null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// OK / ERROR / UNKNOWN.
    pub status: CheckStatus,
    /// The full result line, shown by `checks` and in log lines.
    pub message: String,
    /// For an ERROR: how long before the result arrived the failure was already observed
    /// (the ping check: since its first unanswered echo went out). The trap period counts
    /// from then (DESIGN.md "Detection starts at the failure"). Zero for the others.
    pub failing_for: Duration,
}

impl CheckResult {
    /// Classifies a result line by its prefix, as 2.2.1 does (`OK`, `ERROR`, else UNKNOWN).
    pub fn from_line(line: impl Into<String>) -> CheckResult {
        let message = line.into();
        let status = if message.starts_with("OK") {
            CheckStatus::Ok
        } else if message.starts_with("ERROR") {
            CheckStatus::Error
        } else {
            CheckStatus::Unknown
        };
        CheckResult {
            status,
            message,
            failing_for: Duration::ZERO,
        }
    }

    /// The same result, observed failing for `d` before it arrived.
    pub fn observed_failing_for(mut self, d: Duration) -> CheckResult {
        self.failing_for = d;
        self
    }
}

/// A line of the status file (spec §3.12): host, state and roles. The core writes its
/// hosts as these ([`Action::WriteStatus`](super::Action::WriteStatus)) and is handed the
/// file's lines at startup ([`Input::Startup`](super::Input::Startup)); the shell's
/// `status_file` renders and parses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// Host name (read from a file: may be unknown to the config, then ignored).
    pub host: String,
    /// Its state.
    pub state: HostState,
    /// Its roles: those last sent to / loaded for the agent (sorted when written).
    pub roles: Vec<RoleIp>,
}
