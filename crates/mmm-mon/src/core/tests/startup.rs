//! §3.14 startup reconstruction: host states, role election by votes, conflicts and
//! careful_startup, the startup table, cleanup-and-send (§3.14.4).

use super::*;

fn stored(host: &str, state: HostState, roles: &[RoleIp]) -> StatusLine {
    StatusLine {
        host: host.into(),
        state,
        roles: roles.to_vec(),
    }
}

fn agent(state: HostState, roles: &[RoleIp], master: &str) -> Result<AgentStatus, String> {
    Ok(AgentStatus {
        state,
        roles: roles.to_vec(),
        master: master.into(),
    })
}

fn system(writable: bool, roles: &[RoleIp], master_ip: &str) -> Result<SystemStatus, String> {
    Ok(SystemStatus {
        writable,
        roles: roles.to_vec(),
        master_ip: master_ip.into(),
    })
}

fn w() -> RoleIp {
    r("writer", "198.18.2.188")
}
fn r1() -> RoleIp {
    r("reader", "198.18.2.198")
}
fn r2() -> RoleIp {
    r("reader", "198.18.2.199")
}

/// §3.14.2: a brand-new cluster (no status file, fresh agents) starts with every host
/// AWAITING_RECOVERY and no roles; with no active master only the non-master hosts get
/// SET_STATUS + CLEAR_BAD_ROLES (§3.14.4).
#[test]
fn fresh_cluster() {
    let mut h = Harness::new(seed_config(0));
    h.initial_ok();
    let mark = h.mark();
    h.startup(vec![], vec![], vec![]);
    for n in ["db1", "db2", "db3", "db4"] {
        assert_eq!(h.state(n), HostState::AwaitingRecovery);
        assert!(h.roles(n).is_empty());
    }
    let sends = h.sends_since(mark);
    assert_eq!(
        sends,
        vec![
            "SET_STATUS|1|db3|AWAITING_RECOVERY||",
            "CLEAR_BAD_ROLES|1|db3",
            "SET_STATUS|1|db4|AWAITING_RECOVERY||",
            "CLEAR_BAD_ROLES|1|db4",
        ]
    );
    assert!(h
        .decisions_since(mark)
        .contains(&"Monitor started in active mode.".to_string()));
    let status = h.log[mark..]
        .iter()
        .find_map(|a| match a {
            Action::WriteStatus(l) => Some(l.clone()),
            _ => None,
        })
        .expect("status written");
    assert_eq!(status.len(), 4);
    assert_eq!(status[0].state, HostState::AwaitingRecovery);
}

/// §3.14.3: a monitor restart over a healthy cluster keeps every role where it is (votes:
/// writable + IP configured + stored + agent + replicating slaves) and runs cleanup-and-send
/// in order passive master, non-masters, active master.
#[test]
fn restart_keeps_roles() {
    let mut h = Harness::new(seed_config(0));
    h.initial_ok();
    let mark = h.mark();
    h.startup(
        vec![
            stored("db1", HostState::Online, &[w()]),
            stored("db2", HostState::Online, &[]),
            stored("db3", HostState::Online, &[r1()]),
            stored("db4", HostState::Online, &[r2()]),
        ],
        vec![
            agent(HostState::Online, &[w()], "db1"),
            agent(HostState::Online, &[], "db1"),
            agent(HostState::Online, &[r1()], "db1"),
            agent(HostState::Online, &[r2()], "db1"),
        ],
        vec![
            system(true, &[w()], "198.18.2.102"),
            system(false, &[], "198.18.2.100"),
            system(false, &[r1()], "198.18.2.100"),
            system(false, &[r2()], "198.18.2.100"),
        ],
    );
    assert_eq!(h.m.mode(), MonitorMode::Active);
    assert_eq!(h.roles("db1"), vec![w()]);
    assert_eq!(h.roles("db3"), vec![r1()]);
    assert_eq!(h.roles("db4"), vec![r2()]);
    let sends = h.sends_since(mark);
    assert_eq!(
        sends,
        vec![
            "SET_STATUS|1|db2|ONLINE||db1",
            "CLEAR_BAD_ROLES|1|db2",
            "SET_STATUS|1|db3|ONLINE|reader(198.18.2.198)|db1",
            "CLEAR_BAD_ROLES|1|db3",
            "SET_STATUS|1|db4|ONLINE|reader(198.18.2.199)|db1",
            "CLEAR_BAD_ROLES|1|db4",
            "SET_STATUS|1|db1|ONLINE|writer(198.18.2.188)|db1",
            "CLEAR_BAD_ROLES|1|db1",
        ]
    );
}

const CONFLICT_TABLE: &str = "Startup status:

Roles:
    Role                     Host    Stored  System  Agent
    reader(198.18.2.198)     db3     Yes     Yes     Yes  
    reader(198.18.2.199)     db4     Yes     Yes     -    
    writer(198.18.2.188)     db1     Yes     Yes     Yes  
    writer(198.18.2.188)     db2     -       Yes     -    

Hosts:
    Host    Master  Writable  Stored state      Agent state     
    db1     -       Yes       ONLINE            ONLINE          
    db2     -       No        ONLINE            ONLINE          
    db3     db1     No        ONLINE            ONLINE          
    db4     db1     No        ONLINE            ?               ";

fn conflict_startup(careful: bool) -> Harness {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.careful_startup = careful;
    }
    let mut h = Harness::new(cfg);
    h.initial_ok();
    h.startup(
        vec![
            stored("db1", HostState::Online, &[w()]),
            stored("db2", HostState::Online, &[]),
            stored("db3", HostState::Online, &[r1()]),
            stored("db4", HostState::Online, &[r2()]),
        ],
        vec![
            agent(HostState::Online, &[w()], "db1"),
            agent(HostState::Online, &[], "db1"),
            agent(HostState::Online, &[r1()], "db1"),
            Err("ERROR: Can't connect".into()),
        ],
        vec![
            system(true, &[w()], "198.18.2.102"),
            system(false, &[w()], "198.18.2.100"),
            system(false, &[r1()], "198.18.2.100"),
            system(false, &[r2()], "198.18.2.100"),
        ],
    );
    h
}

/// §3.14.3 conflict: the writer IP configured on two hosts → WARN, conflict; with
/// careful_startup the monitor goes PASSIVE with the startup table as cause (byte for
/// byte), sends nothing, and `show` prefixes every cause line with `# `. The most voted
/// host (db1) owns the role. An unreachable agent logs its two errors.
#[test]
fn conflict_with_careful_startup_goes_passive() {
    let mut h = conflict_startup(true);
    assert_eq!(h.m.mode(), MonitorMode::Passive);
    let d = h.decisions_since(0);
    assert!(d.contains(
        &"Role 'writer(198.18.2.188)' was configured on 2 hosts during monitor startup."
            .to_string()
    ));
    assert!(d.contains(&"Can't reach agent on host 'db4'".to_string()));
    assert!(d.contains(
        &"The status of the agent on host 'db4' could not be determined (answer was: ERROR: Can't connect)."
            .to_string()
    ));
    assert!(d.contains(&CONFLICT_TABLE.to_string()));
    assert!(d.contains(&"Monitor started in passive mode.".to_string()));
    assert!(h.sends_since(0).is_empty());
    assert_eq!(h.roles("db1"), vec![w()]);
    let show = h.cmd("show");
    let mut expected = String::from(
        "# --- Monitor is in PASSIVE MODE ---\n# Cause: Conflicting roles during startup:\n# \n",
    );
    for l in CONFLICT_TABLE.split('\n') {
        expected.push_str("# ");
        expected.push_str(l);
        expected.push('\n');
    }
    expected.push_str("# Warning: agent on host db4 is not reachable\n");
    assert!(show.starts_with(&expected), "{show}");
    // status-file roles are shown in PASSIVE
    assert!(show.contains("  db1(198.18.2.100) master/ONLINE. Roles: writer(198.18.2.188)\n"));
}

/// §3.14.3 without careful_startup a conflict does not stop the monitor: cleanup-and-send
/// runs and CLEAR_BAD_ROLES reaches db2 (which holds the stray writer IP).
#[test]
fn conflict_without_careful_startup() {
    let h = conflict_startup(false);
    assert_eq!(h.m.mode(), MonitorMode::Active);
    let sends = h.sends_since(0);
    let db2_clear = sends.iter().position(|s| s == "CLEAR_BAD_ROLES|1|db2");
    let db1_set = sends
        .iter()
        .position(|s| s.starts_with("SET_STATUS|1|db1|ONLINE|writer"));
    assert!(
        db2_clear.is_some() && db1_set.is_some() && db2_clear < db1_set,
        "{sends:?}"
    );
}

/// §3.14.1/§3.12: unknown hosts and roles that no longer exist or moved are ignored with
/// WARN lines; §3.14.2: ADMIN_OFFLINE wins and gets no role (votes forced to 0).
#[test]
fn stale_status_and_admin_offline() {
    let mut h = Harness::new(seed_config(0));
    h.initial_ok();
    h.startup(
        vec![
            stored("db1", HostState::AdminOffline, &[w()]),
            stored("db2", HostState::Online, &[r("writer", "10.9.9.9")]),
            stored("db3", HostState::Online, &[w()]),
            stored("db9", HostState::Online, &[]),
        ],
        vec![],
        vec![],
    );
    let d = h.decisions_since(0);
    for line in [
        "Ignoring saved status information for unknown host 'db9'",
        "Detected change in role definitions: Role 'writer(10.9.9.9)' was removed.",
        "Detected change in role definitions: Host 'db3' can't handle role 'writer(198.18.2.188)' anymore.",
    ] {
        assert!(d.contains(&line.to_string()), "{line} not in {d:?}");
    }
    assert_eq!(h.state("db1"), HostState::AdminOffline);
    assert!(h.roles("db1").is_empty());
    // the writer is orphaned by the election and assigned by the distribution to db2
    assert_eq!(h.roles("db2"), vec![w()]);
    assert_eq!(h.state("db4"), HostState::AwaitingRecovery);
}

/// §3.14.3: in MANUAL a REPLICATION_FAIL winner of the active-master role becomes ONLINE;
/// a HARD_OFFLINE one keeps the role in manual (votes not forced to 0).
#[test]
fn manual_startup_election() {
    let mut cfg = seed_config(0);
    {
        let m = &mut cfg.monitor;
        m.mode = MonitorMode::Manual;
    }
    let mut h = Harness::new(cfg);
    h.initial_ok();
    h.startup(
        vec![
            stored("db1", HostState::ReplicationFail, &[w()]),
            stored("db3", HostState::HardOffline, &[r1()]),
        ],
        vec![],
        vec![],
    );
    assert_eq!(h.state("db1"), HostState::Online);
    assert_eq!(h.roles("db1"), vec![w()]);
    // non-AM role on HARD_OFFLINE in manual: votes stay, the role stays; the table then
    // moves db3 on (HARD_OFFLINE with checks OK → REPLICATION states or AWAITING_RECOVERY)
    assert_eq!(h.m.mode(), MonitorMode::Manual);
}
