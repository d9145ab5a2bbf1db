//! Monitor high availability on etcd (issue 16, docs/ha.md), on the testbed: two
//! `mmm_mond` (`monitor`, `mon2`) and a real three-member etcd cluster (Debian's
//! etcd-server) in namespaces of their own, four agents with `agent_lease`, the write
//! load through the writer VIP and the fault matrix's invariants (never two writable
//! servers behind the VIP, every acknowledged row on every server at the end). One
//! sequence, as outages come: the leader killed -9; a monitor restarted (it follows);
//! the leader's link cut and healed; the leader and the writer's mysqld dying together;
//! an etcd member down; etcd's quorum lost and back. Subnet 220. Needs root, etcd, and
//! the binaries (`cargo build -p mmm-mon -p mmm-agent -p mmm-control`).
//!
//! `bench_ha_takeover` (ignored; subnet 221, release binaries through `MMM_BIN_DIR`)
//! prints the figures of docs/benchmarks.md: takeover after the leader's kill -9 over
//! `MMM_BENCH_HA_RUNS` runs (default 10), the write gap around it, the monitors' RSS/CPU.

mod scenarios;

use std::time::{Duration, Instant};

use mmm_tests::cluster::{HaOptions, DB_HOSTS};
use mmm_tests::figures::{measure, median_range};
use scenarios::{fast, Cluster, Kind};

/// `leader_lease` of the test (etcd's shortest useful TTL is 2 s).
const LEADER_LEASE: u32 = 2;
/// `agent_lease`: at least leader_lease + 2 (config rule); the takeover fits well inside.
const AGENT_LEASE: f64 = 5.0;
/// The status key of the default prefix (no cluster name).
const STATUS_KEY: &str = "/mysql-mmm/default/status";

/// The HA line of `show` on `host` (its first line), or the failure.
fn ha_line(c: &Cluster, host: &str) -> String {
    match c.control_on(host, &["show"]) {
        Ok((out, _)) => out.lines().next().unwrap_or("").to_string(),
        Err(e) => format!("(mmm_control on {host}: {e})"),
    }
}

/// The term in an HA line: `… (term N)`.
fn term_of(line: &str) -> Option<u64> {
    let rest = line.rsplit_once("(term ")?.1;
    rest.trim_end_matches(')').parse().ok()
}

/// The monitor on `host` leads: its term.
fn leads(c: &Cluster, host: &str) -> Option<u64> {
    let l = ha_line(c, host);
    l.contains(" leads (term ").then(|| term_of(&l)).flatten()
}

/// Waits until `host` leads with a term above `above`; the time it took and the term.
fn wait_leads(c: &Cluster, host: &str, above: u64, from: Instant) -> (Duration, u64) {
    c.wait_until(
        Duration::from_secs(30),
        &format!("{host} to lead"),
        |c| match leads(c, host) {
            Some(t) if t > above => Some((from.elapsed(), t)),
            _ => None,
        },
    )
}

/// The highest term each agent obeyed (`<pid_path>.term` on its host).
fn agent_terms(c: &Cluster) -> Vec<(String, Option<u64>)> {
    DB_HOSTS
        .iter()
        .map(|h| {
            let path = c
                .host_dir(h)
                .expect("host dir")
                .join("run/mysql-mmm-agent.pid.term");
            let t = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            (h.to_string(), t)
        })
        .collect()
}

/// Waits until every agent obeys `term` (the new leader reached them all).
fn wait_agents_obey(c: &Cluster, term: u64) {
    c.wait_until(
        Duration::from_secs(20),
        &format!("agents on term {term}"),
        |c| {
            agent_terms(c)
                .iter()
                .all(|(_, t)| *t == Some(term))
                .then_some(())
        },
    );
}

/// The writer as `show` on monitor `host` has it.
fn writer_seen_by(c: &Cluster, host: &str) -> Option<String> {
    let (out, _) = c.control_on(host, &["show"]).ok()?;
    mmm_tests::cluster::Show::parse(&out)
        .ok()?
        .role_holders("writer")
        .into_iter()
        .next()
}

/// `/metrics` of the monitor on `host` (its HTTP listener on the host's loopback).
fn metrics_on(c: &Cluster, host: &str) -> String {
    c.testbed()
        .run_in_netns(host, || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            agent
                .get("http://127.0.0.1:9990/metrics")
                .call()
                .and_then(|mut r| r.body_mut().read_to_string())
                .unwrap_or_else(|e| format!("GET /metrics on {host}: {e}"))
        })
        .unwrap_or_else(|e| format!("{e}"))
}

/// The value of a metric line `name value`.
fn metric(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
}

/// The testbed's etcd cluster.
fn etcd(c: &Cluster) -> &mmm_tests::etcd::Etcd {
    c.etcd().expect("etcd")
}

/// Agent log lines refusing a deposed leader's command.
fn stale_refusals(c: &Cluster) -> usize {
    DB_HOSTS
        .iter()
        .map(|h| {
            c.agent_log(h)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("Stale monitor term"))
                .count()
        })
        .sum()
}

#[test]
fn monitor_ha_on_etcd() {
    let mut o = fast(220);
    o.label = "ha";
    o.agent_lease = Some(AGENT_LEASE);
    o.ha = Some(HaOptions::two_monitors(LEADER_LEASE));
    let mut c = Cluster::start(o);
    let lease = Duration::from_secs(u64::from(LEADER_LEASE));

    // The start: `monitor` leads, mon2 follows and names it; the status is in etcd.
    let t1 = leads(&c, "monitor").expect("monitor leads after the start");
    let follow = ha_line(&c, "mon2");
    assert!(
        follow.contains(" follows ") && term_of(&follow) == Some(t1),
        "{follow}"
    );
    // A follower answers `show` from the leader (forwarded): the same host lines.
    let direct = c.control_on("monitor", &["show"]).expect("show").0;
    let forwarded = c.control_on("mon2", &["show"]).expect("show").0;
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&direct), body(&forwarded));
    let stored = c
        .etcd()
        .expect("etcd")
        .get(c.testbed(), STATUS_KEY)
        .expect("etcd get")
        .expect("the leader stored the status in etcd");
    assert!(stored.contains("db1|ONLINE|writer("), "{stored}");
    wait_agents_obey(&c, t1);
    // The metrics say who leads, on both monitors (the follower's copy within 1 s).
    let term = t1.to_string();
    c.wait_until(Duration::from_secs(10), "HA metrics", |c| {
        let (lead, follow) = (metrics_on(c, "monitor"), metrics_on(c, "mon2"));
        (metric(&lead, "mmm_ha_leader").as_deref() == Some("1")
            && metric(&lead, "mmm_ha_term").as_deref() == Some(term.as_str())
            && metric(&follow, "mmm_ha_leader").as_deref() == Some("0")
            && metric(&follow, "mmm_ha_term").as_deref() == Some(term.as_str()))
        .then_some(())
    });

    // 1. The leader killed -9: mon2 leads within leader_lease + a little; no role moves;
    //    writes go on.
    let writer = c.writer().expect("a writer");
    let run = c.begin("HA: leader killed -9");
    c.settle(&run, Duration::from_millis(300));
    let t = Instant::now();
    c.kill_monitor_on("monitor").expect("kill monitor");
    let (took, t2) = wait_leads(&c, "mon2", t1, t);
    println!(
        "figure: [ha] takeover after the leader's kill -9: {:.2} s (leader_lease {LEADER_LEASE} s)",
        took.as_secs_f64()
    );
    assert!(
        took < lease + Duration::from_secs(5),
        "takeover took {took:?}"
    );
    wait_agents_obey(&c, t2);
    assert_eq!(
        writer_seen_by(&c, "mon2"),
        Some(writer.clone()),
        "a role moved"
    );
    c.settle(&run, Duration::from_millis(500));
    c.end(run, Kind::Planned, t, None, None, true);

    // 2. A monitor restarted: it follows the leader and writes nothing.
    let before = c.etcd().unwrap().get(c.testbed(), STATUS_KEY).unwrap();
    c.start_monitor_on("monitor").expect("restart monitor");
    let l = ha_line(&c, "monitor");
    assert!(l.contains(" follows ") && term_of(&l) == Some(t2), "{l}");
    std::thread::sleep(lease);
    assert_eq!(
        c.etcd().unwrap().get(c.testbed(), STATUS_KEY).unwrap(),
        before,
        "a follower changed the stored status"
    );
    assert!(agent_terms(&c).iter().all(|(_, t)| *t == Some(t2)));

    // 3. The leader's link cut: it stops, `monitor` leads; healed, mon2 follows. No agent
    //    ever had to refuse a deposed leader's command.
    let run = c.begin("HA: leader link cut");
    c.settle(&run, Duration::from_millis(300));
    let t = Instant::now();
    c.cut_link("mon2").expect("cut mon2");
    let (took, t3) = wait_leads(&c, "monitor", t2, t);
    println!(
        "figure: [ha] takeover after the leader's link cut: {:.2} s",
        took.as_secs_f64()
    );
    wait_agents_obey(&c, t3);
    c.settle(&run, Duration::from_millis(500));
    c.restore_link("mon2").expect("restore mon2");
    c.wait_until(Duration::from_secs(30), "mon2 to follow again", |c| {
        let l = ha_line(c, "mon2");
        (l.contains(" follows ") && term_of(&l) == Some(t3)).then_some(())
    });
    assert_eq!(c.writer().as_deref(), Some(writer.as_str()), "a role moved");
    c.settle(&run, Duration::from_millis(300));
    c.end(run, Kind::Planned, t, None, None, true);
    assert_eq!(stale_refusals(&c), 0, "an agent refused a deposed leader");

    // 4. The leader and the writer's mysqld die together: mon2 takes over and fails the
    //    writer over.
    let to = Cluster::other_master(&writer);
    let run = c.begin("HA: leader and writer mysqld killed");
    c.settle(&run, Duration::from_millis(300));
    let t = Instant::now();
    c.kill_monitor_on("monitor").expect("kill monitor");
    c.mysql_kill9(&writer).expect("kill writer");
    let (took, t4) = wait_leads(&c, "mon2", t3, t);
    let moved = c.wait_writer_on(to, t, Duration::from_secs(60));
    println!(
        "figure: [ha] leader + writer killed: takeover {:.2} s, writer on {to} after {:.2} s (trap_period {} s)",
        took.as_secs_f64(),
        moved.as_secs_f64(),
        c.options().effective_trap_period()
    );
    c.settle(&run, Duration::from_millis(500));
    c.mysql_start(&writer).expect("start old writer");
    c.start_monitor_on("monitor").expect("restart monitor");
    c.wait_back_online(&writer, Duration::from_secs(90));
    let healthy = c.wait_healthy(Duration::from_secs(90));
    c.settle(&run, Duration::from_millis(300));
    c.end(run, Kind::Crash, t, Some(moved), Some(healthy), true);

    // 5. An etcd member down: nothing changes (same leader, same term).
    etcd(&c).kill("etcd1").expect("kill etcd1");
    std::thread::sleep(lease * 3);
    assert_eq!(leads(&c, "mon2"), Some(t4), "{}", ha_line(&c, "mon2"));
    etcd(&c)
        .restart(c.testbed(), "etcd1")
        .expect("restart etcd1");
    etcd(&c)
        .wait_healthy(c.testbed(), Duration::from_secs(30))
        .expect("etcd healthy");

    // 6. etcd's quorum lost: the leader holds (no failover etcd cannot guard; the roles
    //    stay, the agents' leases are renewed, writes go on well past agent_lease);
    //    quorum back: it leads again, the roles unchanged.
    let run = c.begin("HA: etcd quorum lost");
    c.settle(&run, Duration::from_millis(300));
    let t = Instant::now();
    etcd(&c).kill("etcd1").expect("kill etcd1");
    etcd(&c).kill("etcd2").expect("kill etcd2");
    c.wait_until(lease + Duration::from_secs(10), "mon2 to hold", |c| {
        ha_line(c, "mon2").contains(" holds (term ").then_some(())
    });
    println!(
        "figure: [ha] etcd quorum lost: mon2 holds after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let follower = ha_line(&c, "monitor");
    assert!(follower.contains(" follows"), "{follower}");
    std::thread::sleep(Duration::from_secs_f64(AGENT_LEASE) + lease);
    let acked_before = run.acked();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        run.acked() > acked_before,
        "writes stopped while etcd had no quorum"
    );
    assert_eq!(
        writer_seen_by(&c, "mon2").as_deref(),
        Some(to),
        "a role moved"
    );
    etcd(&c)
        .restart(c.testbed(), "etcd1")
        .expect("restart etcd1");
    etcd(&c)
        .restart(c.testbed(), "etcd2")
        .expect("restart etcd2");
    etcd(&c)
        .wait_healthy(c.testbed(), Duration::from_secs(30))
        .expect("etcd healthy");
    let back = Instant::now();
    let term = c.wait_until(Duration::from_secs(30), "a leader again", |c| {
        leads(c, "mon2").or_else(|| leads(c, "monitor"))
    });
    println!(
        "figure: [ha] etcd quorum back: a leader (term {term}, was {t4}) {:.2} s after etcd answered",
        back.elapsed().as_secs_f64()
    );
    // Both monitors answer again (the follower learns the leader within a poll).
    let writer_now = c.wait_until(Duration::from_secs(10), "show on both monitors", |c| {
        let a = writer_seen_by(c, "monitor")?;
        let b = writer_seen_by(c, "mon2")?;
        Some((a, b))
    });
    assert_eq!(
        writer_now,
        (to.to_string(), to.to_string()),
        "a role moved while etcd was down"
    );
    c.settle(&run, Duration::from_millis(300));
    c.end(run, Kind::Planned, t, None, None, true);
    assert_eq!(stale_refusals(&c), 0, "an agent refused a deposed leader");

    // 7. The mode is taken over: an operator's PASSIVE survives the leader's death.
    let leader = if leads(&c, "mon2").is_some() {
        "mon2"
    } else {
        "monitor"
    };
    let other = if leader == "mon2" { "monitor" } else { "mon2" };
    let term = leads(&c, leader).expect("a leader");
    c.wait_until(
        Duration::from_secs(10),
        "the follower to know the leader",
        |c| {
            let l = ha_line(c, other);
            (l.contains(" follows ") && term_of(&l) == Some(term)).then_some(())
        },
    );
    let (out, _) = c.control_on(other, &["set_passive"]).expect("set_passive");
    assert_eq!(
        out, "OK: Switched into passive mode.\n",
        "forwarded to the leader"
    );
    std::thread::sleep(Duration::from_millis(500));
    c.kill_monitor_on(leader).expect("kill leader");
    wait_leads(&c, other, term, Instant::now());
    let show = c.control_on(other, &["show"]).expect("show").0;
    assert!(
        show.contains("PASSIVE") && show.contains("Admin switched to passive mode."),
        "{show}"
    );
    let (out, _) = c.control_on(other, &["set_active"]).expect("set_active");
    assert_eq!(out, "OK: Switched into active mode.\n");
    c.start_monitor_on(leader).expect("restart the old leader");

    // 8. After the failures and recoveries above, the next planned move under load: a
    //    switchover asked on the follower (forwarded to the leader) loses nothing on any
    //    server (asserted by the row checker: every server, every acknowledged row).
    let writer = c.writer().expect("a writer");
    let to = Cluster::other_master(&writer);
    let run = c.begin("HA: switchover after the outages");
    c.settle(&run, Duration::from_millis(300));
    let t = Instant::now();
    let (out, _) = c
        .control_on(leader, &["move_role", "writer", to])
        .expect("move_role");
    assert!(out.starts_with("OK: Role 'writer' has been moved"), "{out}");
    let moved = c.wait_writer_on(to, t, Duration::from_secs(30));
    c.settle(&run, Duration::from_millis(500));
    c.end(run, Kind::Planned, t, Some(moved), None, true);
}

#[test]
#[ignore = "benchmark: minutes; run with --ignored"]
fn bench_ha_takeover() {
    let runs: usize = std::env::var("MMM_BENCH_HA_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut o = fast(221);
    o.label = "ha-bench";
    o.agent_lease = Some(AGENT_LEASE);
    o.ha = Some(HaOptions::two_monitors(LEADER_LEASE));
    let mut c = Cluster::start(o);
    let window = Duration::from_secs(10);
    for host in ["monitor", "mon2"] {
        let role = if leads(&c, host).is_some() {
            "leader"
        } else {
            "follower"
        };
        if let Some((rss, cpu)) = c.monitor_pid_on(host).and_then(|p| measure(p, window)) {
            println!("figure: [ha] {role} monitor ({host}): RSS {rss:.1} MB, CPU {cpu:.2} % of a core over {window:?}");
        }
    }
    let (mut takeover, mut obeyed, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    let mut term = leads(&c, "monitor").expect("monitor leads");
    let mut leader = "monitor";
    for i in 0..runs {
        let follower = if leader == "monitor" {
            "mon2"
        } else {
            "monitor"
        };
        let run = c.begin(&format!(
            "HA bench: leader {leader} killed -9 (run {})",
            i + 1
        ));
        c.settle(&run, Duration::from_millis(500));
        let t = Instant::now();
        c.kill_monitor_on(leader).expect("kill leader");
        // The new term reaches the agents: the first and the last of them.
        let newer = |c: &Cluster| {
            agent_terms(c)
                .iter()
                .filter(|(_, x)| x.is_some_and(|x| x > term))
                .count()
        };
        let first = c.wait_until(Duration::from_secs(30), "an agent on a new term", |c| {
            (newer(c) > 0).then(|| t.elapsed())
        });
        let all = c.wait_until(
            Duration::from_secs(30),
            "every agent on the new term",
            |c| (newer(c) == DB_HOSTS.len()).then(|| t.elapsed()),
        );
        let (_, new_term) = wait_leads(&c, follower, term, t);
        takeover.push(first.as_secs_f64());
        obeyed.push(all.as_secs_f64());
        c.settle(&run, Duration::from_millis(500));
        let out = c.end(run, Kind::Planned, t, None, None, true);
        gaps.push(out.write_gap.as_secs_f64());
        c.start_monitor_on(leader).expect("restart old leader");
        term = new_term;
        leader = follower;
    }
    println!(
        "figure: [ha] takeover after the leader's kill -9 (leader_lease {LEADER_LEASE} s, {runs} runs): first agent on the new term {} s, every agent {} s; write gap {} s",
        median_range(takeover, 2),
        median_range(obeyed, 2),
        median_range(gaps, 2)
    );
}
