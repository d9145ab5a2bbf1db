//! The agent protocol over loopback TCP/TLS with fake effects (spec §4.2, §4.3, §4.5,
//! §4.6): each command's reply byte for byte, validation errors, oversized and half-open
//! connections, concurrency, re-assertion of roles, failure replies, TLS client
//! certificates. No root needed (TLS certificates are made with the `openssl` CLI).

use mmm_common::test_pki::TestPki;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mmm_agent::agent::{Agent, AgentSettings};
use mmm_agent::effects::{EffectFuture, MysqlOps, Vip};
use mmm_agent::error::EffectError;
use mmm_agent::listener::{self, ListenerOptions};
use mmm_common::access::Access;
use mmm_common::config::{SocketConfig, SocketType};
use mmm_common::role::RoleIp;
use mmm_common::socket::{self, Listener, Stream};
use mmm_common::state::HostMode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

const UP: &str = "8463.27";

fn fixed_uptime() -> String {
    UP.to_string()
}

/// A fake interface: a set of addresses, an ARP counter, optional failures.
#[derive(Default)]
struct FakeVip {
    ips: Mutex<BTreeSet<Ipv4Addr>>,
    announced: Mutex<Vec<Ipv4Addr>>,
    fail_add: Mutex<bool>,
}

impl FakeVip {
    fn ips(&self) -> Vec<String> {
        self.ips
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.to_string())
            .collect()
    }
    fn announced(&self, ip: &str) -> usize {
        let ip: Ipv4Addr = ip.parse().unwrap();
        self.announced
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a == ip)
            .count()
    }
}

impl Vip for FakeVip {
    fn has_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, bool> {
        let r = self.ips.lock().unwrap().contains(&ip);
        Box::pin(async move { Ok(r) })
    }
    fn add_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
        let fail = *self.fail_add.lock().unwrap();
        if !fail {
            self.ips.lock().unwrap().insert(ip);
        }
        Box::pin(async move {
            if fail {
                Err(EffectError::Net(
                    "RTNETLINK answers: Operation not permitted".into(),
                ))
            } else {
                Ok(())
            }
        })
    }
    fn remove_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
        self.ips.lock().unwrap().remove(&ip);
        Box::pin(async { Ok(()) })
    }
    fn announce(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
        self.announced.lock().unwrap().push(ip);
        Box::pin(async { Ok(()) })
    }
    fn interface(&self) -> &str {
        "ens33"
    }
}

/// A fake MySQL server: read_only, slave state, a call log, optional failures/delays.
struct FakeMysql {
    read_only: Mutex<bool>,
    calls: Mutex<Vec<String>>,
    fail_sync: Mutex<bool>,
    fail_switch: Mutex<bool>,
    down: Mutex<bool>,
    sync_delay: Mutex<Duration>,
    switch_delay: Mutex<Duration>,
    fail_deny: Mutex<bool>,
    /// `deny_write` never answers (a frozen server).
    hang_deny: Mutex<bool>,
    /// The writer re-assertion's connect never completes (a frozen server).
    hang_reassert: Mutex<bool>,
    master_ip: Mutex<Option<String>>,
}

impl Default for FakeMysql {
    fn default() -> Self {
        FakeMysql {
            read_only: Mutex::new(true),
            calls: Mutex::new(Vec::new()),
            fail_sync: Mutex::new(false),
            fail_switch: Mutex::new(false),
            down: Mutex::new(false),
            sync_delay: Mutex::new(Duration::ZERO),
            switch_delay: Mutex::new(Duration::ZERO),
            fail_deny: Mutex::new(false),
            hang_deny: Mutex::new(false),
            hang_reassert: Mutex::new(false),
            master_ip: Mutex::new(Some("198.18.0.100".into())),
        }
    }
}

impl FakeMysql {
    fn log(&self, c: &str) {
        self.calls.lock().unwrap().push(c.to_string());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn down_err(&self) -> Option<EffectError> {
        (*self.down.lock().unwrap()).then(|| EffectError::Connect {
            host: "198.18.0.100:3306".into(),
            user: "mmm_agent".into(),
            reason: "Connection refused".into(),
        })
    }
}

impl MysqlOps for FakeMysql {
    fn may_write(&self) -> EffectFuture<'_, bool> {
        let r = match self.down_err() {
            Some(e) => Err(e),
            None => Ok(!*self.read_only.lock().unwrap()),
        };
        Box::pin(async move { r })
    }
    fn allow_write(&self) -> EffectFuture<'_, ()> {
        self.log("allow_write");
        *self.read_only.lock().unwrap() = false;
        Box::pin(async { Ok(()) })
    }
    fn reassert_write(&self) -> EffectFuture<'_, ()> {
        if !*self.hang_reassert.lock().unwrap() {
            return self.allow_write();
        }
        self.log("reassert_write (hangs)");
        Box::pin(std::future::pending())
    }
    fn deny_write(&self) -> EffectFuture<'_, ()> {
        self.log("deny_write");
        let fail = *self.fail_deny.lock().unwrap();
        let hang = *self.hang_deny.lock().unwrap();
        if !fail && !hang {
            *self.read_only.lock().unwrap() = true;
        }
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            if fail {
                Err(EffectError::Other("Can't connect to MySQL".into()))
            } else {
                Ok(())
            }
        })
    }
    fn sync_with_master<'a>(&'a self, failed: &'a [String]) -> EffectFuture<'a, ()> {
        if failed.is_empty() {
            self.log("sync_with_master");
        } else {
            self.log(&format!("sync_with_master failed={}", failed.join(",")));
        }
        let fail = *self.fail_sync.lock().unwrap();
        let delay = *self.sync_delay.lock().unwrap();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            if fail {
                Err(EffectError::Timeout {
                    what: "MASTER_POS_WAIT('mysql-bin.000002', 342)".into(),
                    after: Duration::from_secs(30),
                })
            } else {
                Ok(())
            }
        })
    }
    fn set_active_master<'a>(&'a self, new_master: &'a str) -> EffectFuture<'a, String> {
        self.log(&format!("set_active_master {new_master}"));
        let fail = *self.fail_switch.lock().unwrap();
        let delay = *self.switch_delay.lock().unwrap();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            if fail {
                Err(EffectError::Other("Can't connect to MySQL".into()))
            } else {
                Ok("OK".into())
            }
        })
    }
    fn master_host(&self) -> EffectFuture<'_, Option<String>> {
        let r = match self.down_err() {
            Some(e) => Err(e),
            None => Ok(self.master_ip.lock().unwrap().clone()),
        };
        Box::pin(async move { r })
    }
    fn start_slave(&self) -> EffectFuture<'_, ()> {
        self.log("start_slave");
        Box::pin(async { Ok(()) })
    }
    fn stop_slave(&self) -> EffectFuture<'_, ()> {
        self.log("stop_slave");
        Box::pin(async { Ok(()) })
    }
}

fn settings(this: &str, mode: HostMode) -> AgentSettings {
    AgentSettings {
        this: this.into(),
        mode,
        writer_role: "writer".into(),
        role_ips: vec![
            RoleIp::new("writer", "198.18.0.188"),
            RoleIp::new("reader", "198.18.0.198"),
            RoleIp::new("reader", "198.18.0.199"),
        ],
        arp_repeat: 3,
        arp_interval: Duration::from_millis(20),
        lease: Duration::ZERO,
    }
}

fn plain() -> SocketConfig {
    SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    }
}

struct Running {
    addr: String,
    vip: Arc<FakeVip>,
    mysql: Arc<FakeMysql>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("listener stops")
                .unwrap();
        }
    }
}

async fn start_with(
    this: &str,
    mode: HostMode,
    sock: SocketConfig,
    opts: ListenerOptions,
) -> Running {
    let vip = Arc::new(FakeVip::default());
    let mysql = Arc::new(FakeMysql::default());
    let agent = Arc::new(
        Agent::new(settings(this, mode), vip.clone(), mysql.clone()).with_uptime(fixed_uptime),
    );
    let listener = Listener::bind("127.0.0.1:0", &sock).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(listener::run(listener, agent, opts, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        vip,
        mysql,
        stop: Some(tx),
        task: Some(task),
    }
}

async fn start(this: &str, mode: HostMode) -> Running {
    start_with(this, mode, plain(), ListenerOptions::default()).await
}

/// One request on its own connection (as the monitor does); returns the reply line
/// including the newline.
async fn ask(addr: &str, line: &str) -> String {
    ask_cfg(addr, &plain(), line).await
}

async fn ask_cfg(addr: &str, cfg: &SocketConfig, line: &str) -> String {
    let s = socket::connect(addr, cfg, Duration::from_secs(2))
        .await
        .unwrap();
    ask_on(s, line).await
}

async fn ask_on(mut s: Stream, line: &str) -> String {
    s.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut out))
        .await
        .expect("reply in time")
        .unwrap();
    out
}

fn up(result: &str) -> String {
    format!("{result}|UP:{UP}\n")
}

#[tokio::test]
async fn simple_commands_byte_identical() {
    let a = start("db1", HostMode::Master).await;
    assert_eq!(ask(&a.addr, "PING|1|db1").await, "OK: Pinged!|UP:8463.27\n");
    assert_eq!(
        ask(&a.addr, "GET_AGENT_STATUS|1|db1").await,
        up("OK: Returning status!|UNKNOWN||")
    );
    assert_eq!(
        ask(&a.addr, "GET_SYSTEM_STATUS|1|db1").await,
        up("OK: Returning status!|||198.18.0.100")
    );
    assert_eq!(
        ask(&a.addr, "CLEAR_BAD_ROLES|1|db1").await,
        up("OK: Removed 0 roles")
    );
    a.stop().await;
}

#[tokio::test]
async fn validation_errors_and_agent_goes_on() {
    let a = start("db1", HostMode::Master).await;
    assert_eq!(
        ask(&a.addr, "PING|1").await,
        up("ERROR: Invalid command 'PING|1'!")
    );
    assert_eq!(ask(&a.addr, "").await, up("ERROR: Invalid command ''!"));
    assert_eq!(
        ask(&a.addr, "PING|1|db2").await,
        up("ERROR: Invalid hostname in command (db2)! My name is 'db1'")
    );
    assert_eq!(
        ask(&a.addr, "FOO|1|db1").await,
        up("ERROR: Invalid command 'FOO'!")
    );
    assert_eq!(
        ask(&a.addr, "SET_ACTIVE_MASTER|1|db1|db2").await,
        up("ERROR: Invalid command 'SET_ACTIVE_MASTER'!")
    );
    // A newer protocol version only warns.
    assert_eq!(ask(&a.addr, "PING|2|db1").await, up("OK: Pinged!"));
    assert!(ask(&a.addr, "PING|x|db1").await.starts_with("ERROR: "));
    assert!(ask(&a.addr, "SET_STATUS|1|db1|ONLINE")
        .await
        .starts_with("ERROR: "));
    assert!(ask(&a.addr, "SET_STATUS|1|db1|BOGUS||")
        .await
        .starts_with("ERROR: "));
    assert_eq!(ask(&a.addr, "PING|1|db1").await, up("OK: Pinged!"));
    a.stop().await;
}

#[tokio::test]
async fn several_requests_per_connection() {
    let a = start("db1", HostMode::Master).await;
    let mut s = socket::connect(&a.addr, &plain(), Duration::from_secs(2))
        .await
        .unwrap();
    s.write_all(b"PING|1|db1\nGET_AGENT_STATUS|1|db1\nPING|1|db9\n")
        .await
        .unwrap();
    let mut r = BufReader::new(s);
    let mut all = String::new();
    for _ in 0..3 {
        r.read_line(&mut all).await.unwrap();
    }
    assert_eq!(
        all,
        format!(
            "{}{}{}",
            up("OK: Pinged!"),
            up("OK: Returning status!|UNKNOWN||"),
            up("ERROR: Invalid hostname in command (db9)! My name is 'db1'")
        )
    );
    a.stop().await;
}

#[tokio::test]
async fn writer_role_add_and_delete() {
    let a = start("db1", HostMode::Master).await;
    let set = "SET_STATUS|1|db1|ONLINE|reader(198.18.0.198),writer(198.18.0.188)|db1";
    assert_eq!(
        ask(&a.addr, set).await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.vip.ips(), vec!["198.18.0.188", "198.18.0.198"]);
    assert_eq!(a.mysql.calls()[..2], ["sync_with_master", "allow_write"]);
    assert!(a.vip.announced("198.18.0.188") >= 1);
    // Masters do not record an active master (spec §4.5 step 1 is for slaves only).
    assert_eq!(
        ask(&a.addr, "GET_AGENT_STATUS|1|db1").await,
        up("OK: Returning status!|ONLINE|reader(198.18.0.198),writer(198.18.0.188)|")
    );
    // Config order in GET_SYSTEM_STATUS: writer first.
    assert_eq!(
        ask(&a.addr, "GET_SYSTEM_STATUS|1|db1").await,
        up("OK: Returning status!|1|writer(198.18.0.188),reader(198.18.0.198)|198.18.0.100")
    );
    // All ARP bursts (arp_repeat = 3) go out in the background.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(a.vip.announced("198.18.0.188"), 3);
    // Give up the writer role.
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db1|ONLINE|reader(198.18.0.198)|db2").await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.vip.ips(), vec!["198.18.0.198"]);
    assert!(a.mysql.calls().contains(&"deny_write".to_string()));
    assert!(*a.mysql.read_only.lock().unwrap());
    a.stop().await;
}

#[tokio::test]
async fn failed_effects_answer_error_and_role_is_kept() {
    let a = start("db2", HostMode::Master).await;
    *a.mysql.fail_sync.lock().unwrap() = true;
    let set = "SET_STATUS|1|db2|ONLINE|writer(198.18.0.188)|db2";
    let reply = ask(&a.addr, set).await;
    assert!(
        reply.starts_with("ERROR: Couldn't sync with master: MASTER_POS_WAIT"),
        "{reply}"
    );
    assert!(reply.ends_with("|UP:8463.27\n"));
    // Not writable, no VIP: sync failure aborts the add, and the check after the
    // connection closed does not enable writes either (2.2.1 did, spec §9.2).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.vip.ips().is_empty());
    assert!(*a.mysql.read_only.lock().unwrap());
    assert!(!a.mysql.calls().contains(&"allow_write".to_string()));
    // ...but the role is recorded so the next SET_STATUS retries.
    assert_eq!(
        ask(&a.addr, "GET_AGENT_STATUS|1|db2").await,
        up("OK: Returning status!|ONLINE|writer(198.18.0.188)|")
    );
    *a.mysql.fail_sync.lock().unwrap() = false;
    // The next SET_STATUS retries the whole add, sync included.
    assert_eq!(
        ask(&a.addr, set).await,
        up("OK: Status applied successfully!")
    );
    let syncs = a
        .mysql
        .calls()
        .iter()
        .filter(|c| *c == "sync_with_master")
        .count();
    assert_eq!(syncs, 2);
    assert_eq!(a.vip.ips(), vec!["198.18.0.188"]);
    assert!(!*a.mysql.read_only.lock().unwrap());
    // An IP that cannot be added is reported.
    *a.vip.fail_add.lock().unwrap() = true;
    let reply = ask(
        &a.addr,
        "SET_STATUS|1|db2|ONLINE|reader(198.18.0.199),writer(198.18.0.188)|db2",
    )
    .await;
    assert!(
        reply.starts_with("ERROR: Couldn't configure IP '198.18.0.199' on interface 'ens33': "),
        "{reply}"
    );
    a.stop().await;
}

#[tokio::test]
async fn vanished_vip_is_reasserted() {
    let a = start("db1", HostMode::Master).await;
    let set = "SET_STATUS|1|db1|ONLINE|reader(198.18.0.198)|db1";
    assert_eq!(
        ask(&a.addr, set).await,
        up("OK: Status applied successfully!")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = a.vip.announced("198.18.0.198");
    // Someone removes the VIP: the next SET_STATUS re-adds and re-announces it.
    a.vip.ips.lock().unwrap().clear();
    assert_eq!(
        ask(&a.addr, set).await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.vip.ips(), vec!["198.18.0.198"]);
    assert!(a.vip.announced("198.18.0.198") > before);
    // And the check after a closed connection does too.
    a.vip.ips.lock().unwrap().clear();
    assert_eq!(ask(&a.addr, "PING|1|db1").await, up("OK: Pinged!"));
    let mut ok = false;
    for _ in 0..50 {
        if a.vip.ips() == vec!["198.18.0.198"] {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ok,
        "check roles after the connection closed re-added the VIP"
    );
    a.stop().await;
}

#[tokio::test]
async fn clear_bad_roles_removes_unheld_vips() {
    let a = start("db3", HostMode::Slave).await;
    a.vip.ips.lock().unwrap().extend([
        "198.18.0.199".parse::<Ipv4Addr>().unwrap(),
        "198.18.0.188".parse().unwrap(),
    ]);
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db3|ONLINE|reader(198.18.0.199)|db1").await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(
        ask(&a.addr, "CLEAR_BAD_ROLES|1|db3").await,
        up("OK: Removed 1 roles")
    );
    assert_eq!(a.vip.ips(), vec!["198.18.0.199"]);
    // The writer VIP it did not hold went through the writer's delete (deny writes).
    assert!(a.mysql.calls().contains(&"deny_write".to_string()));
    a.stop().await;
}

#[tokio::test]
async fn slave_switches_master_and_admin_offline() {
    let a = start("db3", HostMode::Slave).await;
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db3|ONLINE|reader(198.18.0.198)|db1").await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.mysql.calls(), vec!["set_active_master db1"]);
    assert_eq!(
        ask(&a.addr, "GET_AGENT_STATUS|1|db3").await,
        up("OK: Returning status!|ONLINE|reader(198.18.0.198)|db1")
    );
    // A failed switch is reported and retried on the next SET_STATUS.
    *a.mysql.fail_switch.lock().unwrap() = true;
    let r = ask(&a.addr, "SET_STATUS|1|db3|ONLINE|reader(198.18.0.198)|db2").await;
    assert_eq!(
        r,
        up("ERROR: Failed to change master to 'db2': Can't connect to MySQL")
    );
    assert!(ask(&a.addr, "GET_AGENT_STATUS|1|db3")
        .await
        .ends_with("|db1|UP:8463.27\n"));
    *a.mysql.fail_switch.lock().unwrap() = false;
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db3|ONLINE|reader(198.18.0.198)|db2").await,
        up("OK: Status applied successfully!")
    );
    assert!(ask(&a.addr, "GET_AGENT_STATUS|1|db3")
        .await
        .ends_with("|db2|UP:8463.27\n"));
    // ADMIN_OFFLINE: STOP SLAVE on entry, START SLAVE on exit; no switch while offline.
    a.mysql.calls.lock().unwrap().clear();
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db3|ADMIN_OFFLINE||db1").await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.mysql.calls(), vec!["stop_slave"]);
    assert!(a.vip.ips().is_empty());
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db3|AWAITING_RECOVERY||db1").await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.mysql.calls(), vec!["stop_slave", "start_slave"]);
    a.stop().await;
}

#[tokio::test]
async fn system_status_with_mysql_down() {
    let a = start("db1", HostMode::Master).await;
    *a.mysql.down.lock().unwrap() = true;
    assert_eq!(
        ask(&a.addr, "GET_SYSTEM_STATUS|1|db1").await,
        up("OK: Returning status!|||")
    );
    assert_eq!(ask(&a.addr, "PING|1|db1").await, up("OK: Pinged!"));
    a.stop().await;
}

#[tokio::test]
async fn oversized_line_closes_connection_agent_goes_on() {
    let a = start("db1", HostMode::Master).await;
    let mut s = socket::connect(&a.addr, &plain(), Duration::from_secs(2))
        .await
        .unwrap();
    let big = vec![b'A'; mmm_common::proto::MAX_LINE + 10];
    // The agent may close before reading everything: ignore write errors.
    let _ = s.write_all(&big).await;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("connection closed in time");
    let text = String::from_utf8_lossy(&buf);
    assert!(n.is_err() || text.starts_with("ERROR: "), "{text}");
    assert_eq!(ask(&a.addr, "PING|1|db1").await, up("OK: Pinged!"));
    a.stop().await;
}

/// A plain connection to `addr` from the loopback source address `from` (all of 127/8 is
/// loopback on Linux, so a test can play two hosts).
async fn connect_from(from: &str, addr: &str) -> Stream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = tokio::time::timeout(Duration::from_secs(2), sock.connect(addr.parse().unwrap()))
        .await
        .expect("connect in time")
        .unwrap();
    Stream::Plain(tcp)
}

/// An agent that obeys only `monitor_ips` 127.0.0.2.
async fn start_guarded(this: &str, mode: HostMode) -> Running {
    let opts = ListenerOptions {
        access: Access::from_list(&["127.0.0.2".parse().unwrap()]),
        ..ListenerOptions::default()
    };
    start_with(this, mode, plain(), opts).await
}

/// Issue 15: with `monitor_ips`, a SET_STATUS from another source (here 127.0.0.1) is
/// answered `ERROR:` and changes nothing: no VIP, read_only stays 1, no MySQL call; the
/// monitor's address is served as before, also after a flood of refused commands.
#[tokio::test]
async fn monitor_ips_refuses_commands_from_other_sources() {
    let a = start_guarded("db2", HostMode::Master).await;
    let attack = "SET_STATUS|1|db2|ONLINE|writer(198.18.0.188)|db2";
    let refused = up("ERROR: Access denied: 127.0.0.1 is not in monitor_ips!");
    assert_eq!(
        ask_on(connect_from("127.0.0.1", &a.addr).await, attack).await,
        refused
    );
    assert!(a.vip.ips().is_empty());
    assert!(*a.mysql.read_only.lock().unwrap());
    assert!(a.mysql.calls().is_empty(), "{:?}", a.mysql.calls());
    // Every command is refused, PING too, and the connection is closed after the reply.
    let mut s = connect_from("127.0.0.3", &a.addr).await;
    s.write_all(b"PING|1|db2\nPING|1|db2\n").await.unwrap();
    let mut all = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut all))
        .await
        .expect("refused connection closed")
        .unwrap();
    assert_eq!(
        all,
        up("ERROR: Access denied: 127.0.0.3 is not in monitor_ips!")
    );
    // A flood of refused commands; the agent goes on serving its monitor.
    for _ in 0..50 {
        let r = ask_on(connect_from("127.0.0.1", &a.addr).await, attack).await;
        assert_eq!(r, refused);
    }
    let monitor = |line: &'static str| {
        let addr = a.addr.clone();
        async move { ask_on(connect_from("127.0.0.2", &addr).await, line).await }
    };
    assert_eq!(monitor("PING|1|db2").await, up("OK: Pinged!"));
    assert_eq!(
        monitor(attack).await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.vip.ips(), vec!["198.18.0.188"]);
    assert!(!*a.mysql.read_only.lock().unwrap());
    a.stop().await;
}

/// Without `monitor_ips` every source is obeyed, as in 2.2.1.
#[tokio::test]
async fn without_monitor_ips_every_source_is_served() {
    let a = start("db1", HostMode::Master).await;
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        assert_eq!(
            ask_on(connect_from(from, &a.addr).await, "PING|1|db1").await,
            up("OK: Pinged!"),
            "{from}"
        );
    }
    a.stop().await;
}

#[tokio::test]
async fn half_open_connection_is_closed_and_others_are_served() {
    let opts = ListenerOptions {
        idle_timeout: Duration::from_millis(300),
        ..ListenerOptions::default()
    };
    let a = start_with("db1", HostMode::Master, plain(), opts).await;
    let mut s = socket::connect(&a.addr, &plain(), Duration::from_secs(2))
        .await
        .unwrap();
    s.write_all(b"PING|1|db1").await.unwrap(); // no newline, never finished
                                               // Meanwhile another client is served.
    assert_eq!(ask(&a.addr, "PING|1|db1").await, up("OK: Pinged!"));
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("idle connection closed by the agent");
    assert!(r.is_ok() && buf.is_empty());
    a.stop().await;
}

#[tokio::test]
async fn ping_is_answered_while_a_set_status_is_applied() {
    let a = start("db2", HostMode::Master).await;
    *a.mysql.sync_delay.lock().unwrap() = Duration::from_millis(1500);
    let addr = a.addr.clone();
    let slow = tokio::spawn(async move {
        ask(&addr, "SET_STATUS|1|db2|ONLINE|writer(198.18.0.188)|db2").await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ask(&a.addr, "PING|1|db2").await, up("OK: Pinged!"));
    // Answered while the SET_STATUS is still being applied (not after it: an ordering,
    // which a loaded machine cannot turn around, rather than a time bound).
    assert!(!slow.is_finished(), "PING waited for the SET_STATUS");
    assert_eq!(slow.await.unwrap(), up("OK: Status applied successfully!"));
    a.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_request_being_applied() {
    let mut a = start("db2", HostMode::Master).await;
    *a.mysql.sync_delay.lock().unwrap() = Duration::from_millis(600);
    // An idle connection must not hold the shutdown up.
    let _idle = socket::connect(&a.addr, &plain(), Duration::from_secs(2))
        .await
        .unwrap();
    let addr = a.addr.clone();
    let slow = tokio::spawn(async move {
        ask(&addr, "SET_STATUS|1|db2|ONLINE|writer(198.18.0.188)|db2").await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = a.stop.take().unwrap().send(());
    let t0 = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), a.task.take().unwrap())
        .await
        .expect("listener stopped")
        .unwrap();
    // run() returned only after the SET_STATUS was applied and answered.
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.await.unwrap(), up("OK: Status applied successfully!"));
    assert_eq!(a.vip.ips(), vec!["198.18.0.188"]);
    // No longer accepting.
    assert!(socket::connect(&a.addr, &plain(), Duration::from_secs(1))
        .await
        .is_err());
}

// ---------------------------------------------------------------------------------- TLS

/// Test certificates (`mmm_common::test_pki`).
struct Pki {
    _pki: TestPki,
    server: SocketConfig,
    client: SocketConfig,
    rogue: SocketConfig,
}

fn make_pki() -> Pki {
    let pki = TestPki::new().expect("test certificates (openssl CLI)");
    Pki {
        server: pki.config("server", "ca"),
        client: pki.config("client", "ca"),
        rogue: pki.config("rogue", "ca"),
        _pki: pki,
    }
}

#[tokio::test]
async fn tls_requires_a_valid_client_certificate() {
    let pki = make_pki();
    let a = start_with(
        "db1",
        HostMode::Master,
        pki.server.clone(),
        ListenerOptions::default(),
    )
    .await;
    // A valid client certificate works, byte-identical replies.
    assert_eq!(
        ask_cfg(&a.addr, &pki.client, "PING|1|db1").await,
        up("OK: Pinged!")
    );
    // A certificate from another CA is refused (handshake fails, or the connection is
    // closed before any reply).
    match socket::connect(&a.addr, &pki.rogue, Duration::from_secs(2)).await {
        Err(_) => {}
        Ok(mut s) => {
            let _ = s.write_all(b"PING|1|db1\n").await;
            let mut buf = Vec::new();
            let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
                .await
                .expect("closed in time");
            assert!(r.is_err() || buf.is_empty(), "rogue client got a reply");
        }
    }
    // A plain TCP client gets nothing.
    let mut s = socket::connect(&a.addr, &plain(), Duration::from_secs(2))
        .await
        .unwrap();
    let _ = s.write_all(b"PING|1|db1\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("closed in time");
    assert!(!String::from_utf8_lossy(&buf).contains("OK: Pinged!"));
    // A client that does not trust the server's CA refuses the server.
    let distrust = SocketConfig {
        ca_file: pki
            .rogue
            .ca_file
            .clone()
            .map(|p| p.replace("/ca.pem", "/rogue-ca.pem")),
        ..pki.client.clone()
    };
    assert!(socket::connect(&a.addr, &distrust, Duration::from_secs(2))
        .await
        .is_err());
    // The agent still serves valid clients.
    assert_eq!(
        ask_cfg(&a.addr, &pki.client, "PING|1|db1").await,
        up("OK: Pinged!")
    );
    a.stop().await;
}

// ---------------------------------------------------------------------------- proptest

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn request_parser_never_panics(line in "\\PC{0,200}") {
            let _ = mmm_common::proto::agent::decode_request(&line, "db1");
        }

        #[test]
        fn agent_answers_any_line(
            cmd in prop::sample::select(vec!["PING", "SET_STATUS", "GET_AGENT_STATUS",
                "GET_SYSTEM_STATUS", "CLEAR_BAD_ROLES", "X", ""]),
            ver in "[0-9x]{0,3}",
            host in prop::sample::select(vec!["db1", "db2", ""]),
            rest in "[A-Za-z_(),.|0-9]{0,60}",
        ) {
            let line = format!("{cmd}|{ver}|{host}|{rest}");
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let reply = rt.block_on(async {
                let agent = Agent::new(
                    settings("db1", HostMode::Slave),
                    Arc::new(FakeVip::default()),
                    Arc::new(FakeMysql::default()),
                )
                .with_uptime(fixed_uptime);
                agent.handle_line(&line).await
            });
            prop_assert!(reply.ends_with("|UP:8463.27\n"));
            prop_assert!(reply.starts_with("OK") || reply.starts_with("ERROR: "));
            prop_assert_eq!(reply.matches('\n').count(), 1);
        }
    }
}

// ---- The agent lease (lease.rs): requests straight to `Agent::handle_request`, tokio's
// paused clock, the same fakes.

const W188: &str = "198.18.0.188";
const WRITER_SET: &str = "SET_STATUS|1|db1|ONLINE|reader(198.18.0.198),writer(198.18.0.188)|db1";

fn lease_agent(mode: HostMode, lease_ms: u64) -> (Arc<Agent>, Arc<FakeVip>, Arc<FakeMysql>) {
    let vip = Arc::new(FakeVip::default());
    let mysql = Arc::new(FakeMysql::default());
    let mut s = settings("db1", mode);
    s.lease = Duration::from_millis(lease_ms);
    let agent = Arc::new(Agent::new(s, vip.clone(), mysql.clone()).with_uptime(fixed_uptime));
    (agent, vip, mysql)
}

fn writable(mysql: &FakeMysql) -> bool {
    !*mysql.read_only.lock().unwrap()
}

fn holds(vip: &FakeVip, ip: &str) -> bool {
    vip.ips().iter().any(|i| i == ip)
}

/// Starts the lease task; returns its stop handle.
fn run_lease(agent: &Arc<Agent>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(Arc::clone(agent).run_lease(async move {
        let _ = rx.await;
    }));
    (tx, task)
}

#[tokio::test(start_paused = true)]
async fn lease_fences_the_writer_after_silence() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    assert_eq!(
        agent.handle_request(WRITER_SET).await,
        "OK: Status applied successfully!"
    );
    assert!(writable(&mysql) && holds(&vip, W188));
    let (stop, task) = run_lease(&agent);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        writable(&mysql) && holds(&vip, W188),
        "not before the lease"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!writable(&mysql), "read_only=1 after the lease");
    assert!(!holds(&vip, W188), "writer IP removed after the lease");
    assert!(holds(&vip, "198.18.0.198"), "reader IPs are not touched");
    assert_eq!(mysql.calls().last().map(String::as_str), Some("deny_write"));
    // The role list reported to the monitor is unchanged (wire format as 2.2.1).
    assert_eq!(
        agent.handle_request("GET_AGENT_STATUS|1|db1").await,
        "OK: Returning status!|ONLINE|reader(198.18.0.198),writer(198.18.0.188)|"
    );
    // Fenced once, not again and again.
    let n = mysql.calls().len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(mysql.calls().len(), n);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn lease_off_never_fences() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 0);
    agent.handle_request(WRITER_SET).await;
    let (stop, task) = run_lease(&agent);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!agent.lease_tick().await);
    assert!(writable(&mysql) && holds(&vip, W188));
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn lease_no_fence_while_requests_keep_coming() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    agent.handle_request(WRITER_SET).await;
    let (stop, task) = run_lease(&agent);
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Any well-formed command renews the lease.
        let line = match i % 3 {
            0 => "PING|1|db1",
            1 => "GET_AGENT_STATUS|1|db1",
            _ => WRITER_SET,
        };
        assert!(agent.handle_request(line).await.starts_with("OK"));
        assert!(writable(&mysql) && holds(&vip, W188), "round {i}");
    }
    // A malformed line does not renew it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(agent
        .handle_request("PING|1|db9")
        .await
        .starts_with("ERROR"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!writable(&mysql) && !holds(&vip, W188));
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn lease_fenced_writer_is_not_reasserted_and_is_readded_by_set_status() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    agent.handle_request(WRITER_SET).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(agent.lease_tick().await, "fenced");
    assert!(!writable(&mysql) && !holds(&vip, W188));
    // A request arrives (the monitor is back) and its connection closes: check_roles
    // must not re-assert the fenced writer role.
    assert_eq!(agent.handle_request("PING|1|db1").await, "OK: Pinged!");
    agent.check_roles().await;
    assert!(!writable(&mysql) && !holds(&vip, W188));
    assert!(!mysql.calls().ends_with(&["allow_write".to_string()]));
    // The next SET_STATUS that still assigns the writer role adds it again: sync,
    // read_only=0, IP + ARP.
    let calls_before = mysql.calls().len();
    let announced = vip.announced(W188);
    assert_eq!(
        agent.handle_request(WRITER_SET).await,
        "OK: Status applied successfully!"
    );
    assert_eq!(
        mysql.calls()[calls_before..],
        ["sync_with_master", "allow_write"]
    );
    assert!(writable(&mysql) && holds(&vip, W188));
    assert!(vip.announced(W188) > announced);
    // And it is an ordinary held role again: re-asserted by check_roles.
    vip.ips.lock().unwrap().remove(&W188.parse().unwrap());
    agent.check_roles().await;
    assert!(holds(&vip, W188));
}

#[tokio::test(start_paused = true)]
async fn lease_fenced_writer_given_up_by_set_status() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    agent.handle_request(WRITER_SET).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(agent.lease_tick().await);
    assert_eq!(
        agent
            .handle_request("SET_STATUS|1|db1|ONLINE|reader(198.18.0.198)|db2")
            .await,
        "OK: Status applied successfully!"
    );
    assert!(!writable(&mysql) && !holds(&vip, W188));
    // No writer held: nothing to fence any more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = mysql.calls().len();
    assert!(!agent.lease_tick().await);
    assert_eq!(mysql.calls().len(), n);
}

/// The lease runs out while a SET_STATUS adding the writer role is syncing: the add is
/// refused (ERROR, role pending), the host never becomes writable nor takes the IP.
#[tokio::test(start_paused = true)]
async fn lease_runs_out_during_a_writer_add() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    *mysql.sync_delay.lock().unwrap() = Duration::from_millis(1500);
    let (stop, task) = run_lease(&agent);
    let a = Arc::clone(&agent);
    let set = tokio::spawn(async move { a.handle_request(WRITER_SET).await });
    // Watch the host every 10 ms until the reply: never writable, never the IP.
    while !set.is_finished() {
        assert!(!writable(&mysql) && !holds(&vip, W188));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = set.await.unwrap();
    assert!(
        reply.starts_with("ERROR: Couldn't allow writes: the agent lease has run out"),
        "{reply}"
    );
    assert!(!mysql.calls().contains(&"allow_write".to_string()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writable(&mysql) && !holds(&vip, W188));
    // The monitor retries: a fresh request, a quick sync, the writer role is taken.
    *mysql.sync_delay.lock().unwrap() = Duration::from_millis(100);
    assert_eq!(
        agent.handle_request(WRITER_SET).await,
        "OK: Status applied successfully!"
    );
    assert!(writable(&mysql) && holds(&vip, W188));
    let _ = stop.send(());
    task.await.unwrap();
}

/// The writer add finishes just before the lease runs out: the fence follows within a
/// tick of the lease's end.
#[tokio::test(start_paused = true)]
async fn lease_runs_out_just_after_a_writer_add() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    *mysql.sync_delay.lock().unwrap() = Duration::from_millis(950);
    let (stop, task) = run_lease(&agent);
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        agent.handle_request(WRITER_SET).await,
        "OK: Status applied successfully!"
    );
    assert!(writable(&mysql) && holds(&vip, W188));
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let late = t0.elapsed();
        if late >= Duration::from_millis(1110) {
            assert!(!writable(&mysql) && !holds(&vip, W188), "at {late:?}");
        }
        if late >= Duration::from_millis(1500) {
            break;
        }
    }
    let _ = stop.send(());
    task.await.unwrap();
}

/// The fence does not wait on the state mutex: a SET_STATUS holding it (a slow master
/// switch) does not delay the fence; the SET_STATUS's later re-assertion of the writer
/// role is refused.
#[tokio::test(start_paused = true)]
async fn lease_fence_does_not_wait_for_a_slow_set_status() {
    let (agent, vip, mysql) = lease_agent(HostMode::Slave, 1000);
    agent.handle_request(WRITER_SET).await;
    assert!(writable(&mysql) && holds(&vip, W188));
    *mysql.switch_delay.lock().unwrap() = Duration::from_secs(10);
    let (stop, task) = run_lease(&agent);
    let a = Arc::clone(&agent);
    let set = tokio::spawn(async move {
        a.handle_request("SET_STATUS|1|db1|ONLINE|reader(198.18.0.198),writer(198.18.0.188)|db2")
            .await
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!set.is_finished());
    assert!(!writable(&mysql) && !holds(&vip, W188), "fenced meanwhile");
    let reply = set.await.unwrap();
    assert!(reply.starts_with("ERROR: Couldn't allow writes"), "{reply}");
    assert!(!writable(&mysql) && !holds(&vip, W188));
    let _ = stop.send(());
    task.await.unwrap();
}

/// The fence's read_only=1 fails (mysqld not answering): the IP is removed all the same,
/// and read_only=1 is retried about every second until it works, not every tick.
#[tokio::test(start_paused = true)]
async fn lease_fence_retries_a_failed_deny_write() {
    let (agent, vip, mysql) = lease_agent(HostMode::Master, 1000);
    agent.handle_request(WRITER_SET).await;
    *mysql.fail_deny.lock().unwrap() = true;
    let (stop, task) = run_lease(&agent);
    tokio::time::sleep(Duration::from_millis(1150)).await;
    assert!(!holds(&vip, W188), "IP removed although read_only failed");
    assert!(writable(&mysql));
    let denies = |m: &FakeMysql| m.calls().iter().filter(|c| *c == "deny_write").count();
    assert_eq!(denies(&mysql), 1);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let n = denies(&mysql);
    assert!((2..=4).contains(&n), "{n} attempts in 2 s");
    *mysql.fail_deny.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!writable(&mysql));
    let n = denies(&mysql);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(denies(&mysql), n, "no more attempts once it worked");
    let _ = stop.send(());
    task.await.unwrap();
}

/// A writer removed while its server did not answer (frozen, hung) owes `read_only=1`:
/// the next SET_STATUS without the writer role sets it once the server answers again
/// (2.2.1 left the passive master writable until it got the writer role back).
#[tokio::test]
async fn read_only_owed_after_a_failed_writer_removal() {
    let a = start("db1", HostMode::Master).await;
    let ok = up("OK: Status applied successfully!");
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db1|ONLINE|writer(198.18.0.188)|db1").await,
        ok
    );
    assert!(!*a.mysql.read_only.lock().unwrap());
    // The server hangs: the removal is reported, the VIP goes anyway.
    *a.mysql.fail_deny.lock().unwrap() = true;
    let r = ask(&a.addr, "SET_STATUS|1|db1|HARD_OFFLINE||db2").await;
    assert!(r.starts_with("ERROR: Couldn't deny writes: "), "{r}");
    assert!(a.vip.ips().is_empty());
    assert!(!*a.mysql.read_only.lock().unwrap());
    // Still hanging: tried again, logged, not an error reply.
    let n = a.mysql.calls().len();
    assert_eq!(ask(&a.addr, "SET_STATUS|1|db1|HARD_OFFLINE||db2").await, ok);
    assert!(a.mysql.calls()[n..].contains(&"deny_write".to_string()));
    // It answers again: read_only=1 at the next SET_STATUS, then no more attempts.
    *a.mysql.fail_deny.lock().unwrap() = false;
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db1|AWAITING_RECOVERY||db2").await,
        ok
    );
    assert!(*a.mysql.read_only.lock().unwrap());
    let n = a.mysql.calls().len();
    assert_eq!(ask(&a.addr, "SET_STATUS|1|db1|ONLINE||db2").await, ok);
    assert!(!a.mysql.calls()[n..].contains(&"deny_write".to_string()));
    a.stop().await;
}

/// A writer the monitor found failed (HARD_OFFLINE) whose server hangs: the writer IP goes
/// and the reply comes without waiting for `read_only=1` at all (issue 14); it is owed,
/// tried after the answer, and set once the server answers.
#[tokio::test]
async fn hung_failed_writer_releases_the_ip_at_once() {
    let a = start("db1", HostMode::Master).await;
    let ok = up("OK: Status applied successfully!");
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db1|ONLINE|writer(198.18.0.188)|db1").await,
        ok
    );
    *a.mysql.hang_deny.lock().unwrap() = true;
    let n = a.mysql.calls().len();
    let r = ask(&a.addr, "SET_STATUS|1|db1|HARD_OFFLINE||db2").await;
    assert!(
        r.starts_with("ERROR: Couldn't deny writes: not waited for (this host failed)"),
        "{r}"
    );
    assert!(a.vip.ips().is_empty(), "the writer IP is released");
    // The owed read_only=1 is tried after the answer (and hangs here: bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !a.mysql.calls()[n..].contains(&"deny_write".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "owed deny never tried"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    *a.mysql.hang_deny.lock().unwrap() = false;
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db1|AWAITING_RECOVERY||db2").await,
        ok
    );
    assert!(
        *a.mysql.read_only.lock().unwrap(),
        "the owed read_only=1 was set"
    );
    a.stop().await;
}

/// A writer whose server answers is made read-only right after the answer to its
/// HARD_OFFLINE demotion (the post-connection pass pays what the demotion owed).
#[tokio::test]
async fn failed_writer_read_only_set_after_the_answer() {
    let a = start("db1", HostMode::Master).await;
    ask(&a.addr, "SET_STATUS|1|db1|ONLINE|writer(198.18.0.188)|db1").await;
    assert!(!*a.mysql.read_only.lock().unwrap());
    let r = ask(&a.addr, "SET_STATUS|1|db1|HARD_OFFLINE||db2").await;
    assert!(
        r.starts_with("ERROR: Couldn't deny writes: not waited for"),
        "{r}"
    );
    assert!(a.vip.ips().is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !*a.mysql.read_only.lock().unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "read_only=1 never set"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Paid: the next SET_STATUS does not try again.
    let n = a.mysql.calls().len();
    assert_eq!(
        ask(&a.addr, "SET_STATUS|1|db1|HARD_OFFLINE||db2").await,
        up("OK: Status applied successfully!")
    );
    assert!(!a.mysql.calls()[n..].contains(&"deny_write".to_string()));
    a.stop().await;
}

/// Issue 14: the post-connection re-assertion of the writer role stuck on its frozen
/// server holds up no request: a SET_STATUS that keeps the role is answered at once (the
/// kept writer role is re-asserted after the answer), and the demotion is answered too
/// (a re-assertion that never ends would otherwise block both for good); the VIP is gone
/// and stays gone.
#[tokio::test]
async fn demotion_does_not_wait_for_a_stuck_reassertion() {
    let a = start("db1", HostMode::Master).await;
    let ok = up("OK: Status applied successfully!");
    let keep = "SET_STATUS|1|db1|ONLINE|writer(198.18.0.188)|db1";
    assert_eq!(ask(&a.addr, keep).await, ok);
    *a.mysql.hang_reassert.lock().unwrap() = true;
    // The pass after this connection hangs on the server.
    assert_eq!(ask(&a.addr, keep).await, ok);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !a
        .mysql
        .calls()
        .contains(&"reassert_write (hangs)".to_string())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "re-assertion never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        ask(&a.addr, keep).await,
        ok,
        "a kept role waits for no pass"
    );
    let r = ask(&a.addr, "SET_STATUS|1|db1|HARD_OFFLINE||db2").await;
    assert!(
        r.starts_with("ERROR: Couldn't deny writes: not waited for"),
        "{r}"
    );
    assert!(a.vip.ips().is_empty(), "the writer IP is released");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        a.vip.ips().is_empty(),
        "no stopped re-assertion added it back"
    );
    a.stop().await;
}

/// Issue 14: a SET_STATUS giving the writer role with `failed=<peer>` passes the monitor's
/// verdict to the sync (which then waits for no handshake from the peer); without the
/// field the sync is 2.2.1's.
#[tokio::test]
async fn failed_field_reaches_the_sync() {
    let a = start("db2", HostMode::Master).await;
    let r = ask(
        &a.addr,
        "SET_STATUS|1|db2|ONLINE|writer(198.18.0.188)|db2|failed=db1",
    )
    .await;
    assert_eq!(r, up("OK: Status applied successfully!"));
    assert!(
        a.mysql
            .calls()
            .contains(&"sync_with_master failed=db1".to_string()),
        "{:?}",
        a.mysql.calls()
    );
    a.stop().await;
}

/// Monitor HA fencing tokens (issue 16): a SET_STATUS with term 7 is obeyed; then one with
/// the older term 6 (a deposed leader) and one without a term are refused with `ERROR:`
/// and change nothing (the writer role and VIP stay); queries are still answered.
#[tokio::test]
async fn stale_monitor_terms_are_refused() {
    let a = start("db1", HostMode::Master).await;
    let writer = "SET_STATUS|1|db1|ONLINE|writer(198.18.0.188)|db1";
    assert_eq!(
        ask(&a.addr, &format!("{writer}|term=7")).await,
        up("OK: Status applied successfully!")
    );
    assert_eq!(a.vip.ips(), vec!["198.18.0.188"]);
    let demote = "SET_STATUS|1|db1|ONLINE||db2";
    assert_eq!(
        ask(&a.addr, &format!("{demote}|term=6")).await,
        up("ERROR: Stale monitor term 6: this agent obeys term 7 (another monitor leads now)")
    );
    assert_eq!(
        ask(&a.addr, demote).await,
        up("ERROR: This agent obeys monitor term 7: a command without a term is refused")
    );
    assert_eq!(
        a.vip.ips(),
        vec!["198.18.0.188"],
        "a refused command changed the roles"
    );
    assert!(!a.mysql.calls().contains(&"deny_write".to_string()));
    assert_eq!(ask(&a.addr, "PING|1|db1").await, up("OK: Pinged!"));
    assert_eq!(
        ask(&a.addr, "GET_AGENT_STATUS|1|db1|term=3").await,
        up("OK: Returning status!|ONLINE|writer(198.18.0.188)|")
    );
    // The new leader's term: obeyed.
    assert_eq!(
        ask(&a.addr, &format!("{demote}|term=8")).await,
        up("OK: Status applied successfully!")
    );
    assert!(a.vip.ips().is_empty());
    a.stop().await;
}
