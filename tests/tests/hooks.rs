//! Issue 17 on the testbed: the real `mmm_mond` with `notify_bin`, `pre_failover_bin` and
//! `hook_timeout`, and `mmm_control`'s exit status and `--json` against it.
//!
//! One cluster (fast checks): the writer's mysqld is killed while `pre_failover_bin` vetoes
//! (a file exists): no promotion, the hold is in the log and in `show`; `notify_bin` saw
//! the state change and the held failover, and its run that hangs on the held failover is
//! killed at `hook_timeout` while the monitor keeps deciding; the veto file removed, the
//! failover proceeds and `notify_bin` sees the role move. Then `--json show` is parsed with
//! serde, an `ERROR:` answer exits 2 and a stopped monitor exits 1.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use mmm_tests::cluster::{Cluster, ClusterOptions};

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn hooks_hold_and_notify_on_a_real_monitor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path().display().to_string();
    let notify = dir.path().join("notify");
    let pre = dir.path().join("pre");
    script(
        &notify,
        &format!(
            "echo \"$MMM_EVENT|$MMM_HOST|$MMM_OLD_STATE|$MMM_NEW_STATE|$MMM_ROLE|$MMM_OLD_HOST|$MMM_NEW_HOST\" >> {d}/notify.log\n\
             if [ \"$MMM_EVENT\" = failover_held ] && [ -e {d}/hang ]; then rm -f {d}/hang; sleep 300; fi\n\
             exit 0"
        ),
    );
    script(
        &pre,
        &format!(
            "echo \"asked $MMM_OLD_HOST to $MMM_NEW_HOST\"\n\
             if [ -e {d}/veto ]; then echo vetoed by the test; exit 1; fi\n\
             exit 0"
        ),
    );
    std::fs::write(dir.path().join("veto"), "").unwrap();
    std::fs::write(dir.path().join("hang"), "").unwrap();
    let mut opts = ClusterOptions::fast(153);
    opts.common_directives = vec![
        format!("notify_bin {}", notify.display()),
        format!("pre_failover_bin {}", pre.display()),
        "hook_timeout 2".into(),
        "pre_failover_retry 1".into(),
    ];
    let c = Cluster::start(opts).unwrap_or_else(|e| panic!("cluster start: {e}"));
    let wait = |what: &str, limit: u64, f: &mut dyn FnMut() -> bool| {
        c.wait_for(what, Duration::from_secs(limit), |_| f().then_some(()))
            .unwrap_or_else(|e| {
                c.dump_logs();
                panic!("{e}")
            })
    };
    let ctl = |args: &[&str]| c.control(args).expect("mmm_control");
    assert_eq!(
        c.show().unwrap().role_holders("writer"),
        vec!["db1".to_string()]
    );

    // The writer dies; the hook vetoes.
    c.testbed().mysql_kill9("db1").expect("kill db1's mysqld");
    wait("the held failover in show", 40, &mut || {
        ctl(&["show"])
            .0
            .contains("# Failover of role writer from db1 to db2 is held by pre_failover_bin: exit 1; output: asked db1 to db2 | vetoed by the test\n")
    });
    let log = c.monitor_log().unwrap();
    assert!(
        log.contains("FATAL Failover of role 'writer(")
            && log.contains(
                "held by pre_failover_bin (exit 1; output: asked db1 to db2 | vetoed by the test)"
            ),
        "{log}"
    );
    // Still held a few retries later: nobody has the writer role.
    std::thread::sleep(Duration::from_secs(3));
    let show = c.show().unwrap();
    assert_eq!(show.state("db1"), "HARD_OFFLINE");
    assert!(show.role_holders("writer").is_empty(), "{show:?}");
    // notify_bin saw the state change and the hold; its run that hung was killed at
    // hook_timeout, and later notifications still came (the monitor kept deciding).
    let notes = dir.path().join("notify.log");
    assert!(
        read(&notes).contains("state_change|db1|ONLINE|HARD_OFFLINE|"),
        "{}",
        read(&notes)
    );
    wait("the hung notify_bin killed", 20, &mut || {
        c.monitor_log()
            .unwrap()
            .contains("(failover_held) failed after")
    });
    assert!(c
        .monitor_log()
        .unwrap()
        .contains("killed after hook_timeout 2 s"));
    wait("notifications after the hung one", 20, &mut || {
        read(&notes).matches("failover_held|").count() >= 2
    });

    // The veto lifted: the failover proceeds at the next ask; notify_bin sees the move.
    let lifted = Instant::now();
    std::fs::remove_file(dir.path().join("veto")).unwrap();
    wait("writer on db2", 30, &mut || {
        c.show()
            .is_ok_and(|s| s.role_holders("writer") == vec!["db2".to_string()])
    });
    println!(
        "figure: veto lifted → writer on db2 after {:.1} s (pre_failover_retry 1 s)",
        lifted.elapsed().as_secs_f64()
    );
    wait("notify_bin saw the role move", 20, &mut || {
        let n = read(&notes);
        n.contains("role_assigned|db2||||writer||db2")
            || n.contains("failover|db2|||writer|db1|db2")
    });
    assert!(c
        .monitor_log()
        .unwrap()
        .contains("pre_failover_bin allowed the failover of role 'writer("));
    // The decision audit has the hook runs: the vetoes, the hung notify_bin, the allow.
    wait("hook runs in the audit", 20, &mut || {
        let audit = c.monitor_audit().unwrap_or_default();
        let runs: Vec<serde_json::Value> = audit
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|e: &serde_json::Value| e["kind"] == "hook_run")
            .collect();
        let has = |hook: &str, ok: bool| {
            runs.iter()
                .any(|e| e["fields"]["hook"] == hook && e["fields"]["ok"] == ok)
        };
        has("pre_failover_bin", false)
            && has("pre_failover_bin", true)
            && has("notify_bin", true)
            && runs.iter().any(|e| {
                e["fields"]["result"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("killed after hook_timeout"))
            })
    });
    assert!(!ctl(&["show"]).0.contains("pre_failover_bin"));

    // mmm_control: --json parsed with serde; ERROR answers exit 2; unreachable exits 1.
    let (json, code) = ctl(&["--json", "show"]);
    assert_eq!(code, Some(0), "{json}");
    let doc: mmm_control::json::Show = serde_json::from_str(&json).expect("show JSON");
    let db2 = doc.hosts.iter().find(|h| h.name == "db2").unwrap();
    assert_eq!(db2.roles[0].role, "writer");
    assert_eq!(
        doc.hosts.iter().find(|h| h.name == "db1").unwrap().state,
        "HARD_OFFLINE"
    );
    let (json, code) = ctl(&["--json", "checks", "db2"]);
    assert_eq!(code, Some(0), "{json}");
    let rows: Vec<mmm_control::json::CheckRow> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.host == "db2"), "{rows:?}");
    assert_eq!(
        (rows[0].check.as_str(), rows[0].status.as_str()),
        ("ping", "ok")
    );
    // db2 replicated from the dead db1: its replication checks fail.
    assert_eq!(rows[2].status, "error", "{rows:?}");
    assert_eq!(
        ctl(&["set_online", "db9"]),
        ("ERROR: Unknown host name 'db9'!\n".to_string(), Some(2))
    );
    c.stop_monitor().expect("stop the monitor");
    assert_eq!(
        ctl(&["ping"]),
        (
            "ERROR: Can't connect to monitor daemon!\n".to_string(),
            Some(1)
        )
    );
    c.stop().expect("cluster stop");
}
