//! mmm_control against a fake monitor on a loopback port (spec §5.1): exact bytes sent,
//! exact output printed, exit codes.

use mmm_common::test_pki::TestPki;
use std::process::ExitCode;
use std::time::Duration;

use mmm_common::config::{SocketConfig, SocketType};
use mmm_control::{execute, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn target(addr: String) -> Target {
    Target {
        addr,
        socket: SocketConfig {
            kind: SocketType::Plain,
            cert_file: None,
            key_file: None,
            ca_file: None,
        },
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
    }
}

/// A fake monitor in a thread: accepts one connection, reads until the client's `quit\n`,
/// answers `answer` and closes. Returns the address and a handle yielding what it received.
fn fake_monitor(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        rt.block_on(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"quit\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
            String::from_utf8(got).unwrap()
        })
    });
    (addr, h)
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ping_prints_answer_plus_newline() {
    let (addr, h) = fake_monitor("OK: Pinged successfully!");
    let mut out = Vec::new();
    let code = execute(&target(addr), &args(&["ping"]), &mut out);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(h.join().unwrap(), "ping\nquit\n");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "OK: Pinged successfully!\n"
    );
}

#[test]
fn args_are_joined_by_spaces_and_show_keeps_trailing_empty_line() {
    let show = "  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)\n  db2(198.18.2.102) master/ONLINE. Roles: \n";
    let (addr, h) = fake_monitor(show);
    let mut out = Vec::new();
    let code = execute(&target(addr), &args(&["checks", "db1", "mysql"]), &mut out);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(h.join().unwrap(), "checks db1 mysql\nquit\n");
    assert_eq!(String::from_utf8(out).unwrap(), format!("{show}\n"));
}

#[test]
fn error_answers_exit_two_with_221s_bytes() {
    let (addr, h) = fake_monitor("ERROR: Unknown host name 'db9'!");
    let mut out = Vec::new();
    let code = execute(&target(addr), &args(&["set_offline", "db9"]), &mut out);
    assert_eq!(code, ExitCode::from(2));
    h.join().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ERROR: Unknown host name 'db9'!\n"
    );
}

#[test]
fn monitor_down_exits_one() {
    // Bind and drop to get a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut out = Vec::new();
    let code = execute(&target(addr), &args(&["ping"]), &mut out);
    assert_eq!(code, ExitCode::from(1));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ERROR: Can't connect to monitor daemon!\n"
    );
}

#[test]
fn frozen_monitor_times_out() {
    // Accepts (kernel backlog) but never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut t = target(addr);
    t.read_timeout = Duration::from_millis(300);
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    let code = execute(&t, &args(&["show"]), &mut out);
    assert_eq!(code, ExitCode::from(1));
    // Not hung (the monitor never answers); bounded generously for a loaded machine.
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ERROR: Can't connect to monitor daemon!\n"
    );
    drop(l);
}

#[test]
fn tls_monitor() {
    let pki = make_pki();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(mmm_common::socket::Listener::bind(
            "127.0.0.1:0",
            &pki.server,
        ))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        rt.block_on(async move {
            let acc = listener.accept().await.unwrap();
            let mut s = acc.establish(Duration::from_secs(5)).await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"quit\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"OK: Pinged successfully!").await.unwrap();
            s.shutdown().await.unwrap();
            String::from_utf8(got).unwrap()
        })
    });
    let mut t = target(addr);
    t.socket = pki.client.clone();
    let mut out = Vec::new();
    let code = execute(&t, &args(&["ping"]), &mut out);
    assert_eq!(h.join().unwrap(), "ping\nquit\n");
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "OK: Pinged successfully!\n"
    );
}

/// Test certificates (`mmm_common::test_pki`).
struct Pki {
    _pki: TestPki,
    server: SocketConfig,
    client: SocketConfig,
}

fn make_pki() -> Pki {
    let pki = TestPki::new().expect("test certificates (openssl CLI)");
    Pki {
        server: pki.config("server", "ca"),
        client: pki.config("client", "ca"),
        _pki: pki,
    }
}

#[test]
fn json_show_and_checks_parse_with_serde() {
    let show = "  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)\n  db2(198.18.2.102) master/HARD_OFFLINE. Roles: \n";
    let (addr, h) = fake_monitor(show);
    let mut out = Vec::new();
    let code = mmm_control::execute_json(&target(addr), &args(&["show"]), &mut out);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(h.join().unwrap(), "show\nquit\n");
    let doc: mmm_control::json::Show = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc.hosts[0].roles[0].ip, "198.18.2.188");
    assert_eq!(doc.hosts[1].state, "HARD_OFFLINE");

    let checks = "db1  ping  [last change: 2026/11/25 13:59:23]  OK";
    let (addr, _h) = fake_monitor(checks);
    let mut out = Vec::new();
    let code =
        mmm_control::execute_json(&target(addr), &args(&["checks", "db1", "ping"]), &mut out);
    assert_eq!(code, ExitCode::SUCCESS);
    let rows: Vec<mmm_control::json::CheckRow> = serde_json::from_slice(&out).unwrap();
    assert_eq!(rows[0].status, "ok");

    let (addr, _h) = fake_monitor("ERROR: Unknown host name 'db9'!");
    let mut out = Vec::new();
    let code = mmm_control::execute_json(&target(addr), &args(&["checks", "db9"]), &mut out);
    assert_eq!(code, ExitCode::from(2));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"], "ERROR: Unknown host name 'db9'!");
}
