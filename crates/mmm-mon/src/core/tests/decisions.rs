//! Every [`Decision`] variant's `Display` is 2.2.1's log line (spec §3.15), and its level
//! and host are the ones MMM logs it with.

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn db(i: usize) -> (HostId, String) {
    (HostId(i), format!("db{}", i + 1))
}

/// (decision, level, exact text) for every variant.
fn cases() -> Vec<(Decision, Level, &'static str)> {
    let (h, name) = db(0);
    let n = || name.clone();
    let w = r("writer", "198.18.2.188");
    use Decision::*;
    vec![
        (CheckOk { host: h, name: n(), check: CheckKind::Mysql }, Level::Info, "Check 'mysql' on 'db1' is ok!"),
        (CheckUnknown { host: h, name: n(), check: CheckKind::RepThreads, message: "UNKNOWN: x".into() }, Level::Warn, "Check 'rep_threads' on 'db1' is in unknown state! Message: UNKNOWN: x"),
        (CheckFailed { host: h, name: n(), check: CheckKind::Ping, failing_for: Duration::from_millis(10_900), message: "ERROR: y".into() }, Level::Error, "Check 'ping' on 'db1' has failed for 10 seconds! Message: ERROR: y"),
        (Network { up: true }, Level::Fatal, "Network is reachable"),
        (Network { up: false }, Level::Fatal, "Network is unreachable"),
        (StateChanged { host: h, name: n(), from: HostState::Online, to: HostState::HardOffline, reason: Reason::PingMysql { ping: true, mysql: false } }, Level::Fatal, "State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)"),
        (StateChanged { host: h, name: n(), from: HostState::Online, to: HostState::ReplicationFail, reason: Reason::Checks }, Level::Fatal, "State of host 'db1' changed from ONLINE to REPLICATION_FAIL"),
        (StateChanged { host: h, name: n(), from: HostState::ReplicationDelay, to: HostState::AwaitingRecovery, reason: Reason::Flapping }, Level::Fatal, "State of host 'db1' changed from REPLICATION_DELAY to AWAITING_RECOVERY (because it's flapping)"),
        (StateChanged { host: h, name: n(), from: HostState::AwaitingRecovery, to: HostState::Online, reason: Reason::ShortDowntime { down_secs: 9 } }, Level::Fatal, "State of host 'db1' changed from AWAITING_RECOVERY to ONLINE because it was down for only 9 seconds"),
        (StateChanged { host: h, name: n(), from: HostState::AwaitingRecovery, to: HostState::Online, reason: Reason::AutoSetOnline { after: 10 * SEC, in_state_secs: 12 } }, Level::Fatal, "State of host 'db1' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online(10 seconds). It was in state AWAITING_RECOVERY for 12 seconds"),
        (StateChanged { host: h, name: n(), from: HostState::AwaitingRecovery, to: HostState::Online, reason: Reason::FlapQuiet { flap_duration: 300 * SEC, in_state_secs: 301 } }, Level::Fatal, "State of flapping host 'db1' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online and flap_duration(300) seconds passed without another failure. It was in state AWAITING_RECOVERY for 301 seconds"),
        (StateChanged { host: h, name: n(), from: HostState::ReplicationFail, to: HostState::Online, reason: Reason::MoveRoleForce }, Level::Fatal, "State of host 'db1' changed from REPLICATION_FAIL to ONLINE (because of move_role --force)"),
        (Flapping { host: h, name: n() }, Level::Fatal, "Host db1 is flapping!"),
        (RolesCleared { host: h, name: n() }, Level::Info, "Removing all roles from host 'db1':"),
        (RoleRemoved { host: h, name: n(), role: w.clone() }, Level::Info, "    Removed role 'writer(198.18.2.188)' from host 'db1'"),
        (OrphanAssigned { host: h, name: n(), role: w.clone() }, Level::Info, "Orphaned role 'writer(198.18.2.188)' has been assigned to 'db1'"),
        (RoleMoved { host: h, role: w.clone(), from: "db2".into(), to: n(), preferred: true }, Level::Info, "Moving role 'writer(198.18.2.188)' from host 'db2' to preferred host 'db1'"),
        (RoleMoved { host: h, role: w.clone(), from: "db2".into(), to: n(), preferred: false }, Level::Info, "Moving role 'writer(198.18.2.188)' from host 'db2' to host 'db1'"),
        (AgentAnswered { host: h, name: n(), answer: "ERROR: z".into(), repeated: false }, Level::Warn, "Agent on host 'db1' answered 'ERROR: z'"),
        (AgentAnswered { host: h, name: n(), answer: "ERROR: z".into(), repeated: true }, Level::Debug, "Agent on host 'db1' answered 'ERROR: z'"),
        (AgentNoAnswer { host: h, name: n(), error: "Connection refused".into(), repeated: false }, Level::Warn, "Received undefined answer from host db1. $!: Connection refused"),
        (AgentNoAnswer { host: h, name: n(), error: "Connection refused".into(), repeated: true }, Level::Debug, "Received undefined answer from host db1. $!: Connection refused"),
        (AgentUnreachable { host: h, name: n(), at_startup: false }, Level::Fatal, "Can't reach agent on host 'db1'"),
        (AgentUnreachable { host: h, name: n(), at_startup: true }, Level::Error, "Can't reach agent on host 'db1'"),
        (AgentReachable { host: h, name: n() }, Level::Fatal, "Agent on host 'db1' is reachable again"),
        (KillHost { host: h, name: n() }, Level::Error, "Can't send offline status notification to 'db1' - killing it!"),
        (LeaseKeepaliveFailed { host: h, name: n(), error: "timeout".into() }, Level::Debug, "Lease keepalive to 'db1' failed: timeout"),
        (SemiSyncState { lossless: true, why: "x".into() }, Level::Info, "semi_sync: every acknowledged write is on the standby master (x)"),
        (SemiSyncState { lossless: false, why: "y".into() }, Level::Warn, "semi_sync: NOT lossless now (y); a crash of the writer would not be failed over automatically"),
        (PromotionRefused { host: h, old: n(), candidates: vec!["db2".into()], role: "writer".into(), why: "z".into() }, Level::Error, "Not giving role 'writer' to db2 after the failure of 'db1': semi_sync could not prove that it holds every acknowledged write (z). The role waits for 'db1' to come back ONLINE; to promote anyway (writes acknowledged by 'db1' may be lost): 'mmm_control move_role --force writer db2'"),
        (LosslessFailover { host: h, name: "db2".into(), old: n(), seen: "s".into() }, Level::Warn, "Host 'db2' becomes the active master after the failure of 'db1' holding every acknowledged write (semi_sync: s)"),
        (FailoverMayLoseWrites { host: h, name: "db2".into(), old: n() }, Level::Error, "Host 'db2' becomes the active master after the failure of 'db1' without semi_sync: writes 'db1' acknowledged that had reached no surviving server are lost"),
        (LeaseWait { holder: n(), gainer: "db2".into(), wait: Some(Duration::from_millis(1450)) }, Level::Warn, "Waiting 1.4 s for the lease of 'db1' to expire before giving the writer role to 'db2'"),
        (LeaseWait { holder: n(), gainer: "db2".into(), wait: None }, Level::Warn, "Waiting for the request in flight to 'db1' to end and for its lease to expire before giving the writer role to 'db2'"),
        (ModeChanged { from: MonitorMode::Active, to: MonitorMode::Passive }, Level::Info, "Admin changed mode from 'ACTIVE' to 'PASSIVE'"),
        (HaHold { on: true, mode: MonitorMode::Active }, Level::Fatal, "Monitor HA: etcd does not confirm this monitor's leadership: mode 'ACTIVE' held as 'PASSIVE' (roles kept, no failover) until it does"),
        (HaHold { on: false, mode: MonitorMode::Active }, Level::Info, "Monitor HA: etcd confirms this monitor's leadership again: back to mode 'ACTIVE'"),
        (AdminStateChanged { host: h, name: n(), from: HostState::AwaitingRecovery, to: HostState::Online }, Level::Fatal, "Admin changed state of 'db1' from AWAITING_RECOVERY to ONLINE"),
        (AdminMovedRole { host: h, role: "writer".into(), from: "db2".into(), to: n(), forced: false }, Level::Fatal, "Admin moved role 'writer' from 'db2' to 'db1'"),
        (AdminMovedRole { host: h, role: "writer".into(), from: "db2".into(), to: n(), forced: true }, Level::Fatal, "Admin forced move of role 'writer' from 'db2' to 'db1'"),
        (AdminSetIp { host: h, name: n(), role: w.clone() }, Level::Fatal, "Admin set role 'writer(198.18.2.188)' to host 'db1'"),
        (WaitEndedBothOnline { first: n(), second: "db2".into() }, Level::Fatal, "Nodes db1 and db2 are ONLINE, switching from mode 'WAIT' to 'ACTIVE'."),
        (WaitEndedTimeout { dead: "db2".into(), waited: 120 * SEC }, Level::Warn, "Master db2 did not come online for 120(wait_for_other_master) seconds. Switching from mode 'WAIT' to 'ACTIVE'"),
        (UnknownStoredHost { name: "db9".into() }, Level::Warn, "Ignoring saved status information for unknown host 'db9'"),
        (RoleGone { host: h, role: r("writer", "10.9.9.9") }, Level::Warn, "Detected change in role definitions: Role 'writer(10.9.9.9)' was removed."),
        (RoleNotAllowed { host: h, name: n(), role: w.clone() }, Level::Warn, "Detected change in role definitions: Host 'db1' can't handle role 'writer(198.18.2.188)' anymore."),
        (RoleOnSeveralHosts { role: w.clone(), hosts: 2 }, Level::Warn, "Role 'writer(198.18.2.188)' was configured on 2 hosts during monitor startup."),
        (StartupStatusUnknown { host: h, name: n(), query: StartupQuery::Agent, answer: "ERROR: a".into() }, Level::Error, "The status of the agent on host 'db1' could not be determined (answer was: ERROR: a)."),
        (StartupStatusUnknown { host: h, name: n(), query: StartupQuery::System, answer: String::new() }, Level::Error, "The status of the system 'db1' could not be determined (answer was: )."),
        (StaleActiveMaster { host: h, name: "db2".into(), old: n(), why: "rep_threads: ERROR: x".into() }, Level::Error, "Host 'db2' becomes the active master although its replication is not current (rep_threads: ERROR: x): writes made on 'db1' that had not reached it are missing on it"),
        (Failover { host: h, role: w.clone(), from: "db2".into(), to: n() }, Level::Info, "Failover of role 'writer(198.18.2.188)' from host 'db2' to host 'db1'"),
        (FailoverHeld { role: w.clone(), from: "db2".into(), to: n(), why: "exit 1".into(), retry: 5 * SEC }, Level::Fatal, "Failover of role 'writer(198.18.2.188)' from host 'db2' to host 'db1' held by pre_failover_bin (exit 1); asking again in 5 seconds"),
        (FailoverAllowed { role: w.clone(), from: "db2".into(), to: n() }, Level::Info, "pre_failover_bin allowed the failover of role 'writer(198.18.2.188)' from host 'db2' to host 'db1'"),
        (StartupTable("Startup status:\n\nRoles:".into()), Level::Info, "Startup status:\n\nRoles:"),
        (MonitorStarted { mode: MonitorMode::Passive }, Level::Info, "Monitor started in passive mode."),
    ]
}

#[test]
fn display_is_the_221_log_line() {
    for (d, level, text) in cases() {
        assert_eq!(d.to_string(), text, "{d:?}");
        assert_eq!(d.level(), level, "{d:?}");
    }
}

/// A decision about a host names it; mode, network and startup-wide lines name none.
#[test]
fn host_of_a_decision() {
    for (d, _, _) in cases() {
        let expected = match &d {
            Decision::Network { .. }
            | Decision::SemiSyncState { .. }
            | Decision::LeaseWait { .. }
            | Decision::ModeChanged { .. }
            | Decision::HaHold { .. }
            | Decision::FailoverHeld { .. }
            | Decision::FailoverAllowed { .. }
            | Decision::WaitEndedBothOnline { .. }
            | Decision::WaitEndedTimeout { .. }
            | Decision::UnknownStoredHost { .. }
            | Decision::RoleOnSeveralHosts { .. }
            | Decision::StartupTable(_)
            | Decision::MonitorStarted { .. } => None,
            _ => Some(db(0).0),
        };
        assert_eq!(d.host(), expected, "{d:?}");
    }
}
