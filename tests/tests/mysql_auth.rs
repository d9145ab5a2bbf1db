//! MySQL authentication plugins the checks connect with, against a real MariaDB server on
//! the testbed: an account `IDENTIFIED VIA ed25519` (MariaDB's ed25519 plugin) passes the
//! monitor's mysql check, a wrong password still fails it. mysql_async is built with its
//! `client_ed25519` feature for this (without it, mysql_common panics in the check task on
//! such an account); `caching_sha2_password` (MySQL 8's default) it speaks without a
//! feature.
//!
//! Needs root (network namespaces): `cargo test -p mmm-tests --test mysql_auth`.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use mmm_mon::checks::mysql::{mysql_check, HostConns, MysqlTarget};
use mmm_tests::{Testbed, TestbedOptions};

const SUBNET: u8 = 97;

/// Runs `f` on a thread inside `host`'s network namespace, with a current-thread runtime.
fn on_host<T: Send>(tb: &Testbed, host: &str, f: impl std::future::Future<Output = T> + Send) -> T {
    let ns = PathBuf::from("/run/netns").join(&tb.host(host).expect("host").netns);
    std::thread::scope(|s| {
        s.spawn(move || {
            let file = std::fs::File::open(&ns).expect("netns file");
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("setns into the host's network namespace");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .expect("host thread")
    })
}

#[test]
fn ed25519_account_passes_the_mysql_check() {
    let tb = Testbed::up(TestbedOptions {
        subnet: SUBNET,
        slaves: 0,
        write_mmm_configs: false,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for q in [
            "SET sql_log_bin = 0",
            "INSTALL SONAME 'auth_ed25519'",
            "CREATE USER 'mmm_ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-Secret1')",
        ] {
            tb.sql("db1", q)
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    });
    let ip = std::net::IpAddr::V4(tb.ip("db1"));
    let target = |password: &str| {
        HostConns::new(MysqlTarget {
            ip,
            port: 3306,
            user: "mmm_ed".into(),
            password: password.into(),
            tls: Default::default(),
        })
    };
    let (good, bad) = on_host(&tb, "monitor", async {
        (
            mysql_check(&target("ed-Secret1"), Duration::from_secs(5)).await,
            mysql_check(&target("wrong"), Duration::from_secs(5)).await,
        )
    });
    assert!(good.starts_with("OK"), "{good}");
    assert!(bad.starts_with("ERROR"), "{bad}");
    assert!(bad.contains("Access denied"), "{bad}");
}
