//! TLS to the MySQL servers (issue 18), on the testbed with real MariaDB servers that
//! require it: each server gets a certificate of a cluster CA (made with `mmm_tls`'s
//! library), the monitor's account `REQUIRE X509` and the agents' `REQUIRE SSL`, so a plain
//! connection is refused by the server itself (checked with the real `mariadb` client).
//! With `mysql_ssl_mode VERIFY_IDENTITY`, `mysql_ssl_ca` and the host's certificate as
//! client identity in `<host default>`, the monitor's checks pass, the cluster becomes
//! healthy and a switchover (agents connecting to their own server and the peer) works.
//! Subnet 190.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use mmm_tests::cluster::{Cluster, ClusterOptions, Daemons, DB_HOSTS};

const LIMIT: Duration = Duration::from_secs(90);
const TLS_DIR: &str = "/etc/mysql-mmm/tls";

fn copy(from: &Path, to: &Path, mode: u32) {
    fs::copy(from, to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn monitor_and_agents_over_tls_to_servers_that_require_it() {
    let mut opts = ClusterOptions::fast(190);
    opts.daemons = Daemons::None;
    opts.common_directives = vec![
        "<host default>".into(),
        "    mysql_ssl_mode      VERIFY_IDENTITY".into(),
        format!("    mysql_ssl_ca        {TLS_DIR}/ca.pem"),
        format!("    mysql_ssl_cert      {TLS_DIR}/host.pem"),
        format!("    mysql_ssl_key       {TLS_DIR}/host.key"),
        "</host>".into(),
    ];
    let c = Cluster::start(opts).expect("testbed");
    let tb = c.testbed();

    // The CA and one certificate per host (its address as subject alternative name).
    let made = tempfile::tempdir().unwrap();
    let mut bundles = vec![mmm_tls::Bundle {
        name: "monitor".into(),
        kind: mmm_tls::BundleKind::Monitor,
        ips: vec![tb.ip("monitor").into()],
    }];
    for h in DB_HOSTS {
        bundles.push(mmm_tls::Bundle {
            name: h.to_string(),
            kind: mmm_tls::BundleKind::Host,
            ips: vec![tb.ip(h).into()],
        });
    }
    mmm_tls::pki::make(made.path(), "mysql-tls-test", &bundles, 30).expect("certificates");

    // Each host: its files at TLS_DIR (its private /etc) for mmm-rs; each server: a copy
    // its `mysql` user can read, named in my.cnf, then a restart.
    for h in ["monitor"].into_iter().chain(DB_HOSTS) {
        let dir = tb.host(h).unwrap().dir.join("etc/mysql-mmm/tls");
        fs::create_dir_all(&dir).unwrap();
        for (f, mode) in [("ca.pem", 0o644), ("host.pem", 0o644), ("host.key", 0o600)] {
            copy(&made.path().join(h).join(f), &dir.join(f), mode);
        }
    }
    for h in DB_HOSTS {
        let info = tb.host(h).unwrap();
        let server = info.dir.join("server-tls");
        fs::create_dir_all(&server).unwrap();
        for f in ["ca.pem", "host.pem", "host.key"] {
            copy(&made.path().join(h).join(f), &server.join(f), 0o644);
        }
        let cnf = info.my_cnf();
        let mut text = fs::read_to_string(&cnf).unwrap();
        text.push_str(&format!(
            "ssl_ca = {d}/ca.pem\nssl_cert = {d}/host.pem\nssl_key = {d}/host.key\n",
            d = server.display()
        ));
        fs::write(&cnf, text).unwrap();
        tb.mysql_stop(h).unwrap();
        tb.mysql_start(h).unwrap();
        let have_ssl = tb.query(h, "SELECT @@have_ssl AS v").unwrap();
        assert_eq!(
            have_ssl.first().and_then(|r| r.get("v")),
            Some("YES"),
            "{h}: TLS not enabled"
        );
        // Not binlogged: each server gets the same change.
        let net = format!("{}.%", tb.ip(h).to_string().rsplit_once('.').unwrap().0);
        tb.query(
            h,
            &format!(
                "SET sql_log_bin=0; ALTER USER 'mmm_monitor'@'{net}' REQUIRE X509; \
                 ALTER USER 'mmm_agent'@'{net}' REQUIRE SSL"
            ),
        )
        .unwrap();
    }

    // The servers refuse plain connections of these accounts (the real client).
    let db1 = tb.ip("db1").to_string();
    for (user, flags) in [
        ("mmm_monitor", &["--skip-ssl"][..]),
        ("mmm_agent", &["--skip-ssl"][..]),
        // TLS without a client certificate: not enough for REQUIRE X509.
        ("mmm_monitor", &["--ssl"][..]),
    ] {
        let mut argv = vec!["mariadb", "-h", &db1, "-u", user, "-p123456"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&["-e", "SELECT 1"]);
        let out = tb.exec_timeout("monitor", &argv, LIMIT).unwrap();
        assert!(
            !out.status.success(),
            "{user} {flags:?} was let in without TLS/certificate"
        );
        println!(
            "refused: {user} {flags:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    for h in DB_HOSTS {
        c.start_agent(h).unwrap();
    }
    c.start_monitor().unwrap();
    for h in DB_HOSTS {
        c.wait_for(&format!("set_online {h}"), LIMIT, |c| {
            let (out, _) = c.control(&["set_online", h]).ok()?;
            (out.starts_with("OK: State of '")
                || out.starts_with("OK: This host is already ONLINE"))
            .then_some(())
        })
        .unwrap();
    }
    assert_eq!(c.wait_healthy(LIMIT).unwrap(), "db1");
    // Every check of every host OK (the monitor's MySQL checks connect over TLS).
    let checks = c
        .wait_for("every check OK over TLS", LIMIT, |c| {
            let (out, _) = c.control(&["checks", "all"]).ok()?;
            let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
            (lines.len() == 16 && lines.iter().all(|l| l.contains("]  OK"))).then_some(out)
        })
        .unwrap();
    println!("{checks}");
    // A switchover: the agents talk to their own server and the peer over TLS.
    let (out, _) = c.control(&["move_role", "writer", "db2"]).unwrap();
    assert!(out.starts_with("OK: Role 'writer' has been moved"), "{out}");
    c.wait_for("db2 writable with the writer VIP", LIMIT, |c| {
        (c.holds_ip("db2", c.vip(188)).ok()? && c.writable("db2")).then_some(())
    })
    .unwrap();
    assert_eq!(c.wait_healthy(LIMIT).unwrap(), "db2");
    for h in DB_HOSTS {
        let log = c.agent_log(h).unwrap_or_default();
        assert!(
            !log.contains("Access denied"),
            "agent {h} was refused by a server:\n{log}"
        );
    }
    c.stop().expect("stop");
}
