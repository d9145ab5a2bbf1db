//! Monitor HA in the core (issue 16): the hold (PASSIVE while etcd does not confirm the
//! leadership, the mode before it restored) and the state a new leader takes over.

use std::time::Duration;

use mmm_common::state::{HostState, MonitorMode};

use super::*;
use crate::core::{Carried, CheckKind, Input};

fn hold(h: &mut Harness, on: bool) {
    h.input(Input::Hold {
        on,
        cause: "Monitor HA: etcd does not confirm this monitor's leadership (term 7); roles are held, no failover until it does.".into(),
    });
}

#[test]
fn a_held_leader_moves_no_role_and_kills_nobody() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    let writer = h.roles("db1");
    assert!(!writer.is_empty(), "db1 holds the writer role");
    hold(&mut h, true);
    assert_eq!(h.m.mode(), MonitorMode::Passive);
    assert!(h.cmd("show").contains("roles are held, no failover"));
    // The writer's server dies: nothing moves while held.
    let mark = h.mark();
    h.set("db1", &[CheckKind::Mysql], false);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.roles("db1"), writer, "a role moved while held");
    assert!(h.kills_since(mark).is_empty(), "kill_host while held");
    // The mode commands are refused while held.
    assert!(h.cmd("set_active").starts_with("ERROR: The mode is held"));
    // Released: ACTIVE again, and the failover happens then.
    hold(&mut h, false);
    assert_eq!(h.m.mode(), MonitorMode::Active);
    h.advance(Duration::from_secs(1));
    assert!(h.roles("db1").is_empty(), "the failover after the release");
    assert_eq!(h.roles("db2"), writer);
}

#[test]
fn a_hold_keeps_an_operators_passive_mode() {
    let mut h = Harness::started(seed_config(10), HostState::Online);
    assert_eq!(h.cmd("set_passive"), "OK: Switched into passive mode.");
    hold(&mut h, true);
    assert_eq!(h.m.carried().mode, "PASSIVE");
    hold(&mut h, false);
    assert_eq!(h.m.mode(), MonitorMode::Passive);
    assert!(h.cmd("show").contains("Admin switched to passive mode."));
}

#[test]
fn a_new_leader_takes_over_mode_and_flapping() {
    let mut old = Harness::started(seed_config(10), HostState::Online);
    old.cmd("set_manual");
    {
        let id = old.host("db3");
        let now = old.m.now;
        let rec = &mut old.m.hosts[id];
        rec.flapping = true;
        rec.flapcount = 4;
        rec.flapstart = Some(now);
    }
    old.advance(Duration::from_secs(20));
    let carried = old.m.carried();
    assert_eq!(carried.mode, "MANUAL");
    let text = serde_json::to_string(&carried).unwrap();

    let mut new = Harness::new(seed_config(10));
    new.initial_ok();
    let c: Carried = serde_json::from_str(&text).unwrap();
    // The new leader starts 20 s after the old one's window began.
    new.m.restore_carried(&c, WALL0 + 20);
    new.startup(vec![], vec![], vec![]);
    assert_eq!(new.m.mode(), MonitorMode::Manual);
    let id = new.host("db3");
    let rec = &new.m.hosts[id];
    assert!(rec.flapping);
    assert_eq!(rec.flapcount, 4);
    let age = new.m.now - rec.flapstart.expect("window start");
    assert!((19..=21).contains(&age.as_secs()), "window age {age:?}");
    // After the startup nothing is restored any more.
    let before = new.m.mode();
    new.m.restore_carried(
        &Carried {
            mode: "PASSIVE".into(),
            passive_cause: None,
            flapping: vec![],
        },
        WALL0,
    );
    assert_eq!(new.m.mode(), before);
}
