//! A full disk on a server (issue 14): MariaDB and MySQL do not fail a write to the binary
//! log (or to a MyISAM/Aria table) that finds the disk full; the writing thread waits in
//! the state `Waiting for someone to free space` (MySQL 8: `Waiting for disk space`),
//! retries every 60 s, and every later commit queues behind it in `Commit`. The server
//! still answers `SELECT NOW()`, so 2.2.1's `mysql` check saw nothing while the writes
//! were stuck. (An InnoDB table that cannot grow fails the write at once with error 1114
//! `The table '…' is full` instead: that reaches the application, not the monitor.)
//!
//! The `mysql` check therefore reads `SHOW PROCESSLIST` instead of `SELECT NOW()` (one round
//! trip, at most every [`PROBE_MIN_GAP`]: [`Probe`]) and counts the threads in that state
//! ([`tally`]). Seeing other accounts' threads needs the
//! `PROCESS` privilege for the monitor user (docs/config.md); without it the list holds
//! only the monitor's own threads and never reports a full disk. A server that refuses the
//! statement (a server error) gets the plain `SELECT NOW()` from then on.
//!
//! Not `SELECT … FROM information_schema.PROCESSLIST`: MariaDB 10.11.19 materialises that
//! table as an Aria temporary table and, now and then under load, crashes (signal 11 in
//! `ha_maria::drop_table` from `free_tmp_table`) when it drops it; the testbed's kept
//! error logs showed three servers dying that way at once. `SHOW PROCESSLIST` makes no
//! temporary table.
//!
//! The verdict is `UNKNOWN: Disk full! …`: logged (a warning, once per episode, as every
//! UNKNOWN result), no state change, no failover. Moving the writer away from a server
//! whose commits are stuck is not safe by 2.2.1's rules: the old master's agent must make
//! it read-only first, and `read_only=1` waits for the stuck commits (docs/monitor.md).

use std::time::{Duration, Instant};

/// The thread states of a write waiting for disk space (MariaDB, MySQL 8).
pub const WAIT_STATES: [&str; 2] = [
    "Waiting for someone to free space",
    "Waiting for disk space",
];

/// The statement the `mysql` check runs when a probe is due ([`Probe::due`]).
pub const PROBE_SQL: &str = "SHOW PROCESSLIST";

/// The shortest time between two probes of one server. `SHOW PROCESSLIST` returns a row
/// per connection (a busy server has hundreds): at the seed's `check_period` 5 every
/// check probes, at `check_period` 1 every fourth, and the checks between run the plain
/// `SELECT NOW()`. The verdict is a warning that moves no role, so seconds are soon
/// enough; measured in docs/benchmarks.md (monitor cost at 204 hosts, server limits).
pub const PROBE_MIN_GAP: Duration = Duration::from_secs(4);

/// One server's probe: whether the server takes it, when it last ran, what it found.
#[derive(Debug, Default)]
pub struct Probe {
    refused: bool,
    last: Option<Instant>,
    full: Option<String>,
}

impl Probe {
    /// Whether the check at `now` should probe: never after a refusal, else when none ran
    /// for [`PROBE_MIN_GAP`].
    pub fn due(&self, now: Instant) -> bool {
        !self.refused
            && self
                .last
                .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_MIN_GAP)
    }

    /// Remembers a probe's result (its [`verdict`]).
    pub fn record(&mut self, now: Instant, verdict: Option<String>) {
        self.last = Some(now);
        self.full = verdict;
    }

    /// The server refused the probe (a server error): `SELECT NOW()` from then on.
    pub fn refuse(&mut self) {
        self.refused = true;
        self.full = None;
    }

    /// What a check between probes answers when its `SELECT NOW()` succeeded: the last
    /// probe's disk-full verdict until a probe finds the disk free again.
    pub fn standing(&self) -> Option<String> {
        self.full.clone()
    }
}

/// How many threads of a process list (`State`, `Time` of each) wait for disk space, and
/// the longest wait in seconds.
pub fn tally<I>(threads: I) -> (u64, Option<u64>)
where
    I: IntoIterator<Item = (Option<String>, Option<i64>)>,
{
    threads
        .into_iter()
        .filter(|(state, _)| state.as_deref().is_some_and(|s| WAIT_STATES.contains(&s)))
        .fold((0, None), |(n, longest), (_, time)| {
            let t = time.map(|t| t.max(0) as u64);
            (n + 1, longest.max(t))
        })
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
    fn tally_counts_both_states_only() {
        let row = |s: Option<&str>, t| (s.map(str::to_string), t);
        assert_eq!(tally(Vec::new()), (0, None));
        assert_eq!(
            tally(vec![
                row(Some("Waiting for someone to free space"), Some(25)),
                row(Some("Commit"), Some(90)),
                row(None, Some(100)),
                row(Some("Waiting for disk space"), Some(3)),
                row(Some("Waiting for disk space"), None),
            ]),
            (3, Some(25))
        );
    }

    #[test]
    fn probes_at_most_every_min_gap_and_the_verdict_stands_between() {
        let t0 = Instant::now();
        let mut p = Probe::default();
        assert!(p.due(t0));
        let full = verdict(2, Some(7));
        p.record(t0, full.clone());
        assert!(!p.due(t0 + Duration::from_secs(1)));
        assert!(!p.due(t0 + PROBE_MIN_GAP - Duration::from_millis(1)));
        assert_eq!(p.standing(), full);
        assert!(p.due(t0 + PROBE_MIN_GAP));
        p.record(t0 + PROBE_MIN_GAP, None);
        assert_eq!(p.standing(), None);
        // A clock that went backwards (another task's `now`) never makes a probe due.
        assert!(!p.due(t0));
        p.refuse();
        assert!(!p.due(t0 + PROBE_MIN_GAP * 10));
        assert_eq!(p.standing(), None);
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
