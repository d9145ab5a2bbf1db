//! §3.6 host state machine: one test per row of the transition table, plus WAIT exit,
//! trap periods (§3.3.4) and kill-on-fail.

use super::*;

const SEC: Duration = Duration::from_secs(1);

/// All ONLINE, writer on db1, readers on db3/db4, out of the 60 s peer grace.
fn seed() -> Harness {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    h.advance(61 * SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h
}

/// §3.6 row "ADMIN_OFFLINE | always | unchanged": a host set offline stays so whatever its
/// checks say.
#[test]
fn admin_offline_is_skipped() {
    let mut h = seed();
    assert!(h
        .cmd("set_offline db3")
        .starts_with("OK: State of 'db3' changed to ADMIN_OFFLINE"));
    h.set("db3", &[P, M, T, B], false);
    h.advance(5 * SEC);
    assert_eq!(h.state("db3"), HostState::AdminOffline);
    h.set("db3", &[P, M, T, B], true);
    h.advance(5 * SEC);
    assert_eq!(h.state("db3"), HostState::AdminOffline);
}

/// §3.6 row "ONLINE | not (P and M) | HARD_OFFLINE": ACTIVE clears roles, sends, and since
/// the ping check failed the send fails without IO → kill_host with ping=0; the writer
/// moves to db2.
#[test]
fn online_to_hard_offline_active() {
    let mut h = seed();
    let mark = h.mark();
    h.set("db1", &[P, M], false);
    let d = h.decisions_since(mark);
    assert!(d.contains(
        &"State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: not OK, mysql: OK)"
            .to_string()
    ));
    // the ping check failed first: that alone triggers the transition (mysql still OK)
    assert!(d.contains(&"Removing all roles from host 'db1':".to_string()));
    assert!(d.contains(&"    Removed role 'writer(198.18.2.188)' from host 'db1'".to_string()));
    assert!(
        d.contains(&"Can't send offline status notification to 'db1' - killing it!".to_string())
    );
    assert_eq!(h.kills_since(mark), vec![(HostId(0), false)]);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
}

/// §3.6 row "ONLINE | not (P and M)" with ping OK: the message says `ping: OK`, the send
/// reaches the agent, no kill.
#[test]
fn online_to_hard_offline_mysql_only() {
    let mut h = seed();
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)"
            .to_string()
    ));
    assert!(h.kills_since(mark).is_empty());
    assert!(h
        .sends_since(mark)
        .contains(&"SET_STATUS|1|db1|HARD_OFFLINE||".to_string()));
}

/// §3.6 row "ONLINE | not (P and M)" in MANUAL: nothing else (roles kept, no send/kill).
#[test]
fn online_to_hard_offline_manual_keeps_roles() {
    let mut h = seed();
    assert_eq!(h.cmd("set_manual"), "OK: Switched into manual mode.");
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    assert!(h.kills_since(mark).is_empty());
}

/// §3.6 row "ONLINE | host = AM | unchanged": replication problems of the active master are
/// ignored.
#[test]
fn active_master_ignores_replication() {
    let mut h = seed();
    h.set("db1", &[T, B], false);
    h.advance(5 * SEC);
    assert_eq!(h.state("db1"), HostState::Online);
}

/// §3.6 row "ONLINE | PS = ONLINE and peer.online_since ≥ now − 60 | unchanged": during
/// the first 60 s after the peer came online, a broken replication is tolerated; after it
/// the host goes to REPLICATION_FAIL at the grace deadline without any new input.
#[test]
fn peer_grace_period() {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    h.set("db2", &[T], false);
    h.advance(30 * SEC);
    assert_eq!(h.state("db2"), HostState::Online);
    h.advance(31 * SEC);
    assert_eq!(h.state("db2"), HostState::ReplicationFail);
}

/// §3.6 row "ONLINE | P, M, not T, PS = ONLINE, peer P and M | REPLICATION_FAIL" (roles
/// cleared, send). Also: both T and B failing → REPLICATION_FAIL.
#[test]
fn online_to_replication_fail() {
    let mut h = seed();
    h.cmd("move_role writer db2");
    h.advance(SEC);
    let mark = h.mark();
    h.set("db1", &[T, B], false);
    assert!(h
        .decisions_since(mark)
        .contains(&"State of host 'db1' changed from ONLINE to REPLICATION_FAIL".to_string()));
    assert_eq!(h.state("db1"), HostState::ReplicationFail);
    assert!(h
        .sends_since(mark)
        .contains(&"SET_STATUS|1|db1|REPLICATION_FAIL||db2".to_string()));
}

/// §3.6 row "ONLINE | P, M, T, not B, PS = ONLINE, peer P and M | REPLICATION_DELAY".
#[test]
fn online_to_replication_delay() {
    let mut h = seed();
    let mark = h.mark();
    h.set("db2", &[B], false);
    assert!(h
        .decisions_since(mark)
        .contains(&"State of host 'db2' changed from ONLINE to REPLICATION_DELAY".to_string()));
}

/// §3.6 derived: a slave's peer is the active master; with the master ONLINE a slave with
/// broken replication loses its roles; with no peer ONLINE it never enters REPLICATION_*.
#[test]
fn slave_peer_is_active_master() {
    let mut h = seed();
    h.set("db3", &[T], false);
    assert_eq!(h.state("db3"), HostState::ReplicationFail);
    assert!(h.roles("db3").is_empty());
    assert_eq!(h.roles("db4").len(), 2);
}

/// §3.6 row "AWAITING_RECOVERY | not (P and M) | HARD_OFFLINE" (no send).
#[test]
fn awaiting_recovery_to_hard_offline() {
    let mut h = Harness::started(seed_config(0), HostState::AwaitingRecovery);
    let mark = h.mark();
    h.set("db3", &[M], false);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db3' changed from AWAITING_RECOVERY to HARD_OFFLINE".to_string()
    ));
    assert!(!h
        .sends_since(mark)
        .iter()
        .any(|s| s.starts_with("SET_STATUS|1|db3|HARD_OFFLINE")));
}

/// §3.6 row "AWAITING_RECOVERY | P, M, T, B and flapping | ONLINE only if auto_set_online
/// > 0 and flap_duration passed since the host's last check change". The flag stays.
#[test]
fn flapping_host_auto_set_online_after_flap_duration() {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.auto_set_online = Duration::from_secs(10);
        m.flap_duration = Duration::from_secs(300);
        m.flap_count = 1;
    }
    let mut h = Harness::started(cfg, HostState::Online);
    h.advance(61 * SEC);
    // two departures from ONLINE within the window → flapping
    for _ in 0..2 {
        h.set("db3", &[M], false);
        h.set("db3", &[M], true); // HARD_OFFLINE → AWAITING_RECOVERY
        h.advance(11 * SEC); // auto_set_online (not yet flapping) → ONLINE
    }
    let db3 = h.host("db3");
    assert!(h.m.hosts[db3].flapping);
    assert_eq!(h.state("db3"), HostState::AwaitingRecovery);
    h.advance(200 * SEC);
    assert_eq!(h.state("db3"), HostState::AwaitingRecovery);
    let mark = h.mark();
    h.advance(100 * SEC);
    assert_eq!(h.state("db3"), HostState::Online);
    let d = h.decisions(mark);
    assert!(
        d.iter().any(|d| matches!(d, Decision::StateChanged {
            name,
            from: HostState::AwaitingRecovery,
            to: HostState::Online,
            reason: Reason::FlapQuiet { flap_duration, .. },
            ..
        } if name == "db3" && flap_duration.as_secs() == 300)),
        "{d:?}"
    );
    assert!(h.m.hosts[db3].flapping);
}

/// §3.7: `Host <h> is flapping!` after more than flap_count departures; a flapping host
/// goes from REPLICATION_* to AWAITING_RECOVERY (row "REPLICATION_FAIL / _DELAY | ...,
/// flapping | AWAITING_RECOVERY"); `set_online` clears the flag.
#[test]
fn flapping_and_replication_rows() {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.flap_count = 1;
    }
    let mut h = Harness::started(cfg, HostState::Online);
    h.advance(61 * SEC);
    let mark = h.mark();
    h.set("db3", &[T], false); // ONLINE → REPLICATION_FAIL (1)
    h.set("db3", &[T], true); // → ONLINE
    h.advance(SEC);
    h.set("db3", &[T], false); // (2) → flapping
    assert!(h
        .decisions_since(mark)
        .contains(&"Host db3 is flapping!".to_string()));
    let mark = h.mark();
    h.set("db3", &[T], true);
    assert_eq!(h.state("db3"), HostState::AwaitingRecovery);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db3' changed from REPLICATION_FAIL to AWAITING_RECOVERY (because it's flapping)"
            .to_string()
    ));
    assert_eq!(
        h.cmd("set_online db3"),
        "OK: State of 'db3' changed to ONLINE. Now you can wait some time and check its new roles!"
    );
    assert!(!h.m.hosts[h.host("db3")].flapping);
}

/// §3.6 row "AWAITING_RECOVERY | P, M, T, B, not flapping, last_uptime > 0 and
/// 0 < uptime − last_uptime < 60 | ONLINE": a short outage without reboot.
#[test]
fn short_downtime_uptime_rule() {
    let mut h = seed();
    let db4 = h.host("db4");
    h.uptime[db4] = 2000.0;
    h.advance(4 * SEC); // broadcast → last_uptime 2000 while ONLINE
    h.set("db4", &[P], false);
    assert_eq!(h.state("db4"), HostState::HardOffline);
    h.uptime[db4] = 2009.5;
    let mark = h.mark();
    h.set("db4", &[P], true); // → AWAITING_RECOVERY, send → reply uptime 2009.5
    h.advance(SEC);
    assert_eq!(h.state("db4"), HostState::Online);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db4' changed from AWAITING_RECOVERY to ONLINE because it was down for only 9 seconds"
            .to_string()
    ));
}

/// Same row, negative: after a reboot uptime < last_uptime, so the host stays.
#[test]
fn reboot_defeats_uptime_rule() {
    let mut h = seed();
    let db4 = h.host("db4");
    h.uptime[db4] = 2000.0;
    h.advance(4 * SEC);
    h.set("db4", &[P], false);
    h.uptime[db4] = 30.0;
    h.set("db4", &[P], true);
    h.advance(10 * SEC);
    assert_eq!(h.state("db4"), HostState::AwaitingRecovery);
}

/// §3.6 row "AWAITING_RECOVERY | P, M, T, B, not flapping, auto_set_online > 0 and
/// now − last_state_change ≥ auto_set_online | ONLINE" (fires at the deadline).
#[test]
fn auto_set_online() {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.auto_set_online = Duration::from_secs(10);
    }
    let mut h = Harness::started(cfg, HostState::AwaitingRecovery);
    h.advance(9 * SEC);
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    let mark = h.mark();
    h.advance(SEC);
    assert_eq!(h.state("db1"), HostState::Online);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db1' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online(10 seconds). It was in state AWAITING_RECOVERY for 10 seconds"
            .to_string()
    ));
}

/// §3.6 rows "HARD_OFFLINE | P and M, (AM ≠ '' or cannot be master), not T |
/// REPLICATION_FAIL" and "... T, not B | REPLICATION_DELAY" (with send).
#[test]
fn hard_offline_to_replication_states() {
    let mut h = seed();
    h.set("db3", &[P], false);
    h.set("db3", &[T], false);
    let mark = h.mark();
    h.set("db3", &[P], true);
    assert_eq!(h.state("db3"), HostState::ReplicationFail);
    assert!(h
        .sends_since(mark)
        .contains(&"SET_STATUS|1|db3|REPLICATION_FAIL||db1".to_string()));

    h.set("db4", &[P], false);
    h.set("db4", &[B], false);
    h.set("db4", &[P], true);
    assert_eq!(h.state("db4"), HostState::ReplicationDelay);
}

/// §3.6 row "HARD_OFFLINE | P and M (otherwise) | AWAITING_RECOVERY": with no active master
/// a master host skips the replication states.
#[test]
fn hard_offline_to_awaiting_recovery() {
    let mut h = seed();
    h.set("db2", &[P], false);
    h.set("db2", &[T], false);
    // remove the active master too
    h.set("db1", &[P], false);
    assert_eq!(h.m.roles.active_master(), None);
    let mark = h.mark();
    h.set("db2", &[P], true);
    assert_eq!(h.state("db2"), HostState::AwaitingRecovery);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db2' changed from HARD_OFFLINE to AWAITING_RECOVERY".to_string()
    ));
}

/// §3.6 rows "REPLICATION_FAIL | P, M, T, not B | REPLICATION_DELAY" and
/// "REPLICATION_DELAY | P, M, not T | REPLICATION_FAIL" (no send).
#[test]
fn replication_fail_delay_swap() {
    let mut h = seed();
    h.set("db3", &[T], false);
    assert_eq!(h.state("db3"), HostState::ReplicationFail);
    h.set("db3", &[B], false);
    let mark = h.mark();
    h.set("db3", &[T], true);
    assert_eq!(h.state("db3"), HostState::ReplicationDelay);
    assert!(!h
        .sends_since(mark)
        .iter()
        .any(|s| s.starts_with("SET_STATUS|1|db3|")));
    h.set("db3", &[T], false);
    assert_eq!(h.state("db3"), HostState::ReplicationFail);
}

/// §3.6 row "REPLICATION_FAIL / _DELAY | P, M and ((T and B) or PS ≠ ONLINE) | ONLINE":
/// back when fixed, and also when the peer is not ONLINE though replication is broken.
#[test]
fn replication_states_back_online() {
    let mut h = seed();
    h.set("db3", &[T], false);
    let mark = h.mark();
    h.set("db3", &[T], true);
    assert_eq!(h.state("db3"), HostState::Online);
    assert!(h
        .decisions_since(mark)
        .contains(&"State of host 'db3' changed from REPLICATION_FAIL to ONLINE".to_string()));

    h.cmd("move_role writer db2");
    h.set("db1", &[T], false);
    assert_eq!(h.state("db1"), HostState::ReplicationFail);
    h.set("db2", &[M], false); // peer leaves ONLINE
    h.advance(SEC);
    assert_eq!(h.state("db1"), HostState::Online);
}

/// §3.6 row "REPLICATION_FAIL / _DELAY | not (P and M) | HARD_OFFLINE" (suffix, send,
/// kill-on-fail).
#[test]
fn replication_state_to_hard_offline() {
    let mut h = seed();
    h.set("db3", &[T], false);
    let mark = h.mark();
    h.set("db3", &[P], false);
    assert!(h.decisions_since(mark).contains(
        &"State of host 'db3' changed from REPLICATION_FAIL to HARD_OFFLINE (ping: not OK, mysql: OK)"
            .to_string()
    ));
    assert_eq!(h.kills_since(mark), vec![(HostId(2), false)]);
}

/// §3.6 WAIT exit: both masters ONLINE → ACTIVE.
#[test]
fn wait_exit_both_masters() {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.mode = MonitorMode::Wait;
    }
    let mut h = Harness::started(cfg, HostState::AwaitingRecovery);
    assert_eq!(h.m.mode(), MonitorMode::Wait);
    h.cmd("set_online db1");
    assert_eq!(h.m.mode(), MonitorMode::Wait);
    let mark = h.mark();
    h.cmd("set_online db2");
    assert_eq!(h.m.mode(), MonitorMode::Active);
    assert!(h.decisions_since(mark).contains(
        &"Nodes db1 and db2 are ONLINE, switching from mode 'WAIT' to 'ACTIVE'.".to_string()
    ));
}

/// §3.6 WAIT exit: one master ONLINE for wait_for_other_master → ACTIVE with a WARN.
#[test]
fn wait_exit_after_wait_for_other_master() {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.mode = MonitorMode::Wait;
    }
    let mut h = Harness::started(cfg, HostState::AwaitingRecovery);
    h.cmd("set_online db1");
    h.advance(119 * SEC);
    assert_eq!(h.m.mode(), MonitorMode::Wait);
    let mark = h.mark();
    h.advance(SEC);
    assert_eq!(h.m.mode(), MonitorMode::Active);
    assert!(h.decisions_since(mark).contains(
        &"Master db2 did not come online for 120(wait_for_other_master) seconds. Switching from mode 'WAIT' to 'ACTIVE'"
            .to_string()
    ));
}

/// §3.3.4 trap period: a failure counts only after it persisted trap_period, at that
/// deadline (no further result needed); OK before it is invisible; UNKNOWN restarts it.
#[test]
fn trap_period_semantics() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    h.advance(61 * SEC);
    h.check("db3", M, "ERROR: Connect error");
    h.advance(9 * SEC);
    assert_eq!(h.state("db3"), HostState::Online);
    h.check("db3", M, "OK");
    h.advance(5 * SEC);
    assert_eq!(h.state("db3"), HostState::Online);

    h.check("db3", M, "ERROR: Connect error");
    h.advance(5 * SEC);
    h.check("db3", M, "UNKNOWN: Too many connections!");
    h.check("db3", M, "ERROR: Connect error");
    h.advance(9 * SEC);
    assert_eq!(h.state("db3"), HostState::Online);
    let mark = h.mark();
    h.advance(SEC);
    assert_eq!(h.state("db3"), HostState::HardOffline);
    assert!(h.decisions_since(mark).contains(
        &"Check 'mysql' on 'db3' has failed for 10 seconds! Message: ERROR: Connect error"
            .to_string()
    ));
    let mark = h.mark();
    h.check("db3", M, "OK");
    assert!(h
        .decisions_since(mark)
        .contains(&"Check 'mysql' on 'db3' is ok!".to_string()));
}

/// DESIGN "Detection starts at the failure": a dropped connection starts the trap timer;
/// the failure counts trap_period after the drop once an ERROR confirms it.
#[test]
fn conn_lost_starts_trap_timer() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    h.advance(61 * SEC);
    let db1 = h.host("db1");
    h.input(Input::CheckConnLost {
        host: db1,
        silent_for: Duration::ZERO,
    });
    h.advance(4 * SEC);
    h.check("db1", M, "ERROR: Connect error");
    h.advance(6 * SEC);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
}

/// §3.4: while the network is down no transition happens and nothing is sent.
#[test]
fn network_down_freezes_transitions() {
    let mut h = seed();
    h.input(Input::Network { up: false });
    let mark = h.mark();
    h.set("db1", &[P], false);
    h.advance(10 * SEC);
    assert_eq!(h.state("db1"), HostState::Online);
    assert!(h.sends_since(mark).is_empty());
    h.input(Input::Network { up: true });
    h.set("db1", &[P], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
}

/// §3.10 / DESIGN: a SET_STATUS that failed is retried at status_retry_interval, backing
/// off up to the broadcast interval while the agent's connect is refused (issue 14);
/// agent_down is set and cleared with its log lines; an agent that comes back is told
/// within a broadcast interval.
#[test]
fn failed_status_is_retried_and_agent_down() {
    let mut h = seed();
    let db4 = h.host("db4");
    h.agent_fails[db4] = true;
    let mark = h.mark();
    h.advance(3 * SEC); // broadcast
    assert!(h
        .decisions_since(mark)
        .contains(&"Can't reach agent on host 'db4'".to_string()));
    assert!(h.m.hosts[db4].agent_down);
    // agent_down only blocks new roles (2.2.1): db4 keeps its reader, gets no orphan
    assert_eq!(h.roles("db4"), vec![r("reader", "198.18.2.199")]);
    let count = |h: &Harness, mark| {
        h.sends_since(mark)
            .iter()
            .filter(|s| s.starts_with("SET_STATUS|1|db4"))
            .count()
    };
    let before = count(&h, mark);
    h.advance(Duration::from_millis(600));
    assert!(count(&h, mark) > before, "the first retry after 0.5 s");
    let mark = h.mark();
    h.advance(12 * SEC);
    let sends = count(&h, mark);
    // 0.5 s retries would be 24; backed off to 3 s (with the broadcasts): 4-8.
    assert!(
        (4..=9).contains(&sends),
        "backed-off retries in 12 s: {sends}"
    );
    h.agent_fails[db4] = false;
    let mark = h.mark();
    h.advance(3 * SEC + Duration::from_millis(100));
    assert!(h
        .decisions_since(mark)
        .contains(&"Agent on host 'db4' is reachable again".to_string()));
    h.advance(SEC);
    assert_eq!(h.roles("db4").len(), 1);
}

/// Issue 14: the retry delay doubles from status_retry_interval up to the cap.
#[test]
fn status_retry_backs_off_to_the_broadcast_interval() {
    use crate::core::outbox::Outbox;
    let ms = Duration::from_millis;
    let d = |n| Outbox::retry_delay(ms(500), 3 * SEC, n);
    assert_eq!(
        [d(0), d(1), d(2), d(3), d(4), d(40)],
        [ms(500), ms(500), ms(1000), ms(2000), 3 * SEC, 3 * SEC]
    );
    // A retry interval above the cap is kept.
    assert_eq!(Outbox::retry_delay(5 * SEC, 3 * SEC, 9), 5 * SEC);
}

/// DESIGN / §3.9 step 5: when the active master changes in a planned move, the old master
/// gets its status (loses the writer role) first, then the slaves learn the new master,
/// then the new master gets the writer role — each step only after the previous replies
/// came back. (A failed old master: the last two at once, `lease.rs`.)
#[test]
fn master_switch_is_sequenced() {
    let mut h = seed();
    h.auto_reply = false;
    h.answer_all();
    let mark = h.mark();
    assert!(h.cmd_answering_pings("set_offline db1").starts_with("OK"));
    let first = h.sends_since(mark);
    assert!(
        first.contains(&"SET_STATUS|1|db1|ADMIN_OFFLINE||".to_string()),
        "{first:?}"
    );
    assert!(
        !first
            .iter()
            .any(|s| s.contains("|db3|") || s.contains("|db2|")),
        "{first:?}"
    );
    let m2 = h.mark();
    h.answer_all();
    h.drain();
    let second = h.sends_since(m2);
    assert!(second.contains(&"SET_STATUS|1|db3|ONLINE|reader(198.18.2.198)|db2".to_string()));
    assert!(second.contains(&"SET_STATUS|1|db4|ONLINE|reader(198.18.2.199)|db2".to_string()));
    assert!(
        !second.iter().any(|s| s.starts_with("SET_STATUS|1|db2|")),
        "{second:?}"
    );
    let m3 = h.mark();
    h.answer_all();
    h.drain();
    let third = h.sends_since(m3);
    assert_eq!(
        third,
        vec!["SET_STATUS|1|db2|ONLINE|writer(198.18.2.188)|db2".to_string()]
    );
}

/// mmm-rs (fault matrix): once the network check confirms rounds, a check failure counts
/// only after a later round found the monitor's own network up. A monitor cut off from
/// everything sees every check fail before its network check says so; nothing may move.
#[test]
fn failure_needs_a_later_network_confirmation() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    h.advance(61 * SEC);
    let probed_at = h.now;
    h.input(Input::NetworkConfirmed { probed_at });
    h.advance(SEC);
    h.check("db1", P, "ERROR: Could not ping 198.18.2.100");
    let probes = |h: &Harness, from: usize| {
        h.log[from..]
            .iter()
            .filter(|a| matches!(a, Action::ProbeNetwork))
            .count()
    };
    let m = h.mark();
    h.advance(9 * SEC);
    assert_eq!(
        probes(&h, m),
        0,
        "no network round asked for before the trap ends"
    );
    h.advance(2 * SEC);
    assert_eq!(h.state("db1"), HostState::Online);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    // The trap period ended: the core asks for a network round now (once), instead of
    // waiting for the next ping_interval.
    assert_eq!(probes(&h, m), 1);
    // A round that began after the failure confirms it: now it counts.
    let probed_at = h.now;
    h.input(Input::NetworkConfirmed { probed_at });
    assert_eq!(h.state("db1"), HostState::HardOffline);
}

/// mmm-rs (spec §9.1 item 5): in a planned move, a slave whose agent does not answer
/// (hung mysqld, slow relay log) holds the new master's writer role back for at most
/// `SLAVE_SWITCH_WAIT`, not for the agent's whole read timeout. (After a failure the new
/// master does not wait for the slaves at all.)
#[test]
fn hung_slave_does_not_hold_the_writer_back() {
    let mut h = seed();
    h.auto_reply = false;
    h.answer_all();
    assert!(h.cmd_answering_pings("set_offline db1").starts_with("OK"));
    h.answer_all(); // db1 settles
    h.drain();
    // db3 and db4 were told the new master; only db4 answers.
    let pending: Vec<_> = h.outstanding.drain(..).collect();
    for (token, host, req) in pending {
        if host == h.host("db4") {
            let reply = Ok(AgentReply {
                result: "OK: Status applied successfully!".into(),
                uptime: Some(1000.0),
            });
            h.m.handle(
                h.now,
                Input::AgentReply {
                    token,
                    reply,
                    maybe_delivered: true,
                },
            );
        } else {
            h.outstanding.push_back((token, host, req));
        }
    }
    let mark = h.mark();
    h.drain();
    assert!(
        !h.sends_since(mark)
            .iter()
            .any(|s| s.starts_with("SET_STATUS|1|db2|")),
        "the new master waits for the slaves first"
    );
    h.advance(crate::core::SLAVE_SWITCH_WAIT + Duration::from_millis(10));
    assert!(
        h.sends_since(mark)
            .contains(&"SET_STATUS|1|db2|ONLINE|writer(198.18.2.188)|db2".to_string()),
        "{:?}",
        h.sends_since(mark)
    );
}

/// mmm-rs (DESIGN "undelivered status is retried"): the writer's link is cut, the writer
/// moves on; the moment its ping answers again it is sent its new status (no writer role),
/// without waiting for the retry timer: both masters writable must last as short as
/// possible after a heal.
#[test]
fn healed_host_is_told_at_once() {
    let mut h = seed();
    h.set("db1", &[P], false);
    h.advance(SEC);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    // The link heals: the very ping result that says so triggers the send.
    let mark = h.mark();
    h.check("db1", P, "OK");
    let sent = h.sends_since(mark);
    assert!(
        sent.iter()
            .any(|s| s.starts_with("SET_STATUS|1|db1|HARD_OFFLINE||db2")),
        "{sent:?}"
    );
}

/// §3.3.4 with the mmm-rs fix: after a reported failure, ERROR → UNKNOWN → ERROR → OK
/// clears the failure (2.2.1 kept it until the next failure cycle).
#[test]
fn recovery_after_reported_failure_is_not_lost() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    h.advance(61 * SEC);
    h.check("db3", M, "ERROR: Connect error");
    h.advance(10 * SEC);
    assert_eq!(h.state("db3"), HostState::HardOffline);
    h.check("db3", M, "UNKNOWN: Too many connections!");
    h.check("db3", M, "ERROR: Connect error");
    let mark = h.mark();
    h.check("db3", M, "OK");
    assert!(h
        .decisions_since(mark)
        .contains(&"Check 'mysql' on 'db3' is ok!".to_string()));
    assert_eq!(h.state("db3"), HostState::AwaitingRecovery);
}

/// mmm-rs (DESIGN "old master loses writer first"): when the old active master cannot be
/// told it lost the writer role (its agent does not answer although ping is OK), it is
/// fenced with kill_host before the new master gets the role.
#[test]
fn unreachable_old_master_is_fenced_on_move() {
    let mut h = seed();
    let db1 = h.host("db1");
    h.agent_fails[db1] = true;
    let mark = h.mark();
    assert!(h
        .cmd("move_role writer db2")
        .starts_with("OK: Role 'writer' has been moved"));
    let log = &h.log[mark..];
    let kill = log
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::KillHost {
                    host: HostId(0),
                    ping_ok: true
                }
            )
        })
        .expect("old master fenced");
    let gain = log
        .iter()
        .position(|a| {
            matches!(a, Action::Send { request, .. }
                if request.to_string() == "SET_STATUS|1|db2|ONLINE|writer(198.18.2.188)|db2")
        })
        .expect("new master gets the writer role");
    assert!(kill < gain);
    // fenced once, not again on every later failure
    h.advance(10 * SEC);
    assert_eq!(h.kills_since(mark).len(), 1);
}

/// mmm-rs PASSIVE decision: a host failing in PASSIVE keeps its roles and is not killed;
/// leaving PASSIVE with set_active does what ACTIVE would have done (clear, send, kill).
#[test]
fn leaving_passive_fences_failed_holders() {
    let mut h = seed();
    h.cmd("set_passive");
    let mark = h.mark();
    h.set("db1", &[P], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    assert!(h.kills_since(mark).is_empty());
    h.cmd("set_active");
    assert_eq!(h.kills_since(mark), vec![(HostId(0), false)]);
    assert!(h.roles("db1").is_empty());
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
}

/// The transcript's writer crash failover (transcripts-2.2.1.md §4): db1's mysqld dies,
/// the replication checks go UNKNOWN, mysql fails for trap_period, db1 goes HARD_OFFLINE
/// and the writer moves to db2; db1 comes back within a minute without a reboot and returns
/// ONLINE by the uptime rule. Same log lines and levels as 2.2.1 (the order of the three
/// "is ok!" lines is the order the check results arrive in).
#[test]
fn transcript_writer_crash_failover() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    h.advance(61 * SEC);
    let db1 = h.host("db1");
    h.uptime[db1] = 3500.0;
    h.advance(3 * SEC); // a broadcast records last_uptime while ONLINE
    let mark = h.mark();
    let conn = "Connect error (host = 198.18.2.100:3306, user = mmm_monitor)! Can't connect to server on '198.18.2.100' (115)";
    h.check("db1", B, &format!("UNKNOWN: {conn}"));
    h.check("db1", T, &format!("UNKNOWN: {conn}"));
    h.check("db1", M, &format!("ERROR: {conn}"));
    h.advance(5 * SEC);
    h.check("db1", M, &format!("ERROR: {conn}"));
    h.advance(5 * SEC);
    h.uptime[db1] = 3509.6;
    h.check("db1", B, "OK: Backlog is null");
    h.check("db1", M, "OK");
    h.check("db1", T, "OK");
    h.advance(SEC);
    let logs: Vec<String> = h.log[mark..]
        .iter()
        .filter_map(|a| match a {
            Action::Decision(d) => Some(format!("{} {d}", d.level().as_mmm())),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = [
        format!(" WARN Check 'rep_backlog' on 'db1' is in unknown state! Message: UNKNOWN: {conn}"),
        format!(" WARN Check 'rep_threads' on 'db1' is in unknown state! Message: UNKNOWN: {conn}"),
        format!("ERROR Check 'mysql' on 'db1' has failed for 10 seconds! Message: ERROR: {conn}"),
        "FATAL State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)".into(),
        " INFO Removing all roles from host 'db1':".into(),
        " INFO     Removed role 'writer(198.18.2.188)' from host 'db1'".into(),
        " INFO Orphaned role 'writer(198.18.2.188)' has been assigned to 'db2'".into(),
        // mmm-rs (issue 13): a failover without semi_sync says it may have lost writes.
        "ERROR Host 'db2' becomes the active master after the failure of 'db1' without semi_sync: writes 'db1' acknowledged that had reached no surviving server are lost".into(),
        " INFO Check 'rep_backlog' on 'db1' is ok!".into(),
        " INFO Check 'mysql' on 'db1' is ok!".into(),
        "FATAL State of host 'db1' changed from HARD_OFFLINE to AWAITING_RECOVERY".into(),
        "FATAL State of host 'db1' changed from AWAITING_RECOVERY to ONLINE because it was down for only 9 seconds".into(),
        " INFO Check 'rep_threads' on 'db1' is ok!".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(logs, expected);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert_eq!(h.state("db1"), HostState::Online);
}

/// Found by the simulation (seed 472): in PASSIVE an admin takes the writer's host offline
/// (the role table changes, the agent is not told); when ACTIVE comes back, that host may
/// still hold the writer VIP, so it is settled (and fenced if it cannot be told) before the
/// new master gets the role.
#[test]
fn leaving_passive_settles_the_previous_writer_first() {
    let mut h = seed();
    h.cmd("set_passive");
    h.cmd("set_offline db1");
    assert!(h.roles("db1").is_empty());
    let db1 = h.host("db1");
    h.agent_fails[db1] = true;
    let mark = h.mark();
    h.cmd("set_active");
    let log = &h.log[mark..];
    let settle = log
        .iter()
        .position(|a| {
            matches!(a, Action::Send { request, .. }
                if request.to_string().starts_with("SET_STATUS|1|db1|ADMIN_OFFLINE||"))
        })
        .expect("previous writer told");
    let kill = log
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::KillHost {
                    host: HostId(0),
                    ..
                }
            )
        })
        .expect("previous writer fenced");
    let gain = log
        .iter()
        .position(|a| {
            matches!(a, Action::Send { request, .. }
                if request.to_string() == "SET_STATUS|1|db2|ONLINE|writer(198.18.2.188)|db2")
        })
        .expect("new master gets the writer role");
    assert!(settle < kill && kill < gain, "{settle} {kill} {gain}");
}
