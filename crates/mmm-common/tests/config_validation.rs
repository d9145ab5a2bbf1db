//! Every validation rule of spec §2.3 (per program class) with its error text, the number
//! checks mmm-rs adds, templates, and every directive's default (§2.4).

use std::time::Duration;

use mmm_common::config::{
    parse_str, Config, ConfigError, ConfigErrorKind, Extensions, ProgramClass, SocketType,
};
use mmm_common::state::MonitorMode;

use ProgramClass::{Agent, Control, Monitor, Tools};

/// Valid for MONITOR, AGENT and CONTROL.
const FULL: &str = "\
active_master_role writer
this db1

<monitor>
    ip 127.0.0.1
    pid_path /run/mmm_mond.pid
    bin_path /usr/lib/mysql-mmm/
    status_path /var/lib/misc/mmm_mond.status
    ping_ips 198.18.0.1, 198.18.0.2
</monitor>

<host default>
    cluster_interface ens33
    pid_path /run/mmm_agentd.pid
    bin_path /usr/lib/mysql-mmm
    replication_user replication
    replication_password slave
    agent_user mmm_agent
    agent_password RepAgent
    monitor_user mmm_monitor
    monitor_password RepMonitor
</host>

<host db1>
    ip 198.18.0.11
    mode master
    peer db2
</host>

<host db2>
    ip 198.18.0.12
    mode master
    peer db1
</host>

<host db3>
    ip 198.18.0.13
    mode slave
</host>

<role writer>
    hosts db1, db2
    ips 198.18.0.100
    mode exclusive
</role>

<role reader>
    hosts db1, db2, db3
    ips 198.18.0.101, 198.18.0.102
    mode balanced
</role>
";

fn parse(text: &str, class: ProgramClass) -> Result<Config, ConfigError> {
    parse_str(text, "t.conf", &[], class)
}

fn ok(text: &str, class: ProgramClass) -> Config {
    parse(text, class).unwrap_or_else(|e| panic!("{class:?}: {e}"))
}

fn err(text: &str, class: ProgramClass) -> ConfigError {
    match parse(text, class) {
        Ok(_) => panic!("{class:?}: expected an error"),
        Err(e) => e,
    }
}

/// `FULL` with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "{from}");
    FULL.replacen(from, to, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle")
}

#[test]
fn full_is_valid_for_monitor_agent_control() {
    for class in [Monitor, Agent, Control] {
        ok(FULL, class);
    }
}

#[test]
fn required_top_level_entries_per_class() {
    let no_amr = edit("active_master_role writer\n", "");
    for class in [Monitor, Agent] {
        let e = err(&no_amr, class);
        assert!(
            e.to_string()
                .starts_with("Required config entry 'active_master_role' is missing"),
            "{e}"
        );
        assert_eq!(e.file, "t.conf");
        assert_eq!(e.line, None);
        assert_eq!(e.directive.as_deref(), Some("active_master_role"));
    }
    ok(&no_amr, Control);

    let no_this = edit("this db1\n", "");
    let e = err(&no_this, Agent);
    assert_eq!(
        e.to_string(),
        "Required config entry 'this' is missing (needed by mmm_agentd; config 't.conf')"
    );
    ok(&no_this, Monitor);
    ok(&no_this, Control);
}

#[test]
fn required_sections_per_class() {
    let start = FULL.find("<monitor>").expect("monitor");
    let end = FULL.find("</monitor>").expect("end") + "</monitor>".len();
    let no_monitor = format!("{}{}", &FULL[..start], &FULL[end..]);
    for (class, program) in [(Monitor, "mmm_mond"), (Control, "mmm_control")] {
        let e = err(&no_monitor, class);
        assert_eq!(
            *e.kind,
            ConfigErrorKind::RequiredMissing {
                path: "monitor".into(),
                program
            }
        );
        assert!(e
            .to_string()
            .starts_with("Required config entry 'monitor' is missing"));
    }
    ok(&no_monitor, Agent);

    let no_roles = FULL
        .split("<role writer>")
        .next()
        .expect("head")
        .replace("active_master_role writer\n", "");
    for class in [Monitor, Agent] {
        let e = err(&no_roles, class);
        assert!(
            e.to_string()
                .starts_with("Required config entry 'role' is missing"),
            "{e}"
        );
    }
    ok(&no_roles, Control);

    // Only the template: no host at all.
    let e = err("<host default>\nip 1.2.3.4\n</host>\n", Control);
    assert!(
        e.to_string()
            .starts_with("Required config entry 'host' is missing"),
        "{e}"
    );
}

#[test]
fn required_monitor_entries_per_class() {
    for var in ["ip", "pid_path", "bin_path", "status_path", "ping_ips"] {
        let line = FULL
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{var} ")))
            .expect("line");
        let text = edit(&format!("{line}\n"), "");
        let e = err(&text, Monitor);
        assert!(
            e.to_string().starts_with(&format!(
                "Required config entry 'monitor->{var}' is missing"
            )),
            "{e}"
        );
        if var == "ip" {
            err(&text, Control);
        } else {
            ok(&text, Control);
        }
    }
}

#[test]
fn required_host_entries_per_class() {
    // (directive, classes that need it)
    let table: &[(&str, &[ProgramClass])] = &[
        ("cluster_interface", &[Agent]),
        ("pid_path", &[Agent]),
        ("bin_path", &[Agent]),
        ("replication_user", &[Agent]),
        ("replication_password", &[Agent]),
        ("agent_user", &[Agent]),
        ("agent_password", &[Agent]),
        ("monitor_user", &[Monitor]),
        ("monitor_password", &[Monitor]),
    ];
    let template = FULL.split("<host default>").nth(1).expect("template");
    for (var, needed_by) in table {
        let line = template
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{var} ")))
            .expect("line");
        let text = edit(&format!("{line}\n"), "");
        for class in [Monitor, Agent, Control] {
            match parse(&text, class) {
                Err(e) if needed_by.contains(&class) => assert!(
                    e.to_string().starts_with(&format!(
                        "Required config entry 'host->db1->{var}' is missing"
                    )),
                    "{e}"
                ),
                Ok(_) if !needed_by.contains(&class) => {}
                other => panic!("{var} {class:?}: {other:?}"),
            }
        }
    }
    // ip and mode: AGENT and MONITOR (ip also TOOLS).
    let text = edit("    ip 198.18.0.13\n", "");
    for class in [Monitor, Agent] {
        assert!(err(&text, class)
            .to_string()
            .starts_with("Required config entry 'host->db3->ip' is missing"));
    }
    ok(&text, Control);
    let text = edit("    mode slave\n", "");
    for class in [Monitor, Agent] {
        assert!(err(&text, class)
            .to_string()
            .starts_with("Required config entry 'host->db3->mode' is missing"));
    }
    ok(&text, Control);
}

#[test]
fn required_role_entries_per_class() {
    let text = edit("    mode exclusive\n", "");
    assert!(err(&text, Monitor)
        .to_string()
        .starts_with("Required config entry 'role->writer->mode' is missing"));
    ok(&text, Agent);
    let text = edit("    hosts db1, db2\n", "");
    assert!(err(&text, Monitor)
        .to_string()
        .starts_with("Required config entry 'role->writer->hosts' is missing"));
    ok(&text, Agent);
    let text = edit("    ips 198.18.0.100\n", "");
    for class in [Monitor, Agent] {
        assert!(err(&text, class)
            .to_string()
            .starts_with("Required config entry 'role->writer->ips' is missing"));
    }
    ok(&text, Control);
}

#[test]
fn deprequired_peer_for_masters() {
    let text = edit("    peer db2\n", "");
    for class in [Monitor, Agent, Control] {
        let e = err(&text, class);
        assert_eq!(
            *e.kind,
            ConfigErrorKind::DepRequired {
                path: "host->db1->peer".into(),
                var: "mode".into(),
                value: "master".into()
            }
        );
        assert!(
            e.to_string().starts_with(
                "Config entry 'host->db1->peer' is required because of 'mode master', but missing"
            ),
            "{e}"
        );
        // Points at the `mode master` line.
        assert_eq!(e.line, Some(line_of(&text, "mode master")));
    }
}

#[test]
fn deprequired_ssl_socket_keys_are_hard_errors() {
    let ssl = |keys: &str| format!("{FULL}<socket>\ntype ssl\n{keys}</socket>\n");
    let all = "cert_file /c.pem\nkey_file /k.pem\nca_file /ca.pem\n";
    for class in [Monitor, Agent, Control] {
        let cfg = ok(&ssl(all), class);
        assert_eq!(cfg.socket.kind, SocketType::Ssl);
        assert_eq!(cfg.socket.ca_file.as_deref(), Some("/ca.pem"));
    }
    for (missing, needed_by) in [
        ("cert_file", &[Monitor, Agent, Control][..]),
        ("key_file", &[Monitor, Agent, Control][..]),
        ("ca_file", &[Monitor, Agent][..]),
    ] {
        let keys: String = all
            .lines()
            .filter(|l| !l.starts_with(missing))
            .map(|l| format!("{l}\n"))
            .collect();
        for class in [Monitor, Agent, Control] {
            let r = parse(&ssl(&keys), class);
            if needed_by.contains(&class) {
                let e = r.expect_err("missing ssl key");
                assert!(
                    e.to_string().starts_with(&format!(
                        "Config entry 'socket->{missing}' is required because of 'type ssl', but missing"
                    )),
                    "{e}"
                );
            } else {
                assert!(r.is_ok(), "{missing} {class:?}");
            }
        }
    }
    // Plain sockets need nothing.
    ok(&format!("{FULL}<socket>\ntype plain\n</socket>\n"), Agent);
}

#[test]
fn fixed_values() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "    mode master\n    peer db2\n",
            "    mode primary\n    peer db2\n",
            "Config entry 'host->db1->mode' has invalid value 'primary' allowed values are: 'master', 'slave'",
        ),
        (
            "    mode exclusive\n",
            "    mode single\n",
            "Config entry 'role->writer->mode' has invalid value 'single' allowed values are: 'balanced', 'exclusive'",
        ),
        (
            "    ip 127.0.0.1\n",
            "    ip 127.0.0.1\n    mode ACTIVE\n",
            "Config entry 'monitor->mode' has invalid value 'ACTIVE' allowed values are: 'passive', 'active', 'manual', 'wait'",
        ),
        (
            "    ip 127.0.0.1\n",
            "    ip 127.0.0.1\n    careful_startup maybe\n",
            "Config entry 'monitor->careful_startup' has invalid value 'maybe' allowed values are: '0', '1'",
        ),
        (
            "this db1\n",
            "this db1\ndebug 2\n",
            "Config entry 'debug' has invalid value '2' allowed values are: '0', '1'",
        ),
    ];
    for (from, to, msg) in cases {
        let text = edit(from, to);
        let e = err(&text, Monitor);
        assert!(e.to_string().starts_with(msg), "{e}\nwanted: {msg}");
        assert!(e.line.is_some(), "{e}");
        assert!(e.to_string().contains("(in 't.conf' on line"), "{e}");
    }
    let e = err(&format!("{FULL}<socket>\ntype tls\n</socket>\n"), Agent);
    assert!(e.to_string().starts_with(
        "Config entry 'socket->type' has invalid value 'tls' allowed values are: 'plain', 'ssl'"
    ));
    // Every monitor mode word.
    for (word, mode) in [
        ("passive", MonitorMode::Passive),
        ("active", MonitorMode::Active),
        ("manual", MonitorMode::Manual),
        ("wait", MonitorMode::Wait),
    ] {
        let cfg = ok(
            &edit(
                "    ip 127.0.0.1\n",
                &format!("    ip 127.0.0.1\n    mode {word}\n"),
            ),
            Monitor,
        );
        assert_eq!(cfg.monitor.expect("monitor").mode, mode);
    }
    // Boolean words.
    for (word, value) in [
        ("yes", true),
        ("On", true),
        ("TRUE", true),
        ("off", false),
        ("No", false),
    ] {
        let cfg = ok(
            &edit("this db1\n", &format!("this db1\ndebug {word}\n")),
            Agent,
        );
        assert_eq!(cfg.debug, value, "{word}");
    }
}

#[test]
fn references() {
    let e = err(&edit("this db1\n", "this db9\n"), Agent);
    assert!(
        e.to_string().starts_with(
            "Config entry 'this' has invalid value 'db9' allowed values are: 'db1', 'db2', 'db3'"
        ),
        "{e}"
    );
    // The template is not a host.
    let e = err(&edit("this db1\n", "this default\n"), Agent);
    assert!(e
        .to_string()
        .starts_with("Config entry 'this' has invalid value 'default'"));
    let e = err(
        &edit("active_master_role writer\n", "active_master_role master\n"),
        Monitor,
    );
    assert!(e.to_string().starts_with(
        "Config entry 'active_master_role' has invalid value 'master' allowed values are: 'writer', 'reader'"
    ), "{e}");
    let e = err(&edit("    peer db2\n", "    peer db7\n"), Control);
    assert!(e.to_string().starts_with(
        "Config entry 'host->db1->peer' has invalid value 'db7' allowed values are: 'db1', 'db2', 'db3'"
    ), "{e}");
    let e = err(
        &edit("    hosts db1, db2\n", "    hosts db1, dbX\n"),
        Monitor,
    );
    assert!(e.to_string().starts_with(
        "Config entry 'role->writer->hosts' has invalid value 'dbX' allowed values are: 'db1', 'db2', 'db3'"
    ), "{e}");
    assert_eq!(e.line, Some(line_of(FULL, "hosts db1, db2")));
    // prefer must be one of the role's hosts.
    let e = err(
        &edit(
            "    mode exclusive\n",
            "    mode exclusive\n    prefer db3\n",
        ),
        Monitor,
    );
    assert!(e.to_string().starts_with(
        "Config entry 'role->writer->prefer' has invalid value 'db3' allowed values are: 'db1', 'db2'"
    ), "{e}");
    let cfg = ok(
        &edit(
            "    mode exclusive\n",
            "    mode exclusive\n    prefer db2\n",
        ),
        Monitor,
    );
    assert_eq!(
        cfg.role("writer").and_then(|r| r.prefer.as_deref()),
        Some("db2")
    );
}

#[test]
fn check_names_are_restricted_and_all_four_exist() {
    let e = err(&format!("{FULL}<check foo>\n</check>\n"), Monitor);
    assert_eq!(
        *e.kind,
        ConfigErrorKind::InvalidCheck { name: "foo".into() }
    );
    assert!(e.to_string().starts_with(
        "Invalid check 'foo' in configuration allowed values are: 'ping', 'mysql', 'rep_backlog', 'rep_threads', 'default'"
    ), "{e}");
    assert_eq!(e.line, Some(FULL.lines().count() + 1));
    // No check section: all four exist with defaults.
    let cfg = ok(FULL, Monitor);
    for name in ["ping", "mysql", "rep_threads", "rep_backlog"] {
        assert_eq!(cfg.checks.get(name), Some(&Default::default()), "{name}");
    }
    assert_eq!(cfg.checks.get("foo"), None);
}

#[test]
fn templates_apply_before_defaults_and_required_checks() {
    let text = format!(
        "{FULL}<check default>\ncheck_period 0.5\ntrap_period 3\n</check>\n<check mysql>\ntrap_period 7\n</check>\n"
    );
    let cfg = ok(&text, Monitor);
    assert_eq!(cfg.checks.ping.check_period, Duration::from_millis(500));
    assert_eq!(cfg.checks.ping.trap_period, Duration::from_secs(3));
    // An explicit value wins over the template.
    assert_eq!(cfg.checks.mysql.trap_period, Duration::from_secs(7));
    assert_eq!(cfg.checks.mysql.check_period, Duration::from_millis(500));
    assert_eq!(cfg.checks.rep_backlog.timeout, Duration::from_secs(2));
    // A host value wins over the host template; the template fills required entries.
    let text = edit(
        "    ip 198.18.0.13\n",
        "    ip 198.18.0.13\n    agent_user other\n",
    );
    let cfg = ok(&text, Agent);
    assert_eq!(
        cfg.host("db3").and_then(|h| h.agent_user.as_deref()),
        Some("other")
    );
    assert_eq!(
        cfg.host("db1").and_then(|h| h.agent_user.as_deref()),
        Some("mmm_agent")
    );
    assert!(cfg.host("default").is_none());
    // An error in a template value points at the template's line.
    let text = edit(
        "    cluster_interface ens33\n",
        "    cluster_interface ens33\n    agent_port x\n",
    );
    let e = err(&text, Agent);
    assert_eq!(e.line, Some(line_of(&text, "agent_port x")));
    assert!(e.to_string().starts_with(
        "Config entry 'host->db1->agent_port' has invalid value 'x': expected a port number 1-65535"
    ), "{e}");
}

#[test]
fn numbers_are_validated() {
    let bad: &[(&str, &str)] = &[
        ("    agent_port 70000\n", "host->db1->agent_port"),
        ("    agent_port 0\n", "host->db1->agent_port"),
        ("    mysql_port 33o6\n", "host->db1->mysql_port"),
        ("    ssh_port -1\n", "host->db1->ssh_port"),
    ];
    for (line, path) in bad {
        let text = edit(
            "    mode master\n    peer db2\n",
            &format!("    mode master\n    peer db2\n{line}"),
        );
        let e = err(&text, Control);
        assert!(
            matches!(e.kind.as_ref(), ConfigErrorKind::InvalidNumber { path: p, .. } if p == path),
            "{e}"
        );
        assert_eq!(e.line, Some(line_of(&text, line.trim())));
    }
    let monitor_bad: &[(&str, &str)] = &[
        ("port 99999", "a port number 1-65535"),
        ("ping_interval -1", "non-negative seconds, e.g. 5 or 0.5"),
        ("flap_duration 1h", "non-negative seconds, e.g. 5 or 0.5"),
        ("flap_count 2.5", "a non-negative integer"),
        ("auto_set_online ten", "non-negative seconds, e.g. 5 or 0.5"),
        (
            "wait_for_other_master 1e3",
            "non-negative seconds, e.g. 5 or 0.5",
        ),
    ];
    for (line, expected) in monitor_bad {
        let text = edit(
            "    ip 127.0.0.1\n",
            &format!("    ip 127.0.0.1\n    {line}\n"),
        );
        let e = err(&text, Monitor);
        let (var, value) = line.split_once(' ').expect("pair");
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry 'monitor->{var}' has invalid value '{value}': expected {expected} (in 't.conf' on line {})",
                line_of(&text, line)
            )
        );
    }
    for line in [
        "check_period x",
        "trap_period -2",
        "timeout 1s",
        "restart_after 1.5",
        "max_backlog x",
    ] {
        let e = err(
            &format!("{FULL}<check rep_backlog>\n{line}\n</check>\n"),
            Monitor,
        );
        assert!(
            matches!(*e.kind, ConfigErrorKind::InvalidNumber { .. }),
            "{line}: {e}"
        );
    }
    let e = err(
        &edit("this db1\n", "this db1\nmax_kill_retries many\n"),
        Agent,
    );
    assert!(e.to_string().starts_with(
        "Config entry 'max_kill_retries' has invalid value 'many': expected a non-negative integer"
    ));
    // Sub-second and zero values are fine.
    let cfg = ok(
        &format!("{FULL}<check ping>\ncheck_period 0.5\ntrap_period 0\ntimeout .25\n</check>\n"),
        Monitor,
    );
    assert_eq!(cfg.checks.ping.check_period, Duration::from_millis(500));
    assert_eq!(cfg.checks.ping.trap_period, Duration::ZERO);
    assert_eq!(cfg.checks.ping.timeout, Duration::from_millis(250));
}

#[test]
fn lists() {
    let text = edit(
        "    ping_ips 198.18.0.1, 198.18.0.2\n",
        "    ping_ips 198.18.0.1 ,198.18.0.2,  198.18.0.3,\n",
    );
    let cfg = ok(&text, Monitor);
    assert_eq!(
        cfg.monitor.expect("monitor").ping_ips,
        ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
    );
    // A repeated assignment replaces the whole list.
    let text = edit(
        "    ips 198.18.0.100\n",
        "    ips 198.18.0.100, 198.18.0.99\n    ips 198.18.0.98\n",
    );
    let cfg = ok(&text, Monitor);
    assert_eq!(cfg.role("writer").expect("writer").ips, ["198.18.0.98"]);
    // An interior empty element is an error (2.2.1 keeps it).
    let text = edit("    hosts db1, db2, db3\n", "    hosts db1, , db3\n");
    let e = err(&text, Monitor);
    assert!(
        e.to_string()
            .starts_with("Config entry 'role->reader->hosts' has an empty element in 'db1, , db3'"),
        "{e}"
    );
    // An empty required list.
    let text = edit("    ping_ips 198.18.0.1, 198.18.0.2\n", "    ping_ips ,\n");
    let e = err(&text, Monitor);
    assert_eq!(
        *e.kind,
        ConfigErrorKind::EmptyList {
            path: "monitor->ping_ips".into()
        }
    );
}

#[test]
fn copy_method_rules() {
    let tools = "\
this db1
default_copy_method scp
clone_dirs data
<host default>
ssh_user root
tools_user t
tools_password p
backup_dir /b
restore_dir /r
lvm_snapshot_size 1G
lvm_logical_volume mysql
lvm_volume_group vg
lvm_mount_dir /m
lvm_mount_opts -o
replication_user r
replication_password p
</host>
<host db1>
ip 198.18.0.11
</host>
<copy_method scp>
backup_command scp a b
restore_command cp a b
</copy_method>
";
    ok(tools, Tools);
    let e = err(&tools.replace("restore_command cp a b\n", ""), Tools);
    assert!(e
        .to_string()
        .starts_with("Required config entry 'copy_method->scp->restore_command' is missing"));
    let e = err(
        &tools.replace(
            "backup_command scp a b\n",
            "backup_command scp a b\nincremental yes\n",
        ),
        Tools,
    );
    assert!(e.to_string().starts_with(
        "Config entry 'copy_method->scp->incremental_command' is required because of 'incremental 1', but missing"
    ), "{e}");
    let e = err(
        &tools.replace("default_copy_method scp", "default_copy_method rsync"),
        Tools,
    );
    assert!(e.to_string().starts_with(
        "Config entry 'default_copy_method' has invalid value 'rsync' allowed values are: 'scp'"
    ));
    for var in [
        "ssh_user",
        "tools_user",
        "backup_dir",
        "lvm_mount_opts",
        "replication_user",
    ] {
        let line = tools
            .lines()
            .find(|l| l.starts_with(&format!("{var} ")))
            .expect("line");
        let e = err(&tools.replace(&format!("{line}\n"), ""), Tools);
        assert!(
            e.to_string().starts_with(&format!(
                "Required config entry 'host->db1->{var}' is missing (needed by the mmm tools"
            )),
            "{e}"
        );
    }
    let e = err(&tools.replace("clone_dirs data\n", ""), Tools);
    assert!(e
        .to_string()
        .starts_with("Required config entry 'clone_dirs' is missing"));
    let e = err(&tools.replace("this db1\n", ""), Tools);
    assert!(e
        .to_string()
        .starts_with("Required config entry 'this' is missing"));
    let e = err(&tools.replace("ip 198.18.0.11\n", ""), Tools);
    assert!(e
        .to_string()
        .starts_with("Required config entry 'host->db1->ip' is missing"));
    let start = tools.find("<copy_method").expect("cm");
    let e = err(
        &tools[..start].replace("default_copy_method scp\n", ""),
        Tools,
    );
    assert!(e
        .to_string()
        .starts_with("Required config entry 'copy_method' is missing"));
}

#[test]
fn defaults_of_every_directive() {
    let cfg = ok(FULL, Monitor);
    assert!(!cfg.debug);
    assert_eq!(cfg.max_kill_retries, 10);
    assert_eq!(cfg.default_copy_method, None);
    assert!(cfg.clone_dirs.is_empty());
    assert!(cfg.copy_methods.is_empty());
    assert_eq!(cfg.socket.kind, SocketType::Plain);
    assert_eq!(cfg.socket.cert_file, None);
    let m = cfg.monitor.as_ref().expect("monitor");
    assert_eq!(m.port, 9988);
    assert_eq!(m.ping_interval, Duration::from_secs(1));
    assert_eq!(m.flap_duration, Duration::from_secs(3600));
    assert_eq!(m.flap_count, 3);
    assert_eq!(m.auto_set_online, Duration::ZERO);
    assert_eq!(m.kill_host_bin, "kill_host");
    assert!(m.careful_startup);
    assert_eq!(m.mode, MonitorMode::Active);
    assert_eq!(m.wait_for_other_master, Duration::from_secs(120));
    for h in &cfg.hosts {
        assert_eq!(h.agent_port, 9989);
        assert_eq!(h.mysql_port, 3306);
        assert_eq!(h.mysql_pidfile, "/var/run/mysqld/mysqld.pid");
        assert_eq!(h.mysql_rcscript, "/etc/init.d/mysql");
        assert_eq!(h.mysql_cnf, "/etc/my.cnf");
        let tools: Vec<(&str, &str)> = h
            .tools
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tools,
            [
                ("ssh_port", "22"),
                ("ssh_parameters", ""),
                ("lvm_bin_lvcreate", "lvcreate"),
                ("lvm_bin_lvremove", "lvremove")
            ]
        );
    }
    assert_eq!(cfg.role("writer").and_then(|r| r.prefer.as_deref()), None);
    let c = &cfg.checks.rep_backlog;
    assert_eq!(c.check_period, Duration::from_secs(5));
    assert_eq!(c.trap_period, Duration::from_secs(10));
    assert_eq!(c.timeout, Duration::from_secs(2));
    assert_eq!(c.restart_after, 10000);
    assert_eq!(c.max_backlog, 60);
    let x = &cfg.ext;
    assert_eq!(x.arp_count, 5);
    assert_eq!(x.arp_repeat, 3);
    assert_eq!(x.arp_interval, Duration::from_millis(500));
    assert_eq!(x.arp_refresh, Duration::from_secs(1));
    assert_eq!(x.sync_timeout, Duration::from_secs(30));
    assert_eq!(x.mysql_timeout, Duration::from_secs(3));
    assert_eq!(x.agent_connect_timeout, Duration::from_secs(10));
    assert_eq!(x.agent_read_timeout, Duration::from_secs(60));
    assert_eq!(x.status_retry_interval, Duration::from_millis(500));
    assert_eq!(x.agent_lease, Duration::ZERO);
    assert_eq!(*x, Extensions::default());
    // Non-defaults are read.
    let text = format!(
        "{FULL}debug on\nmax_kill_retries 4\n<monitor>\nport 19988\nping_interval 0.2\nflap_duration 600\nflap_count 0\nauto_set_online 10\nkill_host_bin /usr/local/bin/fence\ncareful_startup off\nmode manual\nwait_for_other_master 0\n</monitor>\n"
    );
    let cfg = ok(&text, Monitor);
    assert!(cfg.debug);
    assert_eq!(cfg.max_kill_retries, 4);
    let m = cfg.monitor.as_ref().expect("monitor");
    assert_eq!(m.port, 19988);
    assert_eq!(m.ping_interval, Duration::from_millis(200));
    assert_eq!(m.flap_duration, Duration::from_secs(600));
    assert_eq!(m.flap_count, 0);
    assert_eq!(m.auto_set_online, Duration::from_secs(10));
    assert_eq!(m.kill_host_bin, "/usr/local/bin/fence");
    assert!(!m.careful_startup);
    assert_eq!(m.mode, MonitorMode::Manual);
    assert_eq!(m.wait_for_other_master, Duration::ZERO);
    // Reopening <monitor> merged: the first opening's values are still there.
    assert_eq!(m.ip.as_deref(), Some("127.0.0.1"));
}

/// `errant_transactions`: `hold` by default, `accept` gives 2.2.1's behaviour, read by the
/// monitor and the agents; anything else names file, line, directive and the two words.
#[test]
fn errant_transactions_directive() {
    use mmm_common::config::ErrantPolicy;
    for class in [Monitor, Agent, Control] {
        assert_eq!(
            ok(FULL, class).ext.errant_transactions,
            ErrantPolicy::Hold,
            "{class:?}"
        );
    }
    let cfg = ok(&format!("{FULL}errant_transactions accept\n"), Monitor);
    assert_eq!(cfg.ext.errant_transactions, ErrantPolicy::Accept);
    let cfg = ok(&format!("{FULL}errant_transactions hold\n"), Agent);
    assert_eq!(cfg.ext.errant_transactions, ErrantPolicy::Hold);
    let line = FULL.lines().count() + 1;
    for bad in ["HOLD", "yes", "1", "accept all"] {
        let e = err(&format!("{FULL}errant_transactions {bad}\n"), Agent);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry 'errant_transactions' has invalid value '{bad}' allowed values \
                 are: 'hold', 'accept' (in 't.conf' on line {line})"
            ),
            "{bad}"
        );
    }
}

/// `agent_lease`: off (0) by default, sub-second values allowed, at least 0.5 s when on;
/// read by the monitor and the agents; a bad value names file, line and directive.
#[test]
fn agent_lease_directive() {
    for class in [Monitor, Agent, Control] {
        assert_eq!(ok(FULL, class).ext.agent_lease, Duration::ZERO, "{class:?}");
    }
    let cfg = ok(&format!("{FULL}agent_lease 1.5\n"), Monitor);
    assert_eq!(cfg.ext.agent_lease, Duration::from_millis(1500));
    let cfg = ok(&format!("{FULL}agent_lease 0.5\n"), Agent);
    assert_eq!(cfg.ext.agent_lease, Duration::from_millis(500));
    let cfg = ok(&format!("{FULL}agent_lease 0\n"), Agent);
    assert_eq!(cfg.ext.agent_lease, Duration::ZERO);
    let cfg = ok(&format!("{FULL}agent_lease 10\n"), Monitor);
    assert_eq!(cfg.ext.agent_lease, Duration::from_secs(10));
    let line = FULL.lines().count() + 1;
    for bad in ["-1", "abc", "0.4", "1s", "0.1"] {
        let e = err(&format!("{FULL}agent_lease {bad}\n"), Agent);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry 'agent_lease' has invalid value '{bad}': expected 0 (off) or at \
                 least 0.5 seconds, e.g. 1.5 (in 't.conf' on line {line})"
            ),
            "{bad}"
        );
    }
    let e = err(
        &format!("{FULL}<host db1>\nagent_lease 3\n</host>\n"),
        Monitor,
    );
    assert!(
        e.to_string()
            .contains("`agent_lease` is a top-level directive"),
        "{e}"
    );
}

/// `monitor_ips` and `control_allow` (issue 15): empty by default (everyone, as 2.2.1);
/// addresses separated by commas and/or spaces, IPv6 too, duplicates dropped; a bad
/// element or an empty value names file, line and directive; shown in the effective
/// config.
#[test]
fn monitor_ips_and_control_allow_directives() {
    for class in [Monitor, Agent, Control] {
        let cfg = ok(FULL, class);
        assert!(cfg.ext.monitor_ips.is_empty(), "{class:?}");
        assert!(cfg.ext.control_allow.is_empty(), "{class:?}");
    }
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let cfg = ok(
        &format!("{FULL}monitor_ips 198.18.0.106, 198.18.0.107 fd00::6,198.18.0.106\n"),
        Agent,
    );
    assert_eq!(
        cfg.ext.monitor_ips,
        vec![ip("198.18.0.106"), ip("198.18.0.107"), ip("fd00::6")]
    );
    let cfg = ok(&format!("{FULL}control_allow 198.18.0.50\n"), Monitor);
    assert_eq!(cfg.ext.control_allow, vec![ip("198.18.0.50")]);
    let text = mmm_common::config::render_effective(&ok(
        &format!("{FULL}monitor_ips 198.18.0.106\n"),
        Monitor,
    ));
    assert!(text.contains("monitor_ips = [\"198.18.0.106\"]"), "{text}");
    assert!(text.contains("control_allow = []"), "{text}");
    let line = FULL.lines().count() + 1;
    for (var, value, bad) in [
        ("monitor_ips", "198.18.0.106, db1", "db1"),
        ("monitor_ips", "198.18.0.300", "198.18.0.300"),
        ("monitor_ips", "198.18.0.0/24", "198.18.0.0/24"),
        ("control_allow", "localhost", "localhost"),
    ] {
        let e = err(&format!("{FULL}{var} {value}\n"), Agent);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry '{var}' has invalid value '{bad}': expected IP addresses \
                 separated by commas or spaces, e.g. 192.168.2.106, 192.168.2.107 (in \
                 't.conf' on line {line})"
            ),
            "{value}"
        );
    }
    let e = err(&format!("{FULL}monitor_ips ,\n"), Monitor);
    assert!(
        e.to_string()
            .starts_with("Config entry 'monitor_ips' is empty"),
        "{e}"
    );
    let e = err(
        &format!("{FULL}<monitor>\nmonitor_ips 198.18.0.106\n</monitor>\n"),
        Monitor,
    );
    assert!(
        e.to_string()
            .contains("`monitor_ips` is a top-level directive"),
        "{e}"
    );
}

#[test]
fn extension_directives() {
    let text = format!(
        "{FULL}arp_count 2\narp_repeat 1\narp_interval 0.1\narp_refresh 0\nsync_timeout 5\nmysql_timeout 1.5\nagent_connect_timeout 2\nagent_read_timeout 6\nstatus_retry_interval 0.25\n"
    );
    let cfg = ok(&text, Agent);
    let x = &cfg.ext;
    assert_eq!(x.arp_count, 2);
    assert_eq!(x.arp_repeat, 1);
    assert_eq!(x.arp_interval, Duration::from_millis(100));
    assert_eq!(x.arp_refresh, Duration::ZERO);
    assert_eq!(x.sync_timeout, Duration::from_secs(5));
    assert_eq!(x.mysql_timeout, Duration::from_millis(1500));
    assert_eq!(x.agent_connect_timeout, Duration::from_secs(2));
    assert_eq!(x.agent_read_timeout, Duration::from_secs(6));
    assert_eq!(x.status_retry_interval, Duration::from_millis(250));
    let e = err(&format!("{FULL}sync_timeout 90\n"), Monitor);
    assert!(e.to_string().starts_with(
        "Config entry 'agent_read_timeout' must exceed sync_timeout: agent_read_timeout is 60 s, sync_timeout is 90 s"
    ), "{e}");
    let e = err(&format!("{FULL}mysql_timeout 0\n"), Agent);
    assert!(e.to_string().starts_with(
        "Config entry 'mysql_timeout' has invalid value '0': expected a positive number of seconds"
    ), "{e}");
    let e = err(&format!("{FULL}<host db1>\narp_count 3\n</host>\n"), Agent);
    assert!(
        e.to_string()
            .contains("`arp_count` is a top-level directive"),
        "{e}"
    );
}

#[test]
fn host_ip_is_an_address_for_monitor_and_agent() {
    // IPv6 is an address too.
    for class in [Monitor, Agent, Control] {
        ok(&edit("ip 198.18.0.12\n", "ip fd00::12\n"), class);
    }
    let text = edit("ip 198.18.0.12\n", "ip db2.example\n");
    for class in [Monitor, Agent] {
        let e = err(&text, class);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry 'host->db2->ip' has invalid value 'db2.example': expected an IP \
                 address, e.g. 192.168.0.31 (in 't.conf' on line {})",
                line_of(&text, "db2.example")
            )
        );
        assert_eq!(e.directive.as_deref(), Some("host->db2->ip"));
    }
    // mmm_control never reaches a host: its value is not looked at.
    ok(&text, Control);
}

/// What each program runs with: read from a config validated for its class, no `Option`
/// where the class requires the entry, defaults filled in once.
#[test]
fn program_settings() {
    use mmm_common::config::{MysqlAccount, RoleMode};
    use mmm_common::state::HostMode;

    let mon = ok(FULL, Monitor)
        .monitor_settings()
        .expect("monitor settings");
    assert_eq!(mon.active_master_role, "writer");
    assert_eq!(mon.monitor.listen_addr(), "127.0.0.1:9988");
    assert_eq!(mon.monitor.pid_path, "/run/mmm_mond.pid");
    assert_eq!(mon.monitor.flap_duration, Duration::from_secs(3600));
    assert_eq!(mon.monitor.mode, MonitorMode::Active);
    assert_eq!(
        mon.monitor.kill_host_path(),
        std::path::Path::new("/usr/lib/mysql-mmm/monitor/kill_host")
    );
    let db1 = mon.host("db1").expect("db1");
    assert_eq!(db1.mode, HostMode::Master);
    assert_eq!(db1.agent_addr().to_string(), "198.18.0.11:9989");
    let t = db1.mysql_target();
    assert_eq!(
        (t.addr().to_string(), t.user.as_str(), t.password.as_str()),
        ("198.18.0.11:3306".to_string(), "mmm_monitor", "RepMonitor")
    );
    assert_eq!(mon.role("reader").expect("reader").mode, RoleMode::Balanced);
    assert_eq!(
        mon.active_master_role().expect("writer").hosts,
        ["db1", "db2"]
    );

    let agent = ok(FULL, Agent).agent_settings().expect("agent settings");
    assert_eq!(agent.this(), "db1");
    assert_eq!(agent.cluster_interface, "ens33");
    assert_eq!(agent.pid_path, "/run/mmm_agentd.pid");
    assert_eq!(agent.local.host.mysql_target().user, "mmm_agent");
    assert_eq!(
        agent.local.replication,
        MysqlAccount {
            user: "replication".into(),
            password: "slave".into()
        }
    );
    assert_eq!(agent.local.monitor_user.as_deref(), Some("mmm_monitor"));
    assert_eq!(agent.hosts.len(), 3);
    assert_eq!(agent.role_ips.len(), 3);

    let control = ok(FULL, Control)
        .control_settings()
        .expect("control settings");
    assert_eq!(control.monitor_addr(), "127.0.0.1:9988");
    let v6 = ok(&edit("ip 127.0.0.1\n", "ip ::1\n"), Control);
    assert_eq!(
        v6.control_settings().expect("control").monitor_addr(),
        "[::1]:9988"
    );

    // A config validated for another class says what the program is missing.
    let no_monitor_user = edit("    monitor_user mmm_monitor\n", "");
    assert_eq!(
        ok(&no_monitor_user, Agent)
            .monitor_settings()
            .map(|_| ())
            .expect_err("no monitor_user")
            .to_string(),
        "missing host->db1->monitor_user in the configuration"
    );
}

/// `semi_sync` / `semi_sync_timeout`: off and 10 s by default, read by every class; a bad
/// value names file, line and directive.
#[test]
fn semi_sync_directives() {
    for class in [Monitor, Agent, Control] {
        let cfg = ok(FULL, class);
        assert!(!cfg.ext.semi_sync, "{class:?}");
        assert_eq!(
            cfg.ext.semi_sync_timeout,
            Duration::from_secs(10),
            "{class:?}"
        );
    }
    let cfg = ok(
        &format!("{FULL}semi_sync 1\nsemi_sync_timeout 2.5\n"),
        Agent,
    );
    assert!(cfg.ext.semi_sync);
    assert_eq!(cfg.ext.semi_sync_timeout, Duration::from_millis(2500));
    let cfg = ok(&format!("{FULL}semi_sync 0\n"), Monitor);
    assert!(!cfg.ext.semi_sync);
    let line = FULL.lines().count() + 1;
    let e = err(&format!("{FULL}semi_sync 2\n"), Monitor);
    assert!(
        e.to_string()
            .starts_with("Config entry 'semi_sync' has invalid value '2'")
            && e.to_string()
                .ends_with(&format!("(in 't.conf' on line {line})")),
        "{e}"
    );
    for bad in ["0", "-1", "10s", "3601", "abc"] {
        let e = err(&format!("{FULL}semi_sync_timeout {bad}\n"), Agent);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry 'semi_sync_timeout' has invalid value '{bad}': expected a \
                 number of seconds from 0.001 to 3600, e.g. 10 (in 't.conf' on line {line})"
            ),
            "{bad}"
        );
    }
}

/// The hook directives (issue 17): none by default, `hook_timeout` 10 s,
/// `pre_failover_retry` 5 s; a program must be an absolute path without arguments (the
/// error names file, line and directive).
#[test]
fn hook_directives() {
    let cfg = ok(FULL, Monitor);
    assert_eq!(cfg.ext.notify_bin, None);
    assert_eq!(cfg.ext.pre_failover_bin, None);
    assert_eq!(cfg.ext.hook_timeout, std::time::Duration::from_secs(10));
    assert_eq!(
        cfg.ext.pre_failover_retry,
        std::time::Duration::from_secs(5)
    );
    let cfg = ok(
        &format!(
            "{FULL}notify_bin /usr/local/sbin/notify\npre_failover_bin /bin/false\n\
             post_failover_bin /bin/true\nhook_timeout 2.5\npre_failover_retry 1\n"
        ),
        Monitor,
    );
    assert_eq!(
        cfg.ext.notify_bin.as_deref(),
        Some("/usr/local/sbin/notify")
    );
    assert_eq!(cfg.ext.pre_failover_bin.as_deref(), Some("/bin/false"));
    assert_eq!(cfg.ext.post_failover_bin.as_deref(), Some("/bin/true"));
    assert_eq!(cfg.ext.hook_timeout, std::time::Duration::from_millis(2500));
    let line = FULL.lines().count() + 1;
    for (var, value) in [
        ("notify_bin", "notify.sh"),
        ("pre_failover_bin", "/bin/sh -c x"),
    ] {
        let e = err(&format!("{FULL}{var} {value}\n"), Monitor);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry '{var}' has invalid value '{value}': expected an absolute path \
                 of a program, without arguments, e.g. /usr/local/sbin/mmm_notify (in \
                 't.conf' on line {line})"
            )
        );
    }
    let e = err(&format!("{FULL}hook_timeout 0\n"), Monitor);
    assert!(e.to_string().contains("'hook_timeout'"), "{e}");
}

/// `http_listen`, `http_tls` and `audit_log` (issue 17) in `<monitor>`: defaults
/// (`127.0.0.1:9990`, plain, beside the log), `off`, an address or absolute path; a bad
/// value names file, line, directive and what is expected.
#[test]
fn http_listen_and_audit_log_directives() {
    use mmm_common::config::AuditLog;
    let m = ok(FULL, Monitor).monitor.expect("monitor");
    assert_eq!(m.http_listen, Some("127.0.0.1:9990".parse().unwrap()));
    assert!(!m.http_tls);
    assert_eq!(m.audit_log, AuditLog::Beside);
    let text = edit(
        "    ping_ips 198.18.0.1, 198.18.0.2\n",
        "    ping_ips 198.18.0.1, 198.18.0.2\n    http_listen off\n    http_tls 1\n    audit_log off\n",
    );
    let m = ok(&text, Monitor).monitor.expect("monitor");
    assert_eq!(m.http_listen, None);
    assert!(m.http_tls);
    assert_eq!(m.audit_log, AuditLog::Off);
    // http_tls 1 with the listener on needs the <socket> certificates.
    let text = edit(
        "    ping_ips 198.18.0.1, 198.18.0.2\n",
        "    ping_ips 198.18.0.1, 198.18.0.2\n    http_tls 1\n",
    );
    let e = ok(&text, Monitor).monitor_settings().unwrap_err();
    assert_eq!(
        e.to_string(),
        "missing socket->cert_file (monitor->http_tls 1 needs it) in the configuration"
    );
    let text = edit(
        "    ping_ips 198.18.0.1, 198.18.0.2\n",
        "    ping_ips 198.18.0.1, 198.18.0.2\n    http_listen [::]:8080\n    audit_log /srv/a.jsonl\n",
    );
    let m = ok(&text, Monitor).monitor.expect("monitor");
    assert_eq!(m.http_listen, Some("[::]:8080".parse().unwrap()));
    assert_eq!(m.audit_log, AuditLog::Path("/srv/a.jsonl".into()));
    for (var, value, expected) in [
        (
            "http_listen",
            "localhost:9990",
            "off or an address:port, e.g. 127.0.0.1:9990 or [::1]:9990",
        ),
        (
            "http_listen",
            "127.0.0.1:0",
            "off or an address:port, e.g. 127.0.0.1:9990 or [::1]:9990",
        ),
        (
            "audit_log",
            "audit.jsonl",
            "off or an absolute file path, e.g. /var/log/mysql-mmm/audit.jsonl",
        ),
    ] {
        let text = edit(
            "    ping_ips 198.18.0.1, 198.18.0.2\n",
            &format!("    ping_ips 198.18.0.1, 198.18.0.2\n    {var} {value}\n"),
        );
        let e = err(&text, Monitor);
        assert_eq!(
            e.to_string(),
            format!(
                "Config entry 'monitor->{var}' has invalid value '{value}': expected \
                 {expected} (in 't.conf' on line {})",
                line_of(&text, value)
            )
        );
    }
}

/// Monitor HA directives (issue 16, step 1): off without `etcd_endpoints`; endpoints as
/// `host:port` lists, the prefix defaulting to `/mysql-mmm/<cluster>`, `leader_lease` whole
/// seconds ≥ 2; bad values name file, line and directive; with `agent_lease` on, it must be
/// at least `leader_lease` + 2 s.
#[test]
fn monitor_ha_directives() {
    let with = |lines: &str| FULL.replacen("</monitor>", &format!("{lines}</monitor>"), 1);
    let m = ok(FULL, Monitor).monitor_settings().unwrap().monitor;
    assert_eq!(m.ha, None);
    let m = ok(
        &with("etcd_endpoints 198.18.160.1:2379, 198.18.160.2:2379 etcd3:2379\n"),
        Monitor,
    )
    .monitor_settings()
    .unwrap()
    .monitor;
    let ha = m.ha.expect("ha on");
    assert_eq!(
        ha.endpoints,
        ["198.18.160.1:2379", "198.18.160.2:2379", "etcd3:2379"]
    );
    assert_eq!(ha.leader_lease, std::time::Duration::from_secs(3));
    assert_eq!(ha.prefix(Some("C1")), "/mysql-mmm/C1");
    assert_eq!(ha.prefix(None), "/mysql-mmm/default");
    let m = ok(
        &with("etcd_endpoints e1:2379\netcd_prefix /mmm/x\nleader_lease 5\n"),
        Monitor,
    )
    .monitor_settings()
    .unwrap()
    .monitor;
    let ha = m.ha.unwrap();
    assert_eq!(ha.prefix(Some("C1")), "/mmm/x");
    assert_eq!(ha.leader_lease, std::time::Duration::from_secs(5));
    for (directive, bad) in [
        ("etcd_endpoints e1", "e1"),
        ("etcd_endpoints e1:2379, e2:0", "e2:0"),
        ("leader_lease 1", "1"),
        ("leader_lease 2.5", "2.5"),
        ("etcd_prefix mmm", "mmm"),
        ("etcd_prefix /mmm/", "/mmm/"),
    ] {
        let e = err(&with(&format!("{directive}\n")), Monitor).to_string();
        assert!(
            e.contains(&format!("has invalid value '{bad}'")) && e.contains("on line"),
            "{directive}: {e}"
        );
    }
    let e = err(
        &format!("{}agent_lease 4\n", with("etcd_endpoints e1:2379\n")),
        Monitor,
    )
    .to_string();
    assert!(
        e.contains("agent_lease") && e.contains("leader_lease"),
        "{e}"
    );
    assert!(ok(
        &format!("{}agent_lease 5\n", with("etcd_endpoints e1:2379\n")),
        Monitor
    )
    .monitor_settings()
    .is_ok());
}

/// `mysql_ssl_mode`, `mysql_ssl_ca`, `mysql_ssl_cert`, `mysql_ssl_key` (issue 18) in a
/// `<host>` (or `<host default>`): plain by default; the modes of the MySQL client; VERIFY_*
/// need a CA, a certificate needs its key, paths are absolute; errors name file and line.
#[test]
fn mysql_tls_directives() {
    use mmm_common::mysql_tls::{MysqlTls, SslMode};
    let cfg = ok(FULL, Monitor);
    assert!(cfg.hosts.iter().all(|h| h.mysql_tls == MysqlTls::default()));
    let text = format!(
        "{FULL}<host default>\n    mysql_ssl_mode verify_identity\n    mysql_ssl_ca /etc/mysql-mmm/tls/ca.pem\n    mysql_ssl_cert /etc/mysql-mmm/tls/host.pem\n    mysql_ssl_key /etc/mysql-mmm/tls/host.key\n</host>\n"
    );
    let cfg = ok(&text, Agent);
    for h in &cfg.hosts {
        assert_eq!(h.mysql_tls.mode, SslMode::VerifyIdentity, "{}", h.name);
        assert_eq!(h.mysql_tls.ca.as_deref(), Some("/etc/mysql-mmm/tls/ca.pem"));
        assert_eq!(
            h.mysql_tls.key.as_deref(),
            Some("/etc/mysql-mmm/tls/host.key")
        );
    }
    let line = FULL.lines().count() + 2;
    let e = err(
        &format!("{FULL}<host default>\n    mysql_ssl_mode PREFERRED\n</host>\n"),
        Monitor,
    );
    assert!(
        e.to_string()
            .starts_with("Config entry 'host->db1->mysql_ssl_mode' has invalid value 'PREFERRED'")
            && e.to_string().contains(&format!("on line {line}")),
        "{e}"
    );
    let e = err(
        &format!("{FULL}<host default>\n    mysql_ssl_mode VERIFY_CA\n</host>\n"),
        Monitor,
    );
    assert!(e.to_string().contains("need mysql_ssl_ca"), "{e}");
    let e = err(
        &format!("{FULL}<host default>\n    mysql_ssl_mode REQUIRED\n    mysql_ssl_cert /x.pem\n</host>\n"),
        Monitor,
    );
    assert!(e.to_string().contains("go together"), "{e}");
    let e = err(
        &format!("{FULL}<host default>\n    mysql_ssl_mode REQUIRED\n    mysql_ssl_ca tls/ca.pem\n</host>\n"),
        Monitor,
    );
    assert!(
        e.to_string().contains("expected an absolute file path"),
        "{e}"
    );
}

/// mmm-rs `backup_method` (tools): the LVM settings are required only for LVM hosts, and
/// a host without any of them uses the hot-backup back-end.
#[test]
fn tools_backup_method() {
    use mmm_common::config::BackupMethod;
    let base = "this db1\ndefault_copy_method s\nclone_dirs data\n<host db1>\nip 198.18.0.11\n\
ssh_user root\ntools_user t\ntools_password p\nbackup_dir /b\nrestore_dir /r\n\
replication_user r\nreplication_password p\n</host>\n\
<copy_method s>\nbackup_command mbstream -x -C %DEST_DIR%\nrestore_command cp a b\nstream 1\n</copy_method>\n";
    let cfg = ok(base, Tools);
    assert_eq!(cfg.hosts[0].backup_method, BackupMethod::MariadbBackup);
    assert!(cfg.copy_methods[0].stream);
    // One LVM setting makes it an LVM host: the others are then required, as in 2.2.1.
    let lvm = base.replace("</host>\n<copy", "lvm_mount_dir /m\n</host>\n<copy");
    let e = err(&lvm, Tools);
    assert!(
        e.to_string()
            .contains("Required config entry 'host->db1->lvm_"),
        "{e}"
    );
    let explicit = lvm.replace(
        "lvm_mount_dir /m\n",
        "lvm_mount_dir /m\nbackup_method mariadb-backup\n",
    );
    let cfg = ok(&explicit, Tools);
    assert_eq!(cfg.hosts[0].backup_method, BackupMethod::MariadbBackup);
    let bad = base.replace("</host>\n<copy", "backup_method zfs\n</host>\n<copy");
    let e = err(&bad, Tools);
    assert!(e.to_string().starts_with(
        "Config entry 'host->db1->backup_method' has invalid value 'zfs' allowed values are: 'lvm', 'mariadb-backup'"
    ), "{e}");
}
