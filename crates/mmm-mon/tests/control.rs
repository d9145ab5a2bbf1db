//! The control listener on loopback (spec §5.2): per line a command to the driver, `quit`
//! closes, replies written back exactly (no added newline), several lines per connection,
//! many connections at once, a client that stops reading stalls no one else.

use mmm_common::test_pki::TestPki;
use std::time::{Duration, Instant};

use mmm_common::config::{SocketConfig, SocketType};
use mmm_common::socket::Listener;
use mmm_mon::control::{run, ControlAccess, ControlRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

fn plain() -> SocketConfig {
    SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    }
}

/// Starts the listener (with `socket`) and a fake driver; returns the address.
async fn start_with(socket: &SocketConfig) -> String {
    let listener = Listener::bind("127.0.0.1:0", socket).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = mpsc::unbounded_channel::<ControlRequest>();
    let access = ControlAccess::open(listener.local_addr().unwrap().ip());
    tokio::spawn(run(listener, tx, access, std::future::pending()));
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let _ = req.reply.send(format!("<{}>", req.line));
        }
    });
    addr
}

/// Starts the listener with a fake driver: `big` answers 8 MiB, anything else
/// `<<line>>`. Returns the address and the lines the driver saw.
async fn start() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = Listener::bind("127.0.0.1:0", &plain()).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = mpsc::unbounded_channel::<ControlRequest>();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let access = ControlAccess::open(listener.local_addr().unwrap().ip());
    tokio::spawn(run(listener, tx, access, std::future::pending()));
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let _ = seen_tx.send(req.line.clone());
            let text = if req.line == "big" {
                "x".repeat(8 << 20)
            } else {
                format!("<{}>", req.line)
            };
            let _ = req.reply.send(text);
        }
    });
    (addr, seen_rx)
}

async fn exchange(addr: &str, send: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(send.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// Sends `send`, closes the sending side (EOF) and reads everything until the close.
async fn exchange_then_eof(addr: &str, send: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(send.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn mmm_control_exchange_bytes() {
    let (addr, mut seen) = start().await;
    assert_eq!(exchange(&addr, "ping\nquit\n").await, "<ping>");
    assert_eq!(seen.recv().await.unwrap(), "ping");
    // Arguments are passed through untouched; CRLF is tolerated.
    assert_eq!(
        exchange(&addr, "checks db1  mysql\r\nquit\r\n").await,
        "<checks db1  mysql>"
    );
    assert_eq!(seen.recv().await.unwrap(), "checks db1  mysql");
}

#[tokio::test]
async fn several_lines_then_eof_without_quit() {
    let (addr, mut seen) = start().await;
    let out = exchange_then_eof(&addr, "mode\n\nshow\n").await;
    assert_eq!(out, "<mode><><show>");
    assert_eq!(seen.recv().await.unwrap(), "mode");
    assert_eq!(seen.recv().await.unwrap(), "");
    assert_eq!(seen.recv().await.unwrap(), "show");
}

#[tokio::test]
async fn quit_closes_without_sending_later_lines() {
    let (addr, mut seen) = start().await;
    assert_eq!(exchange(&addr, "quit\nping\n").await, "");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), seen.recv())
            .await
            .is_err(),
        "a line after quit reached the driver"
    );
}

#[tokio::test]
async fn a_last_line_without_newline_is_a_command() {
    // Perl's `<$socket>` (2.2.1) returns it at EOF.
    let (addr, mut seen) = start().await;
    let out = exchange_then_eof(&addr, "mode\nshow").await;
    assert_eq!(out, "<mode><show>");
    assert_eq!(seen.recv().await.unwrap(), "mode");
    assert_eq!(seen.recv().await.unwrap(), "show");
}

#[tokio::test]
async fn shutdown_closes_connections_and_waits_for_them() {
    let listener = Listener::bind("127.0.0.1:0", &plain()).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // A driver that never answers.
    let (tx, mut rx) = mpsc::unbounded_channel::<ControlRequest>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let access = ControlAccess::open(listener.local_addr().unwrap().ip());
    let task = tokio::spawn(run(listener, tx, access, async move {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut waiting = TcpStream::connect(&addr).await.unwrap();
    waiting.write_all(b"show\n").await.unwrap();
    let pending = rx.recv().await.unwrap();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("listener stopped with its connections")
        .unwrap();
    for s in [&mut idle, &mut waiting] {
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "");
    }
    drop(pending);
}

#[tokio::test]
async fn stuck_client_does_not_stall_others() {
    let (addr, _seen) = start().await;
    // A client asks for a huge answer and never reads it.
    let mut stuck = TcpStream::connect(&addr).await.unwrap();
    stuck.write_all(b"big\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..20 {
        let addr = addr.clone();
        handles.push(tokio::spawn(async move {
            exchange(&addr, &format!("ping {i}\nquit\n")).await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), format!("<ping {i}>"));
    }
    // The stuck client is never answered: the others were not queued behind it.
    assert!(start.elapsed() < Duration::from_secs(30));
    drop(stuck);
}

#[tokio::test]
async fn tls_control_port_needs_a_client_certificate() {
    let pki = make_pki();
    let addr = start_with(&pki.server).await;
    let mut s = mmm_common::socket::connect(&addr, &pki.client, Duration::from_secs(5))
        .await
        .unwrap();
    s.write_all(b"mode\nquit\n").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, "<mode>");
    // A certificate of another CA gets no answer.
    let rogue = async {
        let mut s = mmm_common::socket::connect(&addr, &pki.rogue, Duration::from_secs(5)).await?;
        s.write_all(b"mode\nquit\n").await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<String, Box<dyn std::error::Error>>(out)
    };
    // Either the handshake/IO fails, or the connection closes without an answer.
    if let Ok(out) = tokio::time::timeout(Duration::from_secs(5), rogue)
        .await
        .unwrap()
    {
        assert_eq!(out, "", "rogue client got an answer");
    }
}

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

/// `control_allow` (issue 15): loopback and the bound address are always served; other
/// clients only when listed; without a list everyone (2.2.1).
#[test]
fn control_allow_decides_who_is_served() {
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let bound = ip("198.18.0.106");
    let open = ControlAccess::open(bound);
    assert!(open.permits(ip("198.18.0.103")));
    let only = ControlAccess::new(bound, &[ip("198.18.0.50")]);
    assert!(only.permits(ip("127.0.0.1")));
    assert!(only.permits(ip("::1")));
    assert!(only.permits(bound));
    assert!(only.permits(ip("198.18.0.50")));
    assert!(only.permits(ip("::ffff:198.18.0.50")));
    assert!(!only.permits(ip("198.18.0.103")));
    // The start-up WARN: non-loopback, plain, no list.
    assert!(open.startup_warning(false).is_some());
    assert!(open.startup_warning(true).is_none());
    assert!(only.startup_warning(false).is_none());
    assert!(ControlAccess::open(ip("127.0.0.1"))
        .startup_warning(false)
        .is_none());
}

/// A refused client (as mmm_control sends: command, then `quit`) reads the refusal and EOF;
/// nothing reaches the driver.
#[tokio::test]
async fn refused_client_gets_an_error_line_and_eof() {
    let (client, server) = tokio::io::duplex(4096);
    let (trigger, shutdown) = mmm_common::shutdown::channel();
    let refusals = mmm_common::access::RefusalLog::new();
    let ip: std::net::IpAddr = "198.18.0.103".parse().unwrap();
    let serve = tokio::spawn(async move {
        mmm_mon::control::refuse(server, ip, &refusals, shutdown).await;
    });
    let mut client = client;
    client.write_all(b"set_offline db1\nquit\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
        .await
        .expect("answer in time")
        .unwrap();
    assert_eq!(
        answer,
        "ERROR: Access denied: 198.18.0.103 is not in control_allow!"
    );
    tokio::time::timeout(Duration::from_secs(5), serve)
        .await
        .expect("refuse returns")
        .unwrap();
    drop(trigger);
}
