//! mmm_tls's certificates work with mmm-rs's own TLS sockets: a host's certificate and the
//! monitor's make a mutual TLS connection; a client of another CA is refused; a second run
//! signs with the same CA (old and new certificates trust each other).

use std::path::Path;
use std::time::Duration;

use mmm_common::config::{self, ProgramClass, SocketConfig, SocketType};
use mmm_common::socket::{connect, Listener};
use mmm_tls::{pki, plan, BundleKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONF: &str = "\
monitor_ips 192.168.2.106
active_master_role writer
<monitor>
    ip 127.0.0.1
</monitor>
<host db1>
    ip 192.168.2.100
    mode master
    peer db2
</host>
<host db2>
    ip 192.168.2.102
    mode master
    peer db1
</host>
<role writer>
    hosts db1, db2
    ips 192.168.2.188
    mode exclusive
</role>
";

fn bundles() -> Vec<mmm_tls::Bundle> {
    let cfg = config::parse_str(CONF, "test.conf", &[], ProgramClass::Control).unwrap();
    plan(&cfg, &["admin".to_string()]).unwrap()
}

fn ssl(out: &Path, name: &str) -> SocketConfig {
    let d = out.join(name);
    SocketConfig {
        kind: SocketType::Ssl,
        cert_file: Some(d.join(pki::HOST_CERT).display().to_string()),
        key_file: Some(d.join(pki::HOST_KEY).display().to_string()),
        ca_file: Some(d.join(pki::CA_CERT).display().to_string()),
    }
}

/// One line from `client` to a server presenting `server`; `Ok(echo)` or an error text.
async fn exchange(server: SocketConfig, client: SocketConfig) -> Result<String, String> {
    let l = Listener::bind("127.0.0.1:0", &server).await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let srv = tokio::spawn(async move {
        let a = l.accept().await.map_err(|e| e.to_string())?;
        let mut s = a
            .establish(Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        let mut b = [0u8; 5];
        s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        s.write_all(&b).await.map_err(|e| e.to_string())?;
        s.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    });
    let res = async {
        let mut c = connect(&addr, &client, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        c.write_all(b"PING\n").await.map_err(|e| e.to_string())?;
        let mut b = Vec::new();
        c.read_to_end(&mut b).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(10), srv).await;
    res
}

#[test]
fn plan_names_every_host() {
    let b = bundles();
    let names: Vec<&str> = b.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["monitor", "db1", "db2", "admin"]);
    assert_eq!(b[0].kind, BundleKind::Monitor);
    assert_eq!(
        b[0].ips,
        [
            "192.168.2.106".parse::<std::net::IpAddr>().unwrap(),
            "127.0.0.1".parse().unwrap()
        ]
    );
    assert_eq!(
        b[1].ips,
        ["192.168.2.100".parse::<std::net::IpAddr>().unwrap()]
    );
    let cfg = config::parse_str(CONF, "test.conf", &[], ProgramClass::Control).unwrap();
    assert!(matches!(
        plan(&cfg, &["db1".to_string()]),
        Err(mmm_tls::TlsError::BadName(_))
    ));
    assert!(plan(&cfg, &["../x".to_string()]).is_err());
}

#[tokio::test]
async fn mutual_tls_with_the_made_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    let b = bundles();
    let made = pki::make(&out, "default", &b, 30).unwrap();
    assert!(made.new_ca);
    assert_eq!(made.dirs.len(), 4);
    use std::os::unix::fs::PermissionsExt;
    for key in [out.join("ca.key"), out.join("db1/host.key")] {
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    // The monitor talks to db1's agent; mmm_control (admin) to the monitor.
    assert_eq!(
        exchange(ssl(&out, "db1"), ssl(&out, "monitor"))
            .await
            .unwrap(),
        "PING\n"
    );
    assert_eq!(
        exchange(ssl(&out, "monitor"), ssl(&out, "admin"))
            .await
            .unwrap(),
        "PING\n"
    );

    // Another cluster's CA: refused both ways.
    let rogue = dir.path().join("rogue");
    pki::make(&rogue, "other", &b, 30).unwrap();
    let r = exchange(ssl(&out, "db1"), ssl(&rogue, "monitor")).await;
    assert!(
        r.as_deref() != Ok("PING\n"),
        "a rogue client was served: {r:?}"
    );
    let r = exchange(ssl(&rogue, "db1"), ssl(&out, "monitor")).await;
    assert!(r.is_err(), "the monitor trusted a rogue agent: {r:?}");
    // No client certificate at all (plain TCP to a TLS port): nothing is echoed.
    let plain = SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    };
    let r = exchange(ssl(&out, "db1"), plain).await;
    assert!(
        r.as_deref() != Ok("PING\n"),
        "a plain client was served: {r:?}"
    );

    // A second run keeps the CA: the new db2 certificate and the old db1 one work together.
    let ca_before = std::fs::read(out.join("ca.pem")).unwrap();
    let old_db1 = dir.path().join("old-db1");
    std::fs::create_dir(&old_db1).unwrap();
    for f in ["host.pem", "host.key", "ca.pem"] {
        std::fs::copy(out.join("db1").join(f), old_db1.join(f)).unwrap();
    }
    let again = pki::make(&out, "default", &b, 30).unwrap();
    assert!(!again.new_ca);
    assert_eq!(std::fs::read(out.join("ca.pem")).unwrap(), ca_before);
    assert_eq!(
        exchange(ssl(dir.path(), "old-db1"), ssl(&out, "monitor"))
            .await
            .unwrap(),
        "PING\n"
    );

    // Half a CA is an error, not a silent new CA.
    std::fs::remove_file(out.join("ca.key")).unwrap();
    assert!(matches!(
        pki::make(&out, "default", &b, 30),
        Err(mmm_tls::TlsError::HalfCa { .. })
    ));
}

#[test]
fn instructions_hold_the_socket_section() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundles();
    let made = pki::make(dir.path(), "default", &b, 30).unwrap();
    let text = mmm_tls::instructions(dir.path(), &b, &made, "/etc/mysql-mmm/tls");
    assert!(text.contains(&mmm_tls::socket_section("/etc/mysql-mmm/tls")));
    assert!(text.contains("root@192.168.2.102:/etc/mysql-mmm/tls/"));
    // The printed section is valid MMM configuration.
    let conf = format!(
        "{CONF}{}",
        mmm_tls::socket_section(&dir.path().join("db1").display().to_string())
    );
    let cfg = config::parse_str(&conf, "t.conf", &[], ProgramClass::Control).unwrap();
    assert_eq!(cfg.socket.kind, SocketType::Ssl);
}
