//! What goes into the monitor core ([`Input`]) and what comes out ([`Action`]) (spec
//! §3.3, §3.10-§3.12, §3.15, §5.2).
//!
//! Nothing here does IO; the shell (driver, checks, agent client, control listener, status
//! file) turns these values into effects and feeds the outcomes back as inputs.

use std::time::Duration;

use mmm_common::proto::agent::{AgentReply, AgentRequest, AgentStatus, SystemStatus};

use super::decision::Decision;
use super::durability::Durability;
use super::ids::HostId;
use super::types::{CheckKind, CheckResult, StatusLine, Token};

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
    /// The errant-transaction comparison (issue 13, `checks/gtid.rs`): what `host`
    /// executed that `against` (the active master when the comparison ran) never had.
    /// `Err`: the comparison cannot run on these servers (GTID-less), with the reason. A
    /// server that could not be read sends nothing.
    Errant {
        /// The master compared.
        host: HostId,
        /// The master it was compared with.
        against: HostId,
        /// Its errant transactions.
        result: Result<mmm_common::gtid::ErrantSet, String>,
    },
    /// The semi-sync watch's verdict changed (`semi_sync`, `checks/semi_sync.rs`).
    Durability(Durability),
    /// The outcome of an [`Action::PreFailover`] with the same `seq`.
    PreFailoverResult {
        /// The run's number.
        seq: u64,
        /// The hook exited 0.
        allowed: bool,
        /// Otherwise why not: exit status or timeout, and the hook's output.
        why: String,
    },
    /// Monitor HA (issue 16): etcd cannot confirm this leader's leadership (`on`), or can
    /// again (`!on`). While held the core is PASSIVE with `cause` (roles kept, no role
    /// moves, no kill_host, only lease renewals with `agent_lease`); released, the mode
    /// before comes back (from ACTIVE as `set_active` does it).
    Hold {
        /// Hold, or release.
        on: bool,
        /// What `show` says while held.
        cause: String,
    },
    /// The startup picture (spec §3.14): status file content and, per host in config
    /// order, the GET_AGENT_STATUS / GET_SYSTEM_STATUS results (`Err` = the answer text or
    /// failure). Must come once, after the initial check results.
    Startup {
        /// Status file lines (empty when the file was missing).
        stored: Vec<StatusLine>,
        /// Per host (config order): GET_AGENT_STATUS.
        agents: Vec<Result<AgentStatus, String>>,
        /// Per host (config order): GET_SYSTEM_STATUS.
        systems: Vec<Result<SystemStatus, String>>,
    },
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
    /// Run `pre_failover_bin` for a failover of `role` from `from` to `to` (issue 17); feed
    /// the outcome back as [`Input::PreFailoverResult`] with the same `seq`. The failover
    /// is held until then.
    PreFailover {
        /// The run's number.
        seq: u64,
        /// The role instance.
        role: mmm_common::role::RoleIp,
        /// Its last holder.
        from: String,
        /// The host it would go to.
        to: String,
    },
    /// Run the network check (`ping_ips`) now instead of at its next `ping_interval`: a
    /// check failure's trap period has ended and only waits for a network confirmation
    /// newer than its last error ([`Input::NetworkConfirmed`]).
    ProbeNetwork,
}
