//! mmm-rs extension `pre_failover_bin` / `post_failover_bin` (issue 17): a failover of the
//! writer role is held until the hook allows it; a veto is logged and asked again after
//! `pre_failover_retry`; `move_role` is not gated; without the directives nothing changes.

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn gated(pre: bool, post: bool) -> Harness {
    let mut cfg = seed_config(0);
    if pre {
        cfg.ext.pre_failover_bin = Some("/bin/false".into());
    }
    if post {
        cfg.ext.post_failover_bin = Some("/bin/true".into());
    }
    cfg.ext.pre_failover_retry = 5 * SEC;
    let mut h = Harness::started(cfg, HostState::Online);
    h.advance(61 * SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h
}

/// The pre-failover runs asked for since `mark`: (seq, from, to).
fn asks(h: &Harness, mark: usize) -> Vec<(u64, String, String)> {
    h.log[mark..]
        .iter()
        .filter_map(|a| match a {
            Action::PreFailover {
                seq,
                from,
                to,
                role,
            } => {
                assert_eq!(role, &r("writer", "198.18.2.188"));
                Some((*seq, from.clone(), to.clone()))
            }
            _ => None,
        })
        .collect()
}

fn kill_db1(h: &mut Harness) {
    h.set("db1", &[CheckKind::Ping, CheckKind::Mysql], false);
    assert_eq!(h.state("db1"), HostState::HardOffline);
}

#[test]
fn veto_holds_the_failover_and_a_later_yes_lets_it_proceed() {
    let mut h = gated(true, false);
    let mark = h.log.len();
    kill_db1(&mut h);
    let a = asks(&h, mark);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!((a[0].1.as_str(), a[0].2.as_str()), ("db1", "db2"));
    // Held: nobody has the writer role while the hook runs.
    assert!(h.roles("db2").is_empty());
    assert!(h
        .cmd("show")
        .contains("# Failover of role writer from db1 to db2 waits for pre_failover_bin\n"));
    let mark = h.log.len();
    h.input(Input::PreFailoverResult {
        seq: a[0].0,
        allowed: false,
        why: "exit 1; output: no".into(),
    });
    assert!(h.roles("db2").is_empty());
    let held: Vec<_> = h
        .decisions(mark)
        .into_iter()
        .filter(|d| matches!(d, Decision::FailoverHeld { .. }))
        .cloned()
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].level(), Level::Fatal);
    assert!(h.cmd("show").contains(
        "# Failover of role writer from db1 to db2 is held by pre_failover_bin: exit 1; output: no\n"
    ));
    // Asked again after pre_failover_retry, not before.
    let mark = h.log.len();
    h.advance(4 * SEC);
    assert!(asks(&h, mark).is_empty());
    h.advance(2 * SEC);
    let again = asks(&h, mark);
    assert_eq!(again.len(), 1);
    assert!(h.roles("db2").is_empty());
    let mark = h.log.len();
    h.input(Input::PreFailoverResult {
        seq: again[0].0,
        allowed: true,
        why: String::new(),
    });
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    let texts = h.decisions_since(mark);
    assert!(texts.iter().any(|t| t
        == "pre_failover_bin allowed the failover of role 'writer(198.18.2.188)' from host 'db1' to host 'db2'"), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t == "Failover of role 'writer(198.18.2.188)' from host 'db1' to host 'db2'"),
        "{texts:?}"
    );
    assert!(!h.cmd("show").contains("pre_failover_bin"));
}

#[test]
fn a_stale_verdict_is_ignored_and_a_recovered_writer_needs_no_hook() {
    let mut h = gated(true, false);
    let mark = h.log.len();
    kill_db1(&mut h);
    let a = asks(&h, mark);
    h.input(Input::PreFailoverResult {
        seq: a[0].0 + 100,
        allowed: true,
        why: String::new(),
    });
    assert!(h.roles("db2").is_empty());
    // db1 comes back: the role goes back to it without the hook, the hold is gone.
    h.set("db1", &[CheckKind::Ping, CheckKind::Mysql], true);
    h.cmd("set_online db1");
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    assert!(!h.cmd("show").contains("pre_failover_bin"));
    h.input(Input::PreFailoverResult {
        seq: a[0].0,
        allowed: true,
        why: String::new(),
    });
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
}

#[test]
fn move_role_is_not_gated_and_logs_no_failover() {
    let mut h = gated(true, true);
    let mark = h.log.len();
    let reply = h.cmd("move_role writer db2");
    assert!(reply.starts_with("OK:"), "{reply}");
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert!(asks(&h, mark).is_empty());
    assert!(!h
        .decisions(mark)
        .iter()
        .any(|d| matches!(d, Decision::Failover { .. })));
}

#[test]
fn post_failover_alone_logs_the_failover_without_holding_it() {
    let mut h = gated(false, true);
    let mark = h.log.len();
    kill_db1(&mut h);
    assert!(asks(&h, mark).is_empty());
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert!(h
        .decisions(mark)
        .iter()
        .any(|d| matches!(d, Decision::Failover { .. })));
}

#[test]
fn without_hooks_the_log_is_221s() {
    let mut h = gated(false, false);
    let mark = h.log.len();
    kill_db1(&mut h);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert!(!h.decisions(mark).iter().any(|d| matches!(
        d,
        Decision::Failover { .. }
            | Decision::FailoverHeld { .. }
            | Decision::FailoverAllowed { .. }
    )));
}
