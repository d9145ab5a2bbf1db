//! Real config files through the whole loader (lookup, permission check, includes, templates,
//! validation per class): the stock 2.2.1 samples (spec §2.5), the seed walkthrough's three
//! configs as written (inline comments in Chinese), and the repository's etc/mysql-mmm.
//! Files are copied into a temp dir `mmmcfg*` and chmod 0640, as a package installs them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mmm_common::config::{
    load_from, render_effective, Config, ConfigErrorKind, ProgramClass, RoleMode, SocketType,
};
use mmm_common::state::{HostMode, MonitorMode};

fn data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir)
}

/// Copies every `*.conf` of `src` into a fresh temp dir, mode 0640.
fn install(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mmmcfg")
        .tempdir()
        .expect("temp dir");
    for entry in fs::read_dir(src).expect("data dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "conf") {
            let to = dir.path().join(entry.file_name());
            fs::copy(&path, &to).expect("copy");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o640)).expect("chmod");
        }
    }
    dir
}

fn load(dir: &tempfile::TempDir, name: &str, class: ProgramClass) -> Config {
    load_from(&[dir.path().to_path_buf()], name, class)
        .unwrap_or_else(|e| panic!("{name} as {class:?}: {e}"))
}

#[test]
fn stock_agent_conf() {
    let dir = install(&data("stock"));
    let cfg = load(&dir, "mmm_agent", ProgramClass::Agent);
    assert_eq!(cfg.this.as_deref(), Some("db1"));
    assert_eq!(cfg.active_master_role.as_deref(), Some("writer"));
    assert_eq!(cfg.max_kill_retries, 10);
    assert!(!cfg.debug);
    assert!(cfg.monitor.is_none());
    assert_eq!(cfg.socket.kind, SocketType::Plain);
    let names: Vec<&str> = cfg.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
    let db1 = cfg.this_host().expect("this host");
    assert_eq!(db1.ip.as_deref(), Some("192.168.0.31"));
    assert_eq!(db1.mode, Some(HostMode::Master));
    assert_eq!(db1.peer.as_deref(), Some("db2"));
    // From the template.
    assert_eq!(db1.cluster_interface.as_deref(), Some("eth0"));
    assert_eq!(db1.pid_path.as_deref(), Some("/var/run/mmm_agentd.pid"));
    assert_eq!(db1.bin_path.as_deref(), Some("/usr/lib/mysql-mmm/"));
    assert_eq!(db1.replication_user.as_deref(), Some("replication"));
    assert_eq!(db1.replication_password.as_deref(), Some("slave"));
    assert_eq!(db1.agent_user.as_deref(), Some("mmm_agent"));
    assert_eq!(db1.agent_password.as_deref(), Some("RepAgent"));
    assert_eq!(db1.agent_port, 9989);
    assert_eq!(db1.mysql_port, 3306);
    let db3 = cfg.host("db3").expect("db3");
    assert_eq!(db3.mode, Some(HostMode::Slave));
    assert_eq!(db3.peer, None);
    let writer = cfg.active_master_role().expect("writer");
    assert_eq!(writer.mode, Some(RoleMode::Exclusive));
    assert_eq!(writer.hosts, ["db1", "db2"]);
    assert_eq!(writer.ips, ["192.168.0.50"]);
    let reader = cfg.role("reader").expect("reader");
    assert_eq!(reader.mode, Some(RoleMode::Balanced));
    assert_eq!(reader.hosts, ["db1", "db2", "db3"]);
    assert_eq!(reader.ips, ["192.168.0.51", "192.168.0.52", "192.168.0.53"]);
}

#[test]
fn stock_mon_conf_for_monitor_and_control() {
    let dir = install(&data("stock"));
    for class in [ProgramClass::Monitor, ProgramClass::Control] {
        let cfg = load(&dir, "mmm_mon", class);
        let mon = cfg.monitor.as_ref().expect("monitor section");
        assert_eq!(mon.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(mon.port, 9988);
        assert_eq!(mon.pid_path.as_deref(), Some("/var/run/mmm_mond.pid"));
        assert_eq!(mon.bin_path.as_deref(), Some("/usr/lib/mysql-mmm/"));
        assert_eq!(
            mon.status_path.as_deref(),
            Some("/var/lib/misc/mmm_mond.status")
        );
        assert_eq!(mon.ping_ips, ["192.168.0.1", "192.168.0.2", "192.168.0.3"]);
        assert_eq!(mon.mode, MonitorMode::Active);
        assert!(mon.careful_startup);
        for h in &cfg.hosts {
            assert_eq!(h.monitor_user.as_deref(), Some("mmm_monitor"), "{}", h.name);
            assert_eq!(h.monitor_password.as_deref(), Some("RepMonitor"));
            // The common template merged with the monitor's own <host default>.
            assert_eq!(h.agent_user.as_deref(), Some("mmm_agent"));
        }
        assert_eq!(cfg.checks.ping.check_period, Duration::from_secs(5));
    }
    // The agent's config is not enough for the monitor.
    let e = load_from(
        &[dir.path().to_path_buf()],
        "mmm_agent",
        ProgramClass::Monitor,
    )
    .unwrap_err();
    assert_eq!(
        *e.kind,
        ConfigErrorKind::RequiredMissing {
            path: "monitor".into(),
            program: "mmm_mond"
        }
    );
    assert!(e.file.ends_with("/mmm_agent.conf"), "{}", e.file);
}

#[test]
fn stock_tools_conf() {
    let dir = install(&data("stock"));
    let cfg = load(&dir, "mmm_tools", ProgramClass::Tools);
    assert_eq!(cfg.default_copy_method.as_deref(), Some("scp"));
    assert_eq!(cfg.clone_dirs, ["data", "logs"]);
    let names: Vec<&str> = cfg.copy_methods.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["scp", "rdiff", "ssh-gz"]);
    let scp = &cfg.copy_methods[0];
    assert!(scp.true_copy && !scp.incremental && !scp.single_run);
    let rdiff = &cfg.copy_methods[1];
    assert!(rdiff.incremental && rdiff.single_run && !rdiff.true_copy);
    assert_eq!(
        rdiff.incremental_command.as_deref(),
        Some("rdiff-backup --parsable-output -l %BACKUP_DIR%")
    );
    let sshgz = &cfg.copy_methods[2];
    assert!(sshgz
        .backup_command
        .as_deref()
        .is_some_and(|c| c.ends_with("| gzip > %DEST_DIR%/backup.tar.gz")));
    let db2 = cfg.host("db2").expect("db2");
    let tool = |k: &str| {
        db2.tools
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(tool("ssh_user"), Some("root"));
    assert_eq!(tool("ssh_port"), Some("22"));
    assert_eq!(tool("ssh_parameters"), Some(""));
    assert_eq!(tool("lvm_mount_opts"), Some("-orw,nouuid"));
    assert_eq!(tool("lvm_bin_lvcreate"), Some("lvcreate"));
    assert_eq!(tool("lvm_bin_lvremove"), Some("lvremove"));
    assert_eq!(tool("tools_password"), Some("RepTools"));
    assert_eq!(db2.mysql_pidfile, "/var/run/mysqld/mysqld.pid");
    assert_eq!(db2.mysql_rcscript, "/etc/init.d/mysql");
    assert_eq!(db2.mysql_cnf, "/etc/my.cnf");
}

/// The seed's configs mean what their author meant: the values without the inline comments.
fn check_seed_common(cfg: &Config) {
    assert_eq!(cfg.active_master_role.as_deref(), Some("writer"));
    type HostRow<'a> = (&'a str, Option<&'a str>, Option<HostMode>, Option<&'a str>);
    let hosts: Vec<HostRow<'_>> = cfg
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.ip.as_deref(), h.mode, h.peer.as_deref()))
        .collect();
    assert_eq!(
        hosts,
        [
            (
                "db1",
                Some("192.168.2.100"),
                Some(HostMode::Master),
                Some("db2")
            ),
            (
                "db2",
                Some("192.168.2.102"),
                Some(HostMode::Master),
                Some("db1")
            ),
            ("db3", Some("192.168.2.103"), Some(HostMode::Slave), None),
            ("db4", Some("192.168.2.105"), Some(HostMode::Slave), None),
        ]
    );
    for h in &cfg.hosts {
        assert_eq!(h.cluster_interface.as_deref(), Some("ens33"));
        assert_eq!(h.replication_user.as_deref(), Some("replication"));
        assert_eq!(h.replication_password.as_deref(), Some("123456"));
        assert_eq!(h.agent_user.as_deref(), Some("mmm_agent"));
        assert_eq!(h.agent_password.as_deref(), Some("123456"));
    }
    let writer = cfg.role("writer").expect("writer");
    assert_eq!(writer.mode, Some(RoleMode::Exclusive));
    assert_eq!(writer.hosts, ["db1", "db2"]);
    assert_eq!(writer.ips, ["192.168.2.188"]);
    let reader = cfg.role("reader").expect("reader");
    assert_eq!(reader.mode, Some(RoleMode::Balanced));
    assert_eq!(reader.hosts, ["db3", "db4"]);
    assert_eq!(reader.ips, ["192.168.2.198", "192.168.2.199"]);
}

#[test]
fn seed_agent_conf_as_written() {
    let dir = install(&data("seed"));
    let cfg = load(&dir, "mmm_agent", ProgramClass::Agent);
    check_seed_common(&cfg);
    assert_eq!(cfg.this.as_deref(), Some("db1"));
}

#[test]
fn seed_mon_conf_as_written() {
    let dir = install(&data("seed"));
    for class in [ProgramClass::Monitor, ProgramClass::Control] {
        let cfg = load(&dir, "mmm_mon", class);
        check_seed_common(&cfg);
        let mon = cfg.monitor.as_ref().expect("monitor");
        assert_eq!(
            mon.ping_ips,
            [
                "192.168.2.100",
                "192.168.2.102",
                "192.168.2.103",
                "192.168.2.105"
            ]
        );
        assert_eq!(mon.auto_set_online, Duration::from_secs(10));
        for h in &cfg.hosts {
            assert_eq!(h.monitor_user.as_deref(), Some("mmm_monitor"));
            assert_eq!(h.monitor_password.as_deref(), Some("123456"));
        }
        assert!(!cfg.debug);
    }
}

/// The repository's etc/mysql-mmm holds the seed's deployment: it means exactly what the
/// seed's files mean, for every class, plus `monitor_ips` (the monitor host).
#[test]
fn etc_configs_equal_the_seed() {
    let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/mysql-mmm");
    let etc_dir = install(&etc);
    let seed_dir = install(&data("seed"));
    for (name, class) in [
        ("mmm_agent", ProgramClass::Agent),
        ("mmm_mon", ProgramClass::Monitor),
        ("mmm_mon", ProgramClass::Control),
    ] {
        let mut a = load(&etc_dir, name, class);
        let b = load(&seed_dir, name, class);
        // The one addition (issue 15): the agents obey only the monitor host.
        assert_eq!(
            a.ext.monitor_ips,
            vec!["192.168.2.106".parse::<std::net::IpAddr>().unwrap()],
            "{name} as {class:?}"
        );
        a.ext.monitor_ips.clear();
        assert_eq!(a, b, "{name} as {class:?}");
    }
}

/// The repository's etc/mysql-mmm/mmm_tools.conf (the package's conffile) is 2.2.1's stock
/// one: the same tools settings and copy methods, over etc's mmm_agent.conf.
#[test]
fn etc_tools_conf_is_the_stock_one() {
    let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/mysql-mmm");
    let etc_cfg = load(&install(&etc), "mmm_tools", ProgramClass::Tools);
    let stock = load(&install(&data("stock")), "mmm_tools", ProgramClass::Tools);
    assert_eq!(etc_cfg.default_copy_method, stock.default_copy_method);
    assert_eq!(etc_cfg.clone_dirs, stock.clone_dirs);
    assert_eq!(etc_cfg.copy_methods, stock.copy_methods);
    let tools = |c: &Config| c.host("db1").expect("db1").tools.clone();
    assert_eq!(tools(&etc_cfg), tools(&stock));
}

#[test]
fn effective_config_masks_passwords() {
    let dir = install(&data("seed"));
    let cfg = load(&dir, "mmm_mon", ProgramClass::Monitor);
    let text = render_effective(&cfg);
    assert!(!text.contains("123456"), "{text}");
    assert!(text.contains("agent_password = \"********\""), "{text}");
    assert!(text.contains("monitor_password = \"********\""), "{text}");
    assert!(text.contains("auto_set_online = 10"), "{text}");
    assert!(text.contains("status_retry_interval = 0.5"), "{text}");
    assert!(text.contains("agent_lease = 0\n"), "{text}");
    assert!(text.contains("ping_ips = ["), "{text}");
    // It is TOML.
    let parsed: toml::Value = toml::from_str(&text).expect("valid TOML");
    assert!(parsed.get("hosts").is_some());
}

#[test]
#[ignore = "prints the effective config for a human to read"]
fn print_effective() {
    let dir = install(&data("seed"));
    println!(
        "{}",
        render_effective(&load(&dir, "mmm_mon", ProgramClass::Monitor))
    );
}
