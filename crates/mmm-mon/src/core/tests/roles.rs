//! §3.9 role distribution: the worked example, preferences, balancing, modes.

use super::*;

const SEC: Duration = Duration::from_secs(1);

/// §3.9 worked example (stock config, all ONLINE, ACTIVE, no prefer): writer → db1, one
/// reader per host; db1 fails → writer → db2, orphan reader → db3; db1 back → one reader
/// moves db3 → db1; the writer stays on db2.
#[test]
fn worked_example() {
    let mut h = Harness::started(stock_config(0), HostState::Online);
    assert_eq!(
        h.roles("db1"),
        vec![r("reader", "192.168.0.53"), r("writer", "192.168.0.50")]
    );
    assert_eq!(h.roles("db2"), vec![r("reader", "192.168.0.51")]);
    assert_eq!(h.roles("db3"), vec![r("reader", "192.168.0.52")]);
    h.advance(61 * SEC);

    let mark = h.mark();
    h.set("db1", &[M], false);
    let d = h.decisions_since(mark);
    assert!(
        d.contains(&"Orphaned role 'writer(192.168.0.50)' has been assigned to 'db2'".to_string())
    );
    assert!(
        d.contains(&"Orphaned role 'reader(192.168.0.53)' has been assigned to 'db3'".to_string())
    );
    assert!(h.roles("db1").is_empty());
    assert_eq!(
        h.roles("db2"),
        vec![r("reader", "192.168.0.51"), r("writer", "192.168.0.50")]
    );
    assert_eq!(
        h.roles("db3"),
        vec![r("reader", "192.168.0.52"), r("reader", "192.168.0.53")]
    );

    h.set("db1", &[M], true); // → AWAITING_RECOVERY
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    let mark = h.mark();
    h.cmd("set_online db1");
    assert!(h
        .decisions_since(mark)
        .contains(&"Moving role 'reader(192.168.0.52)' from host 'db3' to host 'db1'".to_string()));
    assert_eq!(h.roles("db1"), vec![r("reader", "192.168.0.52")]);
    assert_eq!(
        h.roles("db2"),
        vec![r("reader", "192.168.0.51"), r("writer", "192.168.0.50")]
    );
    assert_eq!(h.roles("db3"), vec![r("reader", "192.168.0.53")]);
}

/// §3.9 step 3: in ACTIVE mode an exclusive role moves back to its `prefer` host once that
/// host is ONLINE; in MANUAL it does not.
#[test]
fn prefer_is_enforced_in_active_only() {
    let mut cfg = seed_config(0);
    cfg.roles[0].prefer = Some("db2".into());
    let mut h = Harness::started(cfg.clone(), HostState::Online);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    h.advance(61 * SEC);
    h.set("db2", &[M], false);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h.set("db2", &[M], true);
    let mark = h.mark();
    h.cmd("set_online db2");
    assert!(h.decisions_since(mark).contains(
        &"Moving role 'writer(198.18.2.188)' from host 'db1' to preferred host 'db2'".to_string()
    ));
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);

    let mut h = Harness::started(cfg, HostState::Online);
    h.advance(61 * SEC);
    h.cmd("set_manual");
    h.set("db2", &[M], false);
    // MANUAL: the failing host keeps its roles
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
}

/// §3.9 step 4: balanced roles never differ by 2 or more between eligible hosts; with
/// one eligible host nothing moves.
#[test]
fn balancing_after_recovery() {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    h.advance(61 * SEC);
    h.set("db4", &[P], false);
    assert_eq!(h.roles("db3").len(), 2);
    h.set("db4", &[P], true);
    h.cmd("set_online db4");
    assert_eq!(h.roles("db3").len(), 1);
    assert_eq!(h.roles("db4").len(), 1);
}

/// §3.9: no eligible host → orphans stay orphaned and the status shows no roles.
#[test]
fn no_eligible_host_keeps_orphans() {
    let mut h = Harness::started(seed_config(0), HostState::AwaitingRecovery);
    assert_eq!(h.m.roles.active_master(), None);
    for n in ["db1", "db2", "db3", "db4"] {
        assert!(h.roles(n).is_empty());
    }
    h.cmd("set_online db3");
    assert_eq!(h.roles("db3").len(), 2);
}
