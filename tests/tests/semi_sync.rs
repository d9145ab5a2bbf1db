//! Lossless crash failover with `semi_sync 1` (issue 13) on the testbed (subnet 125): real
//! MariaDB servers, the agents turn semi-sync on themselves, the monitor watches it.
//!
//! 1. The writer's mysqld killed -9 under the write load through the writer VIP: the
//!    standby is promoted and no acknowledged write is missing on any server afterwards
//!    (asserted as for a planned scenario), every server converged.
//! 2. The standby's mysqld frozen (SIGSTOP) until semi-sync falls back, then the writer
//!    killed -9: the monitor refuses the automatic promotion, `show` says why and what to
//!    do; after the standby is thawed `move_role --force` promotes it.
//!
//! Needs root and the binaries (see faults.rs).

mod scenarios;

use std::time::{Duration, Instant};

use scenarios::{fast, Cluster, Kind};

fn options() -> mmm_tests::cluster::ClusterOptions {
    let mut o = fast(125);
    o.label = "semi-sync";
    o.common_directives.push("semi_sync 1".into());
    o.common_directives.push("semi_sync_timeout 1".into());
    o
}

/// Waits until the monitor's log says semi-sync is lossless.
fn wait_lossless(c: &Cluster) {
    c.wait_until(
        Duration::from_secs(30),
        "semi_sync lossless in the monitor log",
        |c| {
            let log = c.monitor_log().unwrap_or_default();
            let last_on = log.rfind("semi_sync: every acknowledged write is on the standby");
            let last_off = log.rfind("semi_sync: NOT lossless");
            (last_on.is_some() && last_on > last_off).then_some(())
        },
    );
}

/// `rpl_semi_sync_master_wait_no_slave` of `host` as "ON" or "OFF" (`None` when it
/// cannot be read).
fn wait_no_slave(c: &Cluster, host: &str) -> Option<&'static str> {
    let q = "SELECT @@GLOBAL.rpl_semi_sync_master_wait_no_slave AS v";
    let rows = c.query(host, q).ok()?;
    let v = rows.first()?.get("v")?;
    Some(if v == "1" || v.eq_ignore_ascii_case("ON") {
        "ON"
    } else {
        "OFF"
    })
}

#[test]
fn semi_sync_crash_failover() {
    let mut c = Cluster::start(options());
    wait_lossless(&c);

    // 1. Writer killed -9 under load: lossless.
    let from = c.writer().expect("a writer");
    let to = Cluster::other_master(&from);
    let run = c.begin(&format!("semi_sync: writer mysqld kill -9 ({from})"));
    c.settle(&run, Duration::from_millis(500));
    let t = Instant::now();
    c.mysql_kill9(&from).expect("kill -9");
    let moved = c.wait_writer_on(to, t, Duration::from_secs(60));
    c.wait_state(&from, "HARD_OFFLINE", Duration::from_secs(30));
    let log = c.monitor_log().unwrap_or_default();
    assert!(
        log.contains(&format!(
            "Host '{to}' becomes the active master after the failure of '{from}' holding every acknowledged write"
        )),
        "the lossless failover is logged"
    );
    // The new writer has no semi-sync slave (its only one is the dead old writer): it
    // does not hold its commits for the timeout waiting for one (wait_no_slave OFF), and
    // waits for its standby again once the old writer is back.
    c.wait_until(
        Duration::from_secs(15),
        "wait_no_slave OFF on the new writer",
        |c| (wait_no_slave(c, to) == Some("OFF")).then_some(()),
    );
    c.settle(&run, Duration::from_millis(500));
    c.mysql_start(&from).expect("start");
    let healthy = c.wait_healthy(Duration::from_secs(90));
    c.wait_replication_healthy(Duration::from_secs(30));
    c.wait_until(
        Duration::from_secs(30),
        "wait_no_slave ON on the writer once its standby is back",
        |c| (wait_no_slave(c, to) == Some("ON")).then_some(()),
    );
    let agent_log = c.agent_log(to).unwrap_or_default();
    assert!(
        agent_log.contains("no semi-sync slave is connected to this writer")
            && agent_log.contains("a semi-sync slave (the standby master) is connected again"),
        "the new writer's agent logs both changes"
    );
    c.settle(&run, Duration::from_millis(300));
    // Planned: any acknowledged write missing on any server fails the test.
    c.end(run, Kind::Planned, t, Some(moved), Some(healthy), true);

    // 2. The standby frozen until semi-sync falls back, then the writer killed.
    wait_lossless(&c);
    let writer = c.writer().expect("a writer");
    let standby = Cluster::other_master(&writer);
    c.mysql_freeze(standby).expect("freeze");
    c.wait_until(Duration::from_secs(30), "semi_sync NOT lossless", |c| {
        let log = c.monitor_log().unwrap_or_default();
        let on = log.rfind("semi_sync: every acknowledged write is on the standby");
        let off = log.rfind("semi_sync: NOT lossless");
        (off.is_some() && off > on).then_some(())
    });
    let t = Instant::now();
    c.mysql_kill9(&writer).expect("kill -9");
    c.wait_state(&writer, "HARD_OFFLINE", Duration::from_secs(30));
    c.mysql_thaw(standby).expect("thaw");
    let show = c.wait_until(Duration::from_secs(30), "the refusal in show", |c| {
        let s = c.ctl(&["show"]);
        s.contains("# Warning: role writer was not given to")
            .then_some(s)
    });
    assert!(
        show.contains(&format!("Wait for {writer} to come back ONLINE"))
            && show.contains(&format!("'move_role --force writer {standby}'")),
        "{show}"
    );
    let log = c.monitor_log().unwrap_or_default();
    assert!(log.contains(&format!(
        "Not giving role 'writer' to {standby} after the failure of '{writer}'"
    )));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!c.has_vip(standby), "no automatic promotion");
    let forced = c.ctl(&["move_role", "--force", "writer", standby]);
    assert!(forced.contains("has been moved"), "{forced}");
    c.wait_writer_on(standby, t, Duration::from_secs(60));
    c.mysql_start(&writer).expect("start");
    c.wait_healthy(Duration::from_secs(90));
}
