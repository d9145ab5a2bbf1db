//! The seed's walkthrough end to end (issue 6), on one shared [`Cluster`]: real
//! `mmm_mond`, `mmm_agentd` on db1..db4 and `mmm_control` on the testbed's five hosts with
//! four replicating MariaDB servers, configured as in the seed's Step 2 with fast checks.
//!
//! Implements, in the seed's order: Step 2 9) `show` and `checks all` (whole outputs, spec
//! §5.3, transcripts-2.2.1.md §1), `move_role writer db2` / `move_role writer db1` with
//! rows written through the writer VIP before, during and after (spec §8 planned
//! switchover); Step 3 1) master down and back (spec §8 automatic failover, §3.6: back by
//! the "down for only N seconds" rule, the writer stays on db2), 2) slave down for over 60 s
//! and back (readers move to the other slave and are rebalanced; back by
//! `auto_set_online`), 3) the client test through the writer VIP; then the admin commands of
//! §5.3 with their exact outputs (set_offline/set_online, modes, PASSIVE and set_ip, errors,
//! help, ping) and the daemons' clean stop.
//!
//! Needs root and the binaries: `cargo build --bins` first; then
//! `cargo test -p mmm-tests --test walkthrough -- --nocapture`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mmm_tests::cluster::{
    BringOnline, Cluster, ClusterOptions, Show, CONTROL_HELP as HELP, DB_HOSTS,
};

/// Generous bound for anything the monitor and agents do (a loaded 2-core machine).
const LIMIT: Duration = Duration::from_secs(60);

/// The whole `mmm_control show` output for hosts `(name, state, roles)` (roles already in
/// the monitor's sorted order), with the PASSIVE block when `passive_cause` is given.
fn show_text(
    c: &Cluster,
    passive_cause: Option<&str>,
    hosts: &[(&str, &str, Vec<String>)],
) -> String {
    let mut s = String::new();
    if let Some(cause) = passive_cause {
        s.push_str("# --- Monitor is in PASSIVE MODE ---\n");
        s.push_str(&format!("# Cause: {cause}\n"));
    }
    for (name, state, roles) in hosts {
        let mode = if *name == "db1" || *name == "db2" {
            "master"
        } else {
            "slave"
        };
        s.push_str(&format!(
            "  {name}({}) {mode}/{state}. Roles: {}\n",
            c.ip(name),
            roles.join(", ")
        ));
    }
    s.push('\n');
    s
}

/// Runs `mmm_control ARGS…`, asserting its exit status: 2 when the monitor answered that
/// the command failed (`ERROR:`, `Error:`, `Invalid command`; issue 17), else 0; returns
/// stdout.
fn ctl(c: &Cluster, args: &[&str]) -> String {
    let (out, code) = c
        .control(args)
        .unwrap_or_else(|e| panic!("mmm_control {args:?}: {e}"));
    let failed = ["ERROR:", "Error:", "Invalid command"]
        .iter()
        .any(|p| out.starts_with(p));
    assert_eq!(
        code,
        Some(if failed { 2 } else { 0 }),
        "mmm_control {args:?} exit status; output {out:?}"
    );
    out
}

/// Asserts the whole output of `mmm_control ARGS…` (the monitor's reply plus the client's
/// newline).
fn expect_reply(c: &Cluster, args: &[&str], reply: &str) {
    let out = ctl(c, args);
    assert_eq!(out, format!("{reply}\n"), "mmm_control {}", args.join(" "));
}

/// Waits until `show` is exactly `text`.
fn wait_show_exact(c: &Cluster, what: &str, text: &str) {
    let r = c.wait_for(what, LIMIT, |c| {
        let (out, _) = c.control(&["show"]).ok()?;
        (out == text).then_some(())
    });
    if let Err(e) = r {
        panic!("{e}\nexpected:\n{text}");
    }
}

fn wait(c: &Cluster, what: &str, f: impl FnMut(&Cluster) -> Option<()>) {
    if let Err(e) = c.wait_for(what, LIMIT, f) {
        panic!("{e}");
    }
}

fn wait_show(c: &Cluster, what: &str, f: impl FnMut(&Show) -> bool) -> Show {
    c.wait_show(what, LIMIT, f)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn role(name: &str, ip: std::net::Ipv4Addr) -> String {
    format!("{name}({ip})")
}

/// Waits until the writer VIP is on `host` only and `read_only` is 0 there; with
/// `other_denied`, also until the other master is `read_only=1` (the agent denied writes
/// when the writer role left it).
fn wait_writer_on(c: &Cluster, host: &str, other_denied: bool) {
    let other = if host == "db1" { "db2" } else { "db1" };
    wait(c, &format!("writer VIP and read_only=0 on {host}"), |c| {
        let ok = c.vip_holders(c.vip(188)).ok()? == [host]
            && c.read_only(host).ok()? == Some(false)
            && (!other_denied || c.read_only(other).ok()? == Some(true));
        ok.then_some(())
    });
}

/// The ids in `walk.t` on `host` (root over the socket).
fn ids_on(c: &Cluster, host: &str) -> Option<BTreeSet<u64>> {
    let rows = c.query(host, "SELECT id FROM walk.t").ok()?;
    Some(
        rows.iter()
            .filter_map(|r| r.at(0).and_then(|v| v.parse().ok()))
            .collect(),
    )
}

/// One INSERT through the writer VIP from the monitor host as `app`; true when the client
/// reported success.
fn write_row(c: &Cluster, id: u64, phase: &str) -> bool {
    let q = format!("INSERT INTO walk.t (id, phase) VALUES ({id}, '{phase}')");
    c.sql_from("monitor", c.vip(188), "app", &q, 2)
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The lines of `checks all`: per host (configuration order), per check, host padded to the
/// longest name, check to 11, a `yyyy/MM/dd HH:mm:ss` stamp, then `ok_msg`.
fn assert_checks_all(out: &str) {
    let mut lines = out.split('\n');
    for host in DB_HOSTS {
        for (check, msg) in [
            ("ping", "OK"),
            ("mysql", "OK"),
            ("rep_threads", "OK"),
            ("rep_backlog", "OK: Backlog is null"),
        ] {
            let line = lines.next().unwrap_or_default();
            let prefix = format!("{host}  {check:<11}  [last change: ");
            let suffix = format!("]  {msg}");
            let stamp = line
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&suffix))
                .unwrap_or_else(|| {
                    panic!("checks all: line {line:?}, expected {prefix}…{suffix}\n{out}")
                });
            assert!(is_stamp(stamp), "checks all: stamp {stamp:?} in {line:?}");
        }
    }
    assert_eq!(
        lines.next(),
        Some(""),
        "checks all: blank line after the 16 lines\n{out}"
    );
    assert_eq!(
        lines.next(),
        Some(""),
        "checks all: output ends with the client's newline\n{out}"
    );
    assert_eq!(lines.next(), None, "checks all: nothing more\n{out}");
}

/// `yyyy/MM/dd HH:mm:ss`, digit by digit.
fn is_stamp(s: &str) -> bool {
    let shape = "dddd/dd/dd dd:dd:dd";
    s.len() == shape.len()
        && s.chars().zip(shape.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            other => c == other,
        })
}

#[test]
fn seed_walkthrough() {
    let t0 = Instant::now();
    let c =
        Cluster::start(ClusterOptions::fast(40)).unwrap_or_else(|e| panic!("cluster start: {e}"));
    println!(
        "figure: cluster healthy {:.1} s after start",
        t0.elapsed().as_secs_f64()
    );
    let writer = role("writer", c.vip(188));
    let r198 = role("reader", c.vip(198));
    let r199 = role("reader", c.vip(199));

    // ---- Step 2 9): show (whole output) and checks all. set_online ran db3 before db4.
    let healthy = |c: &Cluster, w: &str, readers: (&str, &str)| {
        show_text(
            c,
            None,
            &[
                (
                    "db1",
                    "ONLINE",
                    if w == "db1" {
                        vec![writer.clone()]
                    } else {
                        vec![]
                    },
                ),
                (
                    "db2",
                    "ONLINE",
                    if w == "db2" {
                        vec![writer.clone()]
                    } else {
                        vec![]
                    },
                ),
                ("db3", "ONLINE", vec![readers.0.to_string()]),
                ("db4", "ONLINE", vec![readers.1.to_string()]),
            ],
        )
    };
    let show = ctl(&c, &["show"]);
    let a = healthy(&c, "db1", (&r198, &r199));
    let b = healthy(&c, "db1", (&r199, &r198));
    assert!(show == a || show == b, "show:\n{show}\nexpected:\n{a}");
    let (db3_reader, db4_reader) = if show == a {
        (r198.clone(), r199.clone())
    } else {
        (r199.clone(), r198.clone())
    };
    wait(&c, "all checks OK", |c| {
        let out = c.control(&["checks", "all"]).ok()?.0;
        (out.matches("]  OK").count() == 16).then_some(())
    });
    assert_checks_all(&ctl(&c, &["checks", "all"]));

    // ---- move_role writer db2, then db1, with writes through the writer VIP.
    let mut id = 0u64;
    assert_eq!(
        c.sql_from(
            "monitor",
            c.vip(188),
            "app",
            "CREATE DATABASE walk; CREATE TABLE walk.t (id INT PRIMARY KEY, phase VARCHAR(16)) ENGINE=InnoDB",
            5
        )
        .map(|o| o.status.success())
        .ok(),
        Some(true),
        "app creates walk.t through the writer VIP"
    );
    let committed = Mutex::new(BTreeSet::new());
    for _ in 0..5 {
        id += 1;
        assert!(
            write_row(&c, id, "before"),
            "write {id} before the switchover"
        );
        committed.lock().unwrap().insert(id);
    }
    let stop = AtomicBool::new(false);
    let t_move = Instant::now();
    let (attempts, refused) = std::thread::scope(|s| {
        let writer_thread = s.spawn(|| {
            let (mut attempts, mut refused) = (0u32, 0u32);
            let mut n = 1000u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                attempts += 1;
                if write_row(&c, n, "during") {
                    committed.lock().unwrap().insert(n);
                } else {
                    refused += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            (attempts, refused)
        });
        // Each phase (on db1, on db2, back on db1) sees at least 3 committed writes.
        let during = |k: usize| {
            let limit = Instant::now() + LIMIT;
            while committed
                .lock()
                .unwrap()
                .iter()
                .filter(|n| **n > 1000)
                .count()
                < k
            {
                assert!(
                    Instant::now() < limit,
                    "fewer than {k} writes committed during the switchovers"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        during(3);
        expect_reply(
            &c,
            &["move_role", "writer", "db2"],
            "OK: Role 'writer' has been moved from 'db1' to 'db2'. Now you can wait some time and check new roles info!",
        );
        wait_show_exact(
            &c,
            "writer on db2 in show",
            &healthy(&c, "db2", (&db3_reader, &db4_reader)),
        );
        wait_writer_on(&c, "db2", true);
        let moved = t_move.elapsed();
        let so_far = committed
            .lock()
            .unwrap()
            .iter()
            .filter(|n| **n > 1000)
            .count();
        during(so_far + 3);
        let t_back = Instant::now();
        expect_reply(
            &c,
            &["move_role", "writer", "db1"],
            "OK: Role 'writer' has been moved from 'db2' to 'db1'. Now you can wait some time and check new roles info!",
        );
        wait_show_exact(
            &c,
            "writer back on db1 in show",
            &healthy(&c, "db1", (&db3_reader, &db4_reader)),
        );
        wait_writer_on(&c, "db1", true);
        println!(
            "figure: move_role writer db2 → VIP + read_only=0 on db2 (db1 read_only=1) after {:.2} s; move back to db1 {:.2} s",
            moved.as_secs_f64(),
            t_back.elapsed().as_secs_f64()
        );
        let so_far = committed
            .lock()
            .unwrap()
            .iter()
            .filter(|n| **n > 1000)
            .count();
        during(so_far + 3);
        stop.store(true, Ordering::SeqCst);
        writer_thread.join().unwrap()
    });
    for _ in 0..5 {
        id += 1;
        assert!(
            write_row(&c, id, "after"),
            "write {id} after the switchover"
        );
        committed.lock().unwrap().insert(id);
    }
    let committed = committed.into_inner().unwrap();
    println!(
        "figure: {attempts} writes attempted during the two switchovers, {} refused or failed, {} committed in all",
        refused,
        committed.len()
    );
    assert!(
        committed.iter().any(|n| *n > 1000),
        "no write succeeded during the switchovers"
    );
    for h in DB_HOSTS {
        wait(&c, &format!("every committed row on {h}"), |c| {
            let ids = ids_on(c, h)?;
            committed.is_subset(&ids).then_some(())
        });
    }

    // ---- Step 3 1): master down (the seed stops mysqld on db1).
    let stopped = Instant::now();
    c.mysql_stop("db1").expect("stop db1's server");
    let s = wait_show(&c, "db1 HARD_OFFLINE, writer on db2", |s| {
        s.state("db1") == "HARD_OFFLINE" && s.roles("db2") == [writer.clone()]
    });
    assert!(s.roles("db1").is_empty(), "{}", s.raw);
    // db1's server is down: nobody can set its read_only.
    wait_writer_on(&c, "db2", false);
    println!(
        "figure: clean stop of db1's server → writer VIP + read_only=0 on db2 after {:.1} s (check_period 0.5, trap_period 2)",
        stopped.elapsed().as_secs_f64()
    );
    let restarted = Instant::now();
    c.mysql_start("db1").expect("start db1's server");
    wait_show_exact(
        &c,
        "db1 ONLINE again, writer stays on db2",
        &healthy(&c, "db2", (&db3_reader, &db4_reader)),
    );
    println!(
        "figure: db1's server restarted → db1 ONLINE after {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    let log = c.monitor_log().expect("monitor log");
    let seq = [
        "FATAL State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)",
        "FATAL State of host 'db1' changed from HARD_OFFLINE to AWAITING_RECOVERY",
        "FATAL State of host 'db1' changed from AWAITING_RECOVERY to ONLINE because",
    ];
    let mut at = 0;
    for needle in seq {
        let found = log.get(at..).and_then(|rest| rest.find(needle));
        let Some(pos) = found else {
            panic!("monitor log lacks {needle:?} (in order) after byte {at}:\n{log}");
        };
        at += pos + needle.len();
    }
    wait_writer_on(&c, "db2", false);
    // As in 2.2.1 the agent only changes read_only when the writer role comes or goes, so
    // a master restarted without the role has whatever its my.cnf says (the testbed's db1:
    // read_only=0). docs/operations.md tells admins to put read_only=1 in every my.cnf.
    println!(
        "observed: db1 restarted without the writer role has read_only={:?} (its my.cnf)",
        c.read_only("db1").ok().flatten()
    );

    // ---- Step 3 2): slave down (db3) and back. It stays down for over 60 s, so it does not
    // come back by the "down for only N seconds" rule (as db1 did) but by auto_set_online.
    let db3_stopped = Instant::now();
    c.mysql_stop("db3").expect("stop db3's server");
    let both = {
        let mut v = vec![r198.clone(), r199.clone()];
        v.sort();
        v
    };
    wait_show(&c, "db3 HARD_OFFLINE, both readers on db4", |s| {
        s.state("db3") == "HARD_OFFLINE" && s.roles("db3").is_empty() && s.roles("db4") == both
    });
    wait(&c, "both reader VIPs on db4", |c| {
        let ok = c.vip_holders(c.vip(198)).ok()? == ["db4"]
            && c.vip_holders(c.vip(199)).ok()? == ["db4"];
        ok.then_some(())
    });
    // While db3 is down: the client test (Step 3 3), the seed does it last; the rows reach
    // db3 once it is back) and the refusals that depend on a host's state.
    let out = c
        .sql_from(
            "monitor",
            c.vip(188),
            "testdba",
            "create database client_test",
            5,
        )
        .expect("mariadb client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    expect_reply(
        &c,
        &["move_role", "writer", "db3"],
        "ERROR: Can't move role to host with state HARD_OFFLINE.",
    );
    expect_reply(
        &c,
        &["set_online", "db3"],
        "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment. It can't be switched to ONLINE.",
    );
    expect_reply(
        &c,
        &["set_offline", "db3"],
        "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment. It can't be switched to ADMIN_OFFLINE.",
    );
    // The 60 s of the uptime rule are the point of this step, not a guess: wait them out.
    let down_for = Duration::from_secs(62);
    if let Some(rest) = down_for.checked_sub(db3_stopped.elapsed()) {
        std::thread::sleep(rest);
    }
    let db3_started = Instant::now();
    c.mysql_start("db3").expect("start db3's server");
    let mut seen_awaiting = false;
    let s = wait_show(&c, "db3 ONLINE with one reader again", |s| {
        seen_awaiting |= s.state("db3") == "AWAITING_RECOVERY" && s.roles("db3").is_empty();
        s.state("db3") == "ONLINE" && s.roles("db3").len() == 1 && s.roles("db4").len() == 1
    });
    let (db3_reader, db4_reader) = (s.roles("db3").remove(0), s.roles("db4").remove(0));
    assert_eq!(
        ctl(&c, &["show"]),
        healthy(&c, "db2", (&db3_reader, &db4_reader))
    );
    // auto_set_online 3: the state is visible for 3 s, many polls.
    assert!(
        seen_awaiting,
        "show never had db3 AWAITING_RECOVERY while it recovered"
    );
    println!(
        "figure: db3 down {:.0} s, restarted → AWAITING_RECOVERY → ONLINE (auto_set_online 3) after {:.1} s",
        down_for.as_secs_f64(),
        db3_started.elapsed().as_secs_f64()
    );
    let log = c.monitor_log().expect("monitor log");
    let from = log
        .rfind("FATAL State of host 'db3' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)")
        .unwrap_or_else(|| panic!("no HARD_OFFLINE line for db3:\n{log}"));
    let tail = log.get(from..).unwrap_or_default();
    let awaiting = tail
        .find("FATAL State of host 'db3' changed from HARD_OFFLINE to AWAITING_RECOVERY\n")
        .unwrap_or_else(|| panic!("no AWAITING_RECOVERY line for db3:\n{tail}"));
    let auto = tail
        .find("FATAL State of host 'db3' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online(3 seconds). It was in state AWAITING_RECOVERY for ")
        .unwrap_or_else(|| panic!("db3 not back by auto_set_online:\n{tail}"));
    assert!(awaiting < auto, "{tail}");
    wait(&c, "one reader VIP on each slave", |c| {
        let mut h = c.vip_holders(c.vip(198)).ok()?;
        h.extend(c.vip_holders(c.vip(199)).ok()?);
        h.sort();
        (h == ["db3", "db4"]).then_some(())
    });

    // ---- Step 3 3): the database the client created through the writer VIP (on db2) is
    // on all four servers, db3 included.
    for h in DB_HOSTS {
        wait(&c, &format!("client_test on {h}"), |c| {
            let rows = c.query(h, "SHOW DATABASES").ok()?;
            rows.iter()
                .any(|r| r.at(0) == Some("client_test"))
                .then_some(())
        });
    }

    // ---- §5.3: set_offline / set_online.
    expect_reply(
        &c,
        &["set_offline", "db3"],
        "OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!",
    );
    wait_show_exact(
        &c,
        "db3 ADMIN_OFFLINE, both readers on db4",
        &show_text(
            &c,
            None,
            &[
                ("db1", "ONLINE", vec![]),
                ("db2", "ONLINE", vec![writer.clone()]),
                ("db3", "ADMIN_OFFLINE", vec![]),
                ("db4", "ONLINE", both.clone()),
            ],
        ),
    );
    expect_reply(
        &c,
        &["set_offline", "db3"],
        "OK: This host is already ADMIN_OFFLINE. Skipping command.",
    );
    expect_reply(
        &c,
        &["set_online", "db3"],
        "OK: State of 'db3' changed to ONLINE. Now you can wait some time and check its new roles!",
    );
    let s = wait_show(&c, "db3 ONLINE with one reader", |s| {
        s.state("db3") == "ONLINE" && s.roles("db3").len() == 1 && s.roles("db4").len() == 1
    });
    let (db3_reader, db4_reader) = (s.roles("db3").remove(0), s.roles("db4").remove(0));
    expect_reply(
        &c,
        &["set_online", "db3"],
        "OK: This host is already ONLINE. Skipping command.",
    );
    expect_reply(
        &c,
        &["set_offline", "db9"],
        "ERROR: Unknown host name 'db9'!",
    );
    expect_reply(
        &c,
        &["set_online", "db9"],
        "ERROR: Unknown host name 'db9'!",
    );

    // ---- move_role errors and no-ops.
    expect_reply(
        &c,
        &["move_role", "writer", "db2"],
        "OK: Role is on 'db2' already. Skipping command.",
    );
    expect_reply(
        &c,
        &["move_role", "writer", "db3"],
        "ERROR: Host 'db3' can't handle role 'writer'. Only following hosts could: db1, db2",
    );
    expect_reply(
        &c,
        &["move_role", "writer", "db9"],
        "ERROR: Unknown host name 'db9'!",
    );
    expect_reply(
        &c,
        &["move_role", "bogus", "db1"],
        "ERROR: Unknown role name 'bogus'!",
    );
    expect_reply(
        &c,
        &["move_role", "--force", "writer", "db1"],
        "ERROR: Can't force move of role to host with state ONLINE.",
    );
    expect_reply(
        &c,
        &["move_role", "reader", "db1"],
        "OK: Balanced role reader has been removed from host 'db1'. Now you can wait some time and check new roles info!",
    );
    assert_eq!(
        ctl(&c, &["move_role", "writer"]),
        format!("Invalid command 'move_role writer'\n\n{HELP}\n")
    );
    assert_eq!(
        ctl(&c, &["bogus_command"]),
        format!("Invalid command 'bogus_command'\n\n{HELP}\n")
    );
    assert_eq!(
        ctl(&c, &["set_online"]),
        format!("Invalid command 'set_online'\n\n{HELP}\n")
    );

    // ---- checks variants, help, ping.
    let one = ctl(&c, &["checks", "db1", "mysql"]);
    let stamp = one
        .strip_prefix("db1  mysql  [last change: ")
        .and_then(|r| r.strip_suffix("]  OK\n"))
        .unwrap_or_else(|| panic!("checks db1 mysql: {one:?}"));
    assert!(is_stamp(stamp), "{one:?}");
    let db1 = ctl(&c, &["checks", "db1"]);
    assert_eq!(db1.lines().filter(|l| !l.is_empty()).count(), 4, "{db1}");
    assert!(
        db1.starts_with("db1  ping         [last change: ")
            && db1.ends_with("]  OK: Backlog is null\n\n"),
        "{db1:?}"
    );
    let backlog = ctl(&c, &["checks", "all", "rep_backlog"]);
    assert!(backlog.ends_with("\n\n"), "{backlog:?}");
    let rows: Vec<&str> = backlog.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 4, "{backlog}");
    for (line, host) in rows.iter().zip(DB_HOSTS) {
        let stamp = line
            .strip_prefix(&format!("{host}  rep_backlog  [last change: "))
            .and_then(|r| r.strip_suffix("]  OK: Backlog is null"))
            .unwrap_or_else(|| panic!("checks all rep_backlog: {line:?}"));
        assert!(is_stamp(stamp), "{line:?}");
    }
    expect_reply(&c, &["checks", "db9"], "ERROR: Unknown host name 'db9'!");
    expect_reply(
        &c,
        &["checks", "all", "bogus"],
        "ERROR: Unknown check 'bogus'!",
    );
    assert_eq!(ctl(&c, &["help"]), format!("{HELP}\n"));
    expect_reply(&c, &["ping"], "OK: Pinged successfully!");

    // ---- modes.
    expect_reply(&c, &["mode"], "ACTIVE");
    expect_reply(
        &c,
        &["set_ip", &c.vip(188).to_string(), "db1"],
        "ERROR: This command is only allowed in passive mode",
    );
    expect_reply(&c, &["set_active"], "OK: Already in active mode.");
    expect_reply(&c, &["set_manual"], "OK: Switched into manual mode.");
    expect_reply(&c, &["mode"], "MANUAL");
    expect_reply(&c, &["set_manual"], "OK: Already in manual mode.");
    expect_reply(&c, &["set_active"], "OK: Switched into active mode.");
    expect_reply(&c, &["mode"], "ACTIVE");

    // ---- PASSIVE: the show block, set_ip, nothing applied until set_active.
    let s = wait_show(&c, "readers settled after move_role reader db1", |s| {
        s.roles("db3").len() == 1 && s.roles("db4").len() == 1
    });
    let (db3_reader, db4_reader) = {
        let _ = (db3_reader, db4_reader);
        (s.roles("db3").remove(0), s.roles("db4").remove(0))
    };
    expect_reply(&c, &["set_passive"], "OK: Switched into passive mode.");
    expect_reply(&c, &["mode"], "PASSIVE");
    expect_reply(&c, &["set_passive"], "OK: Already in passive mode.");
    let cause = Some("Admin switched to passive mode.");
    assert_eq!(
        ctl(&c, &["show"]),
        show_text(
            &c,
            cause,
            &[
                ("db1", "ONLINE", vec![]),
                ("db2", "ONLINE", vec![writer.clone()]),
                ("db3", "ONLINE", vec![db3_reader.clone()]),
                ("db4", "ONLINE", vec![db4_reader.clone()]),
            ],
        )
    );
    expect_reply(
        &c,
        &["move_role", "writer", "db1"],
        "ERROR: This command is not allowed in passive mode",
    );
    let w = c.vip(188).to_string();
    expect_reply(
        &c,
        &["set_ip", &w, "db1"],
        &format!("OK: Set role '{writer}' to host 'db1'."),
    );
    expect_reply(
        &c,
        &["set_ip", &w, "db3"],
        "ERROR: Host 'db3' can't handle role 'writer'. Following hosts could: db1, db2",
    );
    let bogus_ip = c.vip(1).to_string();
    expect_reply(
        &c,
        &["set_ip", &bogus_ip, "db1"],
        &format!("ERROR: Unknown ip '{bogus_ip}'!"),
    );
    expect_reply(
        &c,
        &["set_ip", &w, "db9"],
        "ERROR: Unknown host name 'db9'!",
    );
    // Move db3's reader to db4 (the transcript's `set_ip 198.18.2.198 db4`).
    let db3_ip = db3_reader
        .strip_prefix("reader(")
        .and_then(|r| r.strip_suffix(')'))
        .expect("reader ip")
        .to_string();
    expect_reply(
        &c,
        &["set_ip", &db3_ip, "db4"],
        &format!("OK: Set role '{db3_reader}' to host 'db4'."),
    );
    assert_eq!(
        ctl(&c, &["show"]),
        show_text(
            &c,
            cause,
            &[
                ("db1", "ONLINE", vec![writer.clone()]),
                ("db2", "ONLINE", vec![]),
                ("db3", "ONLINE", vec![]),
                ("db4", "ONLINE", both.clone()),
            ],
        )
    );
    // Passive: nothing reached the agents.
    assert_eq!(c.vip_holders(c.vip(188)).expect("ip addr"), ["db2"]);
    assert_eq!(c.read_only("db2").expect("read_only"), Some(false));
    assert_eq!(c.vip_holders(c.vip(198)).expect("ip addr").len(), 1);
    assert_eq!(c.vip_holders(c.vip(199)).expect("ip addr").len(), 1);
    // Leaving PASSIVE applies the table: writer to db1; the idle db3 gets a reader back.
    let t_active = Instant::now();
    expect_reply(&c, &["set_active"], "OK: Switched into active mode.");
    wait_writer_on(&c, "db1", true);
    println!(
        "figure: set_active after set_ip → writer VIP + read_only=0 on db1 after {:.2} s",
        t_active.elapsed().as_secs_f64()
    );
    let s = wait_show(&c, "balanced again after set_active", |s| {
        s.roles("db1") == [writer.clone()] && s.roles("db3").len() == 1 && s.roles("db4").len() == 1
    });
    let (db3_reader, db4_reader) = (s.roles("db3").remove(0), s.roles("db4").remove(0));
    assert_eq!(
        ctl(&c, &["show"]),
        healthy(&c, "db1", (&db3_reader, &db4_reader))
    );
    wait(&c, "one reader VIP on each slave", |c| {
        let mut h = c.vip_holders(c.vip(198)).ok()?;
        h.extend(c.vip_holders(c.vip(199)).ok()?);
        h.sort();
        (h == ["db3", "db4"]).then_some(())
    });
    let id_final = id + 1;
    assert!(
        write_row(&c, id_final, "final"),
        "a write through the writer VIP on db1"
    );
    for h in DB_HOSTS {
        wait(&c, &format!("the final row on {h}"), |c| {
            ids_on(c, h)?.contains(&id_final).then_some(())
        });
    }

    // ---- clean stop: SIGTERM, every daemon exits 0, testbed removed.
    c.stop().unwrap_or_else(|e| panic!("stop: {e}"));
    println!(
        "figure: whole walkthrough {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The harness itself on a second cluster: its configuration overrides as the monitor reads
/// them (`mmm_mond --check-config`), a fresh cluster brought online by
/// `auto_set_online` alone (no admin), a monitor restart (roles kept: status file and agents
/// agree), an agent restart (the monitor re-sends its roles), an agent stopped (the `show`
/// warning) and started again.
#[test]
fn auto_online_and_daemon_restarts() {
    let mut opts = ClusterOptions::fast(42);
    opts.bring_online = BringOnline::AutoSetOnline;
    opts.flap_duration = Some(600.0);
    opts.monitor_directives = vec!["ping_interval       0.5".into()];
    opts.common_directives = vec!["status_retry_interval 0.25".into()];
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"));
    // The overrides are in the files the daemons read, and the monitor reads them as meant.
    let mond = mmm_tests::workspace_binary("mmm_mond").expect("mmm_mond");
    let out = c
        .exec("monitor", &[&mond.to_string_lossy(), "--check-config"])
        .expect("mmm_mond --check-config");
    let effective = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{effective}");
    // Whole lines of the effective configuration (TOML, one table per section).
    let section = |name: &str| -> Vec<String> {
        effective
            .split("\n\n")
            .find(|block| block.starts_with(&format!("[{name}]\n")))
            .unwrap_or_else(|| panic!("no [{name}] in:\n{effective}"))
            .lines()
            .map(str::to_string)
            .collect()
    };
    for check in ["ping", "mysql", "rep_threads", "rep_backlog"] {
        let lines = section(&format!("checks.{check}"));
        for want in ["check_period = 0.5", "trap_period = 2", "timeout = 1"] {
            assert!(
                lines.iter().any(|l| l == want),
                "{check}: {want}\n{effective}"
            );
        }
    }
    let monitor = section("monitor");
    for want in [
        "auto_set_online = 3",
        "flap_count = 0",
        "flap_duration = 600",
        "ping_interval = 0.5",
    ] {
        assert!(monitor.iter().any(|l| l == want), "{want}\n{effective}");
    }
    assert!(
        section("ext")
            .iter()
            .any(|l| l == "status_retry_interval = 0.25"),
        "{effective}"
    );
    let log = c.monitor_log().expect("monitor log");
    for h in DB_HOSTS {
        let line = format!(
            "FATAL State of host '{h}' changed from AWAITING_RECOVERY to ONLINE because of auto_set_online(3 seconds). It was in state AWAITING_RECOVERY for "
        );
        assert!(
            log.contains(&line),
            "no auto_set_online line for {h}:\n{log}"
        );
        assert!(
            !log.contains(&format!("Admin changed state of '{h}'")),
            "{log}"
        );
    }
    // Usually db1 (both masters come online in the same round, db1 first in the role).
    let writer_host = c
        .wait_healthy(LIMIT)
        .unwrap_or_else(|e| panic!("healthy: {e}"));
    let before = ctl(&c, &["show"]);
    let vips = |c: &Cluster| [188, 198, 199].map(|o| c.vip_holders(c.vip(o)).unwrap_or_default());
    let vips_before = vips(&c);

    let t = Instant::now();
    c.restart_monitor()
        .unwrap_or_else(|e| panic!("restart monitor: {e}"));
    wait_show_exact(&c, "the same show after a monitor restart", &before);
    assert_eq!(vips(&c), vips_before, "VIPs after a monitor restart");
    assert!(c.read_only(&writer_host).expect("read_only") == Some(false));
    println!(
        "figure: monitor restart → same roles in show after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    c.restart_agent("db3")
        .unwrap_or_else(|e| panic!("restart agent: {e}"));
    wait_show_exact(&c, "the same show after an agent restart", &before);
    wait(&c, "VIPs unchanged after the agent restart", |c| {
        (vips(c) == vips_before).then_some(())
    });

    c.stop_agent("db4")
        .unwrap_or_else(|e| panic!("stop agent: {e}"));
    wait_show(&c, "the warning for db4's agent", |s| {
        s.comments
            .iter()
            .any(|l| l == "Warning: agent on host db4 is not reachable")
    });
    c.start_agent("db4")
        .unwrap_or_else(|e| panic!("start agent: {e}"));
    wait_show_exact(&c, "no warning once db4's agent is back", &before);
    c.stop().unwrap_or_else(|e| panic!("stop: {e}"));
}
