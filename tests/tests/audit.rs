//! The monitor's decision audit (issue 17) on the testbed: a real `mmm_mond` with real
//! agents appends every decision as a JSON line beside its log; an admin role move is in
//! it with its facts and 2.2.1's log line, and after a monitor restart the audit goes on
//! where it was (the file was read back: sequence numbers continue).
//!
//! Needs root and the binaries (`cargo build -p mmm-mon -p mmm-agent -p mmm-control`);
//! `cargo test -p mmm-tests --test audit -- --nocapture`.

use std::time::Duration;

use mmm_tests::cluster::{BringOnline, Cluster, ClusterOptions};

fn events(c: &Cluster) -> Vec<serde_json::Value> {
    c.monitor_audit()
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

fn moved_to(c: &Cluster, to: &str) -> Option<serde_json::Value> {
    events(c)
        .into_iter()
        .find(|e| e["kind"] == "admin_moved_role" && e["fields"]["to"] == to)
}

#[test]
fn audit_records_role_moves_and_survives_restart() {
    let c = Cluster::start(ClusterOptions {
        bring_online: BringOnline::SetOnline,
        ..ClusterOptions::seed(150)
    })
    .unwrap_or_else(|e| panic!("cluster start: {e}"));
    let limit = Duration::from_secs(30);
    // The hosts' way to ONLINE is in the audit: admin state changes with their lines.
    let online = c
        .wait_for("set_online of db1 in the audit", limit, |c| {
            events(c).into_iter().find(|e| {
                e["kind"] == "admin_state_changed"
                    && e["host"] == "db1"
                    && e["fields"]["to"] == "ONLINE"
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(online["level"], "FATAL");
    assert_eq!(
        online["message"],
        "Admin changed state of 'db1' from AWAITING_RECOVERY to ONLINE"
    );

    let (out, _) = c
        .control(&["move_role", "writer", "db2"])
        .expect("move_role");
    assert!(out.starts_with("OK: Role 'writer' has been moved"), "{out}");
    let moved = c
        .wait_for("the move to db2 in the audit", limit, |c| {
            moved_to(c, "db2")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved["host"], "db2");
    assert_eq!(moved["fields"]["role"], "writer");
    assert_eq!(moved["fields"]["from"], "db1");
    assert_eq!(moved["fields"]["forced"], false);
    assert_eq!(
        moved["message"],
        "Admin moved role 'writer' from 'db1' to 'db2'"
    );
    let seq_before = moved["seq"].as_u64().expect("seq");

    // A restart reads the file back: the next events continue its sequence.
    c.restart_monitor().expect("restart");
    // (Where the writer is after the restart is the startup's business: move it to the
    // other master.)
    let (mut out, _) = c
        .control(&["move_role", "writer", "db1"])
        .expect("move_role back");
    let mut target = "db1";
    if out.contains("already") {
        target = "db2";
        out = c
            .control(&["move_role", "writer", "db2"])
            .expect("move_role")
            .0;
    }
    assert!(out.starts_with("OK: Role 'writer' has been moved"), "{out}");
    let back = c
        .wait_for("the move after the restart in the audit", limit, |c| {
            events(c).into_iter().find(|e| {
                e["kind"] == "admin_moved_role"
                    && e["fields"]["to"] == target
                    && e["seq"].as_u64() > Some(seq_before)
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let seq_after = back["seq"].as_u64().expect("seq");
    assert!(seq_after > seq_before, "{seq_before} then {seq_after}");
    let all = events(&c);
    let seqs: Vec<u64> = all.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers must increase across the restart: {seqs:?}"
    );
    println!(
        "audit: {} events, seq {} before the restart, {} after",
        all.len(),
        seq_before,
        seq_after
    );
}
