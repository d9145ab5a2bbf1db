//! Issue 13, the errant-transaction guard (docs/data-safety.md, docs/differences.md): after
//! a crash failover the old master is kept out of ONLINE until compared with the new active
//! master; with errant transactions it stays out (not by the §3.6 rules, `auto_set_online`
//! or `set_online`), `show` names them, the log says it once at ERROR, and the new active
//! master is told to replicate from it again (`RESUME_PEER_LINK`) only once it is clean or
//! an operator accepted them (`accept_errant`).

use mmm_common::gtid::{mariadb_errant, ErrantSet};

use super::*;

const SEC: Duration = Duration::from_secs(1);
const CONN: &str = "ERROR: Connect error (host = 198.18.2.100:3306, user = mmm_monitor)! Can't connect to server on '198.18.2.100' (115)";

/// All ONLINE with the guard armed, writer on db1, out of the peer grace.
fn armed() -> Harness {
    let mut h = Harness::started(seed_config(1), HostState::Online);
    h.m.set_errant_guard(true);
    h.advance(61 * SEC);
    assert_eq!(h.roles("db1"), vec![r("writer", "198.18.2.188")]);
    h
}

/// db1's mysqld dies (kill -9), the writer moves to db2; db1 comes back 9 s later (which
/// 2.2.1 turns into ONLINE by the short-downtime rule).
fn crash_failover_and_return(h: &mut Harness) {
    let db1 = h.host("db1");
    h.uptime[db1] = 3500.0;
    h.advance(3 * SEC);
    h.check("db1", M, CONN);
    h.advance(2 * SEC);
    assert_eq!(h.state("db1"), HostState::HardOffline);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    h.uptime[db1] = 3509.0;
    h.check("db1", M, "OK");
    h.advance(10 * SEC);
}

fn errant(h: &mut Harness, host: &str, against: &str, result: Result<ErrantSet, String>) {
    let (host, against) = (h.host(host), h.host(against));
    h.input(Input::Errant {
        host,
        against,
        result,
    });
}

fn resumes_since(h: &Harness, mark: usize) -> Vec<String> {
    h.sends_since(mark)
        .into_iter()
        .filter(|s| s.contains("RESUME_PEER_LINK"))
        .collect()
}

fn errors_since(h: &Harness, mark: usize) -> Vec<String> {
    h.decisions(mark)
        .into_iter()
        .filter(|d| d.level() == Level::Error)
        .map(|d| d.to_string())
        .collect()
}

/// The case: db1 returns with 52 transactions db2 never had. It stays
/// AWAITING_RECOVERY (no roles) past the short-downtime and auto_set_online rules,
/// `set_online` is refused with the count and range, `show` has one warning line, the
/// ERROR is logged once for repeated comparisons, and db2 is not told to resume. Accepting
/// them resumes db2's link and lets db1 go ONLINE.
#[test]
fn errant_master_is_kept_out_until_accepted() {
    let mut h = armed();
    crash_failover_and_return(&mut h);
    assert_eq!(
        h.state("db1"),
        HostState::AwaitingRecovery,
        "not compared yet"
    );
    let mark = h.mark();
    let set = mariadb_errant("0-1-201,0-2-40", "0-1-149,0-2-900").unwrap();
    for _ in 0..3 {
        errant(&mut h, "db1", "db2", Ok(set.clone()));
        h.advance(SEC);
    }
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    assert!(h.roles("db1").is_empty());
    assert_eq!(
        errors_since(&h, mark),
        vec!["Host 'db1' has 52 errant transaction(s) that the active master 'db2' never had (0-1-150..0-1-201): it is kept out and 'db2' does not replicate from it. Re-seed it (mmm_clone) or accept them: mmm_control accept_errant db1".to_string()]
    );
    assert!(resumes_since(&h, mark).is_empty());
    let show = h.cmd("show");
    assert!(
        show.starts_with("# Warning: host db1 is kept out: 52 errant transaction(s) (0-1-150..0-1-201) that the active master db2 never had\n  db1(198.18.2.100) master/AWAITING_RECOVERY. Roles: \n"),
        "{show}"
    );
    assert_eq!(
        h.cmd("set_online db1"),
        "ERROR: Host 'db1' has 52 errant transaction(s) (0-1-150..0-1-201) that the active master db2 never had. It can't be switched to ONLINE before they are accepted (accept_errant db1) or the host is re-seeded."
    );
    let mark = h.mark();
    let reply = h.cmd("accept_errant db1");
    assert!(
        reply.starts_with("OK: Accepted the errant transactions of 'db1'"),
        "{reply}"
    );
    assert_eq!(resumes_since(&h, mark).len(), 1, "db2 told to resume");
    assert!(h
        .sends_since(mark)
        .iter()
        .any(|s| s.starts_with("db2") || s.contains("|db2")));
    assert!(!h.cmd("show").contains("kept out"));
    // Later comparisons (the errant rows still on their way) do not hold it again.
    errant(&mut h, "db1", "db2", Ok(set));
    h.advance(SEC);
    // ONLINE again by the usual rule (here: down for only 9 s).
    assert_eq!(h.state("db1"), HostState::Online);
}

/// db1 returns with nothing errant: db2 is told to resume at once, and db1 goes ONLINE by
/// the usual rule, as in 2.2.1.
#[test]
fn clean_master_resumes_and_returns() {
    let mut h = armed();
    crash_failover_and_return(&mut h);
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    let mark = h.mark();
    errant(&mut h, "db1", "db2", Ok(ErrantSet::default()));
    h.advance(SEC);
    assert_eq!(resumes_since(&h, mark).len(), 1);
    assert_eq!(h.state("db1"), HostState::Online);
    assert!(errors_since(&h, mark).is_empty());
    // A comparison against a host that is not the active master is ignored.
    errant(
        &mut h,
        "db2",
        "db1",
        Ok(mariadb_errant("0-2-5", "").unwrap()),
    );
    assert_eq!(h.state("db2"), HostState::Online);
}

/// A GTID-less server: the guard cannot run; the host is kept out with the reason until
/// an operator accepts it.
#[test]
fn guard_unavailable_keeps_out_with_the_reason() {
    let mut h = armed();
    crash_failover_and_return(&mut h);
    let mark = h.mark();
    errant(
        &mut h,
        "db1",
        "db2",
        Err("MySQL 8.0.36 with gtid_mode OFF".into()),
    );
    h.advance(10 * SEC);
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    assert_eq!(errors_since(&h, mark).len(), 1);
    assert!(h.cmd("show").contains("# Warning: host db1 is kept out: possibly errant transactions: the errant-transaction guard cannot run (MySQL 8.0.36 with gtid_mode OFF)\n"));
    assert!(h.cmd("accept_errant db1").starts_with("OK:"));
    h.advance(10 * SEC);
    assert_eq!(h.state("db1"), HostState::Online);
}

/// A planned switchover does not take the old master out while it waits for its
/// comparison; errant transactions found on an ONLINE master do (§3.6 ONLINE row with
/// mmm-rs's reason), and its roles go.
#[test]
fn switchover_keeps_online_master_found_errant_takes_it_out() {
    let mut h = armed();
    assert!(h.cmd("move_role writer db2").starts_with("OK"));
    h.advance(SEC);
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert_eq!(h.state("db1"), HostState::Online);
    h.advance(70 * SEC);
    assert_eq!(
        h.state("db1"),
        HostState::Online,
        "pending comparison does not demote"
    );
    assert!(!h.cmd("show").contains("Warning"));
    let mark = h.mark();
    errant(
        &mut h,
        "db1",
        "db2",
        Ok(mariadb_errant("0-1-7", "0-1-5").unwrap()),
    );
    assert_eq!(h.state("db1"), HostState::AwaitingRecovery);
    assert!(h
        .decisions_since(mark)
        .iter()
        .any(|d| d == "State of host 'db1' changed from ONLINE to AWAITING_RECOVERY (because it has errant transactions)"));
}

/// Not armed (`errant_transactions accept`, or no comparison task): 2.2.1's behaviour.
#[test]
fn disarmed_guard_holds_nothing() {
    let mut h = Harness::started(seed_config(1), HostState::Online);
    h.advance(61 * SEC);
    crash_failover_and_return(&mut h);
    assert_eq!(h.state("db1"), HostState::Online);
    errant(
        &mut h,
        "db1",
        "db2",
        Ok(mariadb_errant("0-1-7", "0-1-5").unwrap()),
    );
    assert_eq!(h.state("db1"), HostState::Online);
    assert_eq!(
        h.cmd("accept_errant db1"),
        "OK: Host 'db1' has no errant transactions held. Nothing to accept."
    );
}
