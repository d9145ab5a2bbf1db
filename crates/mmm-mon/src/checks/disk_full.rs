//! A full disk on a server (issue 14): MariaDB and MySQL do not fail a write to the binary
//! log (or to a MyISAM/Aria table) that finds the disk full; the writing thread waits in
//! the state `Waiting for someone to free space` (MySQL 8: `Waiting for disk space`),
//! retries every 60 s, and every later commit queues behind it in `Commit`. The server
//! still answers `SELECT NOW()`, so 2.2.1's `mysql` check saw nothing while the writes
//! were stuck. (An InnoDB table that cannot grow fails the write at once with error 1114
//! `The table '…' is full` instead: that reaches the application, not the monitor.)
//!
//! The `mysql` check therefore asks for the threads in that state in the same round trip:
//! `SELECT COUNT(*), MAX(TIME) FROM information_schema.PROCESSLIST WHERE STATE IN (…)`.
//! Seeing other accounts' threads needs the `PROCESS` privilege for the monitor user
//! (docs/config.md); without it the query sees only the monitor's own threads and never
//! reports a full disk. A server that refuses the query (a server error) gets the plain
//! `SELECT NOW()` from then on.
//!
//! The verdict is `UNKNOWN: Disk full! …`: logged (a warning, once per episode, as every
//! UNKNOWN result), no state change, no failover. Moving the writer away from a server
//! whose commits are stuck is not safe by 2.2.1's rules: the old master's agent must make
//! it read-only first, and `read_only=1` waits for the stuck commits (docs/monitor.md).

/// The thread states of a write waiting for disk space (MariaDB, MySQL 8).
pub const WAIT_STATES: [&str; 2] = [
    "Waiting for someone to free space",
    "Waiting for disk space",
];

/// The query the `mysql` check runs (one row: how many threads wait, the longest wait).
pub fn probe_sql() -> String {
    let states: Vec<String> = WAIT_STATES.iter().map(|s| format!("'{s}'")).collect();
    format!(
        "SELECT COUNT(*), MAX(TIME) FROM information_schema.PROCESSLIST WHERE STATE IN ({})",
        states.join(", ")
    )
}

/// The check's result for a probe row: `None` when no thread waits for disk space.
pub fn verdict(waiting: u64, longest_s: Option<u64>) -> Option<String> {
    (waiting > 0).then(|| {
        format!(
            "UNKNOWN: Disk full! {waiting} write(s) waiting for free space for up to {} s",
            longest_s.unwrap_or(0)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_both_states() {
        assert_eq!(
            probe_sql(),
            "SELECT COUNT(*), MAX(TIME) FROM information_schema.PROCESSLIST WHERE STATE IN \
             ('Waiting for someone to free space', 'Waiting for disk space')"
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(0, None), None);
        assert_eq!(
            verdict(3, Some(25)).as_deref(),
            Some("UNKNOWN: Disk full! 3 write(s) waiting for free space for up to 25 s")
        );
    }
}
