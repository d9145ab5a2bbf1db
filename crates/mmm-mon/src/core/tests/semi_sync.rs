//! Issue 13, lossless crash failover (`semi_sync 1`, core/durability.rs): the writer role
//! goes to the standby after a crash only when the semi-sync verdict says it holds every
//! acknowledged write; otherwise it is held for the old master, `show` and the log say why,
//! and `move_role --force` overrides. Without `semi_sync` a failover says it may lose writes.

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn seed(semi_sync: bool) -> Harness {
    let mut cfg = seed_config(0);
    cfg.ext.semi_sync = semi_sync;
    let mut h = Harness::started(cfg, HostState::Online);
    h.advance(61 * SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h
}

fn verdict(h: &mut Harness, lossless: bool, why: &str) {
    h.input(Input::Durability(Durability {
        lossless,
        why: why.into(),
    }));
}

#[test]
fn lossless_verdict_promotes_and_says_so() {
    let mut h = seed(true);
    verdict(
        &mut h,
        true,
        "db1 waits for the acknowledgement of db2 (AFTER_SYNC)",
    );
    let mark = h.mark();
    h.set("db1", &[P, M], false);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    let d = h.decisions_since(mark);
    assert!(
        d.iter()
            .any(|l| l.starts_with("Host 'db2' becomes the active master after the failure of 'db1' holding every acknowledged write")),
        "{d:?}"
    );
}

#[test]
fn unsure_verdict_refuses_the_promotion_until_forced() {
    let mut h = seed(true);
    verdict(&mut h, false, "the standby db2 does not answer");
    let mark = h.mark();
    h.set("db1", &[P, M], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert!(h.roles("db2").is_empty(), "no automatic promotion");
    let refused: Vec<&Decision> = h
        .decisions(mark)
        .into_iter()
        .filter(|d| matches!(d, Decision::PromotionRefused { .. }))
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].level(), Level::Error);
    let text = refused[0].to_string();
    assert!(text.contains("(the standby db2 does not answer)"), "{text}");
    assert!(
        text.contains("'mmm_control move_role --force writer db2'"),
        "{text}"
    );
    // Time passes, the hold stays.
    h.advance(30 * SEC);
    assert!(h.roles("db2").is_empty());
    let show = h.cmd("show");
    assert!(
        show.contains("# Warning: role writer was not given to db2 after db1 failed: semi_sync could not prove that it holds every acknowledged write (the standby db2 does not answer). Wait for db1 to come back ONLINE (it gets the role back), or run 'move_role --force writer db2'"),
        "{show}"
    );
    let m = h.cmd("move_role writer db2");
    assert!(
        m.starts_with("ERROR: Can't move role to host 'db2': the automatic promotion after the failure of 'db1' was refused"),
        "{m}"
    );
    let f = h.cmd("move_role --force writer db2");
    assert!(f.starts_with("OK: Role 'writer' has been moved"), "{f}");
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert!(!h.cmd("show").contains("# Warning: role writer"));
}

#[test]
fn a_held_role_goes_back_to_the_old_master() {
    let mut h = seed(true);
    verdict(&mut h, false, "semi-sync is off on the writer db1");
    h.set("db1", &[P, M], false);
    assert!(h.roles("db2").is_empty());
    h.set("db1", &[P, M], true);
    h.advance(5 * SEC);
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    assert!(h.cmd("set_online db1").starts_with("OK"));
    h.advance(SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    assert!(!h.cmd("show").contains("# Warning: role writer"));
}

#[test]
fn without_semi_sync_a_failover_says_it_may_lose_writes() {
    let mut h = seed(false);
    let mark = h.mark();
    h.set("db1", &[P, M], false);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    let lost: Vec<&Decision> = h
        .decisions(mark)
        .into_iter()
        .filter(|d| matches!(d, Decision::FailoverMayLoseWrites { .. }))
        .collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].level(), Level::Error);
    // A switchover is not a failover.
    let mut h = seed(false);
    let mark = h.mark();
    assert!(h.cmd("move_role writer db2").starts_with("OK"));
    h.answer_all();
    assert!(!h
        .decisions(mark)
        .iter()
        .any(|d| matches!(d, Decision::FailoverMayLoseWrites { .. })));
}
