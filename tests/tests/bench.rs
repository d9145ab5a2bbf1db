//! Benchmarks of issue 7 (docs/benchmarks.md): they print figures and assert no timing.
//! Ignored by the normal test run (they take minutes); run them with
//!
//! ```text
//! cargo build -p mmm-mon -p mmm-agent -p mmm-control
//! cargo test -p mmm-tests --test bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! Each benchmark appends its figures to `target/mmm-bench.md` (the text pasted into
//! docs/benchmarks.md). Subnets 63-69.
//!
//! - `bench_scenarios_fast` / `bench_scenarios_seed`: every scenario of the fault
//!   matrix under load: write outage (longest gap), failover time (fault → VIP and
//!   read_only=0 on the new writer) and its difference to trap_period, switchover write
//!   gap, time to a healthy `show`.
//! - `bench_resources_and_scaling`: monitor and agent resident memory and CPU with 4
//!   hosts; the monitor with 50 and 200 configured hosts (extra addresses on the real
//!   servers' hosts), and the detection delay of a killed server while 10% of the
//!   configured hosts hang (their address accepts TCP connections and never answers).

mod scenarios;

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mmm_tests::cluster::ClusterOptions;
use scenarios::{fast, seed, Cluster, Outcome};

fn out_file() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("mmm-bench.md"))
        .unwrap_or_else(|| "mmm-bench.md".into())
}

fn record(text: &str) {
    println!("{text}");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out_file())
    {
        let _ = writeln!(f, "{text}");
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64()))
        .unwrap_or_else(|| "–".into())
}

fn table(settings: &ClusterOptions, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Scenarios, {} settings (check_period {} s, trap_period {} s, timeout {} s)\n",
        settings.label,
        settings.effective_check_period(),
        settings.effective_trap_period(),
        settings.effective_check_timeout()
    );
    let _ = writeln!(
        s,
        "| scenario | write outage (longest gap) s | failover s | failover − trap_period s | healthy `show` s | acked | lost | invariants |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        // Only a detected failure waits for trap_period; a planned switchover does not.
        let minus = o
            .failover
            .filter(|_| !o.name.contains("switchover"))
            .map(|f| format!("{:.2}", f.as_secs_f64() - settings.effective_trap_period()))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {:.3} | {} | {} | {} | {} | {} | {} |",
            o.name,
            o.write_gap.as_secs_f64(),
            secs(o.failover),
            minus,
            secs(o.healthy_after),
            o.acked,
            o.lost.len(),
            if o.violations.is_empty() {
                "held".to_string()
            } else {
                format!("BROKEN: {}", o.violations.len())
            }
        );
    }
    s
}

fn run_all(subnets: [u8; 3], settings: fn(u8) -> ClusterOptions) {
    let mut outcomes = Vec::new();
    {
        let mut c = Cluster::start(settings(subnets[0]));
        scenarios::switchover_both_ways(&mut c, false);
        scenarios::writer_server_fault(&mut c, "kill -9", false);
        scenarios::switchover_both_ways(&mut c, false);
        scenarios::writer_server_fault(&mut c, "clean stop", false);
        scenarios::writer_server_fault(&mut c, "freeze", false);
        scenarios::agent_restart_on_writer(&mut c, false);
        outcomes.append(&mut c.outcomes);
    }
    {
        let mut c = Cluster::start(settings(subnets[1]));
        scenarios::writer_link_cut(&mut c, false);
        scenarios::monitor_restart_mid_failover(&mut c, false);
        scenarios::monitor_isolated(&mut c, false);
        outcomes.append(&mut c.outcomes);
    }
    {
        let mut c = Cluster::start(settings(subnets[2]));
        scenarios::passive_master_down(&mut c, false);
        scenarios::slave_down(&mut c, false);
        scenarios::slave_replication_broken(&mut c, false);
        scenarios::slave_replication_delayed(&mut c, false);
        outcomes.append(&mut c.outcomes);
    }
    record(&table(&settings(subnets[0]), &outcomes));
}

#[test]
#[ignore = "benchmark: minutes; run with --ignored"]
fn bench_scenarios_fast() {
    run_all([63, 64, 65], fast);
}

#[test]
#[ignore = "benchmark: minutes; run with --ignored"]
fn bench_scenarios_seed() {
    run_all([66, 67, 68], seed);
}

/// (VmRSS kB, utime+stime clock ticks) of a process.
fn rss_and_cpu(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are 12 and 13 after the state field.
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((rss, ut + st))
}

/// (RSS MB, CPU % of one core) over `window`.
fn measure(pid: u32, window: Duration) -> Option<(f64, f64)> {
    let tick = 100.0; // USER_HZ
    let (_, c0) = rss_and_cpu(pid)?;
    std::thread::sleep(window);
    let (rss, c1) = rss_and_cpu(pid)?;
    Some((
        rss as f64 / 1024.0,
        (c1.saturating_sub(c0)) as f64 / tick / window.as_secs_f64() * 100.0,
    ))
}

/// Addresses for extra configured hosts in the testbed's /24 (none of the testbed's).
fn extra_octets(n: usize) -> Vec<u8> {
    (2u8..100).chain(107..188).chain(200..255).take(n).collect()
}

/// Monitor config with `n` hosts: the 4 real ones and `n - 4` extra slaves whose
/// addresses are aliases on the real servers' hosts (so their checks reach a real
/// server), except `hung` of them, whose address is on the monitor host with a listener
/// that accepts and never answers (a hung host).
fn scaled_monitor(subnet: u8, n: usize, hung: usize) -> (String, Vec<(String, Ipv4Addr, bool)>) {
    let db = ["db1", "db2", "db3", "db4"];
    let octets = extra_octets(n.saturating_sub(4));
    let mut extra = Vec::new();
    for (i, o) in octets.iter().enumerate() {
        let ip = Ipv4Addr::new(198, 18, subnet, *o);
        let is_hung = i < hung;
        let host = if is_hung {
            "monitor".to_string()
        } else {
            db[i % 4].to_string()
        };
        extra.push((host, ip, is_hung));
    }
    let mut text = String::new();
    for (i, (_, ip, _)) in extra.iter().enumerate() {
        let _ = write!(
            text,
            "<host x{i}>\n    ip      {ip}\n    mode    slave\n</host>\n\n"
        );
    }
    (text, extra)
}

#[test]
#[ignore = "benchmark: minutes; run with --ignored"]
fn bench_resources_and_scaling() {
    let mut report = String::from("\n### Resources and monitor scaling (fast settings)\n\n");
    let _ = writeln!(
        report,
        "| configured hosts | hung hosts | monitor RSS MB | monitor CPU % | agent RSS MB | agent CPU % | detection of a killed slave s |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|");
    for (subnet, n, hung) in [(69u8, 4usize, 0usize), (69, 50, 5), (69, 200, 20)] {
        let c = Cluster::start(fast(subnet));
        let mut listeners = Vec::new();
        if n > 4 {
            let (hosts_text, extra) = scaled_monitor(subnet, n, hung);
            for (host, ip, is_hung) in &extra {
                let addr = format!("{ip}/24");
                c.exec(host, &["ip", "addr", "add", &addr, "dev", "ens33"])
                    .expect("ip addr add");
                if *is_hung {
                    let l = c
                        .tcp_listen_on(host, SocketAddr::from((*ip, 3306)))
                        .expect("netns")
                        .expect("listen");
                    listeners.push(l);
                }
            }
            // Restart the monitor with the extra hosts in mmm_common.conf.
            let dir = c.host_dir("monitor").expect("dir").join("etc/mysql-mmm");
            let common = std::fs::read_to_string(dir.join("mmm_common.conf")).expect("common");
            std::fs::write(
                dir.join("mmm_common.conf"),
                format!("{common}\n{hosts_text}"),
            )
            .expect("write");
            c.kill_monitor().expect("kill monitor");
            c.start_monitor().expect("start monitor");
            c.wait_healthy(Duration::from_secs(120));
        }
        std::thread::sleep(Duration::from_secs(3));
        let mon_pid = c.monitor_pid().expect("monitor pid");
        let agent_pid = c.agent_pid("db1").expect("agent pid");
        let window = Duration::from_secs(10);
        let (mrss, mcpu) = measure(mon_pid, window).unwrap_or((0.0, 0.0));
        let (arss, acpu) = measure(agent_pid, Duration::from_secs(5)).unwrap_or((0.0, 0.0));
        // Detection: kill -9 db3's server, time until show says HARD_OFFLINE.
        let t = Instant::now();
        c.mysql_kill9("db3").expect("kill9");
        let detected = c.wait_state("db3", "HARD_OFFLINE", Duration::from_secs(120));
        let _ = t;
        let _ = writeln!(
            report,
            "| {n} | {hung} | {mrss:.1} | {mcpu:.1} | {arss:.1} | {acpu:.1} | {:.2} |",
            detected.as_secs_f64()
        );
        println!("{report}");
        drop(listeners);
        drop(c);
    }
    record(&report);
}

/// `Connections` (connection attempts since start) of a server.
fn connections(c: &Cluster, host: &str) -> u64 {
    c.testbed()
        .query(host, "SHOW GLOBAL STATUS LIKE 'Connections'")
        .ok()
        .and_then(|rows| {
            rows.first()
                .and_then(|r| r.at(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Issue 14: the monitor's own cost with 204 configured hosts (the seed's four and 200
/// extra live slaves, aliases on the four real hosts), seed settings with `check_period` 5
/// and 1: monitor CPU (% of one core) and RSS over a window (`MMM_BENCH_WINDOW` seconds,
/// default 30), the MySQL connections the monitor opens per second (db1's `Connections`),
/// and the detection of a killed slave (kill -9 of db3's server → HARD_OFFLINE, minus
/// trap_period). With `MMM_BENCH_PERF=<dir>` a `perf record -g` of the monitor runs over
/// the window (`<dir>/perf-cp<check_period>.data`). Subnets 130-131.
#[test]
#[ignore = "benchmark: minutes; run with --ignored"]
fn bench_monitor_cost_200() {
    let window = Duration::from_secs(
        std::env::var("MMM_BENCH_WINDOW")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let mut report = String::from(
        "\n### Monitor cost with 204 configured hosts (seed settings)\n\n| check_period s | monitor CPU % of a core | monitor RSS MB | MySQL connects/s to db1 (51 hosts) | detection of a killed slave − trap_period s |\n|---|---|---|---|---|\n",
    );
    for (subnet, cp) in [(130u8, 5.0), (131, 1.0)] {
        let opts = ClusterOptions {
            check_period: Some(cp),
            ..seed(subnet)
        };
        let c = Cluster::start(opts);
        for db in ["db1", "db2", "db3", "db4"] {
            c.testbed()
                .query(db, "SET GLOBAL max_connections = 1000")
                .expect("max_connections");
        }
        let (hosts_text, extra) = scaled_monitor(subnet, 204, 0);
        for (host, ip, _) in &extra {
            let addr = format!("{ip}/24");
            c.exec(host, &["ip", "addr", "add", &addr, "dev", "ens33"])
                .expect("ip addr add");
        }
        let dir = c.host_dir("monitor").expect("dir").join("etc/mysql-mmm");
        let common = std::fs::read_to_string(dir.join("mmm_common.conf")).expect("common");
        std::fs::write(
            dir.join("mmm_common.conf"),
            format!("{common}\n{hosts_text}"),
        )
        .expect("write");
        c.kill_monitor().expect("kill monitor");
        c.start_monitor().expect("start monitor");
        c.wait_healthy(Duration::from_secs(180));
        std::thread::sleep(Duration::from_secs(5));
        let mon_pid = c.monitor_pid().expect("monitor pid");
        println!("monitor pid {mon_pid}, window {window:?} starts");
        let perf = std::env::var_os("MMM_BENCH_PERF").map(|d| {
            let out = std::path::Path::new(&d).join(format!("perf-cp{cp}.data"));
            std::process::Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "499",
                    "-g",
                    "-p",
                    &mon_pid.to_string(),
                    "-o",
                ])
                .arg(&out)
                .args(["--", "sleep", &window.as_secs().to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("perf")
        });
        let conns0 = connections(&c, "db1");
        let (mrss, mcpu) = measure(mon_pid, window).unwrap_or((0.0, 0.0));
        let conns = connections(&c, "db1").saturating_sub(conns0) as f64 / window.as_secs_f64();
        if let Some(mut p) = perf {
            let _ = p.wait();
        }
        c.mysql_kill9("db3").expect("kill9");
        let detected = c.wait_state("db3", "HARD_OFFLINE", Duration::from_secs(120));
        let _ = writeln!(
            report,
            "| {cp} | {mcpu:.2} | {mrss:.1} | {conns:.1} | {:.2} |",
            detected.as_secs_f64() - 10.0
        );
        println!("{report}");
        drop(c);
    }
    record(&report);
}
