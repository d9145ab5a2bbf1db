//! §5.3 admin commands: every command's exact output bytes, including the transcript's
//! (spec transcripts-2.2.1.md §1).

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn seed() -> Harness {
    let mut h = Harness::started(seed_config(0), HostState::Online);
    h.advance(61 * SEC);
    h
}

const SHOW_ALL_ONLINE: &str = "  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)
  db2(198.18.2.102) master/ONLINE. Roles: 
  db3(198.18.2.103) slave/ONLINE. Roles: reader(198.18.2.198)
  db4(198.18.2.105) slave/ONLINE. Roles: reader(198.18.2.199)
";

fn invalid(line: &str) -> String {
    format!("Invalid command '{line}'\n\n{HELP}")
}

/// §5.3 help, ping, mode, invalid commands and wrong argument counts.
#[test]
fn simple_commands() {
    let mut h = seed();
    assert_eq!(h.cmd("help"), HELP);
    assert!(HELP.ends_with("set role with ip <ip> to host <host>\n"));
    assert_eq!(h.cmd("ping"), "OK: Pinged successfully!");
    assert_eq!(h.cmd("mode"), "ACTIVE");
    assert_eq!(h.cmd("bogus_command"), invalid("bogus_command"));
    assert_eq!(h.cmd("move_role writer"), invalid("move_role writer"));
    assert_eq!(h.cmd("set_online"), invalid("set_online"));
    assert_eq!(h.cmd("checks a b c"), invalid("checks a b c"));
    assert_eq!(
        h.cmd("move_role --bogus writer db1"),
        invalid("move_role --bogus writer db1")
    );
}

/// §5.3 show (transcript bytes) and checks in all four shapes with their errors.
#[test]
fn show_and_checks() {
    let mut h = seed();
    assert_eq!(h.cmd("show"), SHOW_ALL_ONLINE);
    let t = format_utc(WALL0);
    assert_eq!(
        h.cmd("checks db1 mysql"),
        format!("db1  mysql  [last change: {t}]  OK")
    );
    assert_eq!(
        h.cmd("checks db1"),
        format!(
            "db1  ping         [last change: {t}]  OK\n\
             db1  mysql        [last change: {t}]  OK\n\
             db1  rep_threads  [last change: {t}]  OK\n\
             db1  rep_backlog  [last change: {t}]  OK: Backlog is null\n"
        )
    );
    let all = h.cmd("checks all");
    assert_eq!(all.lines().count(), 16);
    assert!(all.starts_with(&format!("db1  ping         [last change: {t}]  OK\n")));
    assert_eq!(h.cmd("checks"), all);
    assert_eq!(h.cmd("checks all all"), all);
    assert_eq!(
        h.cmd("checks all rep_backlog"),
        ["db1", "db2", "db3", "db4"]
            .iter()
            .map(|n| format!("{n}  rep_backlog  [last change: {t}]  OK: Backlog is null\n"))
            .collect::<String>()
    );
    assert_eq!(h.cmd("checks db9"), "ERROR: Unknown host name 'db9'!");
    assert_eq!(h.cmd("checks all bogus"), "ERROR: Unknown check 'bogus'!");
    assert_eq!(h.cmd("checks db9 bogus"), "ERROR: Unknown check 'bogus'!");
}

/// `checks` pads host names to the longest one when listing all hosts.
#[test]
fn checks_pads_host_names() {
    let mut cfg = seed_config(0);
    cfg.hosts[3].name = "db-long".into();
    cfg.roles[1].hosts[1] = "db-long".into();
    let mut h = Harness::started(cfg, HostState::Online);
    let t = format_utc(WALL0);
    let out = h.cmd("checks all ping");
    assert!(
        out.starts_with(&format!("db1      ping  [last change: {t}]  OK\n")),
        "{out}"
    );
    assert!(out.ends_with(&format!("db-long  ping  [last change: {t}]  OK\n")));
}

/// §5.3 set_offline / set_online as in the transcript, and their error texts.
#[test]
fn set_offline_and_online() {
    let mut h = seed();
    assert_eq!(
        h.cmd("set_offline db3"),
        "OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"
    );
    assert_eq!(
        h.cmd("show"),
        "  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)
  db2(198.18.2.102) master/ONLINE. Roles: 
  db3(198.18.2.103) slave/ADMIN_OFFLINE. Roles: 
  db4(198.18.2.105) slave/ONLINE. Roles: reader(198.18.2.198), reader(198.18.2.199)
"
    );
    assert_eq!(
        h.cmd("set_offline db3"),
        "OK: This host is already ADMIN_OFFLINE. Skipping command."
    );
    assert_eq!(
        h.cmd("set_online db3"),
        "OK: State of 'db3' changed to ONLINE. Now you can wait some time and check its new roles!"
    );
    assert_eq!(h.cmd("show"), SHOW_ALL_ONLINE);
    assert_eq!(
        h.cmd("set_online db3"),
        "OK: This host is already ONLINE. Skipping command."
    );
    assert_eq!(h.cmd("set_offline db9"), "ERROR: Unknown host name 'db9'!");
    assert_eq!(h.cmd("set_online db9"), "ERROR: Unknown host name 'db9'!");

    h.set("db4", &[P], false);
    assert_eq!(
        h.cmd("set_online db4"),
        "ERROR: Host 'db4' is 'HARD_OFFLINE' at the moment. It can't be switched to ONLINE."
    );
    assert_eq!(
        h.cmd("set_offline db4"),
        "ERROR: Host 'db4' is 'HARD_OFFLINE' at the moment. It can't be switched to ADMIN_OFFLINE."
    );
    h.set("db4", &[P], true);
    h.set("db4", &[M], false);
    h.set("db4", &[M], true);
    assert_eq!(h.state("db4"), HostState::AwaitingRecovery);
    h.set("db4", &[P], false);
    h.set("db4", &[P], true);
    // Checks ok again: now an agent that does not answer
    let db4 = h.host("db4");
    h.agent_fails[db4] = true;
    assert_eq!(
        h.cmd("set_online db4"),
        "ERROR: Can't reach agent daemon on 'db4'! Can't switch its state!"
    );
    h.agent_fails[db4] = false;
    assert!(h
        .cmd("set_online db4")
        .starts_with("OK: State of 'db4' changed to ONLINE"));
}

/// §5.3 set_online step 4 (ping/mysql not OK), step 5 (peer replication failed);
/// set_offline's agent PING failure.
#[test]
fn set_online_check_errors() {
    let mut h = seed();
    h.cmd("set_offline db3");
    h.set("db3", &[M], false); // ADMIN_OFFLINE hosts are skipped by the table
    assert_eq!(h.state("db3"), HostState::AdminOffline);
    assert_eq!(
        h.cmd("set_online db3"),
        "ERROR: Checks ping and/or mysql are not ok for host 'db3'. It can't be switched to ONLINE."
    );

    h.cmd("set_offline db2");
    h.set("db1", &[T], false); // db1 is the active master: stays ONLINE
    assert_eq!(h.state("db1"), HostState::Online);
    assert_eq!(
        h.cmd("set_online db2"),
        "ERROR: Some replication checks failed on peer 'db1'. We can't set 'db2' online now. Please, wait some time."
    );

    let db4 = h.host("db4");
    h.agent_fails[db4] = true;
    assert_eq!(
        h.cmd("set_offline db4"),
        "ERROR: Can't reach agent daemon on 'db4'! Can't switch its state!"
    );
}

/// §5.3 set_ip step 4 (target not ONLINE) and move_role step 9 (role without IP).
#[test]
fn set_ip_not_online_and_role_without_ip() {
    let mut cfg = seed_config(0);
    cfg.roles
        .push(role_cfg("spare", RoleMode::Exclusive, &["db1", "db2"], &[]));
    let mut h = Harness::started(cfg, HostState::Online);
    assert_eq!(h.cmd("move_role spare db2"), "Error: Role spare has no IP.");
    h.cmd("set_offline db4");
    h.cmd("set_passive");
    assert_eq!(
        h.cmd("set_ip 198.18.2.199 db4"),
        "ERROR: Host 'db4' is 'ADMIN_OFFLINE' at the moment. Can't move role with ip '198.18.2.199' there."
    );
}

/// §5.3 mode switches with their exact replies.
#[test]
fn mode_switches() {
    let mut h = seed();
    assert_eq!(h.cmd("set_active"), "OK: Already in active mode.");
    assert_eq!(h.cmd("set_manual"), "OK: Switched into manual mode.");
    assert_eq!(h.cmd("mode"), "MANUAL");
    assert_eq!(h.cmd("set_manual"), "OK: Already in manual mode.");
    assert_eq!(h.cmd("set_active"), "OK: Switched into active mode.");
    let mark = h.mark();
    assert_eq!(h.cmd("set_passive"), "OK: Switched into passive mode.");
    assert!(h
        .decisions_since(mark)
        .contains(&"Admin changed mode from 'ACTIVE' to 'PASSIVE'".to_string()));
    assert_eq!(h.cmd("set_passive"), "OK: Already in passive mode.");
    assert_eq!(h.cmd("mode"), "PASSIVE");
    assert_eq!(
        h.cmd("show"),
        format!(
            "# --- Monitor is in PASSIVE MODE ---\n# Cause: Admin switched to passive mode.\n{SHOW_ALL_ONLINE}"
        )
    );
}

/// §3.8 PASSIVE: nothing sent to agents, no status file, no kill_host, failing hosts keep
/// their roles (mmm-rs decision); set_ip works; leaving PASSIVE runs cleanup-and-send in
/// §3.14.4's order (passive master, non-masters, active master) with CLEAR_BAD_ROLES.
#[test]
fn passive_mode_and_set_ip() {
    let mut h = seed();
    assert_eq!(
        h.cmd("set_ip 198.18.2.188 db1"),
        "ERROR: This command is only allowed in passive mode"
    );
    h.cmd("move_role writer db2");
    h.cmd("set_passive");
    let mark = h.mark();
    h.set("db3", &[P], false);
    h.advance(10 * SEC);
    assert!(h.sends_since(mark).is_empty());
    assert!(h.kills_since(mark).is_empty());
    assert!(!h.log[mark..]
        .iter()
        .any(|a| matches!(a, Action::WriteStatus(_))));
    assert_eq!(h.roles("db3"), vec![r("reader", "198.18.2.198")]);
    h.set("db3", &[P], true);
    h.advance(SEC);
    assert_eq!(
        h.cmd("move_role writer db1"),
        "ERROR: This command is not allowed in passive mode"
    );
    assert_eq!(
        h.cmd("set_ip 198.18.2.188 db1"),
        "OK: Set role 'writer(198.18.2.188)' to host 'db1'."
    );
    assert_eq!(
        h.cmd("set_ip 198.18.2.1 db1"),
        "ERROR: Unknown ip '198.18.2.1'!"
    );
    assert_eq!(
        h.cmd("set_ip 198.18.2.188 db9"),
        "ERROR: Unknown host name 'db9'!"
    );
    assert_eq!(
        h.cmd("set_ip 198.18.2.188 db3"),
        "ERROR: Host 'db3' can't handle role 'writer'. Following hosts could: db1, db2"
    );
    assert_eq!(
        h.cmd("set_ip 198.18.2.198 db4"),
        "OK: Set role 'reader(198.18.2.198)' to host 'db4'."
    );
    assert_eq!(
        h.cmd("show"),
        "# --- Monitor is in PASSIVE MODE ---
# Cause: Admin switched to passive mode.
  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)
  db2(198.18.2.102) master/ONLINE. Roles: 
  db3(198.18.2.103) slave/AWAITING_RECOVERY. Roles: 
  db4(198.18.2.105) slave/ONLINE. Roles: reader(198.18.2.198), reader(198.18.2.199)
"
    );
    h.set("db3", &[P], true);
    let mark = h.mark();
    assert_eq!(h.cmd("set_active"), "OK: Switched into active mode.");
    let sends = h.sends_since(mark);
    let pos = |p: &str| sends.iter().position(|s| s.starts_with(p));
    let db2 = pos("SET_STATUS|1|db2|").expect("passive master");
    let db3 = pos("SET_STATUS|1|db3|").expect("slave");
    let db1 = pos("SET_STATUS|1|db1|").expect("active master");
    assert!(db2 < db3 && db3 < db1, "{sends:?}");
    assert!(sends.contains(&"CLEAR_BAD_ROLES|1|db2".to_string()));
    assert!(sends.contains(&"CLEAR_BAD_ROLES|1|db1".to_string()));
}

/// §5.3 move_role (transcript): exclusive move with the switch order, already there,
/// can't handle, unknown host, balanced removal, prefer refusal.
#[test]
fn move_role() {
    let mut h = seed();
    let mark = h.mark();
    assert_eq!(
        h.cmd("move_role writer db2"),
        "OK: Role 'writer' has been moved from 'db1' to 'db2'. Now you can wait some time and check new roles info!"
    );
    assert!(h
        .decisions_since(mark)
        .contains(&"Admin moved role 'writer' from 'db1' to 'db2'".to_string()));
    let sends = h.sends_since(mark);
    let i1 = sends
        .iter()
        .position(|s| s == "SET_STATUS|1|db1|ONLINE||db2")
        .expect("old master told first");
    let i3 = sends
        .iter()
        .position(|s| s == "SET_STATUS|1|db3|ONLINE|reader(198.18.2.198)|db2")
        .expect("slaves");
    let i2 = sends
        .iter()
        .position(|s| s == "SET_STATUS|1|db2|ONLINE|writer(198.18.2.188)|db2")
        .expect("new master");
    assert!(i1 < i3 && i3 < i2, "{sends:?}");
    assert_eq!(
        h.cmd("show"),
        "  db1(198.18.2.100) master/ONLINE. Roles: 
  db2(198.18.2.102) master/ONLINE. Roles: writer(198.18.2.188)
  db3(198.18.2.103) slave/ONLINE. Roles: reader(198.18.2.198)
  db4(198.18.2.105) slave/ONLINE. Roles: reader(198.18.2.199)
"
    );
    assert_eq!(
        h.cmd("move_role writer db2"),
        "OK: Role is on 'db2' already. Skipping command."
    );
    assert_eq!(
        h.cmd("move_role writer db3"),
        "ERROR: Host 'db3' can't handle role 'writer'. Only following hosts could: db1, db2"
    );
    assert_eq!(
        h.cmd("move_role writer db9"),
        "ERROR: Unknown host name 'db9'!"
    );
    assert_eq!(
        h.cmd("move_role bogus db1"),
        "ERROR: Unknown role name 'bogus'!"
    );
    assert_eq!(
        h.cmd("move_role reader db1"),
        "OK: Balanced role reader has been removed from host 'db1'. Now you can wait some time and check new roles info!"
    );
    assert_eq!(
        h.cmd("move_role --force writer db1"),
        "ERROR: Can't force move of role to host with state ONLINE."
    );
    h.set("db4", &[P], false);
    assert_eq!(
        h.cmd("move_role writer db4"),
        "ERROR: Can't move role to host with state HARD_OFFLINE."
    );
    let db1 = h.host("db1");
    h.agent_fails[db1] = true;
    assert_eq!(
        h.cmd("move_role writer db1"),
        "ERROR: Can't reach agent daemon on 'db1'! Can't move roles there!"
    );
}

/// §5.3 move_role step 8: ACTIVE and the role sits on its preferred host.
#[test]
fn move_role_refuses_preferred() {
    let mut cfg = seed_config(0);
    cfg.roles[0].prefer = Some("db1".into());
    let mut h = Harness::started(cfg, HostState::Online);
    assert_eq!(
        h.cmd("move_role writer db2"),
        "ERROR: Role 'writer' is assigned to preferred host 'db1'. Can't move it!"
    );
    assert_eq!(
        h.cmd("show").lines().last(),
        Some("# Role writer is assigned to it's preferred host db1.")
    );
}

/// §5.3 move_role --force: only for the active-master role, only to a REPLICATION_* host;
/// the target becomes ONLINE, the old owner with failed replication goes to
/// REPLICATION_FAIL and loses its roles (ACTIVE).
#[test]
fn move_role_force() {
    let mut h = seed();
    assert_eq!(
        h.cmd("move_role --force reader db3"),
        "ERROR: move_role --forced may be used for the active master role only!"
    );
    h.set("db2", &[T], false);
    assert_eq!(h.state("db2"), HostState::ReplicationFail);
    assert_eq!(
        h.cmd("move_role writer db2"),
        "ERROR: Can't move role to host with state REPLICATION_FAIL."
    );
    h.set("db1", &[T], false); // the active master: ignored by the table
    assert_eq!(h.state("db1"), HostState::Online);
    let mark = h.mark();
    assert_eq!(
        h.cmd("move_role --force writer db2"),
        "OK: Role 'writer' has been moved from 'db1' to 'db2' enforcedly. Now you can wait some time and check new roles info!"
    );
    let d = h.decisions_since(mark);
    for line in [
        "Admin forced move of role 'writer' from 'db1' to 'db2'",
        "State of host 'db2' changed from REPLICATION_FAIL to ONLINE (because of move_role --force)",
        "State of host 'db1' changed from ONLINE to REPLICATION_FAIL (because of move_role --force)",
    ] {
        assert!(d.contains(&line.to_string()), "{line} not in {d:?}");
    }
    assert_eq!(h.roles("db2"), vec![r("writer", "198.18.2.188")]);
    assert!(h.roles("db1").is_empty());
    assert_eq!(
        h.cmd("move_role --force writer db2"),
        "ERROR: Can't force move of role to host with state ONLINE."
    );
}

/// §5.3 show: agent_down warning line, sorted by host name.
#[test]
fn show_agent_down_warning() {
    let mut h = seed();
    let db3 = h.host("db3");
    h.agent_fails[db3] = true;
    h.advance(3 * SEC);
    let out = h.cmd("show");
    assert!(
        out.starts_with("# Warning: agent on host db3 is not reachable\n  db1("),
        "{out}"
    );
}

/// `format_utc` (the default `checks` time format) against known dates, leap day included.
#[test]
fn utc_time_format() {
    assert_eq!(format_utc(1_795_600_000), "2026/11/25 09:46:40");
    assert_eq!(format_utc(951_782_400), "2000/02/29 00:00:00");
    assert_eq!(format_utc(0), "1970/01/01 00:00:00");
}

/// §5.2: the line is split on whitespace (runs of spaces, tabs); anything that does not
/// match the dispatch table is an invalid command, never a panic.
#[test]
fn odd_command_lines() {
    let mut h = seed();
    let t = format_utc(WALL0);
    assert_eq!(
        h.cmd("  checks\tdb1   mysql "),
        format!("db1  mysql  [last change: {t}]  OK")
    );
    for line in [
        "",
        " ",
        "quit now",
        "move_role --force --force writer db1",
        "set_ip 198.18.2.188",
        "show all",
        "mode x",
        "ping ping",
        "héllo wörld",
        "help me",
    ] {
        assert_eq!(h.cmd(line), invalid(line), "{line:?}");
    }
    // two arguments: `--force` is taken as the role name, as 2.2.1's dispatch does
    assert_eq!(
        h.cmd("move_role --force writer"),
        "ERROR: Unknown role name '--force'!"
    );
    assert_eq!(
        h.cmd("move_role --force --force db1"),
        "ERROR: Unknown role name '--force'!"
    );
}

/// The snapshot (issue 17) carries the facts `show` and `checks all` print: host, ip,
/// mode, state and roles of each host, who holds each role IP, and each check's status,
/// last change (as `checks` formats it) and message.
#[test]
fn snapshot_has_the_facts_of_show_and_checks() {
    let mut h = seed();
    let s = h.m.snapshot();
    assert_eq!(s.mode, "ACTIVE");
    assert_eq!(s.active_master.as_deref(), Some("db1"));
    let show: String = s
        .hosts
        .iter()
        .map(|x| {
            format!(
                "  {}({}) {}/{}. Roles: {}\n",
                x.name,
                x.ip,
                x.mode,
                x.state,
                x.roles.join(", ")
            )
        })
        .collect();
    assert_eq!(show, h.cmd("show"));
    let checks: String = s
        .checks
        .iter()
        .map(|c| {
            format!(
                "{:<3}  {:<11}  [last change: {}]  {}\n",
                c.host, c.check, c.last_change_text, c.message
            )
        })
        .collect();
    assert_eq!(checks, h.cmd("checks all"));
    assert!(s.hosts.iter().all(|x| x.agent_reachable));
    let writer = s.roles.iter().find(|r| r.name == "writer").expect("writer");
    assert_eq!(writer.ips[0].owner.as_deref(), Some("db1"));
    let json = serde_json::to_value(&s).expect("json");
    assert_eq!(json["hosts"][0]["state"], "ONLINE");
}
