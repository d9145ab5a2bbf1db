//! A server that answers but cannot take more connections (MariaDB error 1040, "Too many
//! connections") is not a dead server (issue 14): the monitor's checks run on the
//! connections they already hold (`crates/mmm-mon/src/checks/host_conns.rs`), and when
//! they must connect afresh and are refused with 1040, the `mysql` check says `UNKNOWN: Too
//! many connections!` (2.2.1's verdict), which starts no trap period. The writer keeps its
//! role.
//!
//! A writer whose disk is full (its binary log on a tmpfs that the test fills): MariaDB
//! blocks the commits (`Waiting for someone to free space`) and still answers queries; the
//! `mysql` check, whose account has `PROCESS`, says `UNKNOWN: Disk full! …`
//! (`crates/mmm-mon/src/checks/disk_full.rs`): logged, no state change, the writer keeps
//! its role.
//!
//! A busy writer (slow queries on many connections, a CPU-bound query) is not a frozen one:
//! the masters' liveness connection (`crates/mmm-mon/src/checks/liveness.rs`) pings on a
//! connection of its own, which a busy server answers; the writer keeps its role and the
//! monitor never reports it silent.
//!
//! Needs root and the binaries: `cargo build -p mmm-mon -p mmm-agent -p mmm-control`,
//! then `cargo test -p mmm-tests --test server_limits -- --nocapture`. Subnets 132, 183,
//! 214.
//!
//! `bench_server_limits` (ignored; docs/benchmarks.md "Server limits") runs the first two
//! scenarios `MMM_BENCH_RUNS` times each (default 5) with fast and with the seed's
//! settings and prints the time to the verdict, median and range: `cargo test --release -p
//! mmm-tests --test server_limits bench_server_limits -- --ignored --nocapture` after a
//! release build of the daemons. Subnets 192-195 (`MMM_BENCH_SUBNET_SHIFT` adds to them);
//! `MMM_BENCH_ONLY=disk` (or `connections`) runs one scenario.

use std::process::Child;
use std::time::{Duration, Instant};

use mmm_tests::cluster::{Cluster, ClusterOptions};
use mmm_tests::figures::median_range;

/// The check settings of a run: the tests use [`FAST`], the benchmark both.
#[derive(Clone, Copy)]
struct Settings {
    label: &'static str,
    check_period: f64,
    trap_period: f64,
    timeout: f64,
}

/// `check_period 0.5`, `trap_period 1`, `timeout 1`.
const FAST: Settings = Settings {
    label: "fast",
    check_period: 0.5,
    trap_period: 1.0,
    timeout: 1.0,
};

/// The seed's (2.2.1's defaults): `check_period 5`, `trap_period 10`, `timeout 2`.
const SEED: Settings = Settings {
    label: "seed",
    check_period: 5.0,
    trap_period: 10.0,
    timeout: 2.0,
};

impl Settings {
    fn options(self, subnet: u8) -> ClusterOptions {
        ClusterOptions {
            check_period: Some(self.check_period),
            trap_period: Some(self.trap_period),
            check_timeout: Some(self.timeout),
            ..ClusterOptions::seed(subnet)
        }
    }

    /// How long the writer must keep its role once a verdict may have come: longer than
    /// a trap period begun by the next check.
    fn hold(self) -> Duration {
        Duration::from_secs_f64(self.trap_period + self.check_period + 1.5)
    }

    /// The next `mysql` check and its timeout, with a margin for a loaded machine.
    fn next_check(self) -> Duration {
        Duration::from_secs_f64(self.check_period + self.timeout)
    }
}

fn threads_connected(c: &Cluster, host: &str) -> u64 {
    c.query(host, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        .ok()
        .and_then(|rows| {
            rows.first()
                .and_then(|r| r.at(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

struct Fillers(Vec<Child>);

impl Drop for Fillers {
    fn drop(&mut self) {
        for ch in &mut self.0 {
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }
}

#[test]
fn writer_out_of_connections_keeps_its_role() {
    let seen = out_of_connections(FAST, 132);
    println!(
        "figure: db1 out of connections: `UNKNOWN: Too many connections` logged {:.2} s after the monitor's connections were killed; db1 kept ONLINE and the writer role for 6 s (trap_period 1 s)",
        seen.as_secs_f64()
    );
}

/// db1 out of connections with the monitor's threads killed (module doc); asserts that
/// db1 keeps ONLINE, the writer role and the VIP for the next check and a trap period
/// after it, and that it is healthy again once connections are freed. Returns when the
/// `mysql` check's verdict was logged, after the kill.
fn out_of_connections(s: Settings, subnet: u8) -> Duration {
    let opts = s.options(subnet);
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"));
    let writer_vip = c.vip(188);
    let socket = c
        .host("db1")
        .expect("db1")
        .socket
        .clone()
        .expect("db1 socket");
    let socket = socket.to_string_lossy().to_string();

    // Fill db1 with idle clients beyond what stays connected once the monitor's threads
    // are killed, then lower max_connections to 10 (MariaDB's minimum) below that: every
    // new login but one of an administrator is refused with 1040.
    let monitor_threads = |c: &Cluster| {
        c.query(
            "db1",
            "SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'mmm_monitor'",
        )
        .ok()
        .and_then(|rows| {
            rows.first()
                .and_then(|r| r.at(0).and_then(|v| v.parse::<u64>().ok()))
        })
        .unwrap_or(0)
    };
    let target = 10 + monitor_threads(&c) + 4;
    let mut fillers = Fillers(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(90);
    while threads_connected(&c, "db1") < target {
        assert!(
            Instant::now() < deadline && fillers.0.len() < 40,
            "db1 not filled up ({} clients)",
            fillers.0.len()
        );
        let before = threads_connected(&c, "db1");
        let ch = c
            .spawn(
                "db1",
                &["mariadb", "--socket", &socket, "-e", "SELECT SLEEP(600)"],
            )
            .expect("spawn mariadb");
        fillers.0.push(ch);
        let t = Instant::now();
        while threads_connected(&c, "db1") <= before && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The monitor's threads, killed below in the same root session that lowers the limit
    // (root's one extra connection beyond the limit may be taken by a filler).
    let ids: Vec<String> = c
        .query(
            "db1",
            "SELECT id FROM information_schema.processlist WHERE user = 'mmm_monitor'",
        )
        .expect("processlist")
        .iter()
        .filter_map(|r| r.at(0).map(str::to_string))
        .collect();
    assert!(!ids.is_empty(), "the monitor held no connection to db1");
    let refused = |c: &Cluster| {
        let out = c
            .sql_from("monitor", c.ip("db1"), "mmm_monitor", "SELECT 1", 2)
            .expect("mariadb client");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        !out.status.success() && err.contains("1040")
    };
    // The monitor's connections are killed: its checks must connect afresh and are
    // refused. (A thread that ended meanwhile makes its KILL fail: ignored.)
    let mut sql = String::from("SET GLOBAL max_connections = 10");
    for id in &ids {
        sql.push_str(&format!("; KILL {id}"));
    }
    let _ = c.query("db1", &sql);
    assert!(refused(&c), "db1 took new logins after the kill");
    let start = Instant::now();
    let mut seen_unknown = None;
    // fast: 6 s.
    let window = s.next_check() + s.hold() + Duration::from_millis(1500);
    while start.elapsed() < window {
        let show = c.show().expect("show");
        assert_eq!(
            show.state("db1"),
            "ONLINE",
            "db1 left ONLINE while out of connections"
        );
        assert!(
            show.roles("db1").iter().any(|r| r.starts_with("writer")),
            "db1 lost the writer role while out of connections"
        );
        assert!(c.holds_ip("db1", writer_vip).expect("ip"), "VIP left db1");
        if seen_unknown.is_none()
            && c.monitor_log()
                .unwrap_or_default()
                .contains("UNKNOWN: Too many connections")
        {
            seen_unknown = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = seen_unknown.expect("the mysql check never reported Too many connections");

    // Connections again: the checks connect and db1 stays healthy.
    drop(fillers);
    // The monitor takes freed slots at once: retry until root gets one.
    let t = Instant::now();
    while c.query("db1", "SET GLOBAL max_connections = 100").is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "max_connections not raised"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.wait_healthy(Duration::from_secs(30) + 2 * s.next_check())
        .expect("healthy after the connections were freed");
    c.stop().expect("cluster stop");
    seen
}

/// `SELECT COUNT(*)` of the threads of `db1` in the disk-full wait state (as root).
fn waiting_for_space(c: &Cluster) -> u64 {
    c.query(
        "db1",
        "SELECT COUNT(*) FROM information_schema.processlist \
         WHERE state = 'Waiting for someone to free space'",
    )
    .ok()
    .and_then(|rows| {
        rows.first()
            .and_then(|r| r.at(0).and_then(|v| v.parse::<u64>().ok()))
    })
    .unwrap_or(0)
}

#[test]
fn writer_disk_full_is_reported() {
    let f = disk_full(FAST, 183);
    println!(
        "figure: disk full under db1's binary log ({:.1} MiB filled): commits stuck {:.2} s after the fill, `UNKNOWN: Disk full!` logged {:.2} s after the fill ({:.2} s after the first stuck commit was seen); db1 kept ONLINE, the writer role and the VIP (trap_period 1 s)",
        f.filled as f64 / 1048576.0,
        f.stuck.as_secs_f64(),
        f.seen.as_secs_f64(),
        f.seen.saturating_sub(f.stuck).as_secs_f64()
    );
}

/// What [`disk_full`] measured.
struct DiskFull {
    /// Bytes written to fill the tmpfs.
    filled: u64,
    /// From the fill to the first commit seen waiting for space.
    stuck: Duration,
    /// From the fill to the `mysql` check's verdict in the monitor's log.
    seen: Duration,
}

/// db1's binary log disk filled under a writing client (module doc); asserts that the
/// verdict comes and that db1 keeps ONLINE, the writer role and the VIP until then and
/// for a trap period after the next check.
fn disk_full(s: Settings, subnet: u8) -> DiskFull {
    let opts = ClusterOptions {
        binlog_tmpfs_mib: Some(16),
        ..s.options(subnet)
    };
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"));
    let writer_vip = c.vip(188);
    let socket = c
        .host("db1")
        .expect("db1")
        .socket
        .clone()
        .expect("db1 socket");
    let socket = socket.to_string_lossy().to_string();

    // The monitor's account may see every thread (docs/config.md). A connected client
    // keeps the global privileges it logged in with: the monitor's connections to db1 are
    // killed, so that its checks log in again.
    c.query(
        "db1",
        &format!(
            "GRANT PROCESS ON *.* TO 'mmm_monitor'@'198.18.{}.%'",
            c.testbed().subnet()
        ),
    )
    .expect("grant PROCESS");
    let ids: Vec<String> = c
        .query(
            "db1",
            "SELECT id FROM information_schema.processlist WHERE user = 'mmm_monitor'",
        )
        .expect("processlist")
        .iter()
        .filter_map(|r| r.at(0).map(str::to_string))
        .collect();
    for id in &ids {
        let _ = c.query("db1", &format!("KILL {id}"));
    }
    c.query(
        "db1",
        "CREATE DATABASE IF NOT EXISTS df; \
         CREATE TABLE df.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         INSERT INTO df.t (v) VALUES (0)",
    )
    .expect("table");
    c.wait_healthy(Duration::from_secs(30) + 2 * s.next_check())
        .expect("healthy after the grant");

    // The disk under db1's binary log fills up; a client then commits row after row (the
    // first ones fit in the binary log's last page).
    let filled = c.testbed().fill_binlog_disk("db1").expect("fill");
    let start = Instant::now();
    let mut inserts = String::new();
    for i in 1..=200 {
        inserts.push_str(&format!("INSERT INTO df.t (v) VALUES ({i});"));
    }
    let writer = Fillers(vec![c
        .spawn("db1", &["mariadb", "--socket", &socket, "-e", &inserts])
        .expect("spawn mariadb")]);
    let mut stuck_at = None;
    let mut seen_at = None;
    while seen_at.is_none() {
        // fast: 20 s.
        assert!(
            start.elapsed() < Duration::from_secs_f64(18.5) + s.next_check(),
            "no `UNKNOWN: Disk full` in the monitor's log (writes stuck: {stuck_at:?})"
        );
        if stuck_at.is_none() && waiting_for_space(&c) > 0 {
            stuck_at = Some(start.elapsed());
        }
        let show = c.show().expect("show");
        assert_eq!(
            show.state("db1"),
            "ONLINE",
            "db1 left ONLINE on a full disk"
        );
        assert!(
            show.roles("db1").iter().any(|r| r.starts_with("writer")),
            "db1 lost the writer role on a full disk"
        );
        if c.monitor_log()
            .unwrap_or_default()
            .contains("Check 'mysql' on 'db1' is in unknown state! Message: UNKNOWN: Disk full!")
        {
            seen_at = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stuck = stuck_at.unwrap_or_else(|| {
        assert!(waiting_for_space(&c) > 0, "db1's writes are not stuck");
        start.elapsed()
    });
    let seen = seen_at.unwrap_or_default();
    // The verdict changes nothing for a trap period after the next check (fast: 3 s).
    let t = Instant::now();
    while t.elapsed() < s.hold() {
        let show = c.show().expect("show");
        assert_eq!(
            show.state("db1"),
            "ONLINE",
            "db1 left ONLINE on a full disk"
        );
        assert!(c.holds_ip("db1", writer_vip).expect("ip"), "VIP left db1");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The stuck thread retries only every 60 s: the server is killed rather than waited
    // for (the teardown's SIGKILL would do the same).
    drop(writer);
    c.kill_monitor().expect("kill monitor");
    let _ = c.testbed().free_binlog_disk("db1");
    c.stop().expect("cluster stop");
    DiskFull {
        filled,
        stuck,
        seen,
    }
}

/// Issue 14: slow queries and a CPU-bound query on the writer for 8 s do not make the
/// liveness watch report it (a ping on its own connection is answered by a busy server):
/// db1 stays ONLINE with the writer role and the VIP, and the monitor's debug log never
/// says that it answers no ping.
#[test]
fn busy_writer_is_not_taken_for_a_frozen_one() {
    let opts = ClusterOptions {
        check_period: Some(0.5),
        trap_period: Some(1.0),
        check_timeout: Some(1.0),
        monitor_debug: true,
        ..ClusterOptions::seed(214)
    };
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"));
    let writer_vip = c.vip(188);
    let socket = c
        .host("db1")
        .expect("db1")
        .socket
        .clone()
        .expect("db1 socket");
    let socket = socket.to_string_lossy().to_string();
    let mut busy = Fillers(Vec::new());
    for i in 0..18 {
        let sql = if i < 2 {
            "SELECT BENCHMARK(2000000000, MD5('mmm'))"
        } else {
            "SELECT SLEEP(10)"
        };
        let ch = c
            .spawn("db1", &["mariadb", "--socket", &socket, "-e", sql])
            .expect("spawn mariadb");
        busy.0.push(ch);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        let show = c.show().expect("show");
        assert_eq!(show.state("db1"), "ONLINE", "db1 left ONLINE while busy");
        assert!(
            show.roles("db1").iter().any(|r| r.starts_with("writer")),
            "db1 lost the writer role while busy"
        );
        assert!(c.holds_ip("db1", writer_vip).expect("ip"), "VIP left db1");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = c.monitor_log().unwrap_or_default();
    assert!(
        log.contains("result: OK"),
        "the monitor's debug log has no check results"
    );
    assert!(
        !log.contains("answers no ping"),
        "the liveness watch took the busy db1 for a frozen one"
    );
    drop(busy);
    c.stop().expect("cluster stop");
}

/// The benchmark (module doc): each scenario `MMM_BENCH_RUNS` times with fast and seed
/// settings; every run asserts the scenario's invariants, the figures are printed.
#[test]
#[ignore = "benchmark: minutes; run by hand (module doc)"]
fn bench_server_limits() {
    let runs: usize = std::env::var("MMM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let shift: u8 = std::env::var("MMM_BENCH_SUBNET_SHIFT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // `MMM_BENCH_ONLY=connections` (or `disk`) runs one of the two scenarios.
    let only = std::env::var("MMM_BENCH_ONLY").unwrap_or_default();
    let (do_conns, do_disk) = (only != "disk", only != "connections");
    let mut lines = Vec::new();
    for (i, s) in [FAST, SEED].into_iter().enumerate() {
        let subnet = 192 + 2 * i as u8 + shift;
        let mut conns = Vec::new();
        for run in (1..=runs).filter(|_| do_conns) {
            let seen = out_of_connections(s, subnet).as_secs_f64();
            println!(
                "bench: {} out of connections run {run}: verdict {seen:.2} s",
                s.label
            );
            conns.push(seen);
        }
        let (mut fill, mut stuck) = (Vec::new(), Vec::new());
        for run in (1..=runs).filter(|_| do_disk) {
            let f = disk_full(s, subnet + 1);
            println!(
                "bench: {} disk full run {run}: verdict {:.2} s after the fill, {:.2} s after the first stuck commit",
                s.label,
                f.seen.as_secs_f64(),
                f.seen.saturating_sub(f.stuck).as_secs_f64()
            );
            fill.push(f.seen.as_secs_f64());
            stuck.push(f.seen.saturating_sub(f.stuck).as_secs_f64());
        }
        if do_conns {
            lines.push(format!(
            "| out of connections | {} | {runs} | {} s after the monitor's connections were killed | ONLINE, writer role and VIP kept {:.1} s past the next check (asserted) |",
            s.label,
            median_range(conns, 2),
            s.hold().as_secs_f64()
        ));
        }
        if do_disk {
            lines.push(format!(
            "| disk full | {} | {runs} | {} s after the fill; {} s after the first stuck commit was seen | ONLINE, writer role and VIP kept {:.1} s after the verdict (asserted) |",
            s.label,
            median_range(fill, 2),
            median_range(stuck, 2),
            s.hold().as_secs_f64()
        ));
        }
    }
    println!("| fault of the writer (db1) | settings | runs | time to the verdict, median [range] | state, roles |");
    println!("|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
}
