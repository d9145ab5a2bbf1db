//! mmm-rs extension `agent_lease` (DESIGN.md "Beyond MMM", docs/differences.md): the
//! monitor does not give the writer role to a new master while a host that may still hold
//! it, and could not be told, can still be within its lease (anchor + lease + grace); the
//! broadcast runs at least every lease/3; PASSIVE keeps the leases alive with PINGs. With
//! the lease off nothing changes (every other test runs with it off).

use super::*;
use crate::core::{BROADCAST_INTERVAL, LEASE_GRACE};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const LEASE: Duration = Duration::from_millis(1500);
const WRITER_TO_DB2: &str = "SET_STATUS|1|db2|ONLINE|writer(198.18.2.188)|db2";

fn lease_config(lease: Duration) -> MonitorSettings {
    let mut cfg = seed_config(0);
    cfg.ext.agent_lease = lease;
    cfg
}

/// All ONLINE, writer on db1, out of the peer grace, with `agent_lease` = `lease`.
fn seed_with(lease: Duration) -> Harness {
    let mut h = Harness::started(lease_config(lease), HostState::Online);
    h.advance(61 * SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h
}

/// The lease waits logged since `mark`.
fn lease_waits(h: &Harness, mark: usize) -> usize {
    h.decisions(mark)
        .iter()
        .filter(|d| matches!(d, Decision::LeaseWait { .. }))
        .count()
}

/// The writer role went to db2 (the old master failed: with `failed=db1`, issue 14).
fn writer_sent(h: &Harness, mark: usize) -> bool {
    h.sends_since(mark)
        .iter()
        .any(|s| s == WRITER_TO_DB2 || *s == format!("{WRITER_TO_DB2}|failed=db1"))
}

fn anchor(h: &Harness, name: &str) -> Instant {
    h.m.outbox.lease_anchor(h.host(name)).expect("test host")
}

/// Lets time pass in steps of 10 ms up to `until`, asserting the writer role is not sent
/// to db2 before it.
fn no_writer_until(h: &mut Harness, mark: usize, until: Instant) {
    while h.now + 10 * MS < until {
        h.advance(10 * MS);
        assert!(
            !writer_sent(h, mark),
            "writer role sent {:?} before the lease ran out",
            until - h.now
        );
    }
}

/// The writer's link is cut (ping fails, nothing can be sent): the slaves are switched at
/// once, the new master gets the writer role exactly at anchor + lease + grace, one log
/// line says why.
#[test]
fn untold_writer_new_master_waits_for_the_lease() {
    let mut h = seed_with(LEASE);
    h.advance(200 * MS);
    let anchor = anchor(&h, "db1");
    assert!(anchor <= h.now && h.now - anchor < SEC, "healthy anchor");
    let mark = h.mark();
    h.set("db1", &[P], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    let sends = h.sends_since(mark);
    assert!(
        sends.contains(&"SET_STATUS|1|db3|ONLINE|reader(198.18.2.198)|db2".to_string()),
        "slaves are switched meanwhile: {sends:?}"
    );
    assert!(!writer_sent(&h, mark));
    let due = anchor + LEASE + LEASE_GRACE;
    let d = h.decisions_since(mark);
    let wait = format!(
        "Waiting {:.1} s for the lease of 'db1' to expire before giving the writer role to 'db2'",
        (due - h.now).as_secs_f64()
    );
    assert_eq!(lease_waits(&h, mark), 1, "{d:?}");
    assert!(d.contains(&wait), "{d:?}");
    assert_eq!(h.kills_since(mark), vec![(h.host("db1"), false)]);
    no_writer_until(&mut h, mark, due);
    h.advance(due - h.now);
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
    // Logged once, not per re-check.
    assert_eq!(lease_waits(&h, mark), 1);
}

/// Lease off (2.2.1 behaviour): the same cut gives db2 the writer role at once.
#[test]
fn lease_off_no_wait() {
    let mut h = seed_with(Duration::ZERO);
    h.advance(200 * MS);
    let mark = h.mark();
    h.set("db1", &[P], false);
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
    assert_eq!(lease_waits(&h, mark), 0);
}

/// Lease off, the writer's link cut: the slaves and the new master are told at once (one
/// step, no reply awaited in between: each agent spends its own probe of the unreachable
/// old master concurrently).
#[test]
fn unreachable_old_master_slaves_and_new_master_at_once() {
    let mut h = seed_with(Duration::ZERO);
    h.advance(200 * MS);
    h.auto_reply = false;
    let mark = h.mark();
    h.set("db1", &[P], false);
    let sends = h.sends_since(mark);
    assert!(writer_sent(&h, mark), "{sends:?}");
    assert!(
        sends.contains(&"SET_STATUS|1|db3|ONLINE|reader(198.18.2.198)|db2".to_string()),
        "{sends:?}"
    );
    // Issue 14: the new master is told the old one failed (it waits for no handshake
    // from it); nobody else gets the field (the planned move's bytes: `move_role`).
    assert!(
        sends.contains(&format!("{WRITER_TO_DB2}|failed=db1")),
        "{sends:?}"
    );
    assert_eq!(
        sends.iter().filter(|s| s.contains("failed=")).count(),
        1,
        "{sends:?}"
    );
}

/// Lease off, the writer's mysqld dead (host reachable): HARD_OFFLINE, so the slaves and
/// the new master are told at once too.
#[test]
fn failed_old_master_slaves_and_new_master_at_once() {
    let mut h = seed_with(Duration::ZERO);
    h.advance(200 * MS);
    h.auto_reply = false;
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    // The old master's settle step is answered; then both at once.
    h.answer_all();
    h.drain();
    let sends = h.sends_since(mark);
    assert!(writer_sent(&h, mark), "{sends:?}");
    assert!(
        sends.contains(&"SET_STATUS|1|db3|ONLINE|reader(198.18.2.198)|db2".to_string()),
        "{sends:?}"
    );
    // Issue 14: the new master is told the old one failed (it waits for no handshake
    // from it); nobody else gets the field (the planned move's bytes: `move_role`).
    assert!(
        sends.contains(&format!("{WRITER_TO_DB2}|failed=db1")),
        "{sends:?}"
    );
    assert_eq!(
        sends.iter().filter(|s| s.contains("failed=")).count(),
        1,
        "{sends:?}"
    );
}

/// A planned move (`set_offline` of the writer): the slaves first (they wait for the old
/// master's final position), the new master once they answered.
#[test]
fn planned_move_slaves_first() {
    let mut h = seed_with(Duration::ZERO);
    h.advance(200 * MS);
    h.auto_reply = false;
    let mark = h.mark();
    assert!(h.cmd_answering_pings("set_offline db1").starts_with("OK"));
    h.answer_all();
    h.drain();
    let sends = h.sends_since(mark);
    assert!(
        sends.iter().any(|s| s.starts_with("SET_STATUS|1|db3|")),
        "the slaves are told after the old master settled: {sends:?}"
    );
    assert!(
        !writer_sent(&h, mark),
        "before the slaves answered: {sends:?}"
    );
    h.answer_all();
    h.drain();
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
}

/// The old writer was told (its agent answered the SET_STATUS without the writer role):
/// no wait even with the lease on.
#[test]
fn told_writer_no_wait() {
    let mut h = seed_with(LEASE);
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
    assert!(h.kills_since(mark).is_empty());
    assert_eq!(lease_waits(&h, mark), 0);
}

/// The old writer's agent refuses the connection (ping OK): the request never reached it,
/// the anchor stays at the last exchange.
#[test]
fn connect_failure_does_not_move_the_anchor() {
    let mut h = seed_with(LEASE);
    h.advance(300 * MS);
    let db1 = h.host("db1");
    let before = anchor(&h, "db1");
    h.agent_fails[db1] = true;
    let mark = h.mark();
    h.set("db1", &[M], false);
    assert_eq!(anchor(&h, "db1"), before);
    assert_eq!(h.kills_since(mark), vec![(db1, true)]);
    let due = before + LEASE + LEASE_GRACE;
    no_writer_until(&mut h, mark, due);
    h.advance(due - h.now);
    assert!(writer_sent(&h, mark));
}

/// A failure after the connect (read timeout, no reply): the request may have arrived, so
/// the anchor moves to the end of that exchange, and while an exchange is open the new
/// master waits for it.
#[test]
fn failure_after_connect_moves_the_anchor() {
    let mut h = seed_with(LEASE);
    h.advance(300 * MS);
    h.auto_reply = false;
    h.answer_all();
    let mark = h.mark();
    h.set("db1", &[M], false);
    // The settle SET_STATUS to db1 is in flight; 5 s later it times out.
    let (token, host, _) = h.outstanding.pop_front().expect("settle send");
    assert_eq!(host, h.host("db1"));
    h.advance(5 * SEC);
    h.m.handle(
        h.now,
        Input::AgentReply {
            token,
            reply: Err("Timeout after 5s waiting for the reply".into()),
            maybe_delivered: true,
        },
    );
    assert_eq!(anchor(&h, "db1"), h.now);
    // Its retries are refused from now on (they do not move the anchor).
    let db1 = h.host("db1");
    h.agent_fails[db1] = true;
    h.auto_reply = true;
    h.drain();
    // Waiting for the request in flight to db1, or for its lease (2.0 s from now).
    let d = h.decisions(mark);
    assert!(
        d.iter().any(|d| match d {
            Decision::LeaseWait { holder, wait, .. } if holder == "db1" => {
                wait.is_none_or(|w| format!("{:.1}", w.as_secs_f64()) == "2.0")
            }
            _ => false,
        }),
        "{d:?}"
    );
    let due = h.now + LEASE + LEASE_GRACE;
    no_writer_until(&mut h, mark, due);
    h.advance(due - h.now);
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
}

/// The cut writer's link heals during the wait: it is told at once (no writer role) and
/// confirms; the new master then gets the role without waiting the lease out.
#[test]
fn writer_told_during_the_wait_ends_it() {
    let mut h = seed_with(LEASE);
    h.advance(100 * MS);
    let mark = h.mark();
    h.set("db1", &[P], false);
    assert!(!writer_sent(&h, mark));
    let due = anchor(&h, "db1") + LEASE + LEASE_GRACE;
    h.advance(300 * MS);
    h.set("db1", &[P], true);
    assert!(h.now < due);
    assert!(
        h.sends_since(mark)
            .contains(&"SET_STATUS|1|db1|HARD_OFFLINE||db2".to_string()),
        "{:?}",
        h.sends_since(mark)
    );
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
}

/// move_role --force from an active master that cannot be told waits the same way.
#[test]
fn move_role_force_waits_for_the_lease() {
    let mut h = seed_with(LEASE);
    h.set("db2", &[T], false);
    assert_eq!(h.state("db2"), HostState::ReplicationFail);
    h.advance(200 * MS);
    let db1 = h.host("db1");
    let before = anchor(&h, "db1");
    h.agent_fails[db1] = true;
    h.set("db1", &[T], false);
    let mark = h.mark();
    assert!(h
        .cmd("move_role --force writer db2")
        .starts_with("OK: Role 'writer' has been moved from 'db1' to 'db2' enforcedly."));
    assert!(!writer_sent(&h, mark));
    let due = before + LEASE + LEASE_GRACE;
    no_writer_until(&mut h, mark, due);
    h.advance(due - h.now);
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
}

/// The broadcast runs every lease/3 when that is shorter than 3 s.
#[test]
fn broadcast_cadence() {
    let h = seed_with(Duration::ZERO);
    assert_eq!(h.m.broadcast_interval(), BROADCAST_INTERVAL);
    let h = seed_with(Duration::from_secs(30));
    assert_eq!(h.m.broadcast_interval(), BROADCAST_INTERVAL);
    let mut h = seed_with(LEASE);
    assert_eq!(h.m.broadcast_interval(), Duration::from_millis(500));
    let mark = h.mark();
    h.advance(3 * SEC);
    let to_db1 = h
        .sends_since(mark)
        .iter()
        .filter(|s| s.starts_with("SET_STATUS|1|db1|"))
        .count();
    assert_eq!(to_db1, 6);
    // Lease off: one every 3 s.
    let mut h = seed_with(Duration::ZERO);
    let mark = h.mark();
    h.advance(3 * SEC);
    let to_db1 = h
        .sends_since(mark)
        .iter()
        .filter(|s| s.starts_with("SET_STATUS|1|db1|"))
        .count();
    assert_eq!(to_db1, 1);
}

/// PASSIVE sends no SET_STATUS, but with the lease on it PINGs every agent every lease/3
/// so that no writer fences itself; with the lease off it sends nothing.
#[test]
fn passive_keeps_leases_alive() {
    let mut h = seed_with(LEASE);
    assert!(h.cmd("set_passive").starts_with("OK"));
    let mark = h.mark();
    h.advance(3 * SEC);
    let sends = h.sends_since(mark);
    assert!(
        !sends.iter().any(|s| s.starts_with("SET_STATUS")),
        "{sends:?}"
    );
    let pings = sends.iter().filter(|s| *s == "PING|1|db1").count();
    assert_eq!(pings, 6, "{sends:?}");
    let mut h = seed_with(Duration::ZERO);
    assert!(h.cmd("set_passive").starts_with("OK"));
    let mark = h.mark();
    h.advance(10 * SEC);
    assert!(h.sends_since(mark).is_empty());
}

/// The old writer's agent answers the SET_STATUS without the writer role with an `ERROR:`
/// (e.g. read_only=1 failed on a dead mysqld): it has dropped the role from its list all
/// the same (and cleared the IP), so its lease does not matter: no wait, even though
/// every such reply moves its anchor (a wait would never end).
#[test]
fn error_reply_releases_the_writer() {
    let mut h = seed_with(LEASE);
    h.auto_reply = false;
    h.answer_all();
    let mark = h.mark();
    h.set("db1", &[M], false);
    let (token, host, req) = h.outstanding.pop_front().expect("settle send");
    assert_eq!(host, h.host("db1"));
    assert!(req
        .to_string()
        .starts_with("SET_STATUS|1|db1|HARD_OFFLINE||"));
    h.m.handle(
        h.now,
        Input::AgentReply {
            token,
            reply: Ok(AgentReply {
                result: "ERROR: Couldn't deny writes: Can't connect to MySQL server".into(),
                uptime: Some(1000.0),
            }),
            maybe_delivered: true,
        },
    );
    h.auto_reply = true;
    h.drain();
    assert_eq!(h.kills_since(mark), vec![(host, true)]);
    assert!(writer_sent(&h, mark), "{:?}", h.sends_since(mark));
    assert_eq!(lease_waits(&h, mark), 0);
}

/// Startup (cleanup and send, spec §3.14.4): db2's system still carries the writer VIP but
/// its agent cannot be told; the writer role goes to db1 only once db2's lease has run
/// out, counted from the startup (an earlier monitor may have reached db2 until then).
#[test]
fn startup_cleanup_waits_for_an_untold_holder() {
    let mut h = Harness::new(lease_config(LEASE));
    h.initial_ok();
    let db2 = h.host("db2");
    h.agent_fails[db2] = true;
    let stored = ["db1", "db2", "db3", "db4"]
        .iter()
        .map(|n| StatusLine {
            host: n.to_string(),
            state: HostState::Online,
            roles: if *n == "db1" {
                vec![r("writer", "198.18.2.188")]
            } else {
                vec![]
            },
        })
        .collect();
    let system = |writable: bool, roles: Vec<RoleIp>| {
        Ok(SystemStatus {
            writable,
            roles,
            master_ip: String::new(),
        })
    };
    let systems = vec![
        system(true, vec![]),
        system(false, vec![r("writer", "198.18.2.188")]),
        system(false, vec![]),
        system(false, vec![]),
    ];
    let start = h.now;
    let mark = h.mark();
    h.startup(stored, vec![], systems);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    let writer_to_db1 = |h: &Harness| {
        h.sends_since(mark)
            .iter()
            .any(|s| s == "SET_STATUS|1|db1|ONLINE|writer(198.18.2.188)|db1")
    };
    assert!(!writer_to_db1(&h), "{:?}", h.sends_since(mark));
    assert_eq!(h.kills_since(mark), vec![(db2, true)]);
    let due = start + LEASE + LEASE_GRACE;
    while h.now + 10 * MS < due {
        h.advance(10 * MS);
        assert!(
            !writer_to_db1(&h),
            "writer role sent before db2's lease ran out"
        );
    }
    h.advance(due - h.now);
    assert!(writer_to_db1(&h), "{:?}", h.sends_since(mark));
}
