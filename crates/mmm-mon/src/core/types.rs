//! The monitor core's public vocabulary: what goes in ([`Input`]), what comes out
//! ([`Action`]), and the small value types both carry (spec §3.3, §3.10-§3.12, §3.15, §5.2).
//!
//! Nothing here does IO; the shell (driver, checks, agent client, control listener, status
//! file) turns these values into effects and feeds the outcomes back as inputs.

use std::fmt;
use std::time::Duration;

use mmm_common::proto::agent::{AgentReply, AgentRequest, AgentStatus, SystemStatus};
use mmm_common::role::RoleIp;
use mmm_common::state::HostState;

/// A host, as its index in configuration order (`config.hosts[id]`).
pub type HostId = usize;

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

    /// Index into per-host check arrays.
    pub(crate) fn index(self) -> usize {
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

/// A line of the status file (spec §3.12): host, state and the roles last sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// Host name.
    pub host: String,
    /// Its state.
    pub state: HostState,
    /// Its roles (sorted).
    pub roles: Vec<RoleIp>,
}

/// One host's entry from the status file at startup (spec §3.14.1 "stored").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHost {
    /// Host name as written in the file (may be unknown to the config: then ignored).
    pub host: String,
    /// Stored state.
    pub state: HostState,
    /// Stored roles.
    pub roles: Vec<RoleIp>,
}

/// Everything the core learns from the outside.
#[derive(Debug, Clone)]
pub enum Input {
    /// A raw check result as it arrives (each (host, check) on its own schedule). Results
    /// that arrive before [`Input::Startup`] are the initial checks of spec §3.3.3.
    Check {
        /// The host checked.
        host: HostId,
        /// Which check.
        check: CheckKind,
        /// The result line.
        result: CheckResult,
        /// Wall-clock time of the result in epoch seconds (for `checks` display only).
        wall: i64,
    },
    /// The long-lived MySQL connection to a host dropped: the `mysql` check's trap timer
    /// starts now (DESIGN.md "Detection starts at the failure").
    CheckConnLost {
        /// The host.
        host: HostId,
        /// How long the server had already been silent when this was noticed (an
        /// unanswered query; zero for a closed connection). The mysql trap period counts
        /// from then.
        silent_for: Duration,
    },
    /// The network check (spec §3.4) changed its verdict.
    Network {
        /// Whether any `ping_ips` answered.
        up: bool,
    },
    /// A network check round found a `ping_ips` address answering (sent after every
    /// successful round). Once the monitor has received one, a check failure is reported
    /// only after a later round confirmed the monitor's own network: a monitor that is
    /// cut off fails checks before its network check (which waits for ping timeouts)
    /// says so, and must not fail hosts over for it (mmm-rs; found by the fault matrix).
    NetworkConfirmed {
        /// When the successful round began (a round that began before a cut may answer;
        /// only its start proves the network was up then).
        probed_at: std::time::Instant,
    },
    /// The outcome of an [`Action::Send`] with the same token. `Err` = connect error, timeout
    /// or no reply line. A reply whose result starts with `ERROR` also counts as failed.
    AgentReply {
        /// The send's token.
        token: Token,
        /// The reply or the failure text.
        reply: Result<AgentReply, String>,
        /// Whether the request may have reached the agent: true for any reply and for a
        /// failure after the connect (send error, read timeout, no reply line); false for a
        /// connect error or connect timeout. Moves the host's lease anchor (`agent_lease`).
        maybe_delivered: bool,
    },
    /// A raw control line (newline stripped, `quit` handled by the listener), spec §5.2.
    Command {
        /// Identifies the reply.
        token: Token,
        /// The line.
        line: String,
    },
    /// The startup picture (spec §3.14): status file content and, per host in config
    /// order, the GET_AGENT_STATUS / GET_SYSTEM_STATUS results (`Err` = the answer text or
    /// failure). Must come once, after the initial check results.
    Startup {
        /// Status file lines (empty when the file was missing).
        stored: Vec<StoredHost>,
        /// Per host (config order): GET_AGENT_STATUS.
        agents: Vec<Result<AgentStatus, String>>,
        /// Per host (config order): GET_SYSTEM_STATUS.
        systems: Vec<Result<SystemStatus, String>>,
    },
}

/// Log level of a [`Decision`] (MMM's FATAL maps to `error!` in tracing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// MMM's FATAL.
    Fatal,
    /// ERROR.
    Error,
    /// WARN.
    Warn,
    /// INFO.
    Info,
    /// DEBUG.
    Debug,
}

impl Level {
    /// MMM's 5-character right-aligned level word (` INFO`, ` WARN`, `ERROR`, `FATAL`, `DEBUG`).
    pub fn as_mmm(self) -> &'static str {
        match self {
            Level::Fatal => "FATAL",
            Level::Error => "ERROR",
            Level::Warn => " WARN",
            Level::Info => " INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// Something the core decided or noticed: state changes, role moves, flapping, mode
/// switches, check verdicts. `Display` is the exact MMM log message (spec §3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Log level.
    pub level: Level,
    /// The host concerned, if any.
    pub host: Option<HostId>,
    /// The MMM log message.
    pub text: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Something the shell must do. Drain with [`crate::core::Monitor::poll_action`] after every
/// `handle_*` call and carry them out in order (sends to one host in order; hosts may run in
/// parallel: the core sequences cross-host orderings itself by waiting for replies).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Action {
    /// Send `request` to `host`'s agent; feed the outcome back as [`Input::AgentReply`].
    Send {
        /// The token of the reply.
        token: Token,
        /// The host.
        host: HostId,
        /// The request line.
        request: AgentRequest,
    },
    /// Run the kill-host binary: `<kill_host_bin> <host> <1|0>` (spec §3.11).
    KillHost {
        /// The host to kill.
        host: HostId,
        /// The host's ping check status.
        ping_ok: bool,
    },
    /// Write the status file (spec §3.12) with these lines (config order). Only emitted
    /// when the content changed; never in PASSIVE.
    WriteStatus(Vec<StatusLine>),
    /// Write `text` to the control client of command `token` (exact bytes, nothing added).
    Reply {
        /// The command's token.
        token: Token,
        /// The reply text.
        text: String,
    },
    /// Log this decision.
    Decision(Decision),
    /// Run the network check (`ping_ips`) now instead of at its next `ping_interval`: a
    /// check failure's trap period has ended and only waits for a network confirmation
    /// newer than its last error ([`Input::NetworkConfirmed`]).
    ProbeNetwork,
}
