//! `mmm_agentd`'s command line through the binary: `--help` and `--version` need no
//! configuration, usage errors exit 1, a missing configuration exits 1 naming the file.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mmm_agentd");
const LOG: &str = "mmm_agentd.log";

fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env("MMM_CONFIG_DIR", dir.path())
        .output()
        .unwrap()
}

#[test]
fn help_and_version_without_a_config() {
    for args in [&["--help"][..], &["-h"], &["@C1", "--help"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Usage: mmm_agentd [OPTIONS] [@CLUSTER]"),
            "{text}"
        );
        assert!(text.contains("--check-config"), "{text}");
    }
    for args in [&["--version"][..], &["@C1", "--version"], &["-V"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("mmm_agentd {}\n", mmm_common::VERSION)
        );
    }
}

#[test]
fn usage_errors_exit_one() {
    for args in [&["x"][..], &["@C1", "x"], &["--nope"], &["@"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn missing_config_names_the_file() {
    let out = run(&["@C1", "--check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("mmm_agent_C1.conf"), "{err}");
}

/// Under systemd (a `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`): `READY=1`, then `WATCHDOG=1`
/// every half of the timeout; SIGHUP is logged and the agent goes on; SIGTERM stops it
/// with exit 0. On loopback, unprivileged (no role is ever added).
#[test]
fn notify_watchdog_and_sighup() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pid = dir.path().join("agent.pid");
    let conf = format!(
        "active_master_role writer\n\
<host default>\n    cluster_interface lo\n    agent_port {port}\n    pid_path {}\n    bin_path /usr/lib/mysql-mmm/\n    replication_user r\n    replication_password p\n    agent_user a\n    agent_password p\n</host>\n\
<host db1>\n    ip 127.0.0.1\n    mode master\n    peer db2\n</host>\n\
<host db2>\n    ip 127.0.0.2\n    mode master\n    peer db1\n</host>\n\
<role writer>\n    hosts db1, db2\n    ips 127.0.0.188\n    mode exclusive\n</role>\n\
this db1\n",
        pid.display()
    );
    let path = dir.path().join("mmm_agent.conf");
    std::fs::write(&path, conf).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = Command::new(BIN)
        .env("MMM_CONFIG_DIR", dir.path())
        .env("MMM_LOG_DIR", dir.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let recv = || {
        let mut b = [0u8; 64];
        let n = sock.recv(&mut b).expect("a notification");
        String::from_utf8_lossy(&b[..n]).into_owned()
    };
    let mut got = Vec::new();
    while !got.iter().any(|m| m == "READY=1") {
        got.push(recv());
    }
    let t = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        if recv() == "WATCHDOG=1" {
            pings += 1;
        }
    }
    // Every 200 ms; 10 s only catches pings that stopped (a loaded machine delays them).
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let child_pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // logrotate: the file is moved away, then SIGHUP.
    let log_path = dir.path().join(LOG);
    std::fs::rename(&log_path, dir.path().join(format!("{LOG}.1"))).unwrap();
    nix::sys::signal::kill(child_pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    // Still alive and still pinging after the HUP.
    let mut after = 0;
    while after < 2 {
        if recv() == "WATCHDOG=1" {
            after += 1;
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the agent"
    );
    nix::sys::signal::kill(child_pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SIGHUP received: log file reopened"), "{err}");
    // The log file in MMM_LOG_DIR: the rotated one has the start, the new one the rest.
    let old = std::fs::read_to_string(dir.path().join(format!("{LOG}.1"))).unwrap();
    assert!(old.contains("  INFO STARTING..."), "{old}");
    let new = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        new.contains("  INFO SIGHUP received: log file reopened"),
        "{new}"
    );
    assert!(!new.contains("STARTING"), "{new}");
    assert!(err.contains("Signal received: exiting..."), "{err}");
}
