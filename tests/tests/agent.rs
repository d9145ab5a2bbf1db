//! mmm_agentd on the testbed (issue 4): real agents in the db hosts' namespaces, real
//! MariaDB, real VIPs (rtnetlink) and gratuitous ARP (pnet), driven by SET_STATUS lines
//! that this test sends over real TCP **from the monitor host**, as the monitor would.
//!
//! The shared harness does the rest: [`Cluster`] with [`Daemons::Agents`] (or
//! [`Daemons::None`] where a test starts the agents itself) for the agents' lifecycle and
//! the requests ([`Cluster::agent_request`]), [`Workload`] for the application writing
//! through the writer VIP, [`checker`] for the row comparisons.
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
//! - `slave_ahead_of_the_new_master_is_not_switched`: see its doc.
//! - `only_the_monitor_commands_the_agents`: issue 15's attack (db3 tells db2's agent to
//!   take the writer role) is refused: `ERROR:`, no VIP, read_only stays 1, logged.
//!
//! Needs root, iproute2 and MariaDB (the testbed says which is missing), and the workspace's
//! binaries (`cargo build --bins`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mmm_common::config::{SocketConfig, SocketType};
use mmm_common::socket;
use mmm_common::test_pki::{make_pki, ssl_config};
use mmm_tests::checker;
use mmm_tests::cluster::{Cluster, ClusterOptions, Daemons, AGENT_PORT, DB_HOSTS};
use mmm_tests::workload::{self, Workload, WorkloadOptions, LOAD_TABLE};
use mysql_async::prelude::Queryable;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// This file's testbed subnets (198.18.61-66.0/24).
const SUBNET: u8 = 61;

/// The tests of this file run one at a time: three testbeds bootstrapping MariaDB at once
/// on a small machine made `mariadbd --bootstrap` fail now and then.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const OK: &str = "OK: Status applied successfully!";

/// Bound on the servers converging after a run.
const CONVERGE: Duration = Duration::from_secs(30);

/// The cluster of `subnet` with the given daemons (the seed's configs, no monitor).
fn cluster(opts: ClusterOptions) -> Cluster {
    Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"))
}

/// Agents on db1..db4, no monitor: the test plays the monitor.
fn agents_only(subnet: u8) -> Cluster {
    cluster(ClusterOptions {
        daemons: Daemons::Agents,
        ..ClusterOptions::seed(subnet)
    })
}

/// One request on its own connection from the monitor host, as the monitor does; returns
/// the result part.
fn send(c: &Cluster, host: &str, line: &str) -> String {
    c.agent_request(host, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn has_vip(c: &Cluster, host: &str, vip: Ipv4Addr) -> bool {
    c.holds_ip(host, vip).expect("ip addr")
}

fn read_only(c: &Cluster, host: &str) -> Option<bool> {
    c.read_only(host)
        .unwrap_or_else(|e| panic!("{host}: read_only: {e}"))
}

/// The application's write load through `vip` from the monitor host (as `app`, one row
/// per transaction, reconnecting after errors).
fn write_load(c: &Cluster, vip: Ipv4Addr, first_id: u64) -> Workload {
    let opts = WorkloadOptions {
        connect_timeout: Duration::from_secs(1),
        query_timeout: Duration::from_secs(2),
        first_id,
        ..WorkloadOptions::default()
    };
    Workload::start(c, "monitor", vip, opts).expect("write load")
}

/// The monitor's initial distribution, each answered OK: writer on db1, db2 passive,
/// readers `r1` on db3 and `r2` on db4, all with db1 as active master.
fn assign_initial_roles(c: &Cluster, writer_vip: Ipv4Addr, r1: Ipv4Addr, r2: Ipv4Addr) {
    for (h, roles) in [
        ("db1", format!("writer({writer_vip})")),
        ("db2", String::new()),
        ("db3", format!("reader({r1})")),
        ("db4", format!("reader({r2})")),
    ] {
        assert_eq!(
            send(c, h, &format!("SET_STATUS|1|{h}|ONLINE|{roles}|db1")),
            OK,
            "{h}"
        );
    }
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

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The same rows of `table` on `hosts`, polled for 30 s; returns the fingerprint.
fn wait_same_rows(c: &Cluster, hosts: &[&str], table: &str) -> String {
    checker::wait_same_rows(c, hosts, table, CONVERGE).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_rows_present(c: &Cluster, host: &str, acked: &BTreeSet<u64>) {
    let missing = checker::missing_ids(c, host, LOAD_TABLE, acked).expect("select");
    assert!(
        missing.is_empty(),
        "{host} lacks acknowledged rows {missing:?}"
    );
}

#[test]
fn writer_move_and_slave_switch_under_write_load() {
    let _serial = serial();
    let c = agents_only(SUBNET);
    println!(
        "testbed {} up in {:.2} s",
        c.id(),
        c.up_duration().as_secs_f64()
    );
    let writer_vip = c.vip(188);
    let (r1, r2) = (c.vip(198), c.vip(199));
    let ip = |h: &str| c.ip(h);
    workload::create_table(&c, "db1").expect("create table");
    let pids: Vec<(String, u32)> = DB_HOSTS
        .iter()
        .map(|h| (h.to_string(), c.agent_pid(h).expect("agent started")))
        .collect();

    // Fresh agents.
    assert_eq!(
        send(&c, "db1", "GET_AGENT_STATUS|1|db1"),
        "OK: Returning status!|UNKNOWN||"
    );
    // The monitor's initial distribution: writer on db1, readers on db3/db4.
    let w = format!("writer({writer_vip})");
    assign_initial_roles(&c, writer_vip, r1, r2);
    assert_eq!(
        send(&c, "db1", "GET_SYSTEM_STATUS|1|db1"),
        format!("OK: Returning status!|1|{w}|{}", ip("db2"))
    );
    assert_eq!(
        send(&c, "db3", "GET_AGENT_STATUS|1|db3"),
        format!("OK: Returning status!|ONLINE|reader({r1})|db1")
    );
    assert!(has_vip(&c, "db1", writer_vip));
    assert_eq!(read_only(&c, "db1"), Some(false));

    // The application writes through the VIP.
    let load = write_load(&c, writer_vip, 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(load.acked() > 0, "no write went through the VIP on db1");
    let db1_mac = c.host("db1").unwrap().mac;
    let db2_mac = c.host("db2").unwrap().mac;
    assert_eq!(
        c.neighbour_mac("monitor", writer_vip).unwrap(),
        Some(db1_mac),
        "monitor resolves the VIP to db1 before the move"
    );

    // Idle client connections to db1 (from the monitor host): the application's is killed
    // when db1 gives up the writer role, another agent's (agent_user) is spared.
    let move_ms = c
        .run_in_netns("monitor", || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (mut idle_app, mut idle_agent) = rt.block_on(async {
                (
                    connect_as(ip("db1"), "app").await,
                    connect_as(ip("db1"), "mmm_agent").await,
                )
            });

            // Move the writer: the old holder gives it up, then the new one takes it.
            let t = Instant::now();
            assert_eq!(send(&c, "db1", "SET_STATUS|1|db1|ONLINE||db2"), OK);
            rt.block_on(async {
                assert!(
                    idle_app.query_drop("SELECT 1").await.is_err(),
                    "the application's connection to db1 survived deny-writes"
                );
                idle_agent
                    .query_drop("SELECT 1")
                    .await
                    .expect("agent_user connection spared by the kill loop");
            });
            assert_eq!(
                send(&c, "db2", &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")),
                OK
            );
            t.elapsed().as_millis()
        })
        .expect("monitor-side thread");
    let start = Instant::now();
    loop {
        let mac = c.neighbour_mac("monitor", writer_vip).unwrap();
        if mac == Some(db2_mac) {
            println!(
                "monitor's neighbour entry for {writer_vip} = db2's MAC {} after {} ms",
                db2_mac,
                start.elapsed().as_millis()
            );
            break;
        }
        assert!(
            // 10 s: the gratuitous ARP's doing (the kernel's own re-resolution of a
            // REACHABLE entry takes 15 s or more), generous for a loaded machine.
            start.elapsed() < Duration::from_secs(10),
            "monitor still resolves {writer_vip} to {mac:?}, not db2 {db2_mac}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A client misdirected to the old holder (as after a healed split, when the old holder
    // answered its ARP request) is brought back by db2's periodic gratuitous ARP
    // (`arp_refresh`, 1 s by default).
    let poison = [
        "ip",
        "neigh",
        "replace",
        &writer_vip.to_string(),
        "lladdr",
        &db1_mac.to_string(),
        "dev",
        "ens33",
        "nud",
        "reachable",
    ];
    // After the add's own bursts (arp_repeat × arp_interval), so only the refresh can
    // correct it; poisoned again if a refresh landed between write and read.
    std::thread::sleep(Duration::from_millis(1200));
    let mut poisoned = false;
    for _ in 0..5 {
        let out = c.exec("monitor", &poison).unwrap();
        assert!(out.status.success(), "ip neigh replace: {out:?}");
        if c.neighbour_mac("monitor", writer_vip).unwrap() == Some(db1_mac) {
            poisoned = true;
            break;
        }
    }
    assert!(
        poisoned,
        "could not point the monitor's entry for {writer_vip} at db1"
    );
    let start = Instant::now();
    loop {
        let mac = c.neighbour_mac("monitor", writer_vip).unwrap();
        if mac == Some(db2_mac) {
            println!(
                "misdirected neighbour entry for {writer_vip} corrected by the ARP refresh after {} ms",
                start.elapsed().as_millis()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "monitor still resolves {writer_vip} to {mac:?} 10 s after it was misdirected; the ARP refresh should have corrected it to db2 {db2_mac}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Re-point the slaves to db2 while the application keeps writing.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    assert_eq!(
        send(
            &c,
            "db3",
            &format!("SET_STATUS|1|db3|ONLINE|reader({r1})|db2")
        ),
        OK
    );
    assert_eq!(
        send(
            &c,
            "db4",
            &format!("SET_STATUS|1|db4|ONLINE|reader({r2})|db2")
        ),
        OK
    );
    let switch_ms = t.elapsed().as_millis();
    assert_eq!(
        send(&c, "db4", "GET_AGENT_STATUS|1|db4"),
        format!("OK: Returning status!|ONLINE|reader({r2})|db2")
    );
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.stop();
    // After the monitor's check: nothing stays half-applied.
    assert_eq!(
        send(&c, "db1", "CLEAR_BAD_ROLES|1|db1"),
        "OK: Removed 0 roles"
    );
    println!(
        "writer move took {move_ms} ms, slave switches {switch_ms} ms, {} failed writes ({})",
        report.failures.len(),
        report.summary()
    );

    // Exactly one host has the writer VIP: db2, writable; db1 read-only.
    assert_eq!(c.vip_holders(writer_vip).expect("ip addr"), vec!["db2"]);
    assert_eq!(read_only(&c, "db2"), Some(false));
    assert_eq!(read_only(&c, "db1"), Some(true));
    assert!(has_vip(&c, "db3", r1) && has_vip(&c, "db4", r2));

    // Replication: db3/db4 from db2, masters from each other, all threads running.
    for (h, m) in [
        ("db1", "db2"),
        ("db2", "db1"),
        ("db3", "db2"),
        ("db4", "db2"),
    ] {
        c.wait_slave_running(h)
            .unwrap_or_else(|e| panic!("{h}: {e}"));
        let st = c.slave_status(h).unwrap().expect("slave status");
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
    let acked = report.acked_ids();
    assert!(
        acked.len() > 10,
        "too few acknowledged writes: {}",
        acked.len()
    );
    let check = checker::check_data(&c, &DB_HOSTS, &report, CONVERGE).expect("check data");
    assert!(
        check.converged_after.is_some(),
        "servers did not converge:\n{}",
        check.describe()
    );
    println!(
        "all four servers hold the same rows; {} acknowledged writes\n{}",
        acked.len(),
        check.describe()
    );
    for s in &check.servers {
        assert!(
            s.missing_acked.is_empty(),
            "{} lacks acknowledged rows {:?}",
            s.host,
            s.missing_acked
        );
    }

    // Resident memory of each agent.
    for (h, pid) in &pids {
        let rss = vm_rss_kb(*pid);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        println!("agent on {h}: VmRSS {rss:?} kB (comm {})", comm.trim());
        assert!(rss.is_some(), "agent on {h} is not running");
    }

    // SIGTERM: clean exit (status 0), pid file removed, VIPs stay (as in MMM).
    for h in DB_HOSTS {
        c.stop_agent(h)
            .unwrap_or_else(|e| panic!("agent on {h} exit code: {e}"));
        let pid = c.host_dir(h).unwrap().join("run/mysql-mmm-agent.pid");
        assert!(!pid.exists(), "{} left behind", pid.display());
    }
    assert!(has_vip(&c, "db2", writer_vip));
    c.stop().expect("testbed down");
}

/// The mmm_agentd built beside this test (scripts/test.sh builds the whole workspace
/// before testing; `cargo build --bins` by hand).
fn agent_binary() -> PathBuf {
    mmm_tests::workspace_binary("mmm_agentd").expect("mmm_agentd binary")
}

/// Runs `argv` on `host` as if started by hand (no systemd variables), at most 20 s.
fn run_by_hand(c: &Cluster, host: &str, argv: &[&str]) -> std::process::Output {
    let mut cmd = c.command(host, argv).expect("command");
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

/// Waits (at most 30 s) until `pid` is gone.
fn wait_gone(pid: i32) {
    let start = Instant::now();
    while pid_alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
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
    let c = cluster(ClusterOptions {
        daemons: Daemons::None,
        ..ClusterOptions::seed(SUBNET + 1)
    });
    let writer_vip = c.vip(188);
    let ip = |h: &str| c.ip(h);
    let pid_file = |h: &str| c.host_dir(h).unwrap().join("run/mysql-mmm-agent.pid");
    let log_file = |h: &str| {
        c.host_dir(h)
            .unwrap()
            .join("var/log/mysql-mmm/mmm_agentd.log")
    };

    // --version and --check-config.
    let out = run_by_hand(&c, "db1", &[&bin_s, "--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "mmm_agentd 2.2.1-rs.1\n"
    );
    let out = run_by_hand(&c, "db1", &[&bin_s, "--check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "check-config: {text}");
    assert!(text.contains("db1") && !text.contains("123456"), "{text}");
    let out = run_by_hand(&c, "db1", &[&bin_s, "@nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mmm_agent_nosuch.conf"));

    // Started by hand: daemonizes, the parent exits 0, the pid file names the daemon.
    let out = run_by_hand(&c, "db1", &[&bin_s]);
    assert!(out.status.success(), "{out:?}");
    let mut pids = Pids(Vec::new());
    // The daemon writes the pid file after the parent has exited: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let pid: i32 = loop {
        let text = std::fs::read_to_string(pid_file("db1")).unwrap_or_default();
        if let Ok(pid) = text.trim().parse() {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pid in {} 30 s after the start: {text:?}",
            pid_file("db1").display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    pids.0.push(pid);
    assert!(pid_alive(pid));
    // A second copy is refused while the first lives.
    let out = run_by_hand(&c, "db1", &[&bin_s, "--foreground"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Can't run second copy of mmm_agentd"));

    for h in ["db2", "db3"] {
        c.start_agent(h)
            .unwrap_or_else(|e| panic!("agent on {h}: {e}"));
    }
    // db2's agent gets a short sync_timeout for the timeout case below.
    let conf = c
        .host_dir("db2")
        .unwrap()
        .join("etc/mysql-mmm/mmm_agent.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("sync_timeout 2\n");
    std::fs::write(&conf, text).unwrap();
    c.kill_agent("db2").unwrap();
    let _ = std::fs::remove_file(pid_file("db2"));
    c.start_agent("db2").unwrap();

    for h in ["db1", "db2", "db3"] {
        c.wait_agent_answers(h).unwrap_or_else(|e| panic!("{e}"));
    }
    let w = format!("writer({writer_vip})");
    assert_eq!(
        send(&c, "db1", &format!("SET_STATUS|1|db1|ONLINE|{w}|db1")),
        OK
    );
    assert!(has_vip(&c, "db1", writer_vip));

    // kill -9 and restart: the agent forgets its roles (UNKNOWN), the stale pid file is
    // only warned about, and CLEAR_BAD_ROLES removes the VIP it still has.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(pid);
    let out = run_by_hand(&c, "db1", &[&bin_s]);
    assert!(out.status.success(), "{out:?}");
    c.wait_agent_answers("db1")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        send(&c, "db1", "GET_AGENT_STATUS|1|db1"),
        "OK: Returning status!|UNKNOWN||"
    );
    assert_eq!(
        send(&c, "db1", "GET_SYSTEM_STATUS|1|db1"),
        format!("OK: Returning status!|1|{w}|{}", ip("db2"))
    );
    assert_eq!(
        send(&c, "db1", "CLEAR_BAD_ROLES|1|db1"),
        "OK: Removed 1 roles"
    );
    assert!(!has_vip(&c, "db1", writer_vip));
    assert_eq!(read_only(&c, "db1"), Some(true));
    let log = std::fs::read_to_string(log_file("db1")).unwrap_or_default();
    assert!(
        log.contains("  WARN Unclean start - found stale pid file!"),
        "{log}"
    );
    assert!(log.contains("  INFO STARTING..."), "{log}");

    // MySQL down: GET_SYSTEM_STATUS answers (no crash), empty master ip.
    c.mysql_stop("db3").unwrap();
    assert_eq!(
        send(&c, "db3", "GET_SYSTEM_STATUS|1|db3"),
        "OK: Returning status!|||"
    );
    assert_eq!(send(&c, "db3", "PING|1|db3"), "OK: Pinged!");
    c.mysql_start("db3").unwrap();

    // The writer role cannot be taken while db2 lags behind db1: bounded wait, failure
    // reported, nothing enabled; the role is kept and retried.
    c.delay_replication("db2", 3600).unwrap();
    c.query(
        "db1",
        "CREATE DATABASE ma_lag; CREATE TABLE ma_lag.t (a INT)",
    )
    .unwrap();
    let t = Instant::now();
    let r = send(&c, "db2", &format!("SET_STATUS|1|db2|ONLINE|{w}|db2"));
    let waited = t.elapsed();
    assert!(
        r.starts_with("ERROR: Couldn't sync with master: MASTER_POS_WAIT("),
        "{r}"
    );
    assert!(r.contains("timed out"), "{r}");
    assert!(
        waited < Duration::from_secs(60),
        "sync wait not bounded: {waited:?}"
    );
    assert!(!has_vip(&c, "db2", writer_vip));
    assert_eq!(read_only(&c, "db2"), Some(true));
    assert_eq!(
        send(&c, "db2", "GET_AGENT_STATUS|1|db2"),
        format!("OK: Returning status!|ONLINE|{w}|")
    );
    c.undelay_replication("db2").unwrap();
    assert_eq!(
        send(&c, "db2", &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")),
        OK
    );
    assert!(has_vip(&c, "db2", writer_vip));
    assert_eq!(read_only(&c, "db2"), Some(false));
    let lag_rows = c
        .query("db2", "SELECT COUNT(*) FROM ma_lag.t")
        .expect("count")
        .first()
        .and_then(|r| r.at(0).map(str::to_string))
        .unwrap_or_default();
    assert_eq!(lag_rows, "0");

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
            start.elapsed() < Duration::from_secs(30),
            "agent ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_file("db1").exists());
    let log = std::fs::read_to_string(log_file("db1")).unwrap_or_default();
    assert!(log.contains("  INFO Signal received: exiting..."), "{log}");
    // The other agents exit 0 on SIGTERM; then the testbed goes.
    c.stop().expect("agents exit 0 on SIGTERM, testbed down");
}

#[test]
fn failover_after_the_active_master_died() {
    let _serial = serial();
    let c = agents_only(SUBNET + 2);
    let writer_vip = c.vip(188);
    let (r1, r2) = (c.vip(198), c.vip(199));
    let ip = |h: &str| c.ip(h);
    workload::create_table(&c, "db1").expect("create table");
    let w = format!("writer({writer_vip})");
    assign_initial_roles(&c, writer_vip, r1, r2);
    // Writes on db1, replicated everywhere, then db1's mysqld dies.
    let load = write_load(&c, writer_vip, 1);
    std::thread::sleep(Duration::from_millis(1500));
    let before = load.stop();
    wait_same_rows(&c, &DB_HOSTS, LOAD_TABLE);
    c.mysql_kill9("db1").unwrap();

    // The monitor takes db1 offline (its agent removes the VIP and owes read_only=1 without
    // waiting for its server, reported; issue 14), then moves the roles.
    let r = send(&c, "db1", "SET_STATUS|1|db1|HARD_OFFLINE||db2");
    assert!(
        r.starts_with("ERROR: Couldn't deny writes: not waited for (this host failed)"),
        "{r}"
    );
    assert!(!has_vip(&c, "db1", writer_vip));
    let t = Instant::now();
    assert_eq!(
        send(&c, "db2", &format!("SET_STATUS|1|db2|ONLINE|{w}|db2")),
        OK
    );
    assert_eq!(
        send(
            &c,
            "db3",
            &format!("SET_STATUS|1|db3|ONLINE|reader({r1})|db2")
        ),
        OK
    );
    assert_eq!(
        send(
            &c,
            "db4",
            &format!("SET_STATUS|1|db4|ONLINE|reader({r2})|db2")
        ),
        OK
    );
    println!("failover with db1 dead: {} ms", t.elapsed().as_millis());
    // The application goes on through the VIP, now on db2.
    let load = write_load(&c, writer_vip, 1_000_001);
    std::thread::sleep(Duration::from_millis(1500));
    let after = load.stop();
    assert!(!after.acks.is_empty(), "no write through the VIP on db2");

    for h in ["db3", "db4"] {
        c.wait_slave_running(h)
            .unwrap_or_else(|e| panic!("{h}: {e}"));
        let st = c.slave_status(h).unwrap().expect("slave status");
        assert_eq!(st.get("Master_Host"), Some(ip("db2").to_string().as_str()));
    }
    let sum = wait_same_rows(&c, &["db2", "db3", "db4"], LOAD_TABLE);
    let acked: BTreeSet<u64> = before
        .acked_ids()
        .union(&after.acked_ids())
        .copied()
        .collect();
    for h in ["db2", "db3", "db4"] {
        assert_rows_present(&c, h, &acked);
    }
    println!(
        "db2, db3, db4 hold {sum} (count/sum/xor of ids); {} acknowledged writes",
        acked.len()
    );
    assert_eq!(read_only(&c, "db2"), Some(false));
    c.stop().expect("agents exit 0 on SIGTERM, testbed down");
}

/// A fresh directory `<temp>/<prefix>-<pid>` (the caller removes it).
fn tempfile_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn plain() -> SocketConfig {
    SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    }
}

#[test]
fn tls_agent_requires_client_certificates() {
    let _serial = serial();
    let c = cluster(ClusterOptions {
        slaves: 0,
        daemons: Daemons::None,
        ..ClusterOptions::seed(SUBNET + 3)
    });
    // Certificates in the host's private /etc/mysql-mmm (visible at that path inside).
    let etc = c.host_dir("db1").unwrap().join("etc/mysql-mmm");
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
    let out_path = c
        .host_dir("db1")
        .unwrap()
        .join("var/log/mysql-mmm/mmm_agentd.out");
    // Started as systemd would (Type=notify): READY=1 arrives once it listens.
    c.start_agent_notify("db1", &notify_path).unwrap();
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
    let addr = format!("{}:{AGENT_PORT}", c.ip("db1"));
    let (good, rogue) = (
        ssl_config(&pki, "monitor", "ca"),
        ssl_config(&pki, "rogue", "ca"),
    );
    let out_file = out_path.clone();
    c.run_in_netns("monitor", move || {
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
                    start.elapsed() < Duration::from_secs(60),
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
    })
    .expect("monitor-side thread");
    let _ = std::fs::remove_dir_all(&notify_dir);
    c.stop().expect("agent exits 0 on SIGTERM, testbed down");
}

/// A slave that received transactions the new master never got (the old master died or
/// froze between sending them to the two) is not re-pointed: by GTID the new master lacks
/// them, by binlog position they would reach it again later (duplicate key, replication
/// broken) or its own transactions would be skipped. The agent answers ERROR and leaves the
/// slave on the old master; once the new master has them, the next SET_STATUS switches it.
#[test]
fn slave_ahead_of_the_new_master_is_not_switched() {
    let _serial = serial();
    let c = agents_only(SUBNET + 4);
    let writer_vip = c.vip(188);
    let (r1, r2) = (c.vip(198), c.vip(199));
    let ip = |h: &str| c.ip(h);
    const TABLE: &str = "ma_ahead.rows";
    c.query(
        "db1",
        "CREATE DATABASE ma_ahead; CREATE TABLE ma_ahead.rows (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL)",
    )
    .expect("create table");
    let insert = |host: &str, from: u64, to: u64| {
        let values: Vec<String> = (from..to).map(|i| format!("({i}, {i})")).collect();
        c.query(
            host,
            &format!("INSERT INTO {TABLE} VALUES {}", values.join(",")),
        )
        .expect("insert");
    };
    insert("db1", 0, 10);
    wait_same_rows(&c, &DB_HOSTS, TABLE);
    let db4_on = |m: &str| format!("SET_STATUS|1|db4|ONLINE|reader({r2})|{m}");
    assign_initial_roles(&c, writer_vip, r1, r2);
    // db2 stops receiving; db1 writes more, which db4 gets and db2 does not; then db1's
    // mysqld stops (a crash with the same outcome).
    c.query("db2", "STOP SLAVE IO_THREAD").expect("stop io");
    insert("db1", 10, 20);
    wait_same_rows(&c, &["db1", "db4"], TABLE);
    c.mysql_stop("db1").expect("stop db1");
    let r = send(&c, "db4", &db4_on("db2"));
    assert!(
        r.starts_with("ERROR: Failed to change master to 'db2': ")
            && r.contains("this slave has transactions the new master lacks"),
        "{r}"
    );
    // Left on db1.
    let st = c.slave_status("db4").unwrap().expect("slave status");
    assert_eq!(st.get("Master_Host"), Some(ip("db1").to_string().as_str()));
    // db1 comes back, db2 catches up from it: the retry switches db4, by GTID.
    c.mysql_start("db1").expect("start db1");
    c.query("db2", "START SLAVE IO_THREAD").expect("start io");
    wait_same_rows(&c, &["db1", "db2"], TABLE);
    c.wait_slave_running("db4").expect("db4 back on db1");
    assert_eq!(send(&c, "db4", &db4_on("db2")), OK);

    c.wait_slave_running("db4").expect("db4 slave running");
    let st = c.slave_status("db4").unwrap().expect("slave status");
    assert_eq!(st.get("Master_Host"), Some(ip("db2").to_string().as_str()));
    assert_eq!(st.get("Using_Gtid"), Some("Slave_Pos"));
    // Transactions of the new master reach db4 once, nothing is repeated or skipped.
    insert("db2", 100, 110);
    wait_same_rows(&c, &["db2", "db4"], TABLE);
    c.wait_slave_running("db4")
        .expect("db4 slave running after new writes");
    c.stop().expect("agents exit 0 on SIGTERM, testbed down");
}

/// Issue 15: the testbed's configs set `monitor_ips` to the monitor host. From db3 (not the
/// monitor), the line of the attack sent to db2's agent is answered `ERROR: Access
/// denied`, db2 does not take the writer VIP and read_only stays 1 (db1 keeps both), the
/// refusal is in db2's log at WARN, and the agent goes on serving the monitor.
#[test]
fn only_the_monitor_commands_the_agents() {
    let _serial = serial();
    let c = agents_only(SUBNET + 5);
    let writer_vip = c.vip(188);
    let (r1, r2) = (c.vip(198), c.vip(199));
    assign_initial_roles(&c, writer_vip, r1, r2);
    assert!(has_vip(&c, "db1", writer_vip));
    assert_eq!(read_only(&c, "db1"), Some(false));
    assert_eq!(read_only(&c, "db2"), Some(true));

    let attack = format!("SET_STATUS|1|db2|ONLINE|writer({writer_vip})|db2\n");
    let to = std::net::SocketAddr::from((c.ip("db2"), AGENT_PORT));
    let mut stream = c
        .testbed()
        .tcp_connect_from("db3", to, Duration::from_secs(5))
        .expect("netns")
        .expect("connect from db3");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(&mut stream, attack.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut reply).expect("a reply");
    println!("db3 -> db2: {}<- {}", attack, reply.trim_end());
    let db3 = c.ip("db3");
    assert!(
        reply.starts_with(&format!(
            "ERROR: Access denied: {db3} is not in monitor_ips!|UP:"
        )),
        "{reply}"
    );
    // Nothing happened: db2 holds no VIP and stays read-only; db1 is still the writer.
    assert!(!has_vip(&c, "db2", writer_vip));
    assert_eq!(read_only(&c, "db2"), Some(true));
    assert!(has_vip(&c, "db1", writer_vip));
    assert_eq!(read_only(&c, "db1"), Some(false));
    // The refusal is logged at WARN.
    let log = c
        .host_dir("db2")
        .unwrap()
        .join("var/log/mysql-mmm/mmm_agentd.log");
    let wanted = format!("Refused a command from {db3}: not in monitor_ips");
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&wanted) || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = text
        .lines()
        .find(|l| l.contains(&wanted))
        .unwrap_or_else(|| panic!("no refusal in {}:\n{text}", log.display()));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        text.contains("Commands accepted only from monitor_ips: "),
        "{text}"
    );
    // The monitor host is still obeyed.
    assert_eq!(send(&c, "db2", "PING|1|db2"), "OK: Pinged!");
    assert_eq!(
        send(&c, "db2", "GET_AGENT_STATUS|1|db2"),
        "OK: Returning status!|ONLINE||"
    );
}
