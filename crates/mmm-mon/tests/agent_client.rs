//! The monitor's agent client against fake agents on loopback (spec §4.1-§4.3): exact
//! request bytes, reply decoding, ERROR replies, timeouts, and per-host queues (a hung
//! agent does not delay another host; one host's requests stay in order).

use mmm_common::test_pki::TestPki;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_common::config::{SocketConfig, SocketType};
use mmm_common::proto::agent::{AgentCommand, AgentRequest};
use mmm_common::state::HostState;
use mmm_mon::agent_client::{request, AgentClient, AgentError, AgentTarget};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn target(host: &str, addr: String, read_timeout: Duration) -> AgentTarget {
    AgentTarget {
        host: host.into(),
        addr,
        socket: SocketConfig {
            kind: SocketType::Plain,
            cert_file: None,
            key_file: None,
            ca_file: None,
        },
        connect_timeout: Duration::from_secs(2),
        read_timeout,
        ping_ok: Arc::new(AtomicBool::new(true)),
    }
}

/// How the fake agent behaves on each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reply `<reply>|UP:12.50\n` to each request.
    Reply(&'static str),
    /// Reply exactly these bytes.
    Raw(&'static str),
    /// Read the request, never answer.
    Hang,
    /// Read the request and close.
    Close,
}

/// A fake agent; every received request line goes to the returned channel.
async fn fake_agent(b: Behaviour) -> (String, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                let mut line = String::new();
                if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let _ = tx.send(line.clone());
                match b {
                    Behaviour::Reply(r) => {
                        let _ = s
                            .get_mut()
                            .write_all(format!("{r}|UP:12.50\n").as_bytes())
                            .await;
                    }
                    Behaviour::Raw(r) => {
                        let _ = s.get_mut().write_all(r.as_bytes()).await;
                    }
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Behaviour::Close => {}
                }
            });
        }
    });
    (addr, rx)
}

fn set_status(host: &str) -> AgentRequest {
    AgentRequest::new(
        host,
        AgentCommand::SetStatus {
            state: HostState::Online,
            roles: mmm_common::role::parse_role_list("writer(198.18.2.188),reader(198.18.2.198)"),
            master: "db1".into(),
        },
    )
}

#[tokio::test]
async fn sends_exact_line_and_decodes_reply() {
    let (addr, mut seen) = fake_agent(Behaviour::Reply("OK: Status applied successfully!")).await;
    let t = target("db1", addr, Duration::from_secs(2));
    let reply = request(&t, &set_status("db1")).await.unwrap();
    assert_eq!(
        seen.recv().await.unwrap(),
        "SET_STATUS|1|db1|ONLINE|reader(198.18.2.198),writer(198.18.2.188)|db1\n"
    );
    assert_eq!(reply.result, "OK: Status applied successfully!");
    assert_eq!(reply.uptime, Some(12.5));
    assert!(reply.is_ok());
}

#[tokio::test]
async fn error_reply_is_returned_as_a_reply() {
    let (addr, _seen) = fake_agent(Behaviour::Raw(
        "ERROR: Invalid hostname in command (db3)! My name is 'db1'|UP:3518.48\n",
    ))
    .await;
    let t = target("db3", addr, Duration::from_secs(2));
    let reply = request(&t, &AgentRequest::new("db3", AgentCommand::GetAgentStatus))
        .await
        .unwrap();
    assert_eq!(
        reply.result,
        "ERROR: Invalid hostname in command (db3)! My name is 'db1'"
    );
    assert!(!reply.is_ok());
}

#[tokio::test]
async fn reply_without_uptime_is_kept() {
    let (addr, _seen) = fake_agent(Behaviour::Raw("OK: Pinged!\n")).await;
    let t = target("db1", addr, Duration::from_secs(2));
    let reply = request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .unwrap();
    assert_eq!(reply.result, "OK: Pinged!");
    assert_eq!(reply.uptime, None);
}

#[tokio::test]
async fn closed_without_reply_and_partial_reply_fail() {
    let (addr, _s) = fake_agent(Behaviour::Close).await;
    let t = target("db1", addr, Duration::from_secs(2));
    let e = request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::NoReply(_)), "{e:?}");
    let (addr, _s) = fake_agent(Behaviour::Raw("OK: Pin")).await;
    let t = target("db1", addr, Duration::from_secs(2));
    let e = request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::NoReply(_)), "{e:?}");
}

#[tokio::test]
async fn hung_agent_times_out() {
    let (addr, _s) = fake_agent(Behaviour::Hang).await;
    let t = target("db1", addr, Duration::from_millis(300));
    let start = Instant::now();
    let e = request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .unwrap_err();
    assert_eq!(e, AgentError::ReadTimeout(Duration::from_millis(300)));
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn refused_connection_fails() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let t = target("db1", addr, Duration::from_secs(1));
    let e = request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::Connect(_)), "{e:?}");
}

#[tokio::test]
async fn hung_host_does_not_delay_another_and_order_is_kept() {
    let (hung, _h) = fake_agent(Behaviour::Hang).await;
    let (good, mut seen) = fake_agent(Behaviour::Reply("OK: Pinged!")).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = AgentClient::spawn(
        vec![
            target("db1", hung, Duration::from_secs(12)),
            target("db2", good, Duration::from_secs(12)),
        ],
        Arc::new(move |host, token: u32, outcome| {
            let _ = tx.send((host, token, outcome, Instant::now()));
        }),
    );
    let start = Instant::now();
    client
        .send(0, 1, AgentRequest::new("db1", AgentCommand::Ping))
        .unwrap();
    for token in 2..6 {
        client
            .send(1, token, AgentRequest::new("db2", AgentCommand::Ping))
            .unwrap();
    }
    assert_eq!(
        client.send(7, 99, AgentRequest::new("x", AgentCommand::Ping)),
        Err(99)
    );
    let mut tokens = Vec::new();
    for _ in 2..6 {
        let (host, token, outcome, at) = rx.recv().await.unwrap();
        assert_eq!(host, 1);
        assert!(outcome.unwrap().is_ok());
        assert!(
            // db1 hangs for 12 s: db2's replies well before that were not queued behind
            // it (half of it: generous for a loaded machine).
            at - start < Duration::from_secs(6),
            "db2 was delayed by db1"
        );
        tokens.push(token);
    }
    assert_eq!(tokens, vec![2, 3, 4, 5]);
    for _ in 2..6 {
        assert_eq!(seen.recv().await.unwrap(), "PING|1|db2\n");
    }
    let (host, token, outcome, _) = rx.recv().await.unwrap();
    assert_eq!((host, token), (0, 1));
    assert!(matches!(outcome, Err(AgentError::ReadTimeout(_))));
}

/// `<socket> type ssl`: the monitor presents its client certificate; an agent of another
/// CA is refused by the monitor (no reply accepted).
#[tokio::test]
async fn tls_agent() {
    let pki = make_pki();
    let listener = mmm_common::socket::Listener::bind("127.0.0.1:0", &pki.server)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok(acc) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(s) = acc.establish(Duration::from_secs(5)).await else {
                    return;
                };
                let mut s = BufReader::new(s);
                let mut line = String::new();
                if s.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let _ = s.get_mut().write_all(b"OK: Pinged!|UP:1.00\n").await;
                    let _ = s.get_mut().flush().await;
                }
            });
        }
    });
    let mut t = target("db1", addr.clone(), Duration::from_secs(3));
    t.socket = pki.client.clone();
    let reply = request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .unwrap();
    assert_eq!(reply.result, "OK: Pinged!");
    // Our CA does not trust a server certificate of another CA.
    let mut t = target("db1", addr, Duration::from_secs(3));
    t.socket = SocketConfig {
        ca_file: pki.rogue.ca_file.clone(),
        ..pki.client.clone()
    };
    assert!(request(&t, &AgentRequest::new("db1", AgentCommand::Ping))
        .await
        .is_err());
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
        rogue: pki.config("rogue", "rogue-ca"),
        _pki: pki,
    }
}
