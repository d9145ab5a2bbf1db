//! Issue 13, "fresh standby" (docs/differences.md, docs/monitor.md): the writer role goes to
//! a master only when its replication is known to be current, and the §3.6 rules that keep
//! the cluster stable around a dead master still hold with mmm-rs's stricter `rep_threads`
//! (an IO thread in `Connecting` fails it) and `rep_backlog` (an unknown lag fails it).

use super::*;

const SEC: Duration = Duration::from_secs(1);

const NOT_CONNECTED: &str = "ERROR: Replication is not connected to its master 198.18.2.100:3306 (Slave_IO_Running: Connecting; Last_IO_Error: error reconnecting to master 'replication@198.18.2.100:3306' - retry-time: 60  maximum-retries: 100000)";
const LAG_UNKNOWN: &str = "ERROR: Backlog is unknown: replication is not running (Slave_IO_Running: Connecting; Slave_SQL_Running: Yes)";

/// All ONLINE, writer on db1, out of the 60 s peer grace.
fn seed() -> Harness {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    h.advance(61 * SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h
}

fn not_connected(h: &mut Harness, host: &str) {
    h.check(host, T, NOT_CONNECTED);
    h.check(host, B, LAG_UNKNOWN);
}

/// Out of the grace period the standby whose IO thread is not connected goes to
/// REPLICATION_FAIL (§3.6 row "ONLINE | P, M, not T, PS = ONLINE, peer P and M"), so the
/// 2.2.1 rule "only ONLINE hosts get roles" already refuses it the writer role; `checks`
/// says why.
#[test]
fn a_standby_not_connected_is_refused_by_state() {
    let mut h = seed();
    not_connected(&mut h, "db2");
    assert_eq!(h.state("db2"), HostState::ReplicationFail);
    assert_eq!(
        h.cmd("move_role writer db2"),
        "ERROR: Can't move role to host with state REPLICATION_FAIL."
    );
    let checks = h.cmd("checks db2 rep_threads");
    assert!(checks.ends_with(NOT_CONNECTED), "{checks}");
    let checks = h.cmd("checks db2 rep_backlog");
    assert!(checks.ends_with(LAG_UNKNOWN), "{checks}");
}

/// Within the 60 s grace after its peer came ONLINE (§3.6 row "ONLINE | PS = ONLINE and
/// peer.online_since ≥ now − 60"), a standby with broken replication stays ONLINE — the
/// issue's case: db1 back and set online, `move_role writer db1`, then `move_role writer
/// db2` while db2 still lacked db1's writes. mmm-rs refuses the move and says why.
#[test]
fn move_role_refuses_an_online_standby_that_is_not_current() {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    not_connected(&mut h, "db2");
    assert_eq!(h.state("db2"), HostState::Online, "grace period");
    let mark = h.mark();
    assert_eq!(
        h.cmd("move_role writer db2"),
        format!("ERROR: Can't move role to host 'db2': its replication is not current (rep_threads: {NOT_CONNECTED}). Wait until it has caught up, or use move_role --force.")
    );
    assert!(h.sends_since(mark).is_empty(), "nothing sent");
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    // Behind, not disconnected: refused with the backlog's message.
    h.check("db2", T, "OK");
    h.check("db2", B, "OK: Backlog is null");
    h.check("db2", B, "ERROR: Backlog is too big");
    assert_eq!(
        h.cmd("move_role writer db2"),
        "ERROR: Can't move role to host 'db2': its replication is not current (rep_backlog: ERROR: Backlog is too big). Wait until it has caught up, or use move_role --force."
    );
    // Caught up: moved.
    h.check("db2", B, "OK: Backlog is null");
    assert!(h
        .cmd("move_role writer db2")
        .starts_with("OK: Role 'writer' has been moved from 'db1' to 'db2'."));
}

/// A failure still within its trap period counts too: the monitor knows the standby's IO
/// thread broke a moment ago even though the failure is not reported (no state change yet).
#[test]
fn move_role_refuses_a_standby_failing_within_its_trap_period() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    h.advance(61 * SEC);
    h.check("db2", T, NOT_CONNECTED);
    assert_eq!(h.state("db2"), HostState::Online);
    assert!(h
        .cmd("move_role writer db2")
        .starts_with("ERROR: Can't move role to host 'db2': its replication is not current (rep_threads: ERROR: Replication is not connected"));
    // Recovered within the trap period: allowed again.
    h.check("db2", T, "OK");
    assert!(h
        .cmd("move_role writer db2")
        .starts_with("OK: Role 'writer' has been moved"));
}

/// `move_role --force` takes an ONLINE master that is not current (as it takes
/// REPLICATION_FAIL/DELAY ones), and the switch says at ERROR what it may cost.
#[test]
fn forced_move_to_a_standby_that_is_not_current_says_so() {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    not_connected(&mut h, "db2");
    let mark = h.mark();
    assert_eq!(
        h.cmd("move_role --force writer db2"),
        "OK: Role 'writer' has been moved from 'db1' to 'db2' enforcedly. Now you can wait some time and check new roles info!"
    );
    let d = h.decisions_since(mark);
    assert!(
        !d.iter()
            .any(|l| l.contains("changed from ONLINE to ONLINE")),
        "{d:?}"
    );
    assert!(d.contains(&format!("Host 'db2' becomes the active master although its replication is not current (rep_threads: {NOT_CONNECTED}): writes made on 'db1' that had not reached it are missing on it")), "{d:?}");
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    // A healthy ONLINE host still needs no --force.
    assert_eq!(
        h.cmd("move_role --force writer db1"),
        "ERROR: Can't force move of role to host with state ONLINE."
    );
}

/// The active master dies while the standby's replication was already known broken
/// (REPLICATION_FAIL): §3.6 returns the standby to ONLINE (its peer is not ONLINE) and the
/// failover gives it the writer role, as 2.2.1 does — but it says so at ERROR.
#[test]
fn failover_to_a_standby_that_was_not_current_says_so() {
    let mut h = seed();
    not_connected(&mut h, "db2");
    assert_eq!(h.state("db2"), HostState::ReplicationFail);
    let mark = h.mark();
    h.set("db1", &[P, M], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.state("db2"), HostState::Online);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    let d = h.decisions_since(mark);
    assert!(d.iter().any(|l| l.starts_with("Host 'db2' becomes the active master although its replication is not current (rep_threads: ERROR: Replication is not connected")), "{d:?}");
}

/// The ordinary crash failover: the standby's IO thread breaks because the active master
/// died. The master's failure is reported first (its failure began first); the standby
/// stays ONLINE (its peer is not ONLINE: no flapping, §3.6), takes the writer role, and no
/// "not current" line is logged. Its later replication failure is ignored while it is the
/// active master. In MANUAL mode (no failover) the standby and the slaves of the dead
/// master stay ONLINE too.
#[test]
fn ordinary_failover_is_not_flagged_and_does_not_flap() {
    let mut h = seed();
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    not_connected(&mut h, "db2");
    h.advance(120 * SEC);
    assert_eq!(h.state("db2"), HostState::Online);
    let d = h.decisions_since(mark);
    assert!(!d.iter().any(|l| l.contains("not current")), "{d:?}");
    assert!(!d.iter().any(|l| l.contains("db2' changed")), "{d:?}");
    // A slave left on the dead master (its switch refused) is not current for the new
    // active master: REPLICATION_FAIL once the peer grace since the change of active master
    // is over (within it, a slave still being switched must not flap), its reader moves
    // (2.2.1 kept it ONLINE, stale, for good).
    not_connected(&mut h, "db3");
    assert_eq!(h.state("db3"), HostState::ReplicationFail);
    assert!(h.roles("db3").is_empty());

    let mut h = seed();
    assert_eq!(h.cmd("set_manual"), "OK: Switched into manual mode.");
    h.set("db1", &[M], false);
    for host in ["db2", "db3", "db4"] {
        not_connected(&mut h, host);
    }
    h.advance(120 * SEC);
    for host in ["db2", "db3", "db4"] {
        assert_eq!(h.state(host), HostState::Online, "{host}");
    }
}

/// The active master keeps the writer role while its own replication from the dead
/// standby is broken (§3.6 row "ONLINE | host = AM | unchanged"), and a standby that comes
/// back and reconnects at once is an ordinary ONLINE standby again.
#[test]
fn active_master_replicating_from_a_dead_standby_keeps_the_writer() {
    let mut h = seed();
    h.set("db2", &[P, M], false);
    assert_eq!(h.state("db2"), HostState::HardOffline);
    not_connected(&mut h, "db1");
    h.advance(120 * SEC);
    assert_eq!(h.state("db1"), HostState::Online);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h.set("db2", &[P, M], true);
    h.check("db1", T, "OK");
    h.check("db1", B, "OK: Backlog is null");
    assert_eq!(h.state("db2"), HostState::AwaitingRecovery);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
}

/// A crash failover under mmm-rs's stricter `rep_threads`: the slaves' IO threads retry the
/// dead old master until their agents switch them, and with a short trap period that
/// failure can be reported before the switch is done. The §3.6 peer grace, for a slave,
/// also runs from when its peer (the active master) changed, so the slaves do not flap;
/// one that is still not connected when the grace ends goes to REPLICATION_FAIL then,
/// without any new input (the deadline is in `poll_timeout`).
#[test]
fn slaves_being_switched_in_a_failover_do_not_flap() {
    let mut h = seed();
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    for host in ["db3", "db4"] {
        not_connected(&mut h, host);
    }
    h.advance(SEC);
    for host in ["db3", "db4"] {
        assert_eq!(h.state(host), HostState::Online, "{host}");
        assert_eq!(h.roles(host).len(), 1, "{host}");
    }
    // db3 is switched; db4's switch was refused and it stays on the dead db1.
    h.check("db3", T, "OK");
    h.check("db3", B, "OK: Backlog is null");
    h.advance(58 * SEC);
    assert_eq!(h.state("db4"), HostState::Online);
    h.advance(2 * SEC);
    assert_eq!(h.state("db3"), HostState::Online);
    assert_eq!(h.state("db4"), HostState::ReplicationFail);
    let d = h.decisions_since(mark);
    assert!(
        !d.iter().any(|l| l.contains("'db3' changed")),
        "db3 left ONLINE: {d:?}"
    );
}
