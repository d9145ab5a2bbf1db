//! Mutual TLS made with `mmm_tls` on the testbed (issue 15): the seed cluster with
//! `<socket> type ssl` and the certificates `mmm_tls` made from the monitor's configuration,
//! copied where its instructions say. mmm_mond, the four mmm_agentd and mmm_control talk
//! over TLS (set_online of every host, a planned switchover); a client whose certificate
//! is signed by another CA, and a plain TCP client, get nothing from an agent or from the
//! control port, and change nothing.
//!
//! Needs root and the binaries (`cargo build --workspace --bins`); subnet 140.
//! `cargo test -p mmm-tests --test tls -- --nocapture`.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mmm_common::config::{SocketConfig, SocketType};
use mmm_tests::bins::workspace_binary;
use mmm_tests::cluster::{Cluster, ClusterOptions, Daemons, DB_HOSTS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous bound for anything the daemons do on a loaded machine.
const LIMIT: Duration = Duration::from_secs(90);

/// What a client at `from` gets for `line` sent to `to` with socket settings `cfg`:
/// `Ok(reply)` (possibly empty) or the error that ended the exchange.
fn exchange_from(
    c: &Cluster,
    from: &str,
    to: SocketAddr,
    cfg: SocketConfig,
    line: &str,
) -> Result<String, String> {
    let line = line.to_string();
    c.testbed()
        .run_in_netns(from, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let mut s =
                    mmm_common::socket::connect(&to.to_string(), &cfg, Duration::from_secs(10))
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                s.write_all(line.as_bytes())
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                let mut buf = Vec::new();
                match tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf)).await {
                    Ok(Ok(_)) => Ok(String::from_utf8_lossy(&buf).into_owned()),
                    Ok(Err(e)) if buf.is_empty() => Err(format!("read: {e}")),
                    Ok(Err(_)) => Ok(String::from_utf8_lossy(&buf).into_owned()),
                    Err(_) => Ok(String::from_utf8_lossy(&buf).into_owned()),
                }
            })
        })
        .map_err(|e| e.to_string())?
}

fn ssl_files(dir: &Path) -> SocketConfig {
    SocketConfig {
        kind: SocketType::Ssl,
        cert_file: Some(dir.join("host.pem").display().to_string()),
        key_file: Some(dir.join("host.key").display().to_string()),
        ca_file: Some(dir.join("ca.pem").display().to_string()),
    }
}

/// Copies `from/{host.pem,host.key,ca.pem}` into `to` (made 0700), keeping the modes.
fn install(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in ["host.pem", "host.key", "ca.pem"] {
        fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn mutual_tls_made_by_mmm_tls() {
    let tls_bin = workspace_binary("mmm_tls").expect("cargo build --workspace --bins first");
    let mut opts = ClusterOptions::fast(140);
    opts.daemons = Daemons::None;
    opts.common_directives = mmm_tls::socket_section("/etc/mysql-mmm/tls")
        .lines()
        .map(str::to_string)
        .collect();
    let c = Cluster::start(opts).expect("testbed");

    // The documented command, on the monitor host, with its mmm_mon.conf.
    let bin = tls_bin.to_string_lossy().into_owned();
    let out = c
        .testbed()
        .exec_timeout("monitor", &[&bin, "--out", "/etc/mysql-mmm/ca"], LIMIT)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mmm_tls failed");
    assert!(text.contains(&mmm_tls::socket_section("/etc/mysql-mmm/tls")));
    // Copy each directory where the instructions say (each host's /etc is private).
    let etc = |h: &str| c.testbed().host(h).unwrap().dir.join("etc/mysql-mmm");
    let made = etc("monitor").join("ca");
    install(&made.join("monitor"), &etc("monitor").join("tls"));
    for h in DB_HOSTS {
        assert!(
            text.contains(&format!("root@{}:/etc/mysql-mmm/tls/", c.ip(h))),
            "no copy line for {h}"
        );
        install(&made.join(h), &etc(h).join("tls"));
    }

    for h in DB_HOSTS {
        c.start_agent(h).unwrap();
    }
    // mmm_control ping over TLS.
    c.start_monitor().unwrap();
    for h in DB_HOSTS {
        c.wait_for(&format!("set_online {h} over TLS"), LIMIT, |c| {
            let (out, _) = c.control(&["set_online", h]).ok()?;
            (out.starts_with("OK: State of '")
                || out.starts_with("OK: This host is already ONLINE"))
            .then_some(())
        })
        .unwrap();
    }
    assert_eq!(c.wait_healthy(LIMIT).unwrap(), "db1");
    let (out, _) = c.control(&["move_role", "writer", "db2"]).unwrap();
    assert!(out.starts_with("OK: Role 'writer' has been moved"), "{out}");
    c.wait_for("db2 writable with the writer VIP", LIMIT, |c| {
        (c.holds_ip("db2", c.vip(188)).ok()? && c.writable("db2")).then_some(())
    })
    .unwrap();
    let monitor_log = c.monitor_log().unwrap();
    assert!(
        !monitor_log.contains("Can't connect"),
        "the monitor could not reach an agent over TLS:\n{monitor_log}"
    );

    // Another CA's certificates, made the same way (a second cluster, or an attacker's).
    let rogue_dir = etc("monitor").join("rogue");
    let out = c
        .testbed()
        .exec_timeout("monitor", &[&bin, "--out", "/etc/mysql-mmm/rogue"], LIMIT)
        .unwrap();
    assert!(out.status.success());
    // Its certificate, trusting the cluster's CA: the server is the one that must refuse.
    let rogue = SocketConfig {
        ca_file: Some(made.join("ca.pem").display().to_string()),
        ..ssl_files(&rogue_dir.join("monitor"))
    };
    let plain = SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    };
    // The attack of issue 15: from db3, make db1 the writer behind the monitor's back.
    let agent = SocketAddr::from((c.ip("db1"), 9989));
    let attack = format!("SET_STATUS|1|db1|ONLINE|writer({})|db1\n", c.vip(188));
    for (what, cfg) in [("rogue CA", rogue.clone()), ("plain TCP", plain.clone())] {
        let r = exchange_from(&c, "db3", agent, cfg, &attack);
        println!("{what} -> agent db1: {r:?}");
        assert!(
            !r.as_deref().unwrap_or("").contains("|UP:"),
            "the agent answered a {what} client: {r:?}"
        );
    }
    // The control port, from the monitor host itself.
    let control = SocketAddr::from(([127, 0, 0, 1], 9988));
    for (what, cfg) in [("rogue CA", rogue), ("plain TCP", plain)] {
        let r = exchange_from(&c, "monitor", control, cfg, "set_offline db2\nquit\n");
        println!("{what} -> control port: {r:?}");
        assert!(
            !r.as_deref().unwrap_or("").contains("OK"),
            "the control port served a {what} client: {r:?}"
        );
    }
    // Nothing moved: db2 still the only writer, and the monitor still serves its own client.
    let show = c.show().unwrap();
    assert_eq!(show.role_holders("writer"), ["db2"], "{show:?}");
    assert!(!c.holds_ip("db1", c.vip(188)).unwrap());
    assert!(!c.writable("db1"));
    // The refusals are logged by the agent (WARN, with the TLS reason).
    c.wait_for("db1's agent to log the refused handshakes", LIMIT, |c| {
        c.agent_log("db1")
            .ok()?
            .contains("connection refused")
            .then_some(())
    })
    .unwrap();
    c.stop().unwrap();
}
