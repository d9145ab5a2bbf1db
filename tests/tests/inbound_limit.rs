//! The testbed's inbound rate limit (issue 13; `Testbed::limit_inbound`, a tc `tbf` on the
//! host's port of the bridge, inside the bridge namespace): a limited host's replication
//! falls behind an unlimited slave's, and catches up once the limit is removed. Subnet 174.
//! Needs root and MariaDB.

use std::time::{Duration, Instant};

use mmm_tests::{Testbed, TestbedOptions};

/// Rows of `mmm_test.mt_wide` on `host` (0 when the table is not there yet).
fn rows(tb: &Testbed, host: &str) -> u64 {
    tb.query(host, "SELECT COUNT(*) AS n FROM mmm_test.mt_wide")
        .ok()
        .and_then(|r| {
            r.first()
                .and_then(|r| r.get("n"))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn limited_host_falls_behind_and_catches_up() {
    let tb = Testbed::up(TestbedOptions {
        subnet: 174,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("testbed up failed: {e}"));
    assert_eq!(tb.inbound_limit("db2").expect("limit"), None);
    tb.query(
        "db1",
        "CREATE TABLE IF NOT EXISTS mmm_test.mt_wide (id INT PRIMARY KEY, pad LONGTEXT) ENGINE=InnoDB",
    )
    .expect("create");
    // The table reaches both before the limit.
    let start = Instant::now();
    while tb
        .query("db2", "SELECT 1 FROM mmm_test.mt_wide LIMIT 1")
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no table on db2");
        std::thread::sleep(Duration::from_millis(50));
    }

    tb.limit_inbound("db2", 128).expect("limit db2");
    assert_eq!(tb.inbound_limit("db2").expect("limit"), Some(128));
    // 40 rows of 20 KB (~800 KB of binlog): a second or less for an unlimited slave,
    // ~50 s at 128 kbit/s.
    // The payload is in the statement itself, so it crosses the link whatever the binlog
    // format.
    for i in 0..40u64 {
        let pad: String = (0..20_000u64)
            .map(|j| char::from(b'a' + ((i * 7919 + j * 31 + j / 13) % 26) as u8))
            .collect();
        tb.query(
            "db1",
            &format!("INSERT INTO mmm_test.mt_wide VALUES ({i}, '{pad}')"),
        )
        .expect("insert");
    }
    let start = Instant::now();
    while rows(&tb, "db3") < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the unlimited slave db3 did not get the rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let behind = rows(&tb, "db2");
    println!(
        "db3 had all 40 rows after {:.2} s; db2 (limited to 128 kbit/s) had {behind}",
        start.elapsed().as_secs_f64()
    );
    assert!(
        behind < 40,
        "the limited db2 is not behind the unlimited db3"
    );

    tb.unlimit_inbound("db2").expect("unlimit");
    assert_eq!(tb.inbound_limit("db2").expect("limit"), None);
    tb.unlimit_inbound("db2").expect("unlimit twice is fine");
    let start = Instant::now();
    while rows(&tb, "db2") < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "db2 did not catch up after the limit was removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "db2 caught up {:.2} s after the limit was removed",
        start.elapsed().as_secs_f64()
    );
    tb.down().expect("down");
}
