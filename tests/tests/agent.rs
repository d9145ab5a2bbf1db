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
//! - `restart_failures_and_daemon_plumbing`: `--version`, `--check-config`, daemonizing
//!   when started by hand, pid file (second copy refused, stale file warned about, removed
//!   on SIGTERM), MMM's log file layout; a restarted agent is UNKNOWN and CLEAR_BAD_ROLES
//!   removes the VIP it still has; GET_SYSTEM_STATUS with MySQL down; the writer role
//!   refused (ERROR, bounded by `sync_timeout`, read_only stays 1, no VIP) while the new
//!   master lags, then taken on the next SET_STATUS.
//! - `failover_after_the_active_master_died`: db1's mysqld killed; the writer moves to db2
//!   and the slaves switch to db2 with the old master unreachable; no acknowledged row lost.
//! - `tls_agent_requires_client_certificates`: started as systemd would (`NOTIFY_SOCKET`,
//!   no `--foreground`): stays in the foreground and sends `READY=1`; with `<socket> type
//!   ssl` it serves a client certificate of the cluster's CA only.
//!
//! Needs root, iproute2 and MariaDB (the testbed says which is missing).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmm_common::config::{SocketConfig, SocketType};
use mmm_common::socket;
use mmm_common::test_pki::{make_pki, ssl_config};
use mmm_tests::{Testbed, TestbedOptions};
use mysql_async::prelude::Queryable;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// This file's testbed subnets (198.18.61-65.0/24).
const SUBNET: u8 = 61;

/// The tests of this file run one at a time: three testbeds bootstrapping MariaDB at once
/// on a small machine made `mariadbd --bootstrap` fail now and then.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
const DBS: [&str; 4] = ["db1", "db2", "db3", "db4"];

/// The mmm_agentd built beside this test (scripts/test.sh builds the whole workspace
/// before testing; `cargo build --bins` by hand).
fn agent_binary() -> PathBuf {
    mmm_tests::workspace_binary("mmm_agentd").expect("mmm_agentd binary")
}

/// Agents started on the testbed; SIGKILLed on drop if a test failed before stopping them.
struct Agents {
    children: Vec<(String, Child)>,
}

impl Agents {
    /// `mmm_agentd --foreground` on each of `hosts`.
    fn start(tb: &Testbed, bin: &str, hosts: &[&str]) -> Agents {
        let mut agents = Agents {
            children: Vec::new(),
        };
        for h in hosts {
            let c = tb
                .spawn(h, &[bin, "--foreground"])
                .unwrap_or_else(|e| panic!("spawn agent on {h}: {e}"));
            agents.children.push((h.to_string(), c));
        }
        agents
    }

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

/// The monitor's initial distribution, each answered OK: writer on db1, db2 passive,
/// readers `r1` on db3 and `r2` on db4, all with db1 as active master.
async fn assign_initial_roles(tb: &Testbed, writer_vip: Ipv4Addr, r1: Ipv4Addr, r2: Ipv4Addr) {
    for (h, roles) in [
        ("db1", format!("writer({writer_vip})")),
        ("db2", String::new()),
        ("db3", format!("reader({r1})")),
        ("db4", format!("reader({r2})")),
    ] {
        assert_eq!(
            send(tb.ip(h), &format!("SET_STATUS|1|{h}|ONLINE|{roles}|db1")).await,
            "OK: Status applied successfully!",
            "{h}"
        );
    }
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

/// A MySQL connection to `ip` as `user` (password 123456).
async fn connect_as(ip: Ipv4Addr, user: &str) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip.to_string())
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(mmm_tests::PASSWORD))
        .prefer_socket(false);
    tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts))
        .await
        .expect("connect in time")
        .unwrap_or_else(|e| panic!("connect to {ip} as {user}: {e}"))
}

/// The application: inserts through the writer VIP as `app` (no READ_ONLY ADMIN), one row
/// per transaction, reconnecting after errors; records the ids it got acknowledged.
async fn write_load(
    vip: Ipv4Addr,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    first_seq: u64,
) -> u64 {
    let mut failures = 0u64;
    let mut seq = first_seq;
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
    let _serial = serial();
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
    let mut agents = Agents::start(&tb, &bin_s, &DBS);

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
            assign_initial_roles(tb_ref, writer_vip, r1, r2).await;
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
            let load = tokio::spawn(write_load(writer_vip, stop2.clone(), acked2.clone(), 0));
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

            // Idle client connections to db1: the application's is killed when db1 gives
            // up the writer role, another agent's (agent_user) is spared.
            let mut idle_app = connect_as(ip("db1"), "app").await;
            let mut idle_agent = connect_as(ip("db1"), "mmm_agent").await;

            // Move the writer: the old holder gives it up, then the new one takes it.
            let t = Instant::now();
            assert_eq!(send(ip("db1"), "SET_STATUS|1|db1|ONLINE||db2").await, ok);
            assert!(
                idle_app.query_drop("SELECT 1").await.is_err(),
                "the application's connection to db1 survived deny-writes"
            );
            idle_agent
                .query_drop("SELECT 1")
                .await
                .expect("agent_user connection spared by the kill loop");
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

            // A client misdirected to the old holder (as after a healed split, when the
            // old holder answered its ARP request) is brought back by db2's periodic
            // gratuitous ARP (`arp_refresh`, 1 s by default).
            let poison = [
                "ip", "neigh", "replace", &writer_vip.to_string(), "lladdr",
                &db1_mac.to_string(), "dev", "ens33", "nud", "reachable",
            ];
            // After the add's own bursts (arp_repeat × arp_interval), so only the refresh
            // can correct it; poisoned again if a refresh landed between write and read.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let mut poisoned = false;
            for _ in 0..5 {
                let out = tb_ref.exec("monitor", &poison).unwrap();
                assert!(out.status.success(), "ip neigh replace: {out:?}");
                if tb_ref.neighbour_mac("monitor", writer_vip).unwrap() == Some(db1_mac) {
                    poisoned = true;
                    break;
                }
            }
            assert!(poisoned, "could not point the monitor's entry for {writer_vip} at db1");
            let start = Instant::now();
            loop {
                let mac = tb_ref.neighbour_mac("monitor", writer_vip).unwrap();
                if mac == Some(db2_mac) {
                    println!(
                        "misdirected neighbour entry for {writer_vip} corrected by the ARP refresh after {} ms",
                        start.elapsed().as_millis()
                    );
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(3),
                    "monitor still resolves {writer_vip} to {mac:?} 3 s after it was misdirected; the ARP refresh should have corrected it to db2 {db2_mac}"
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

/// Runs `argv` on `host` as if started by hand (no systemd variables), at most 20 s.
fn run_by_hand(tb: &Testbed, host: &str, argv: &[&str]) -> std::process::Output {
    let mut cmd = tb.command(host, argv).expect("command");
    cmd.env_remove("INVOCATION_ID")
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{argv:?} on {host} did not finish in 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie does not: this machine's init may not reap orphans).
fn pid_alive(pid: i32) -> bool {
    mmm_common::pidfile::pid_alive(pid)
}

/// Waits (at most 5 s) until `pid` is gone.
fn wait_gone(pid: i32) {
    let start = Instant::now();
    while pid_alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "pid {pid} still running"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills (SIGKILL) a daemonized agent by pid on drop.
struct Pids(Vec<i32>);

impl Drop for Pids {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn restart_failures_and_daemon_plumbing() {
    let _serial = serial();
    let bin = agent_binary();
    let bin_s = bin.display().to_string();
    let tb = Testbed::up(TestbedOptions::new(SUBNET + 1))
        .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    let writer_vip = tb.vip(188);
    let ip = |h: &str| tb.ip(h);
    let pid_file = |h: &str| tb.host_dir(h).unwrap().join("run/mysql-mmm-agent.pid");
    let log_file = |h: &str| {
        tb.host_dir(h)
            .unwrap()
            .join("var/log/mysql-mmm/mmm_agentd.log")
    };

    // --version and --check-config.
    let out = run_by_hand(&tb, "db1", &[&bin_s, "--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "mmm_agentd 2.2.1-rs.1\n"
    );
    let out = run_by_hand(&tb, "db1", &[&bin_s, "--check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check-config: {text}");
    assert!(text.contains("db1") && !text.contains("123456"), "{text}");
    let out = run_by_hand(&tb, "db1", &[&bin_s, "@nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mmm_agent_nosuch.conf"));

    // Started by hand: daemonizes, the parent exits 0, the pid file names the daemon.
    let out = run_by_hand(&tb, "db1", &[&bin_s]);
    assert!(out.status.success(), "{out:?}");
    let mut pids = Pids(Vec::new());
    let pid: i32 = std::fs::read_to_string(pid_file("db1"))
        .expect("pid file written")
        .parse()
        .expect("pid");
    pids.0.push(pid);
    assert!(pid_alive(pid));
    // A second copy is refused while the first lives.
    let out = run_by_hand(&tb, "db1", &[&bin_s, "--foreground"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Can't run second copy of mmm_agentd"));

    let mut agents = Agents::start(&tb, &bin_s, &["db2", "db3"]);
    // db2's agent gets a short sync_timeout for the timeout case below.
    let conf = tb
        .host_dir("db2")
        .unwrap()
        .join("etc/mysql-mmm/mmm_agent.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("sync_timeout 2\n");
    std::fs::write(&conf, text).unwrap();
    let db2 = agents
        .children
        .iter_mut()
        .find(|(h, _)| h == "db2")
        .unwrap();
    let _ = db2.1.kill();
    let _ = db2.1.wait();
    let _ = std::fs::remove_file(pid_file("db2"));
    db2.1 = tb.spawn("db2", &[&bin_s, "--foreground"]).unwrap();

    let tb_ref = &tb;
    on_host(&tb, "monitor", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for h in ["db1", "db2", "db3"] {
                wait_agent(ip(h), h).await;
            }
            let ok = "OK: Status applied successfully!";
            let w = format!("writer({writer_vip})");
            assert_eq!(
                send(ip("db1"), &format!("SET_STATUS|1|db1|ONLINE|{w}|db1")).await,
                ok
            );
            assert!(has_vip(tb_ref, "db1", writer_vip));

            // kill -9 and restart: the agent forgets its roles (UNKNOWN), the stale pid
            // file is only warned about, and CLEAR_BAD_ROLES removes the VIP it still has.
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            wait_gone(pid);
            let out = run_by_hand(tb_ref, "db1", &[&bin_s]);
            assert!(out.status.success(), "{out:?}");
            wait_agent(ip("db1"), "db1").await;
            assert_eq!(
                send(ip("db1"), "GET_AGENT_STATUS|1|db1").await,
                "OK: Returning status!|UNKNOWN||"
            );
            assert_eq!(
                send(ip("db1"), "GET_SYSTEM_STATUS|1|db1").await,
                format!("OK: Returning status!|1|{w}|{}", ip("db2"))
            );
            assert_eq!(
                send(ip("db1"), "CLEAR_BAD_ROLES|1|db1").await,
                "OK: Removed 1 roles"
            );
            assert!(!has_vip(tb_ref, "db1", writer_vip));
            assert_eq!(value(tb_ref, "db1", "SELECT @@read_only"), "1");
            let log = std::fs::read_to_string(log_file("db1")).unwrap_or_default();
            assert!(
                log.contains("  WARN Unclean start - found stale pid file!"),
                "{log}"
            );
            assert!(log.contains("  INFO STARTING..."), "{log}");

            // MySQL down: GET_SYSTEM_STATUS answers (no crash), empty master ip.
            tb_ref.mysql_stop("db3").unwrap();
            assert_eq!(
                send(ip("db3"), "GET_SYSTEM_STATUS|1|db3").await,
                "OK: Returning status!|||"
            );
            assert_eq!(send(ip("db3"), "PING|1|db3").await, "OK: Pinged!");
            tb_ref.mysql_start("db3").unwrap();

            // The writer role cannot be taken while db2 lags behind db1: bounded wait,
            // failure reported, nothing enabled; the role is kept and retried.
            tb_ref.delay_replication("db2", 3600).unwrap();
            tb_ref
                .query(
                    "db1",
                    "CREATE DATABASE ma_lag; CREATE TABLE ma_lag.t (a INT)",
                )
                .unwrap();
            let t = Instant::now();
            let r = send(ip("db2"), &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")).await;
            let waited = t.elapsed();
            assert!(
                r.starts_with("ERROR: Couldn't sync with master: MASTER_POS_WAIT("),
                "{r}"
            );
            assert!(r.contains("timed out"), "{r}");
            assert!(
                waited < Duration::from_secs(10),
                "sync wait not bounded: {waited:?}"
            );
            assert!(!has_vip(tb_ref, "db2", writer_vip));
            assert_eq!(value(tb_ref, "db2", "SELECT @@read_only"), "1");
            assert_eq!(
                send(ip("db2"), "GET_AGENT_STATUS|1|db2").await,
                format!("OK: Returning status!|ONLINE|{w}|")
            );
            tb_ref.undelay_replication("db2").unwrap();
            assert_eq!(
                send(ip("db2"), &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")).await,
                ok
            );
            assert!(has_vip(tb_ref, "db2", writer_vip));
            assert_eq!(value(tb_ref, "db2", "SELECT @@read_only"), "0");
            assert_eq!(value(tb_ref, "db2", "SELECT COUNT(*) FROM ma_lag.t"), "0");
        })
    });

    // SIGTERM the daemonized agent: exit, pid file removed.
    let pid: i32 = std::fs::read_to_string(pid_file("db1"))
        .unwrap()
        .parse()
        .unwrap();
    pids.0.push(pid);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    while pid_alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "agent ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_file("db1").exists());
    let log = std::fs::read_to_string(log_file("db1")).unwrap_or_default();
    assert!(log.contains("  INFO Signal received: exiting..."), "{log}");
    for (h, code) in agents.stop() {
        assert_eq!(code, Some(0), "agent on {h}");
    }
    tb.down().expect("testbed down");
}

/// The same set of rows on `hosts` (count and checksum), polled for 30 s.
fn wait_same_rows(tb: &Testbed, hosts: &[&str], table: &str) -> String {
    let q = format!(
        "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT(id, ':', seq))), 0)) FROM {table}"
    );
    let start = Instant::now();
    loop {
        let sums: Vec<String> = hosts.iter().map(|h| value(tb, h, &q)).collect();
        if sums.iter().all(|s| *s == sums[0]) {
            return sums[0].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{hosts:?} did not converge: {sums:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_rows_present(tb: &Testbed, host: &str, acked: &BTreeSet<u64>) {
    let rows = tb
        .query(host, "SELECT seq FROM ma_agent.rows")
        .expect("select");
    let present: BTreeSet<u64> = rows
        .iter()
        .filter_map(|r| r.at(0).and_then(|v| v.parse().ok()))
        .collect();
    let missing: Vec<&u64> = acked.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "{host} lacks acknowledged rows {missing:?}"
    );
}

#[test]
fn failover_after_the_active_master_died() {
    let _serial = serial();
    let bin = agent_binary();
    let bin_s = bin.display().to_string();
    let tb = Testbed::up(TestbedOptions::new(SUBNET + 2))
        .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    let writer_vip = tb.vip(188);
    let (r1, r2) = (tb.vip(198), tb.vip(199));
    let ip = |h: &str| tb.ip(h);
    tb.query(
        "db1",
        "CREATE DATABASE ma_agent; CREATE TABLE ma_agent.rows (id BIGINT AUTO_INCREMENT \
         PRIMARY KEY, seq BIGINT NOT NULL)",
    )
    .expect("create table");
    let mut agents = Agents::start(&tb, &bin_s, &DBS);
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let tb_ref = &tb;
    let acked2 = Arc::clone(&acked);
    on_host(&tb, "monitor", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for h in DBS {
                wait_agent(ip(h), h).await;
            }
            let ok = "OK: Status applied successfully!";
            let w = format!("writer({writer_vip})");
            assign_initial_roles(tb_ref, writer_vip, r1, r2).await;
            // Writes on db1, replicated everywhere, then db1's mysqld dies.
            let stop = Arc::new(AtomicBool::new(false));
            let load = tokio::spawn(write_load(writer_vip, stop.clone(), acked2.clone(), 0));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop.store(true, Ordering::Relaxed);
            load.await.unwrap();
            wait_same_rows(tb_ref, &DBS, "ma_agent.rows");
            tb_ref.mysql_kill9("db1").unwrap();

            // The monitor takes db1 offline (its agent cannot deny writes: MySQL is dead,
            // reported; the VIP is removed anyway), then moves the roles.
            let r = send(ip("db1"), "SET_STATUS|1|db1|HARD_OFFLINE||db2").await;
            assert!(
                r.starts_with("ERROR: Couldn't deny writes: Can't connect to MySQL"),
                "{r}"
            );
            assert!(!has_vip(tb_ref, "db1", writer_vip));
            let t = Instant::now();
            assert_eq!(
                send(ip("db2"), &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")).await,
                ok
            );
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
            println!("failover with db1 dead: {} ms", t.elapsed().as_millis());
            // The application goes on through the VIP, now on db2.
            let stop = Arc::new(AtomicBool::new(false));
            let before = acked2.lock().unwrap().len();
            let load = tokio::spawn(write_load(
                writer_vip,
                stop.clone(),
                acked2.clone(),
                1_000_000,
            ));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stop.store(true, Ordering::Relaxed);
            load.await.unwrap();
            assert!(
                acked2.lock().unwrap().len() > before,
                "no write through the VIP on db2"
            );
        })
    });
    for h in ["db3", "db4"] {
        tb.wait_slave_running(h)
            .unwrap_or_else(|e| panic!("{h}: {e}"));
        let st = tb.slave_status(h).unwrap().expect("slave status");
        assert_eq!(st.get("Master_Host"), Some(ip("db2").to_string().as_str()));
    }
    let sum = wait_same_rows(&tb, &["db2", "db3", "db4"], "ma_agent.rows");
    let acked: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();
    for h in ["db2", "db3", "db4"] {
        assert_rows_present(&tb, h, &acked);
    }
    println!(
        "db2, db3, db4 hold {sum} (count/crc); {} acknowledged writes",
        acked.len()
    );
    assert_eq!(value(&tb, "db2", "SELECT @@read_only"), "0");
    for (h, code) in agents.stop() {
        assert_eq!(code, Some(0), "agent on {h}");
    }
    tb.down().expect("testbed down");
}

/// A fresh directory `<temp>/<prefix>-<pid>` (the caller removes it).
fn tempfile_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tls_agent_requires_client_certificates() {
    let _serial = serial();
    let bin = agent_binary();
    let bin_s = bin.display().to_string();
    let tb = Testbed::up(TestbedOptions {
        subnet: SUBNET + 3,
        slaves: 0,
        ..TestbedOptions::default()
    })
    .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    // Certificates in the host's private /etc/mysql-mmm (visible at that path inside).
    let etc = tb.host_dir("db1").unwrap().join("etc/mysql-mmm");
    let pki = etc.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(
        &pki,
        &[("db1", "ca"), ("monitor", "ca"), ("rogue", "rogue-ca")],
    )
    .expect("test certificates (openssl CLI)");
    let inside = std::path::Path::new("/etc/mysql-mmm/pki");
    let mut conf = std::fs::read_to_string(etc.join("mmm_agent.conf")).unwrap();
    conf.push_str(&format!(
        "\n<socket>\n    type        ssl\n    cert_file   {0}/db1.pem\n    key_file    {0}/db1.key\n    ca_file     {0}/ca.pem\n</socket>\n",
        inside.display()
    ));
    std::fs::write(etc.join("mmm_agent.conf"), conf).unwrap();

    let notify_dir = tempfile_dir("ma-notify");
    let notify_path = notify_dir.join("notify.sock");
    let notify_rx = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let out_path = tb
        .host_dir("db1")
        .unwrap()
        .join("var/log/mysql-mmm/mmm_agentd.out");
    let mut agents = Agents {
        children: Vec::new(),
    };
    agents.children.push(("db1".into(), {
        // Started as systemd would (Type=notify): READY=1 arrives once it listens.
        let mut cmd = tb.command("db1", &[&bin_s]).unwrap();
        let out = std::fs::File::create(&out_path).unwrap();
        cmd.env("NOTIFY_SOCKET", &notify_path)
            .stdin(std::process::Stdio::null())
            .stderr(out.try_clone().unwrap())
            .stdout(out);
        cmd.spawn().unwrap()
    }));
    notify_rx
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = notify_rx.recv(&mut buf).unwrap_or_else(|e| {
        panic!(
            "no sd_notify message: {e}: {}",
            std::fs::read_to_string(&out_path).unwrap_or_default()
        )
    });
    assert_eq!(&buf[..n], b"READY=1");
    let addr = format!("{}:9989", tb.ip("db1"));
    let (good, rogue) = (
        ssl_config(&pki, "monitor", "ca"),
        ssl_config(&pki, "rogue", "ca"),
    );
    let out_file = out_path.clone();
    on_host(&tb, "monitor", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // A client with a certificate from the cluster's CA is served.
            let start = Instant::now();
            let reply = loop {
                if let Ok(mut s) = socket::connect(&addr, &good, Duration::from_secs(2)).await {
                    s.write_all(b"PING|1|db1\n").await.unwrap();
                    let mut line = String::new();
                    let _ = BufReader::new(s).read_line(&mut line).await;
                    if !line.is_empty() {
                        break line;
                    }
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "TLS agent not up: {}",
                    std::fs::read_to_string(&out_file).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert!(reply.starts_with("OK: Pinged!|UP:"), "{reply}");
            // A certificate from another CA is refused.
            match socket::connect(&addr, &rogue, Duration::from_secs(2)).await {
                Err(e) => println!("rogue client refused: {e}"),
                Ok(mut s) => {
                    let _ = s.write_all(b"PING|1|db1\n").await;
                    let mut line = String::new();
                    let r = BufReader::new(s).read_line(&mut line).await;
                    assert!(r.is_err() || line.is_empty(), "rogue client got {line:?}");
                }
            }
            // A plain TCP client gets no reply.
            let mut s = socket::connect(&addr, &plain(), Duration::from_secs(2))
                .await
                .unwrap();
            let _ = s.write_all(b"PING|1|db1\n").await;
            let mut line = String::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(15),
                BufReader::new(s).read_line(&mut line),
            )
            .await
            .expect("the agent closes a plain connection");
            assert!(!line.contains("OK: Pinged!"), "{line:?}");
            // Still serving valid clients.
            let mut s = socket::connect(&addr, &good, Duration::from_secs(2))
                .await
                .unwrap();
            s.write_all(b"GET_AGENT_STATUS|1|db1\n").await.unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).await.unwrap();
            assert!(
                line.starts_with("OK: Returning status!|UNKNOWN||"),
                "{line}"
            );
        })
    });
    for (h, code) in agents.stop() {
        assert_eq!(code, Some(0), "agent on {h}");
    }
    let _ = std::fs::remove_dir_all(&notify_dir);
    tb.down().expect("testbed down");
}

/// A slave that received transactions the new master never got (the old master died or
/// froze between sending them to the two) is not re-pointed: by GTID the new master lacks
/// them, by binlog position they would reach it again later (duplicate key, replication
/// broken) or its own transactions would be skipped. The agent answers ERROR and leaves the
/// slave on the old master; once the new master has them, the next SET_STATUS switches it.
#[test]
fn slave_ahead_of_the_new_master_is_not_switched() {
    let _serial = serial();
    let bin = agent_binary();
    let bin_s = bin.display().to_string();
    let tb = Testbed::up(TestbedOptions::new(SUBNET + 4))
        .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    let writer_vip = tb.vip(188);
    let (r1, r2) = (tb.vip(198), tb.vip(199));
    let ip = |h: &str| tb.ip(h);
    tb.query(
        "db1",
        "CREATE DATABASE ma_ahead; CREATE TABLE ma_ahead.rows (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL)",
    )
    .expect("create table");
    let insert = |host: &str, from: u64, to: u64| {
        let values: Vec<String> = (from..to).map(|i| format!("({i}, {i})")).collect();
        tb.query(
            host,
            &format!("INSERT INTO ma_ahead.rows VALUES {}", values.join(",")),
        )
        .expect("insert");
    };
    insert("db1", 0, 10);
    wait_same_rows(&tb, &DBS, "ma_ahead.rows");
    let mut agents = Agents::start(&tb, &bin_s, &DBS);
    let tb_ref = &tb;
    on_host(&tb, "monitor", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            for h in DBS {
                wait_agent(ip(h), h).await;
            }
            let ok = "OK: Status applied successfully!";
            let db4_on = |m: &str| format!("SET_STATUS|1|db4|ONLINE|reader({r2})|{m}");
            assign_initial_roles(tb_ref, writer_vip, r1, r2).await;
            // db2 stops receiving; db1 writes more, which db4 gets and db2 does not; then
            // db1's mysqld stops (a crash with the same outcome).
            tb_ref
                .query("db2", "STOP SLAVE IO_THREAD")
                .expect("stop io");
            insert("db1", 10, 20);
            wait_same_rows(tb_ref, &["db1", "db4"], "ma_ahead.rows");
            tb_ref.mysql_stop("db1").expect("stop db1");
            let r = send(ip("db4"), &db4_on("db2")).await;
            assert!(
                r.starts_with("ERROR: Failed to change master to 'db2': ")
                    && r.contains("this slave has transactions the new master lacks"),
                "{r}"
            );
            // Left on db1.
            let st = tb_ref.slave_status("db4").unwrap().expect("slave status");
            assert_eq!(st.get("Master_Host"), Some(ip("db1").to_string().as_str()));
            // db1 comes back, db2 catches up from it: the retry switches db4, by GTID.
            tb_ref.mysql_start("db1").expect("start db1");
            tb_ref
                .query("db2", "START SLAVE IO_THREAD")
                .expect("start io");
            wait_same_rows(tb_ref, &["db1", "db2"], "ma_ahead.rows");
            tb_ref.wait_slave_running("db4").expect("db4 back on db1");
            assert_eq!(send(ip("db4"), &db4_on("db2")).await, ok);
        })
    });
    tb.wait_slave_running("db4").expect("db4 slave running");
    let st = tb.slave_status("db4").unwrap().expect("slave status");
    assert_eq!(st.get("Master_Host"), Some(ip("db2").to_string().as_str()));
    assert_eq!(st.get("Using_Gtid"), Some("Slave_Pos"));
    // Transactions of the new master reach db4 once, nothing is repeated or skipped.
    insert("db2", 100, 110);
    wait_same_rows(&tb, &["db2", "db4"], "ma_ahead.rows");
    tb.wait_slave_running("db4")
        .expect("db4 slave running after new writes");
    for (h, code) in agents.stop() {
        assert_eq!(code, Some(0), "agent on {h}");
    }
    tb.down().expect("testbed down");
}
