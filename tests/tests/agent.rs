//! mmm_agentd on the testbed (issue 4): real agents in the db hosts' namespaces, real
//! MariaDB, real VIPs (rtnetlink) and gratuitous ARP (pnet), driven by SET_STATUS lines
//! that this test sends over real TCP **from the monitor host** (the test's client thread
//! enters the monitor's network namespace), as the monitor would.
//!
//! - `writer_move_and_slave_switch_under_write_load`: writer role db1 → db2 while an
//!   application writes through the writer VIP, then db3/db4 re-pointed to db2; afterwards
//!   exactly one host holds the VIP and it has read_only=0, the monitor's neighbour entry
//!   for the VIP holds db2's MAC, every acknowledged row is on all four servers, all four
//!   hold the same rows and every replication thread runs. Prints each agent's VmRSS.
//!
//! Needs root, iproute2 and MariaDB (the testbed says which is missing).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmm_common::config::{SocketConfig, SocketType};
use mmm_common::socket;
use mmm_tests::{Testbed, TestbedOptions};
use mysql_async::prelude::Queryable;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// This file's testbed subnet (198.18.61.0/24).
const SUBNET: u8 = 61;
const DBS: [&str; 4] = ["db1", "db2", "db3", "db4"];

/// Builds mmm_agentd (a no-op when it is up to date) and returns its path.
fn agent_binary() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().expect("workspace root").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "mmm-agent", "--bin", "mmm_agentd"])
        .current_dir(&workspace)
        .status()
        .expect("running cargo build for mmm_agentd");
    assert!(status.success(), "cargo build -p mmm-agent failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("debug/mmm_agentd");
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// Agents started on the testbed; SIGKILLed on drop if a test failed before stopping them.
struct Agents {
    children: Vec<(String, Child)>,
}

impl Agents {
    fn pid(&self, host: &str) -> i32 {
        self.children
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, c)| c.id() as i32)
            .expect("agent started")
    }

    /// SIGTERM every agent and wait (5 s) for a clean exit.
    fn stop(&mut self) -> Vec<(String, Option<i32>)> {
        let mut out = Vec::new();
        for (h, c) in &mut self.children {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let start = Instant::now();
            let code = loop {
                match c.try_wait() {
                    Ok(Some(s)) => break s.code(),
                    _ if start.elapsed() > Duration::from_secs(5) => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break None;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            out.push((h.clone(), code));
        }
        self.children.clear();
        out
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn vm_rss_kb(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs `f` on a thread that has entered `host`'s network namespace, with its own
/// current-thread tokio runtime (all sockets it opens live in that namespace).
fn on_host<T: Send>(tb: &Testbed, host: &str, f: impl FnOnce() -> T + Send) -> T {
    let ns = PathBuf::from("/run/netns").join(&tb.host(host).expect("host").netns);
    std::thread::scope(|s| {
        s.spawn(move || {
            let file = std::fs::File::open(&ns).expect("netns file");
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("setns into the monitor's network namespace");
            f()
        })
        .join()
        .expect("monitor-side thread")
    })
}

fn plain() -> SocketConfig {
    SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    }
}

/// One request on its own connection, as the monitor does; returns the result part.
async fn send(ip: Ipv4Addr, line: &str) -> String {
    let addr = format!("{ip}:9989");
    let mut s = socket::connect(&addr, &plain(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(60), r.read_line(&mut reply))
        .await
        .expect("agent reply within 60 s")
        .unwrap();
    println!("-> {line}\n<- {}", reply.trim_end());
    let d = mmm_common::proto::agent::decode_reply(reply.trim_end());
    assert!(d.uptime.is_some(), "reply without |UP: {reply:?}");
    d.result
}

async fn wait_agent(ip: Ipv4Addr, host: &str) {
    let start = Instant::now();
    loop {
        let addr = format!("{ip}:9989");
        if let Ok(mut s) = socket::connect(&addr, &plain(), Duration::from_secs(1)).await {
            s.write_all(format!("PING|1|{host}\n").as_bytes())
                .await
                .unwrap();
            let mut line = String::new();
            let _ = BufReader::new(s).read_line(&mut line).await;
            if line.starts_with("OK: Pinged!|UP:") {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "agent on {host} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn has_vip(tb: &Testbed, host: &str, vip: Ipv4Addr) -> bool {
    let out = tb
        .exec(host, &["ip", "-o", "-4", "addr", "show", "dev", "ens33"])
        .expect("ip addr");
    let needle = format!(" {vip}/32 ");
    String::from_utf8_lossy(&out.stdout).contains(&needle)
}

fn value(tb: &Testbed, host: &str, q: &str) -> String {
    tb.query(host, q)
        .unwrap_or_else(|e| panic!("{host}: {q}: {e}"))
        .first()
        .and_then(|r| r.at(0).map(str::to_string))
        .unwrap_or_default()
}

/// The application: inserts through the writer VIP as `app` (no READ_ONLY ADMIN), one row
/// per transaction, reconnecting after errors; records the ids it got acknowledged.
async fn write_load(vip: Ipv4Addr, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<u64>>>) -> u64 {
    let mut failures = 0u64;
    let mut seq = 0u64;
    let mut conn: Option<mysql_async::Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname(vip.to_string())
                .tcp_port(3306)
                .user(Some("app"))
                .pass(Some(mmm_tests::PASSWORD))
                .prefer_socket(false);
            match tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::new(opts)).await {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        seq += 1;
        let q = format!("INSERT INTO ma_agent.rows (seq) VALUES ({seq})");
        match tokio::time::timeout(Duration::from_secs(2), c.query_drop(q)).await {
            Ok(Ok(())) => acked.lock().unwrap().push(seq),
            _ => {
                failures += 1;
                conn = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    failures
}

#[test]
fn writer_move_and_slave_switch_under_write_load() {
    let bin = agent_binary();
    let tb = Testbed::up(TestbedOptions::new(SUBNET))
        .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    println!(
        "testbed {} up in {:.2} s",
        tb.id(),
        tb.up_duration().as_secs_f64()
    );
    let writer_vip = tb.vip(188);
    let (r1, r2) = (tb.vip(198), tb.vip(199));
    let ip = |h: &str| tb.ip(h);

    tb.query(
        "db1",
        "CREATE DATABASE IF NOT EXISTS ma_agent; \
         CREATE TABLE ma_agent.rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, seq BIGINT NOT NULL, \
         at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
    )
    .expect("create table");

    let bin_s = bin.display().to_string();
    let mut agents = Agents {
        children: Vec::new(),
    };
    for h in DBS {
        let c = tb
            .spawn(h, &[&bin_s, "--foreground"])
            .unwrap_or_else(|e| panic!("spawn agent on {h}: {e}"));
        agents.children.push((h.to_string(), c));
    }

    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));

    let tb_ref = &tb;
    let acked2 = Arc::clone(&acked);
    let stop2 = Arc::clone(&stop);
    let pids: Vec<(String, i32)> = DBS.iter().map(|h| (h.to_string(), agents.pid(h))).collect();
    let (failures, move_ms, switch_ms) = on_host(&tb, "monitor", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for h in DBS {
                wait_agent(ip(h), h).await;
            }
            // Fresh agents.
            assert_eq!(
                send(ip("db1"), "GET_AGENT_STATUS|1|db1").await,
                "OK: Returning status!|UNKNOWN||"
            );
            // The monitor's initial distribution: writer on db1, readers on db3/db4.
            let ok = "OK: Status applied successfully!";
            let w = format!("writer({writer_vip})");
            assert_eq!(
                send(ip("db1"), &format!("SET_STATUS|1|db1|ONLINE|{w}|db1")).await,
                ok
            );
            assert_eq!(send(ip("db2"), "SET_STATUS|1|db2|ONLINE||db1").await, ok);
            assert_eq!(
                send(
                    ip("db3"),
                    &format!("SET_STATUS|1|db3|ONLINE|reader({r1})|db1")
                )
                .await,
                ok
            );
            assert_eq!(
                send(
                    ip("db4"),
                    &format!("SET_STATUS|1|db4|ONLINE|reader({r2})|db1")
                )
                .await,
                ok
            );
            assert_eq!(
                send(ip("db1"), "GET_SYSTEM_STATUS|1|db1").await,
                format!("OK: Returning status!|1|{w}|{}", ip("db2"))
            );
            assert_eq!(
                send(ip("db3"), "GET_AGENT_STATUS|1|db3").await,
                format!("OK: Returning status!|ONLINE|reader({r1})|db1")
            );
            assert!(has_vip(tb_ref, "db1", writer_vip));
            assert_eq!(value(tb_ref, "db1", "SELECT @@read_only"), "0");

            // The application writes through the VIP.
            let load = tokio::spawn(write_load(writer_vip, stop2.clone(), acked2.clone()));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let before_move = acked2.lock().unwrap().len();
            assert!(before_move > 0, "no write went through the VIP on db1");
            let db1_mac = tb_ref.host("db1").unwrap().mac;
            let db2_mac = tb_ref.host("db2").unwrap().mac;
            assert_eq!(
                tb_ref.neighbour_mac("monitor", writer_vip).unwrap(),
                Some(db1_mac),
                "monitor resolves the VIP to db1 before the move"
            );

            // Move the writer: the old holder gives it up, then the new one takes it.
            let t = Instant::now();
            assert_eq!(send(ip("db1"), "SET_STATUS|1|db1|ONLINE||db2").await, ok);
            assert_eq!(
                send(ip("db2"), &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")).await,
                ok
            );
            let move_ms = t.elapsed().as_millis();
            let start = Instant::now();
            loop {
                let mac = tb_ref.neighbour_mac("monitor", writer_vip).unwrap();
                if mac == Some(db2_mac) {
                    println!(
                        "monitor's neighbour entry for {writer_vip} = db2's MAC {} after {} ms",
                        db2_mac,
                        start.elapsed().as_millis()
                    );
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(3),
                    "monitor still resolves {writer_vip} to {mac:?}, not db2 {db2_mac}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }

            // Re-point the slaves to db2 while the application keeps writing.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = Instant::now();
            assert_eq!(
                send(
                    ip("db3"),
                    &format!("SET_STATUS|1|db3|ONLINE|reader({r1})|db2")
                )
                .await,
                ok
            );
            assert_eq!(
                send(
                    ip("db4"),
                    &format!("SET_STATUS|1|db4|ONLINE|reader({r2})|db2")
                )
                .await,
                ok
            );
            let switch_ms = t.elapsed().as_millis();
            assert_eq!(
                send(ip("db4"), "GET_AGENT_STATUS|1|db4").await,
                format!("OK: Returning status!|ONLINE|reader({r2})|db2")
            );
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop2.store(true, Ordering::Relaxed);
            let failures = load.await.unwrap();
            // After the monitor's check: nothing stays half-applied.
            assert_eq!(
                send(ip("db1"), "CLEAR_BAD_ROLES|1|db1").await,
                "OK: Removed 0 roles"
            );
            (failures, move_ms, switch_ms)
        })
    });
    println!(
        "writer move took {move_ms} ms, slave switches {switch_ms} ms, {failures} failed writes"
    );

    // Exactly one host has the writer VIP: db2, writable; db1 read-only.
    let holders: Vec<&str> = DBS
        .iter()
        .copied()
        .filter(|h| has_vip(&tb, h, writer_vip))
        .collect();
    assert_eq!(holders, vec!["db2"]);
    assert_eq!(value(&tb, "db2", "SELECT @@read_only"), "0");
    assert_eq!(value(&tb, "db1", "SELECT @@read_only"), "1");
    assert!(has_vip(&tb, "db3", r1) && has_vip(&tb, "db4", r2));

    // Replication: db3/db4 from db2, masters from each other, all threads running.
    for (h, m) in [
        ("db1", "db2"),
        ("db2", "db1"),
        ("db3", "db2"),
        ("db4", "db2"),
    ] {
        tb.wait_slave_running(h)
            .unwrap_or_else(|e| panic!("{h}: {e}"));
        let st = tb.slave_status(h).unwrap().expect("slave status");
        assert_eq!(
            st.get("Master_Host"),
            Some(ip(m).to_string().as_str()),
            "{h} replicates from {m}"
        );
        println!(
            "{h}: master {m}, Using_Gtid={:?}",
            st.get("Using_Gtid").unwrap_or("?")
        );
    }

    // Every server converges to the same rows, and every acknowledged row is there.
    let acked: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();
    assert!(
        acked.len() > 10,
        "too few acknowledged writes: {}",
        acked.len()
    );
    let start = Instant::now();
    let sums = loop {
        let sums: Vec<String> = DBS
            .iter()
            .map(|h| {
                value(
                    &tb,
                    h,
                    "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT(id, ':', seq))), 0)) FROM ma_agent.rows",
                )
            })
            .collect();
        if sums.iter().all(|s| *s == sums[0]) {
            break sums;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "servers did not converge: {sums:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "all four servers hold {} (count/crc); {} acknowledged writes",
        sums[0],
        acked.len()
    );
    for h in DBS {
        let rows = tb
            .query(h, "SELECT seq FROM ma_agent.rows")
            .expect("select");
        let present: BTreeSet<u64> = rows
            .iter()
            .filter_map(|r| r.at(0).and_then(|v| v.parse().ok()))
            .collect();
        let missing: Vec<&u64> = acked.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "{h} lacks acknowledged rows {missing:?}"
        );
    }

    // Resident memory of each agent.
    let rss_before_stop: Vec<(String, Option<u64>)> = pids
        .iter()
        .map(|(h, pid)| (h.clone(), vm_rss_kb(*pid)))
        .collect();
    for (h, rss) in &rss_before_stop {
        let comm =
            std::fs::read_to_string(format!("/proc/{}/comm", agents.pid(h))).unwrap_or_default();
        println!("agent on {h}: VmRSS {rss:?} kB (comm {})", comm.trim());
        assert!(rss.is_some(), "agent on {h} is not running");
    }

    // SIGTERM: clean exit, pid file removed, VIPs stay (as in MMM).
    for (h, code) in agents.stop() {
        assert_eq!(code, Some(0), "agent on {h} exit code");
        let pid = tb.host_dir(&h).unwrap().join("run/mysql-mmm-agent.pid");
        assert!(!pid.exists(), "{} left behind", pid.display());
    }
    assert!(has_vip(&tb, "db2", writer_vip));
    tb.down().expect("testbed down");
}
