//! The errant-transaction guard on real servers (issue 13): a crash failover in which the
//! old writer had acknowledged writes that reached no surviving server; when it returns it
//! is kept out with them listed, none of them reaches another server, and an operator's
//! `accept_errant` lets them replicate (2.2.1's behaviour) and the host back in.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mmm_tests::checker::row_ids;
use mmm_tests::workload::LOAD_TABLE;

use super::{Cluster, Kind};

const SURVIVORS: [&str; 3] = ["db2", "db3", "db4"];

fn ids(c: &Cluster, host: &str) -> BTreeSet<u64> {
    row_ids(c, host, LOAD_TABLE).unwrap_or_else(|e| panic!("rows of {host}: {e}"))
}

/// Slave status problems of db3/db4 (replicating from `master_ip` without error).
fn slave_problems(c: &Cluster, master_ip: &str) -> String {
    let mut out = String::new();
    for s in ["db3", "db4"] {
        match c.slave_status(s) {
            Ok(Some(st)) => {
                let get = |k: &str| st.get(k).unwrap_or("").to_string();
                if get("Master_Host") != master_ip
                    || get("Slave_IO_Running") != "Yes"
                    || get("Slave_SQL_Running") != "Yes"
                    || get("Last_IO_Errno") != "0"
                    || get("Last_SQL_Errno") != "0"
                {
                    out.push_str(&format!(
                        "{s}: master {} IO {} SQL {} errors {}/{} {} {}; ",
                        get("Master_Host"),
                        get("Slave_IO_Running"),
                        get("Slave_SQL_Running"),
                        get("Last_IO_Errno"),
                        get("Last_SQL_Errno"),
                        get("Last_IO_Error"),
                        get("Last_SQL_Error")
                    ));
                }
            }
            other => out.push_str(&format!("{s}: no slave status ({other:?}); ")),
        }
    }
    out
}

/// The sequence of the module doc, under the fault matrix's write load. The standby lags
/// (its IO thread stopped: its replication is behind the slaves'), then the slaves stop
/// receiving too, so the writer's last acknowledged writes reach no surviving server; the
/// writer's mysqld is killed with -9.
pub fn old_master_kept_out_then_accepted(c: &mut Cluster) {
    let from = c.writer().expect("a writer");
    assert_eq!(from, "db1", "the scenario starts with db1 as the writer");
    let run = c.begin("errant transactions of a crashed writer (db1)");
    c.settle(&run, Duration::from_millis(300));
    // The standby lags behind the slaves: the new writer must catch up from them.
    c.query("db2", "STOP SLAVE IO_THREAD")
        .expect("stop IO on db2");
    std::thread::sleep(Duration::from_millis(600));
    // Then nothing reaches a survivor: these writes exist on db1 only.
    for s in ["db3", "db4"] {
        c.query(s, "STOP SLAVE IO_THREAD")
            .expect("stop IO on a slave");
    }
    std::thread::sleep(Duration::from_millis(400));
    let _ = run.load.wait_acks(5, Duration::from_secs(10));
    let t = Instant::now();
    c.mysql_kill9("db1").expect("kill -9 db1");
    let acked: BTreeSet<u64> = run.load.acked_ids().into_iter().collect();
    let survivors_had: BTreeSet<u64> = SURVIVORS.iter().flat_map(|h| ids(c, h)).collect();
    for s in SURVIVORS {
        c.query(s, "START SLAVE IO_THREAD").expect("start IO");
    }
    let moved = c.wait_writer_on("db2", t, Duration::from_secs(60));
    let db2_ip = c.ip("db2").to_string();
    let mut last = String::new();
    c.wait_until(
        Duration::from_secs(30),
        "db3 and db4 replicating from db2",
        |c| {
            last = slave_problems(c, &db2_ip);
            last.is_empty().then_some(())
        },
    );
    let writer_rows = ids(c, "db2");
    let missing: BTreeSet<u64> = acked.difference(&writer_rows).copied().collect();
    let reached_nobody: BTreeSet<u64> = acked.difference(&survivors_had).copied().collect();
    println!(
        "figure: [{}] crash failover, standby lagging: {} acknowledged before the kill, {} missing on the new writer db2, {} reached no surviving server; failover {:.3} s",
        c.options().label,
        acked.len(),
        missing.len(),
        reached_nobody.len(),
        moved.as_secs_f64()
    );
    assert!(
        missing.is_subset(&reached_nobody),
        "the new writer lacks acknowledged rows that a survivor had: {:?}",
        missing.difference(&reached_nobody).collect::<Vec<_>>()
    );
    assert!(
        !reached_nobody.is_empty(),
        "the scenario must leave writes on db1 only"
    );

    // db1 returns: kept out, its errant transactions listed.
    c.wait_state("db1", "HARD_OFFLINE", Duration::from_secs(30));
    c.mysql_start("db1").expect("start db1");
    let listed = c.wait_until(Duration::from_secs(60), "db1 kept out in show", |c| {
        let s = c.show().ok()?;
        s.comments
            .iter()
            .find(|l| {
                l.starts_with("Warning: host db1 is kept out: ")
                    && l.contains("errant transaction(s)")
            })
            .cloned()
    });
    println!("figure: [{}] show: # {listed}", c.options().label);
    let db1_rows = ids(c, "db1");
    let errant_rows: BTreeSet<u64> = db1_rows.difference(&ids(c, "db2")).copied().collect();
    assert!(!errant_rows.is_empty(), "db1 holds no row db2 lacks");
    for round in 0..2 {
        let s = c.show().expect("show");
        assert_ne!(s.state("db1"), "ONLINE", "db1 must stay out");
        assert!(
            s.roles("db1").is_empty(),
            "db1 holds roles: {:?}",
            s.roles("db1")
        );
        for h in SURVIVORS {
            let leaked: Vec<u64> = ids(c, h).intersection(&errant_rows).copied().collect();
            assert!(
                leaked.is_empty(),
                "round {round}: errant rows of db1 on {h}: {leaked:?}"
            );
        }
        let p = slave_problems(c, &db2_ip);
        assert!(p.is_empty(), "round {round}: {p}");
        if round == 0 {
            std::thread::sleep(Duration::from_secs(4));
        }
    }
    let log = c.monitor_log().unwrap_or_default();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Host 'db1' has") && l.contains("errant transaction(s)"))
        .collect();
    assert_eq!(said.len(), 1, "logged once: {said:?}");
    assert!(said[0].contains("ERROR"), "{}", said[0]);
    let agent = c.agent_log("db2").unwrap_or_default();
    assert!(
        agent.contains("Replication from db1 held: it was not demoted cleanly"),
        "db2's agent did not hold its link from db1"
    );
    let refused = c.ctl(&["set_online", "db1"]);
    assert!(refused.starts_with("ERROR: Host 'db1' has "), "{refused}");
    println!(
        "figure: [{}] {} errant rows on db1 kept from db2, db3, db4 (checked twice, 4 s apart)",
        c.options().label,
        errant_rows.len()
    );

    // The operator accepts them: they replicate (as 2.2.1), db1 goes back ONLINE.
    let accepted = c.ctl(&["accept_errant", "db1"]);
    assert!(accepted.starts_with("OK: Accepted"), "{accepted}");
    c.wait_state("db1", "ONLINE", Duration::from_secs(30));
    c.wait_until(
        Duration::from_secs(30),
        "db1's errant rows on every survivor",
        |c| {
            SURVIVORS
                .iter()
                .all(|h| errant_rows.is_subset(&ids(c, h)))
                .then_some(())
        },
    );
    c.wait_replication_healthy(Duration::from_secs(30));
    c.settle(&run, Duration::from_millis(300));
    c.end(run, Kind::Crash, t, Some(moved), None, true);
}
