//! The `mmm_control` binary end to end (spec §5.1): config lookup (via `MMM_CONFIG_DIR`),
//! `@cluster`, `--version`, usage error, output bytes and exit codes against a fake
//! monitor on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mmm_control");

fn write_config(dir: &Path, name: &str, port: u16) {
    let text = format!(
        "active_master_role writer\n\
<monitor>\n    ip 127.0.0.1\n    port {port}\n    pid_path /run/mi-test.pid\n    bin_path /usr/lib/mysql-mmm/\n    status_path /tmp/mi-test.status\n    ping_ips 198.18.2.1\n</monitor>\n\
<host default>\n    monitor_user mmm_monitor\n    monitor_password x\n</host>\n\
<host db1>\n    ip 198.18.2.100\n    mode master\n    peer db2\n</host>\n\
<host db2>\n    ip 198.18.2.102\n    mode master\n    peer db1\n</host>\n\
<role writer>\n    hosts db1, db2\n    ips 198.18.2.188\n    mode exclusive\n</role>\n"
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MMM_CONFIG_DIR", dir)
        .output()
        .unwrap()
}

/// A fake monitor answering one connection with `answer`; returns its port and a handle
/// with the bytes it received.
fn fake_monitor(answer: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.ends_with(b"quit\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(answer.as_bytes()).unwrap();
        String::from_utf8(got).unwrap()
    });
    (port, h)
}

#[test]
fn mode_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (port, h) = fake_monitor("ACTIVE");
    write_config(dir.path(), "mmm_mon.conf", port);
    let out = run(dir.path(), &["mode"]);
    assert_eq!(h.join().unwrap(), "mode\nquit\n");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "ACTIVE\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn cluster_selects_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let (port, h) = fake_monitor("OK: Pinged successfully!");
    write_config(dir.path(), "mmm_mon_C1.conf", port);
    let out = run(dir.path(), &["@C1", "ping"]);
    assert_eq!(h.join().unwrap(), "ping\nquit\n");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "OK: Pinged successfully!\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn no_command_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "mmm_mon.conf", 9);
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!("See '{BIN} help' for usage information\n")
    );
}

#[test]
fn monitor_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write_config(dir.path(), "mmm_mon.conf", port);
    let out = run(dir.path(), &["show"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "ERROR: Can't connect to monitor daemon!\n"
    );
}

#[test]
fn version_and_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("mmm_control {}\n", mmm_common::VERSION)
    );
    let out = run(dir.path(), &["ping"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(!out.stderr.is_empty());
}

#[test]
fn force_and_unknown_words_reach_the_monitor_as_typed() {
    for (args, sent) in [
        (
            &["move_role", "--force", "writer", "db2"][..],
            "move_role --force writer db2\nquit\n",
        ),
        // Not a command clap knows, nor valid arguments: the monitor's to answer.
        (&["frobnicate", "-x", "a"], "frobnicate -x a\nquit\n"),
        (&["set_online"], "set_online\nquit\n"),
        (
            &["checks", "db1", "nosuchcheck"],
            "checks db1 nosuchcheck\nquit\n",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (port, h) = fake_monitor("ERROR: x");
        write_config(dir.path(), "mmm_mon.conf", port);
        let out = run(dir.path(), args);
        assert_eq!(h.join().unwrap(), sent);
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "ERROR: x\n");
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn help_needs_no_config_nor_monitor() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["-h"], &["@C1", "--help"]] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Usage: mmm_control [@CLUSTER] [--json] [COMMAND]"),
            "{text}"
        );
        assert!(text.contains("move_role"), "{text}");
    }
    let out = run(dir.path(), &["move_role", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Usage: mmm_control move_role [--force] <ROLE> <HOST>"),
        "{text}"
    );
    assert!(text.contains("--force"), "{text}");
}

#[test]
fn command_definition_is_consistent() {
    mmm_control::command().debug_assert();
}
