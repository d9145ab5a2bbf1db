//! The HTTP listener on real loopback TCP, in this process: `http_tls 1` serves only
//! clients with a certificate of the `<socket>` CA (a real rustls handshake with the test
//! PKI), and the connection limit turns away clients past [`MAX_CONNECTIONS`] while the
//! ones it serves keep their slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mmm_common::test_pki::TestPki;
use mmm_mon::checks::Observed;
use mmm_mon::core::{HostView, Snapshot};
use mmm_mon::http::{HttpListener, Published, Tally, MAX_CONNECTIONS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio_rustls::rustls::pki_types::ServerName;

fn published() -> Arc<Published> {
    Arc::new(Published {
        snapshot: Snapshot {
            mode: "ACTIVE".into(),
            passive_cause: None,
            network_up: true,
            active_master: Some("db1".into()),
            hosts: vec![HostView {
                name: "db1".into(),
                ip: "198.18.0.1".into(),
                mode: "master".into(),
                state: "ONLINE".into(),
                roles: vec!["writer(198.18.0.188)".into()],
                agent_reachable: true,
                flapping: false,
            }],
            roles: vec![],
            checks: vec![],
            notes: vec![],
        },
        events: Arc::new(vec![]),
        tally: Tally::default(),
        observed: Arc::new(Observed::new(1)),
        semi_sync: false,
        ha: None,
    })
}

/// Starts a listener on 127.0.0.1 (any port); dropping the sender stops it.
async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> (SocketAddr, oneshot::Sender<()>) {
    let l = HttpListener::bind("127.0.0.1:0".parse().unwrap(), tls)
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let (_tx, rx) = watch::channel(published());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _keep = _tx;
        l.run(rx, async move {
            let _ = stopped.await;
        })
        .await
    });
    (addr, stop)
}

/// Sends a GET and reads until the server closes: what it answered ("" if nothing).
async fn exchange(mut s: impl AsyncRead + AsyncWrite + Unpin, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn tls_requires_a_client_certificate_of_the_ca() {
    let pki = TestPki::new().expect("test certificates (openssl CLI)");
    let acceptor = mmm_common::socket::tls_acceptor(&pki.config("server", "ca")).expect("acceptor");
    let (addr, _stop) = start(Some(acceptor)).await;
    let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();

    // A client of the CA gets the JSON.
    let good = mmm_common::socket::tls_connector(&pki.config("client", "ca")).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = good.connect(name.clone(), tcp).await.expect("handshake");
    let answer = exchange(tls, "/api/v1/status").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"active_master\":\"db1\""), "{answer}");

    // A client certificate of another CA: no answer.
    let rogue = mmm_common::socket::tls_connector(&pki.config("rogue", "ca")).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    match rogue.connect(name.clone(), tcp).await {
        Err(_) => {}
        Ok(tls) => {
            let answer = exchange(tls, "/api/v1/status").await;
            assert!(
                !answer.contains("HTTP/1.1 200"),
                "rogue client served: {answer}"
            );
        }
    }

    // Plain HTTP to the TLS listener: no answer.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(tcp, "/api/v1/status").await;
    assert!(
        !answer.contains("HTTP/1.1 200"),
        "plain client served: {answer}"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_turned_away() {
    let (addr, _stop) = start(None).await;
    // MAX_CONNECTIONS clients that send half a request head and wait.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    // One more, with a whole request: closed without an answer.
    let extra = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(extra, "/api/v1/status").await;
    assert!(
        !answer.contains("HTTP/1.1 200"),
        "served past the limit: {answer}"
    );
    // Once they are gone (closed by the header read timeout at the latest), clients are
    // served again.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = TcpStream::connect(addr).await.unwrap();
        let answer = exchange(s, "/metrics").await;
        if answer.starts_with("HTTP/1.1 200") {
            assert!(answer.contains("mmm_host_state{host=\"db1\",state=\"ONLINE\"} 1"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never served again: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
