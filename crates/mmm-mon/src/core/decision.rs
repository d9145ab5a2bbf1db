//! What the core decided or noticed, as values: [`Decision`] (one variant per kind of MMM
//! log line: state changes, check verdicts, role moves, agent reachability, admin
//! commands, startup) with its [`Level`] and the host concerned. `Display` is 2.2.1's
//! exact log message (spec §3.15), so the log, an audit trail or a metric is a match on
//! the variant, never on the text.

use std::fmt;
use std::time::Duration;

use mmm_common::role::RoleIp;
use mmm_common::state::{HostState, MonitorMode};

use super::ids::HostId;
use super::types::CheckKind;

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

/// Why a host changed state (spec §3.6 rows, §5.3 `move_role --force`); it decides the
/// tail of the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The check verdicts of the table row (replication broken or back, ping and mysql OK
    /// again, or failed while AWAITING_RECOVERY); the line says no more.
    Checks,
    /// Ping or mysql failed (from ONLINE or REPLICATION_*); the line names both verdicts:
    /// `(ping: OK, mysql: not OK)`.
    PingMysql {
        /// The ping check's verdict.
        ping: bool,
        /// The mysql check's verdict.
        mysql: bool,
    },
    /// Replication is fine again (or the peer is not ONLINE), but the host is flapping:
    /// AWAITING_RECOVERY instead of ONLINE.
    Flapping,
    /// AWAITING_RECOVERY → ONLINE: down for less than 60 s without a reboot.
    ShortDowntime {
        /// Seconds between the last uptime seen ONLINE and the uptime now.
        down_secs: u64,
    },
    /// AWAITING_RECOVERY → ONLINE after `auto_set_online`.
    AutoSetOnline {
        /// The configured `auto_set_online`.
        after: Duration,
        /// Seconds spent in AWAITING_RECOVERY.
        in_state_secs: u64,
    },
    /// A flapping host AWAITING_RECOVERY → ONLINE: `auto_set_online` is on and no check
    /// changed for `flap_duration`.
    FlapQuiet {
        /// The configured `flap_duration`.
        flap_duration: Duration,
        /// Seconds spent in AWAITING_RECOVERY.
        in_state_secs: u64,
    },
    /// `move_role --force` (the new owner becomes ONLINE, the old one REPLICATION_*).
    MoveRoleForce,
    /// mmm-rs (issue 13): the host holds errant transactions and is kept out.
    ErrantTransactions,
}

impl Reason {
    /// The reason as one word (the audit's `reason`, the hooks' `MMM_REASON`).
    pub fn word(&self) -> &'static str {
        match self {
            Reason::Checks => "checks",
            Reason::PingMysql { .. } => "ping_mysql",
            Reason::Flapping => "flapping",
            Reason::ShortDowntime { .. } => "short_downtime",
            Reason::AutoSetOnline { .. } => "auto_set_online",
            Reason::FlapQuiet { .. } => "flap_quiet",
            Reason::MoveRoleForce => "move_role_force",
            Reason::ErrantTransactions => "errant_transactions",
        }
    }
}

/// Which startup query failed (spec §3.14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupQuery {
    /// GET_AGENT_STATUS.
    Agent,
    /// GET_SYSTEM_STATUS.
    System,
}

/// Something the core decided or noticed. `Display` is the exact MMM log message (spec
/// §3.15); [`Decision::level`] its level, [`Decision::host`] the host it is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A check is OK again (§3.3.4).
    CheckOk {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The check.
        check: CheckKind,
    },
    /// A check answered UNKNOWN.
    CheckUnknown {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The check.
        check: CheckKind,
        /// The result line.
        message: String,
    },
    /// A check failed for its whole trap period.
    CheckFailed {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The check.
        check: CheckKind,
        /// Since when it fails.
        failing_for: Duration,
        /// The latest ERROR line.
        message: String,
    },
    /// The monitor's own network check changed its verdict (§3.4).
    Network {
        /// Reachable now.
        up: bool,
    },
    /// A host changed state (§3.6, `move_role --force`).
    StateChanged {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The state before.
        from: HostState,
        /// The state now.
        to: HostState,
        /// Why.
        reason: Reason,
    },
    /// A host started flapping (§3.7).
    Flapping {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
    },
    /// `clear_roles`: the header line (logged even when the host held none).
    RolesCleared {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
    },
    /// `clear_roles`: one line per role removed.
    RoleRemoved {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The role instance.
        role: RoleIp,
    },
    /// An orphaned role instance got an owner (§3.9 step 2).
    OrphanAssigned {
        /// The new owner.
        host: HostId,
        /// Its name.
        name: String,
        /// The role instance.
        role: RoleIp,
    },
    /// A role instance moved (§3.9 steps 3 and 4): to its preferred host, or to balance.
    RoleMoved {
        /// The new owner.
        host: HostId,
        /// The role instance.
        role: RoleIp,
        /// The old owner's name.
        from: String,
        /// The new owner's name.
        to: String,
        /// Moved back to its preferred host (else: balancing).
        preferred: bool,
    },
    /// An agent answered, but not `OK` (§3.10).
    AgentAnswered {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The answer.
        answer: String,
        /// The previous exchange failed too (DEBUG instead of WARN).
        repeated: bool,
    },
    /// An agent exchange failed without an answer.
    AgentNoAnswer {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The failure.
        error: String,
        /// The previous exchange failed too (DEBUG instead of WARN).
        repeated: bool,
    },
    /// The agent of a host whose ping check is OK cannot be reached (`agent_down`).
    AgentUnreachable {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// Found by the startup queries (ERROR) rather than a failed send (FATAL).
        at_startup: bool,
    },
    /// The agent answers again.
    AgentReachable {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
    },
    /// A host that must lose its roles cannot be told: kill_host runs (§3.11).
    KillHost {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
    },
    /// A lease keepalive PING failed (`agent_lease`, PASSIVE).
    LeaseKeepaliveFailed {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The failure.
        error: String,
    },
    /// mmm-rs (issue 13): a master becomes the active master although its replication
    /// from the old one was known not to be current (2.2.1 promoted it silently).
    ErrantFound {
        /// The host kept out.
        host: HostId,
        /// Its name.
        name: String,
        /// The active master it was compared with.
        active: String,
        /// How many transactions.
        count: u64,
        /// Their GTID ranges.
        ranges: String,
    },
    /// mmm-rs (issue 13): the errant-transaction comparison cannot run for a host; it is
    /// kept out until an operator accepts (or re-seeds) it.
    ErrantGuardUnavailable {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// Why.
        why: String,
    },
    /// mmm-rs (issue 13): a host kept out for errant transactions has none any more.
    ErrantCleared {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The active master.
        active: String,
    },
    /// mmm-rs (issue 13): `accept_errant`.
    ErrantAccepted {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// What was accepted.
        what: String,
    },
    /// mmm-rs (issue 13): the active master replicates from its peer again.
    PeerLinkResumed {
        /// The active master.
        host: HostId,
        /// Its name.
        name: String,
        /// The agent's answer.
        answer: String,
    },
    /// A new active master whose replication was not current (issue 13).
    StaleActiveMaster {
        /// The new active master.
        host: HostId,
        /// Its name.
        name: String,
        /// The old active master.
        old: String,
        /// Why its replication is not current (the failing check and its message).
        why: String,
    },
    /// mmm-rs (issue 13, `semi_sync`): the verdict on semi-synchronous replication changed.
    SemiSyncState {
        /// Whether every acknowledged write is provably on the standby master.
        lossless: bool,
        /// What was seen.
        why: String,
    },
    /// mmm-rs (issue 13, `semi_sync`): the active master failed and the writer role is not
    /// given to another master, which may lack acknowledged writes.
    PromotionRefused {
        /// The failed active master.
        host: HostId,
        /// Its name.
        old: String,
        /// The masters that could have taken the role.
        candidates: Vec<String>,
        /// The writer role's name.
        role: String,
        /// Why the monitor cannot be sure.
        why: String,
    },
    /// mmm-rs (issue 13, `semi_sync`): a master becomes the active master after the failure
    /// of the old one, holding every write the old one acknowledged.
    LosslessFailover {
        /// The new active master.
        host: HostId,
        /// Its name.
        name: String,
        /// The old active master.
        old: String,
        /// What the semi-sync watch had seen.
        seen: String,
    },
    /// mmm-rs (issue 13): without `semi_sync`, a master becomes the active master after the
    /// failure of the old one; writes the old one acknowledged may be missing.
    FailoverMayLoseWrites {
        /// The new active master.
        host: HostId,
        /// Its name.
        name: String,
        /// The old active master.
        old: String,
    },
    /// The writer role is held back from a new master until another host's lease ran out
    /// (`agent_lease`).
    LeaseWait {
        /// The host that may still hold the writer role.
        holder: String,
        /// The new master.
        gainer: String,
        /// How long still; `None` while an exchange with the holder is open.
        wait: Option<Duration>,
    },
    /// mmm-rs (issue 17, with `pre_failover_bin` or `post_failover_bin` set): an exclusive
    /// role went to another host on the monitor's own decision (not `move_role`).
    Failover {
        /// The new holder.
        host: HostId,
        /// The role instance.
        role: RoleIp,
        /// The last holder's name.
        from: String,
        /// The new holder's name.
        to: String,
    },
    /// mmm-rs (issue 17): `pre_failover_bin` vetoed (non-zero exit or timeout) a failover;
    /// the role stays without a holder and the hook is asked again after `retry`.
    FailoverHeld {
        /// The role instance.
        role: RoleIp,
        /// The last holder's name.
        from: String,
        /// The host it would go to.
        to: String,
        /// Exit status or timeout, and the hook's output.
        why: String,
        /// `pre_failover_retry`.
        retry: Duration,
    },
    /// mmm-rs (issue 17): `pre_failover_bin` allowed a failover (exit 0).
    FailoverAllowed {
        /// The role instance.
        role: RoleIp,
        /// The last holder's name.
        from: String,
        /// The host it goes to.
        to: String,
    },
    /// `set_active` / `set_manual` / `set_passive` changed the mode (§5.3).
    ModeChanged {
        /// The mode before.
        from: MonitorMode,
        /// The mode now.
        to: MonitorMode,
    },
    /// Monitor HA (issue 16): etcd stopped confirming this leader's leadership (`on`: the
    /// mode is held PASSIVE, roles kept, no failover), or confirms it again (`!on`: `mode`
    /// is back).
    HaHold {
        /// Held, or released.
        on: bool,
        /// The mode before the hold (and after it).
        mode: MonitorMode,
    },
    /// `set_online` / `set_offline` changed a host's state (§5.3).
    AdminStateChanged {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The state before.
        from: HostState,
        /// The state now.
        to: HostState,
    },
    /// `move_role [--force]` moved a role (§5.3).
    AdminMovedRole {
        /// The new owner.
        host: HostId,
        /// The role name.
        role: String,
        /// The old owner's name (empty if none).
        from: String,
        /// The new owner's name.
        to: String,
        /// `--force`.
        forced: bool,
    },
    /// `set_ip` gave a role instance to a host (§5.3).
    AdminSetIp {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The role instance.
        role: RoleIp,
    },
    /// WAIT ends: both masters are ONLINE (§3.6).
    WaitEndedBothOnline {
        /// The first master's name.
        first: String,
        /// The second master's name.
        second: String,
    },
    /// WAIT ends: a master did not come online for `wait_for_other_master`.
    WaitEndedTimeout {
        /// The master that stayed away.
        dead: String,
        /// `wait_for_other_master`.
        waited: Duration,
    },
    /// The status file names a host the config does not know (§3.14.1).
    UnknownStoredHost {
        /// The name in the file.
        name: String,
    },
    /// A stored or reported role instance no longer exists in the config.
    RoleGone {
        /// The host that reported it.
        host: HostId,
        /// The role instance.
        role: RoleIp,
    },
    /// A stored or reported role instance is no longer allowed on its host.
    RoleNotAllowed {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// The role instance.
        role: RoleIp,
    },
    /// A role instance is configured on several systems at startup (§3.14.3).
    RoleOnSeveralHosts {
        /// The role instance.
        role: RoleIp,
        /// On how many systems.
        hosts: usize,
    },
    /// A startup query to a host failed (§3.14.1).
    StartupStatusUnknown {
        /// The host.
        host: HostId,
        /// Its name.
        name: String,
        /// Which query.
        query: StartupQuery,
        /// The answer (or failure) text.
        answer: String,
    },
    /// The startup table (§3.14.3), several lines, without a final newline.
    StartupTable(String),
    /// Startup is done (§3.14).
    MonitorStarted {
        /// The mode the monitor runs in.
        mode: MonitorMode,
    },
}

impl Decision {
    /// The MMM log level of the line.
    pub fn level(&self) -> Level {
        use Decision::*;
        match self {
            Network { .. }
            | StateChanged { .. }
            | Flapping { .. }
            | AgentReachable { .. }
            | AdminStateChanged { .. }
            | AdminMovedRole { .. }
            | AdminSetIp { .. }
            | FailoverHeld { .. }
            | WaitEndedBothOnline { .. } => Level::Fatal,
            AgentUnreachable { at_startup, .. } => {
                if *at_startup {
                    Level::Error
                } else {
                    Level::Fatal
                }
            }
            CheckFailed { .. }
            | KillHost { .. }
            | StaleActiveMaster { .. }
            | ErrantFound { .. }
            | ErrantGuardUnavailable { .. }
            | PromotionRefused { .. }
            | FailoverMayLoseWrites { .. }
            | StartupStatusUnknown { .. } => Level::Error,
            ErrantAccepted { .. } => Level::Warn,
            ErrantCleared { .. } | PeerLinkResumed { .. } => Level::Info,
            SemiSyncState { lossless, .. } => {
                if *lossless {
                    Level::Info
                } else {
                    Level::Warn
                }
            }
            LosslessFailover { .. } => Level::Warn,
            AgentAnswered { repeated, .. } | AgentNoAnswer { repeated, .. } => {
                if *repeated {
                    Level::Debug
                } else {
                    Level::Warn
                }
            }
            CheckUnknown { .. }
            | LeaseWait { .. }
            | WaitEndedTimeout { .. }
            | UnknownStoredHost { .. }
            | RoleGone { .. }
            | RoleNotAllowed { .. }
            | RoleOnSeveralHosts { .. } => Level::Warn,
            CheckOk { .. }
            | RolesCleared { .. }
            | RoleRemoved { .. }
            | OrphanAssigned { .. }
            | RoleMoved { .. }
            | ModeChanged { .. }
            | HaHold { on: false, .. }
            | Failover { .. }
            | FailoverAllowed { .. }
            | StartupTable(_)
            | MonitorStarted { .. } => Level::Info,
            HaHold { on: true, .. } => Level::Fatal,
            LeaseKeepaliveFailed { .. } => Level::Debug,
        }
    }

    /// The host the decision is about, if any.
    pub fn host(&self) -> Option<HostId> {
        use Decision::*;
        match self {
            CheckOk { host, .. }
            | CheckUnknown { host, .. }
            | CheckFailed { host, .. }
            | StateChanged { host, .. }
            | Flapping { host, .. }
            | RolesCleared { host, .. }
            | RoleRemoved { host, .. }
            | OrphanAssigned { host, .. }
            | RoleMoved { host, .. }
            | AgentAnswered { host, .. }
            | AgentNoAnswer { host, .. }
            | AgentUnreachable { host, .. }
            | AgentReachable { host, .. }
            | KillHost { host, .. }
            | StaleActiveMaster { host, .. }
            | ErrantFound { host, .. }
            | ErrantGuardUnavailable { host, .. }
            | ErrantCleared { host, .. }
            | ErrantAccepted { host, .. }
            | PeerLinkResumed { host, .. }
            | PromotionRefused { host, .. }
            | LosslessFailover { host, .. }
            | FailoverMayLoseWrites { host, .. }
            | LeaseKeepaliveFailed { host, .. }
            | AdminStateChanged { host, .. }
            | AdminMovedRole { host, .. }
            | AdminSetIp { host, .. }
            | Failover { host, .. }
            | RoleGone { host, .. }
            | RoleNotAllowed { host, .. }
            | StartupStatusUnknown { host, .. } => Some(*host),
            Network { .. }
            | SemiSyncState { .. }
            | LeaseWait { .. }
            | ModeChanged { .. }
            | HaHold { .. }
            | FailoverHeld { .. }
            | FailoverAllowed { .. }
            | WaitEndedBothOnline { .. }
            | WaitEndedTimeout { .. }
            | UnknownStoredHost { .. }
            | RoleOnSeveralHosts { .. }
            | StartupTable(_)
            | MonitorStarted { .. } => None,
        }
    }
}

fn ok_word(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "not OK"
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Decision::*;
        match self {
            CheckOk { name, check, .. } => write!(f, "Check '{check}' on '{name}' is ok!"),
            CheckUnknown {
                name,
                check,
                message,
                ..
            } => write!(
                f,
                "Check '{check}' on '{name}' is in unknown state! Message: {message}"
            ),
            CheckFailed {
                name,
                check,
                failing_for,
                message,
                ..
            } => write!(
                f,
                "Check '{check}' on '{name}' has failed for {} seconds! Message: {message}",
                failing_for.as_secs()
            ),
            Network { up: true } => f.write_str("Network is reachable"),
            Network { up: false } => f.write_str("Network is unreachable"),
            StateChanged {
                name,
                from,
                to,
                reason,
                ..
            } => state_changed(f, name, *from, *to, reason),
            Flapping { name, .. } => write!(f, "Host {name} is flapping!"),
            RolesCleared { name, .. } => write!(f, "Removing all roles from host '{name}':"),
            RoleRemoved { name, role, .. } => {
                write!(f, "    Removed role '{role}' from host '{name}'")
            }
            OrphanAssigned { name, role, .. } => {
                write!(f, "Orphaned role '{role}' has been assigned to '{name}'")
            }
            RoleMoved {
                role,
                from,
                to,
                preferred,
                ..
            } => {
                let kind = if *preferred { "preferred host" } else { "host" };
                write!(
                    f,
                    "Moving role '{role}' from host '{from}' to {kind} '{to}'"
                )
            }
            AgentAnswered { name, answer, .. } => {
                write!(f, "Agent on host '{name}' answered '{answer}'")
            }
            AgentNoAnswer { name, error, .. } => {
                write!(f, "Received undefined answer from host {name}. $!: {error}")
            }
            AgentUnreachable { name, .. } => write!(f, "Can't reach agent on host '{name}'"),
            AgentReachable { name, .. } => {
                write!(f, "Agent on host '{name}' is reachable again")
            }
            KillHost { name, .. } => write!(
                f,
                "Can't send offline status notification to '{name}' - killing it!"
            ),
            LeaseKeepaliveFailed { name, error, .. } => {
                write!(f, "Lease keepalive to '{name}' failed: {error}")
            }
            ErrantFound {
                name,
                active,
                count,
                ranges,
                ..
            } => write!(
                f,
                "Host '{name}' has {count} errant transaction(s) that the active master \
                 '{active}' never had ({ranges}): it is kept out and '{active}' does not \
                 replicate from it. Re-seed it (mmm_clone) or accept them: mmm_control \
                 accept_errant {name}"
            ),
            ErrantGuardUnavailable { name, why, .. } => write!(
                f,
                "The errant-transaction guard cannot run for host '{name}' ({why}): it is \
                 kept out until checked by hand and accepted (mmm_control accept_errant \
                 {name}) or re-seeded"
            ),
            ErrantCleared { name, active, .. } => write!(
                f,
                "Host '{name}' has no errant transactions any more (compared with '{active}')"
            ),
            ErrantAccepted { name, what, .. } => write!(
                f,
                "Errant transactions of host '{name}' accepted by the operator ({what}): they \
                 replicate into the active master"
            ),
            PeerLinkResumed { name, answer, .. } => write!(
                f,
                "The active master '{name}' replicates from its peer again ({answer})"
            ),
            StaleActiveMaster { name, old, why, .. } => write!(
                f,
                "Host '{name}' becomes the active master although its replication is not \
                 current ({why}): writes made on '{old}' that had not reached it are missing on it"
            ),
            SemiSyncState { lossless: true, why } => {
                write!(f, "semi_sync: every acknowledged write is on the standby master ({why})")
            }
            SemiSyncState {
                lossless: false,
                why,
            } => write!(
                f,
                "semi_sync: NOT lossless now ({why}); a crash of the writer would not be failed over automatically"
            ),
            PromotionRefused {
                old,
                candidates,
                role,
                why,
                ..
            } => {
                let force = candidates
                    .iter()
                    .map(|c| format!("'mmm_control move_role --force {role} {c}'"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                write!(
                    f,
                    "Not giving role '{role}' to {} after the failure of '{old}': semi_sync could not prove that it holds every acknowledged write ({why}). The role waits for '{old}' to come back ONLINE; to promote anyway (writes acknowledged by '{old}' may be lost): {force}",
                    candidates.join("/")
                )
            }
            LosslessFailover {
                name, old, seen, ..
            } => write!(
                f,
                "Host '{name}' becomes the active master after the failure of '{old}' holding every acknowledged write (semi_sync: {seen})"
            ),
            FailoverMayLoseWrites { name, old, .. } => write!(
                f,
                "Host '{name}' becomes the active master after the failure of '{old}' without semi_sync: writes '{old}' acknowledged that had reached no surviving server are lost"
            ),
            LeaseWait {
                holder,
                gainer,
                wait: Some(wait),
            } => write!(
                f,
                "Waiting {:.1} s for the lease of '{holder}' to expire before giving the writer \
                 role to '{gainer}'",
                wait.as_secs_f64()
            ),
            LeaseWait {
                holder,
                gainer,
                wait: None,
            } => write!(
                f,
                "Waiting for the request in flight to '{holder}' to end and for its lease to \
                 expire before giving the writer role to '{gainer}'"
            ),
            Failover { role, from, to, .. } => write!(
                f,
                "Failover of role '{role}' from host '{from}' to host '{to}'"
            ),
            FailoverHeld {
                role,
                from,
                to,
                why,
                retry,
            } => write!(
                f,
                "Failover of role '{role}' from host '{from}' to host '{to}' held by \
                 pre_failover_bin ({why}); asking again in {} seconds",
                retry.as_secs_f64()
            ),
            FailoverAllowed { role, from, to } => write!(
                f,
                "pre_failover_bin allowed the failover of role '{role}' from host '{from}' to \
                 host '{to}'"
            ),
            ModeChanged { from, to } => write!(f, "Admin changed mode from '{from}' to '{to}'"),
            HaHold { on: true, mode } => write!(
                f,
                "Monitor HA: etcd does not confirm this monitor's leadership: mode '{mode}' held as 'PASSIVE' (roles kept, no failover) until it does"
            ),
            HaHold { on: false, mode } => write!(
                f,
                "Monitor HA: etcd confirms this monitor's leadership again: back to mode '{mode}'"
            ),
            AdminStateChanged { name, from, to, .. } => {
                write!(f, "Admin changed state of '{name}' from {from} to {to}")
            }
            AdminMovedRole {
                role,
                from,
                to,
                forced: false,
                ..
            } => write!(f, "Admin moved role '{role}' from '{from}' to '{to}'"),
            AdminMovedRole {
                role,
                from,
                to,
                forced: true,
                ..
            } => write!(
                f,
                "Admin forced move of role '{role}' from '{from}' to '{to}'"
            ),
            AdminSetIp { name, role, .. } => write!(f, "Admin set role '{role}' to host '{name}'"),
            WaitEndedBothOnline { first, second } => write!(
                f,
                "Nodes {first} and {second} are ONLINE, switching from mode 'WAIT' to 'ACTIVE'."
            ),
            WaitEndedTimeout { dead, waited } => write!(
                f,
                "Master {dead} did not come online for {}(wait_for_other_master) seconds. \
                 Switching from mode 'WAIT' to 'ACTIVE'",
                waited.as_secs()
            ),
            UnknownStoredHost { name } => write!(
                f,
                "Ignoring saved status information for unknown host '{name}'"
            ),
            RoleGone { role, .. } => write!(
                f,
                "Detected change in role definitions: Role '{role}' was removed."
            ),
            RoleNotAllowed { name, role, .. } => write!(
                f,
                "Detected change in role definitions: Host '{name}' can't handle role '{role}' \
                 anymore."
            ),
            RoleOnSeveralHosts { role, hosts } => write!(
                f,
                "Role '{role}' was configured on {hosts} hosts during monitor startup."
            ),
            StartupStatusUnknown {
                name,
                query,
                answer,
                ..
            } => {
                let what = match query {
                    StartupQuery::Agent => format!("the agent on host '{name}'"),
                    StartupQuery::System => format!("the system '{name}'"),
                };
                write!(
                    f,
                    "The status of {what} could not be determined (answer was: {answer})."
                )
            }
            StartupTable(table) => f.write_str(table),
            MonitorStarted { mode } => {
                write!(f, "Monitor started in {} mode.", mode.config_word())
            }
        }
    }
}

/// `State of host '<h>' changed from <S> to <T>` and the tail its reason gives it (§3.6).
fn state_changed(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    from: HostState,
    to: HostState,
    reason: &Reason,
) -> fmt::Result {
    if let Reason::FlapQuiet {
        flap_duration,
        in_state_secs,
    } = reason
    {
        return write!(
            f,
            "State of flapping host '{name}' changed from {from} to {to} because of \
             auto_set_online and flap_duration({}) seconds passed without another failure. It \
             was in state {from} for {in_state_secs} seconds",
            flap_duration.as_secs()
        );
    }
    write!(f, "State of host '{name}' changed from {from} to {to}")?;
    match reason {
        Reason::Checks | Reason::FlapQuiet { .. } => Ok(()),
        Reason::PingMysql { ping, mysql } => {
            write!(f, " (ping: {}, mysql: {})", ok_word(*ping), ok_word(*mysql))
        }
        Reason::Flapping => f.write_str(" (because it's flapping)"),
        Reason::ShortDowntime { down_secs } => {
            write!(f, " because it was down for only {down_secs} seconds")
        }
        Reason::AutoSetOnline {
            after,
            in_state_secs,
        } => write!(
            f,
            " because of auto_set_online({} seconds). It was in state {from} for \
             {in_state_secs} seconds",
            after.as_secs()
        ),
        Reason::MoveRoleForce => f.write_str(" (because of move_role --force)"),
        Reason::ErrantTransactions => f.write_str(" (because it has errant transactions)"),
    }
}
