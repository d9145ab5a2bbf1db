//! Lossless crash failover under 16 concurrent clients (issue 13, docs/data-safety.md):
//! `semi_sync 1`, the standby's inbound link rate-limited with tc `tbf`, the writer's
//! mysqld killed -9. Either the standby is promoted holding every acknowledged write, or
//! the monitor refuses the promotion and `show` says why — never a promotion that lost
//! acknowledged writes; every server identical once the old writer is back. Subnet 170.
//! Needs root and the binaries (`cargo build -p mmm-mon -p mmm-agent -p mmm-control`).

mod scenarios;

use std::time::Duration;

use scenarios::crash_failover::{wait_lossless, writer_crash};
use scenarios::{fast, Cluster};

#[test]
fn semi_sync_crash_failover_with_a_limited_standby() {
    let mut o = fast(170);
    o.label = "semi-sync";
    o.common_directives.push("semi_sync 1".into());
    o.common_directives.push("semi_sync_timeout 1".into());
    let mut c = Cluster::start(o);
    assert!(
        wait_lossless(&c, Duration::from_secs(30)),
        "semi-sync never lossless"
    );
    let r = writer_crash(&mut c, Some(2000), Duration::from_secs(3));
    println!("figure: [semi-sync] {}", r.line());
    assert!(r.acked_by_old > 0, "no write acknowledged before the kill");
    match (&r.new_writer, &r.refused) {
        (Some(_), _) => assert_eq!(
            r.missing_on_new_writer(),
            Some(0),
            "a promotion that lost acknowledged writes: {}",
            r.line()
        ),
        (None, Some(why)) => assert!(
            why.contains("semi_sync could not prove") && why.contains("move_role --force"),
            "{why}"
        ),
        (None, None) => unreachable!("writer_crash waits for one of them"),
    }
    assert_eq!(r.missing_at_end, 0, "{}", r.line());
    assert!(r.identical.is_ok(), "{}", r.line());
    assert_eq!(r.violations, 0, "{}", r.line());
    assert_eq!(r.errant_leaked, 0, "{}", r.line());
}
