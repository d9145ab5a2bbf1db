//! The status file (spec §3.12) through the public API: a file as 2.2.1 writes it is read
//! and written back byte for byte, and a reader never sees a half-written file while the
//! monitor rewrites it (temp file + fsync + rename).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mmm_common::state::HostState;
use mmm_mon::status_file::{parse, read, render, write_atomic};

/// transcripts-2.2.1.md §3, the file 2.2.1 left after the command session.
const FROM_221: &str = "db1|ONLINE|writer(198.18.2.188)\ndb2|ONLINE|\ndb3|ONLINE|reader(198.18.2.198)\ndb4|ONLINE|reader(198.18.2.199)\n";

#[test]
fn a_221_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mmm_mond.status");
    std::fs::write(&path, FROM_221).unwrap();
    let (entries, bad) = read(&path).unwrap();
    assert!(bad.is_empty());
    assert_eq!(
        entries.iter().map(|e| e.host.as_str()).collect::<Vec<_>>(),
        ["db1", "db2", "db3", "db4"]
    );
    assert!(entries.iter().all(|e| e.state == HostState::Online));
    assert!(entries[1].roles.is_empty());
    write_atomic(&path, &render(&entries)).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), FROM_221);
}

#[test]
fn missing_roles_field_and_several_roles() {
    let (entries, bad) =
        parse("db1|ONLINE|writer(10.0.0.50),reader(10.0.0.51)\ndb2|AWAITING_RECOVERY\n");
    assert!(bad.is_empty());
    assert_eq!(
        render(&entries),
        "db1|ONLINE|reader(10.0.0.51),writer(10.0.0.50)\ndb2|AWAITING_RECOVERY|\n"
    );
}

#[test]
fn readers_never_see_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mmm_mond.status");
    let a = FROM_221.to_string();
    let b = "db1|HARD_OFFLINE|\ndb2|ONLINE|writer(198.18.2.188)\ndb3|ONLINE|reader(198.18.2.198),reader(198.18.2.199)\ndb4|ADMIN_OFFLINE|\n".to_string();
    write_atomic(&path, &a).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, a, b, stop) = (path.clone(), a.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let got = std::fs::read_to_string(&path).unwrap();
                assert!(got == a || got == b, "partial status file: {got:?}");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..300 {
        write_atomic(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
