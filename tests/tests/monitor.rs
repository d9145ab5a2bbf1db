//! End to end: the real `mmm_mond` and `mmm_control` with real `mmm_agentd`s on the
//! testbed (five namespaces, four replicating MariaDB servers, the seed's configs).
//!
//! Covers spec §3.1 (startup of a fresh cluster: every host AWAITING_RECOVERY), §5
//! (`mmm_control` commands and their exact output), §3.9 (roles distributed after
//! `set_online`, VIPs really on the interfaces, read_only really off on the writer), §8
//! (automatic failover when the active master's mysqld is killed, its return, a hung and a
//! cleanly stopped slave: each timed and printed),
//! §3.12 (status file) and shutdown on SIGTERM.
//!
//! Needs root and the binaries: `cargo build -p mmm-mon -p mmm-agent -p mmm-control`
//! first; then `cargo test -p mmm-tests --test monitor -- --nocapture`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mmm_tests::cluster::{BringOnline, Cluster, ClusterOptions, CONTROL_HELP as HELP};

/// Starts a cluster (the harness of `mmm_tests::cluster`) with the seed's configuration.
fn start(opts: ClusterOptions) -> Cluster {
    Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"))
}

/// `mmm_control ARGS…` on the monitor host: (stdout, exit code).
fn control(c: &Cluster, args: &[&str]) -> (String, Option<i32>) {
    c.control(args)
        .unwrap_or_else(|e| panic!("mmm_control {args:?}: {e}"))
}

/// Polls `f` (every 100 ms) until it returns `Some`, at most `limit`.
fn wait_for<T>(
    c: &Cluster,
    limit: Duration,
    what: &str,
    f: impl FnMut(&Cluster) -> Option<T>,
) -> T {
    c.wait_for(what, limit, f).unwrap_or_else(|e| panic!("{e}"))
}

fn has_ip(c: &Cluster, host: &str, ip: Ipv4Addr) -> bool {
    c.holds_ip(host, ip).expect("ip addr")
}

/// `read_only` of `host`'s server (`None` when it cannot be read).
fn read_only(c: &Cluster, host: &str) -> Option<bool> {
    c.read_only(host).ok().flatten()
}

#[test]
fn monitor_with_real_agents() {
    // The seed's configs, agents and monitor started; hosts left AWAITING_RECOVERY. §5.1:
    // `start` returns once the monitor answers `ping`.
    let c = start(ClusterOptions {
        bring_online: BringOnline::Leave,
        ..ClusterOptions::seed(41)
    });
    println!(
        "figure: monitor answered `ping` {:.2} s after start",
        c.monitor_uptime().unwrap_or_default().as_secs_f64()
    );
    let ip = |h: &str| c.ip(h).to_string();
    let writer_vip = c.vip(188);
    let reader_vips = [c.vip(198), c.vip(199)];
    assert_eq!(control(&c, &["mode"]), ("ACTIVE\n".to_string(), Some(0)));
    // The transcript's bytes (transcripts-2.2.1.md §1): help ends with a newline, and
    // mmm_control adds one more.
    assert_eq!(control(&c, &["help"]), (format!("{HELP}\n"), Some(0)));
    assert_eq!(
        control(&c, &["move_role", "writer"]),
        (
            format!("Invalid command 'move_role writer'\n\n{HELP}\n"),
            Some(2)
        )
    );

    // §3.14.2: a brand-new cluster starts with every host AWAITING_RECOVERY.
    let (show, _) = control(&c, &["show"]);
    assert_eq!(
        show,
        format!(
            "  db1({}) master/AWAITING_RECOVERY. Roles: \n  db2({}) master/AWAITING_RECOVERY. Roles: \n  db3({}) slave/AWAITING_RECOVERY. Roles: \n  db4({}) slave/AWAITING_RECOVERY. Roles: \n\n",
            ip("db1"),
            ip("db2"),
            ip("db3"),
            ip("db4")
        )
    );

    // set_online every host (the seed's walkthrough).
    for h in ["db1", "db2", "db3", "db4"] {
        let (out, code) = wait_for(&c, Duration::from_secs(30), "set_online", |_| {
            let r = control(&c, &["set_online", h]);
            // The initial checks may still be failing for a moment.
            (!r.0.starts_with("ERROR: Checks ping and/or mysql")).then_some(r)
        });
        assert_eq!(
            out,
            format!("OK: State of '{h}' changed to ONLINE. Now you can wait some time and check its new roles!\n"),
        );
        assert_eq!(code, Some(0));
    }
    let (again, _) = control(&c, &["set_online", "db1"]);
    assert_eq!(
        again,
        "OK: This host is already ONLINE. Skipping command.\n"
    );

    // §3.9: writer on db1 (first on a tie), one reader on each slave (which one goes
    // where depends on the order of set_online); real effects on the hosts.
    let show_with = |r3: Ipv4Addr, r4: Ipv4Addr| {
        format!(
            "  db1({}) master/ONLINE. Roles: writer({writer_vip})\n  db2({}) master/ONLINE. Roles: \n  db3({}) slave/ONLINE. Roles: reader({r3})\n  db4({}) slave/ONLINE. Roles: reader({r4})\n\n",
            ip("db1"),
            ip("db2"),
            ip("db3"),
            ip("db4"),
        )
    };
    let options = [
        (reader_vips[0], reader_vips[1]),
        (reader_vips[1], reader_vips[0]),
    ];
    let (r3, r4) = wait_for(&c, Duration::from_secs(20), "roles distributed", |c| {
        let last = control(c, &["show"]).0;
        options
            .iter()
            .find(|(a, b)| last == show_with(*a, *b))
            .copied()
    });
    wait_for(
        &c,
        Duration::from_secs(20),
        "writer VIP and read_only=0 on db1",
        |_| (has_ip(&c, "db1", writer_vip) && read_only(&c, "db1") == Some(false)).then_some(()),
    );
    assert!(has_ip(&c, "db3", r3));
    assert!(has_ip(&c, "db4", r4));
    assert_eq!(read_only(&c, "db2"), Some(true));

    // §3.13: the testbed is a correct master-master pair, so the startup check found
    // nothing to warn about (it connected to both and read their settings).
    let log = c.monitor_log().expect("monitor log");
    for bad in [
        "master-master",
        "is not replicating from",
        "auto_increment",
        "Couldn't connect to both masters",
    ] {
        assert!(
            !log.contains(bad),
            "unexpected startup warning ({bad}):\n{log}"
        );
    }
    assert!(
        log.contains(" INFO Monitor started in active mode.\n"),
        "{log}"
    );

    // checks: exact shape of one line (§5.3).
    let (chk, _) = control(&c, &["checks", "db1", "mysql"]);
    assert!(
        chk.starts_with("db1  mysql  [last change: ") && chk.ends_with("]  OK\n"),
        "{chk:?}"
    );
    // An ERROR answer: 2.2.1's bytes, exit status 2 (issue 17).
    assert_eq!(
        control(&c, &["checks", "db9"]),
        ("ERROR: Unknown host name 'db9'!\n".to_string(), Some(2))
    );

    // §3.12: the status file on the monitor host.
    let status_path = c
        .host_dir("monitor")
        .expect("monitor dir")
        .join("var/lib/misc/mmm_mond.status");
    let expected_status = format!(
        "db1|ONLINE|writer({writer_vip})\ndb2|ONLINE|\ndb3|ONLINE|reader({r3})\ndb4|ONLINE|reader({r4})\n"
    );
    wait_for(&c, Duration::from_secs(10), "status file", |_| {
        (std::fs::read_to_string(&status_path).ok()? == expected_status).then_some(())
    });

    // §8 automatic failover: kill -9 db1's mysqld; time until the writer VIP is on db2.
    let killed = Instant::now();
    c.mysql_kill9("db1").expect("kill -9 db1");
    let detected = wait_for(&c, Duration::from_secs(40), "db1 HARD_OFFLINE", |_| {
        control(&c, &["show"])
            .0
            .contains(&format!("db1({}) master/HARD_OFFLINE", ip("db1")))
            .then(|| killed.elapsed())
    });
    let moved = wait_for(&c, Duration::from_secs(40), "writer VIP on db2", |_| {
        (has_ip(&c, "db2", writer_vip) && read_only(&c, "db2") == Some(false))
            .then(|| killed.elapsed())
    });
    println!(
        "figure: kill -9 of the active master's mysqld → HARD_OFFLINE seen after {:.1} s, writer VIP + read_only=0 on db2 after {:.1} s (trap_period 10 s; 2.2.1: 13.2-17.1 s outage)",
        detected.as_secs_f64(),
        moved.as_secs_f64()
    );
    let (show, _) = control(&c, &["show"]);
    assert!(
        show.contains(&format!(
            "db2({}) master/ONLINE. Roles: writer({writer_vip})",
            ip("db2")
        )),
        "{show}"
    );

    let show_has = |needle: String| control(&c, &["show"]).0.contains(&needle);

    // db1's server comes back: HARD_OFFLINE → AWAITING_RECOVERY → ONLINE (it was down for
    // less than 60 s, or auto_set_online 10); the writer stays on db2 (§8).
    let restarted = Instant::now();
    c.mysql_start("db1").expect("start db1");
    let back = wait_for(&c, Duration::from_secs(60), "db1 ONLINE again", |_| {
        show_has(format!("db1({}) master/ONLINE", ip("db1"))).then(|| restarted.elapsed())
    });
    assert!(show_has(format!(
        "db2({}) master/ONLINE. Roles: writer({writer_vip})",
        ip("db2")
    )));
    println!(
        "figure: db1 restarted → ONLINE again after {:.1} s",
        back.as_secs_f64()
    );

    // A hung server (SIGSTOP) on db3: no connection drops, so the periodic checks find it
    // (connect timeout, then the trap period); its reader moves to db4.
    let frozen = Instant::now();
    c.mysql_freeze("db3").expect("freeze db3");
    let hung = wait_for(&c, Duration::from_secs(40), "db3 HARD_OFFLINE", |_| {
        show_has(format!("db3({}) slave/HARD_OFFLINE", ip("db3"))).then(|| frozen.elapsed())
    });
    let mut both = reader_vips;
    both.sort();
    wait_for(&c, Duration::from_secs(20), "both readers on db4", |_| {
        show_has(format!(
            "db4({}) slave/ONLINE. Roles: reader({}), reader({})",
            ip("db4"),
            both[0],
            both[1]
        ))
        .then_some(())
    });
    wait_for(&c, Duration::from_secs(20), "reader VIPs on db4", |_| {
        (has_ip(&c, "db4", both[0]) && has_ip(&c, "db4", both[1])).then_some(())
    });
    println!(
        "figure: SIGSTOP of a slave's mysqld → HARD_OFFLINE after {:.1} s (check_period 5 s, timeout 2 s, trap_period 10 s)",
        hung.as_secs_f64()
    );
    c.mysql_thaw("db3").expect("thaw db3");
    wait_for(&c, Duration::from_secs(60), "db3 ONLINE again", |_| {
        show_has(format!("db3({}) slave/ONLINE", ip("db3"))).then_some(())
    });

    // A clean stop (SIGTERM) of db4's server: the server closes the monitor's connection,
    // so the trap period starts at once.
    let stopped = Instant::now();
    c.mysql_stop("db4").expect("stop db4");
    let seen = wait_for(&c, Duration::from_secs(40), "db4 HARD_OFFLINE", |_| {
        show_has(format!("db4({}) slave/HARD_OFFLINE", ip("db4"))).then(|| stopped.elapsed())
    });
    println!(
        "figure: clean stop of a slave's mysqld → HARD_OFFLINE after {:.1} s (trap_period 10 s)",
        seen.as_secs_f64()
    );

    // Shutdown on SIGTERM: exit 0, pid file removed, status file still there.
    let show_before = control(&c, &["show"]).0;
    c.stop_monitor()
        .expect("SIGTERM: the monitor exits with status 0");
    let pid_file = c
        .host_dir("monitor")
        .expect("monitor dir")
        .join("run/mysql-mmm-monitor.pid");
    assert!(!pid_file.exists(), "pid file left behind");
    let last_status = std::fs::read_to_string(&status_path).expect("status file");
    assert!(
        last_status.contains("\ndb4|HARD_OFFLINE|\n"),
        "{last_status}"
    );
    let (down, code) = control(&c, &["ping"]);
    assert_eq!(
        (down.as_str(), code),
        ("ERROR: Can't connect to monitor daemon!\n", Some(1))
    );

    // §3.14: a restarted monitor rebuilds the same picture from the status file and the
    // agents (states and roles unchanged, the writer VIP stays on db2).
    let restarted = Instant::now();
    c.start_monitor().expect("restarted monitor answers ping");
    wait_for(
        &c,
        Duration::from_secs(10),
        &format!("the same show after the restart as before:\n{show_before}"),
        |c| (control(c, &["show"]).0 == show_before).then_some(()),
    );
    println!(
        "figure: monitor restart → same states and roles after {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    assert!(has_ip(&c, "db2", writer_vip) && read_only(&c, "db2") == Some(false));
    assert!(!has_ip(&c, "db1", writer_vip));
    c.stop().expect("cluster stop");
}

/// DESIGN.md "Undelivered status is retried": the active master's link is cut, the writer
/// moves to db2; when the link heals, db1 must drop the VIP and writes at once (2.2.1 left
/// both masters writable for about 5 s). Both windows are printed.
#[test]
fn writer_link_cut_and_heal() {
    // Every host set online, writer on db1 with its VIP and read_only=0.
    let c = start(ClusterOptions::seed(42));
    let writer_vip = c.vip(188);
    let ip = |h: &str| c.ip(h).to_string();

    let cut = Instant::now();
    c.cut_link("db1").expect("cut db1");
    let moved = wait_for(&c, Duration::from_secs(60), "writer VIP on db2", |_| {
        (has_ip(&c, "db2", writer_vip) && read_only(&c, "db2") == Some(false))
            .then(|| cut.elapsed())
    });
    let (show, _) = control(&c, &["show"]);
    assert!(
        show.contains(&format!(
            "db1({}) master/HARD_OFFLINE. Roles: \n",
            ip("db1")
        )),
        "{show}"
    );
    // db1 cannot be told while it is cut off (no kill_host configured): it still writes.
    let isolated_writer = has_ip(&c, "db1", writer_vip) && read_only(&c, "db1") == Some(false);

    let healed = Instant::now();
    c.restore_link("db1").expect("restore db1");
    let fenced = wait_for(
        &c,
        Duration::from_secs(30),
        "db1 gives up the writer role",
        |_| {
            (!has_ip(&c, "db1", writer_vip) && read_only(&c, "db1") == Some(true))
                .then(|| healed.elapsed())
        },
    );
    println!(
        "figure: active master's link cut → writer VIP + read_only=0 on db2 after {:.1} s; db1 still writable while cut off: {isolated_writer}; after the heal db1 dropped VIP and writes after {:.2} s (2.2.1: about 5 s with both masters writable)",
        moved.as_secs_f64(),
        fenced.as_secs_f64()
    );
    // The behaviour (db1 fenced after the heal) is the wait above (30 s); the time is a
    // figure, not asserted: it depends on the machine's load.
    c.stop().expect("cluster stop");
}
