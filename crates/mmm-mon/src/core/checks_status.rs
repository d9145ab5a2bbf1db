//! The check status table (spec §3.3.5) and the trap-period logic of the checker threads
//! (§3.3.4), fed with raw results as they arrive.
//!
//! 2.2.1 reports a failure only when an ERROR result arrives at least `trap_period` after
//! the first ERROR; here the failure counts at the moment the trap period ends (the deadline
//! is returned by [`ChecksStatus::next_deadline`]), so the monitor reacts then, not at the
//! next check round. Initial checks (§3.3.3, results before startup) set the table directly:
//! status 1 iff the result starts with `OK` (UNKNOWN counts as failed there only).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::decision::Decision;
use super::ids::{HostId, PerHost};
use super::types::{CheckKind, CheckResult, CheckStatus};

/// The checker-side failure record of one (host, check) (§3.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trap {
    /// -1: nothing seen since startup.
    Undefined,
    /// 1: OK reported.
    Ok,
    /// -2: failing, not yet reported.
    Failing {
        /// When the failure (or the dropped connection) was first seen.
        since: Instant,
        /// When the latest ERROR (or dropped connection) of this failure was seen: the
        /// network confirmation must be later than it (a failure that began just before
        /// the monitor's own link went down must not be confirmed by a round that ran
        /// before the cut).
        last_error: Instant,
        /// The latest ERROR line.
        message: String,
        /// Whether the deadline may fire on its own (false after the network was down:
        /// only a fresh ERROR result reports it then, as 2.2.1 does).
        armed: bool,
    },
    /// 0: failure reported.
    Reported,
    /// -3: unknown.
    Unknown,
}

/// One cell of the status table.
#[derive(Debug, Clone)]
pub(crate) struct CheckEntry {
    /// 1/0 as last reported.
    pub(crate) ok: bool,
    /// Epoch seconds of the last status change (display).
    pub(crate) last_change_wall: i64,
    /// Monotonic time of the last status change (flapping rule).
    pub(crate) last_change: Instant,
    /// Message of the last reported result.
    pub(crate) message: String,
    /// Whether the initial check (§3.3.3) has been recorded.
    initialized: bool,
    trap: Trap,
    /// Before startup: since when the initial results have been failing without a break
    /// (a monitor HA follower's checks run for long before it starts: [`Self::warm_start`]).
    failing_since: Option<Instant>,
}

/// The check table: per host, the four checks in display order.
#[derive(Debug, Clone)]
pub(crate) struct ChecksStatus {
    hosts: PerHost<[CheckEntry; 4]>,
    trap_periods: [Duration; 4],
    /// The latest successful network check round ([`Input::NetworkConfirmed`]); `None`
    /// until the first (then failures are not gated).
    ///
    /// [`Input::NetworkConfirmed`]: super::Input::NetworkConfirmed
    network_confirmed: Option<Instant>,
    /// The hosts with a failure being timed (a `Failing` entry), in config order: the trap
    /// deadlines are looked for only there (issue 14: with 200 healthy hosts, walking all
    /// 816 entries after every input was a good part of the core's time).
    timing: BTreeSet<HostId>,
}

/// What feeding a result changed.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Log lines.
    pub(crate) decisions: Vec<Decision>,
    /// The reported status changed (the monitor must re-evaluate).
    pub(crate) changed: bool,
}

impl ChecksStatus {
    /// A table for `n` hosts, all checks failed with an empty message until the initial
    /// checks arrive.
    pub(crate) fn new(n: usize, trap_periods: [Duration; 4], now: Instant, wall: i64) -> Self {
        let cell = CheckEntry {
            ok: false,
            last_change_wall: wall,
            last_change: now,
            message: String::new(),
            initialized: false,
            trap: Trap::Undefined,
            failing_since: None,
        };
        ChecksStatus {
            hosts: PerHost::new(
                (0..n)
                    .map(|_| [cell.clone(), cell.clone(), cell.clone(), cell.clone()])
                    .collect(),
            ),
            trap_periods,
            network_confirmed: None,
            timing: BTreeSet::new(),
        }
    }

    /// Keeps [`Self::timing`] in step after `host`'s entries changed.
    fn retime(&mut self, host: HostId) {
        let failing = self
            .hosts
            .get(host)
            .is_some_and(|h| h.iter().any(|e| matches!(e.trap, Trap::Failing { .. })));
        if failing {
            self.timing.insert(host);
        } else {
            self.timing.remove(&host);
        }
    }

    /// Monitor HA (issue 16), at a follower's takeover: an initial failure that began less
    /// than its trap period ago is not counted at the startup but timed from when it
    /// began, as it would have been had this monitor led all along (a healthy writer is
    /// not failed over for one slow check at the moment of a takeover). Longer failures
    /// count at once, as 2.2.1's initial checks do.
    pub(crate) fn warm_start(&mut self, now: Instant) {
        let traps = self.trap_periods;
        for h in self.hosts.iter_mut() {
            for (i, e) in h.iter_mut().enumerate() {
                let Some(since) = e.failing_since.take() else {
                    continue;
                };
                if e.ok || since + traps[i] <= now {
                    continue;
                }
                e.ok = true;
                e.trap = Trap::Failing {
                    since,
                    last_error: now,
                    message: e.message.clone(),
                    armed: true,
                };
            }
        }
        for host in self.hosts.ids() {
            self.retime(host);
        }
    }

    /// A network check round succeeded at `now`.
    pub(crate) fn network_confirmed(&mut self, now: Instant) {
        self.network_confirmed = Some(now);
    }

    /// Whether a failure that began at `since` may be reported: the monitor's own network
    /// was confirmed after it began (or confirmation is not in use).
    fn confirmed_after(&self, since: Instant) -> bool {
        match self.network_confirmed {
            None => true,
            Some(c) => c >= since,
        }
    }

    /// The entry of (host, check).
    pub(crate) fn entry(&self, host: HostId, check: CheckKind) -> Option<&CheckEntry> {
        self.hosts.get(host).and_then(|h| h.get(check.index()))
    }

    /// The reported status of (host, check); false for an unknown host.
    pub(crate) fn ok(&self, host: HostId, check: CheckKind) -> bool {
        self.entry(host, check).is_some_and(|e| e.ok)
    }

    /// Whether an `OK` result for (host, check) changes nothing: the check is reported
    /// OK and no failure is being timed (the steady state of a healthy host, where
    /// [`ChecksStatus::result`] returns at once).
    pub(crate) fn steady_ok(&self, host: HostId, check: CheckKind) -> bool {
        self.entry(host, check)
            .is_some_and(|e| e.ok && e.trap == Trap::Ok)
    }

    /// Why (host, check) is not OK: its reported failure, or with `unreported` also a
    /// failure still within its trap period (issue 13: a master's replication). `None`: OK.
    pub(crate) fn failing(&self, host: HostId, check: CheckKind, unreported: bool) -> Option<&str> {
        let e = self.entry(host, check)?;
        match &e.trap {
            _ if !e.ok => Some(e.message.as_str()),
            Trap::Failing { message, .. } if unreported => Some(message.as_str()),
            _ => None,
        }
    }

    /// "Last change of a host": the latest `last_change` over its four checks.
    pub(crate) fn host_last_change(&self, host: HostId) -> Option<Instant> {
        self.hosts
            .get(host)
            .and_then(|h| h.iter().map(|e| e.last_change).max())
    }

    /// Records an initial check result (§3.3.3): status 1 iff `OK`, last change = start.
    pub(crate) fn initial(
        &mut self,
        host: HostId,
        check: CheckKind,
        result: &CheckResult,
        now: Instant,
    ) {
        if let Some(e) = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.get_mut(check.index()))
        {
            e.ok = result.status == CheckStatus::Ok;
            e.message = result.message.clone();
            e.initialized = true;
            e.trap = if e.ok { Trap::Ok } else { Trap::Undefined };
            e.failing_since = match result.status {
                CheckStatus::Error => e
                    .failing_since
                    .or(Some(now.checked_sub(result.failing_for).unwrap_or(now))),
                _ => None,
            };
        }
        self.retime(host);
    }

    /// Feeds one raw result after startup (§3.3.4). `host_name` is for log lines.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn result(
        &mut self,
        host: HostId,
        host_name: &str,
        check: CheckKind,
        result: CheckResult,
        now: Instant,
        wall: i64,
        network_up: bool,
    ) -> Outcome {
        let out = self.apply_result(host, host_name, check, result, now, wall, network_up);
        self.retime(host);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_result(
        &mut self,
        host: HostId,
        host_name: &str,
        check: CheckKind,
        result: CheckResult,
        now: Instant,
        wall: i64,
        network_up: bool,
    ) -> Outcome {
        let mut out = Outcome::default();
        let Some(e) = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.get_mut(check.index()))
        else {
            return out;
        };
        match result.status {
            CheckStatus::Ok => {
                if e.trap == Trap::Ok && e.ok {
                    return out;
                }
                // A recovery within the trap period is invisible, unless the table still
                // shows an earlier reported failure (mmm-rs: 2.2.1 then kept the stale
                // failure until the next failure cycle, e.g. after ERROR, UNKNOWN, ERROR, OK).
                if !matches!(e.trap, Trap::Failing { .. }) || !e.ok {
                    out.decisions.push(Decision::CheckOk {
                        host,
                        name: host_name.to_string(),
                        check,
                    });
                    out.changed = report(e, true, result.message, now, wall);
                }
                e.trap = Trap::Ok;
            }
            CheckStatus::Unknown => {
                if e.trap != Trap::Unknown {
                    e.trap = Trap::Unknown;
                    out.decisions.push(Decision::CheckUnknown {
                        host,
                        name: host_name.to_string(),
                        check,
                        message: result.message,
                    });
                }
            }
            CheckStatus::Error => {
                if !network_up {
                    return out;
                }
                match &mut e.trap {
                    Trap::Reported => return out,
                    Trap::Failing {
                        message,
                        armed,
                        last_error,
                        ..
                    } => {
                        *message = result.message;
                        *armed = true;
                        *last_error = now;
                    }
                    _ => {
                        e.trap = Trap::Failing {
                            since: now.checked_sub(result.failing_for).unwrap_or(now),
                            last_error: now,
                            message: result.message,
                            armed: true,
                        }
                    }
                }
                out = self.fire(host, host_name, check, now, wall);
            }
        }
        out
    }

    /// The long-lived MySQL connection dropped (at `now`; the server has not answered
    /// since `since`): start the mysql trap timer at `since` unless a failure is already
    /// being timed or reported.
    pub(crate) fn conn_lost(&mut self, host: HostId, since: Instant, now: Instant) {
        if let Some(e) = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.get_mut(CheckKind::Mysql.index()))
        {
            if matches!(e.trap, Trap::Ok | Trap::Undefined | Trap::Unknown) {
                e.trap = Trap::Failing {
                    since,
                    last_error: now,
                    message: "ERROR: Connection to MySQL lost".to_string(),
                    armed: true,
                };
            }
        }
        self.retime(host);
    }

    /// After the network came back: failures being timed are reported only by a fresh
    /// ERROR result (2.2.1's checkers abort their rounds while the network is down).
    pub(crate) fn disarm_all(&mut self) {
        for h in &mut self.hosts {
            for e in h.iter_mut() {
                if let Trap::Failing { armed, .. } = &mut e.trap {
                    *armed = false;
                }
            }
        }
    }

    /// Reports every armed failure whose trap period ended at or before `now`.
    pub(crate) fn fire_due(&mut self, names: &[String], now: Instant, wall: i64) -> Outcome {
        let mut out = Outcome::default();
        // Only hosts with a failure being timed can fire (config order, as before).
        let timing: Vec<HostId> = self.timing.iter().copied().collect();
        for host in timing {
            for check in CheckKind::ALL {
                let name = names.get(host.index()).map(String::as_str).unwrap_or("");
                let o = self.fire(host, name, check, now, wall);
                out.changed |= o.changed;
                out.decisions.extend(o.decisions);
            }
        }
        out
    }

    /// Reports (host, check) if it is failing, armed and past its trap period.
    fn fire(
        &mut self,
        host: HostId,
        host_name: &str,
        check: CheckKind,
        now: Instant,
        wall: i64,
    ) -> Outcome {
        let mut out = Outcome::default();
        let trap_period = self.trap_periods[check.index()];
        let confirmed = self.network_confirmed;
        let Some(e) = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.get_mut(check.index()))
        else {
            return out;
        };
        let Trap::Failing {
            since,
            last_error,
            message,
            armed: true,
        } = &e.trap
        else {
            return out;
        };
        let age = now.saturating_duration_since(*since);
        if age < trap_period || confirmed.is_some_and(|c| c < *last_error) {
            return out;
        }
        let message = message.clone();
        out.decisions.push(Decision::CheckFailed {
            host,
            name: host_name.to_string(),
            check,
            failing_for: age,
            message: message.clone(),
        });
        e.trap = Trap::Reported;
        out.changed = report(e, false, message, now, wall);
        self.retime(host);
        out
    }

    /// The earliest trap deadline of an armed failure that waits for a network
    /// confirmation newer than its last error (see [`Self::next_deadline`]).
    pub(crate) fn next_unconfirmed_deadline(&self) -> Option<Instant> {
        self.earliest_deadline(false)
    }

    /// The earliest armed trap deadline (failures waiting for a network confirmation are
    /// left out: they wait for the next `NetworkConfirmed`, not for a deadline).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.earliest_deadline(true)
    }

    /// The earliest trap deadline among armed failures whose network confirmation is
    /// (`confirmed`) or is not yet (`!confirmed`) newer than their last error.
    fn earliest_deadline(&self, confirmed: bool) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        for h in self.timing.iter().filter_map(|&host| self.hosts.get(host)) {
            for (i, e) in h.iter().enumerate() {
                if let Trap::Failing {
                    since,
                    last_error,
                    armed: true,
                    ..
                } = &e.trap
                {
                    if self.confirmed_after(*last_error) != confirmed {
                        continue;
                    }
                    let d = *since + self.trap_periods[i];
                    best = Some(best.map_or(d, |b| b.min(d)));
                }
            }
        }
        best
    }
}

/// Stores a reported result (§3.3.5); returns whether the status changed.
fn report(e: &mut CheckEntry, ok: bool, message: String, now: Instant, wall: i64) -> bool {
    e.message = message;
    if e.ok != ok {
        e.ok = ok;
        e.last_change = now;
        e.last_change_wall = wall;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    const H0: HostId = HostId(0);

    fn res(line: &str) -> CheckResult {
        CheckResult::from_line(line)
    }

    /// Initial check failed, the failure is timed, the server returns before the trap
    /// period ends: the OK must be reported (it was stuck failed for good).
    #[test]
    fn initial_failure_recovering_within_trap_period_is_reported() {
        let t0 = Instant::now();
        let trap = Duration::from_secs(1);
        let mut st = ChecksStatus::new(1, [trap; 4], t0, 0);
        st.initial(H0, CheckKind::Mysql, &res("ERROR: Connect error"), t0);
        assert!(!st.ok(H0, CheckKind::Mysql));
        let t1 = t0 + Duration::from_millis(300);
        let _ = st.result(
            H0,
            "db2",
            CheckKind::Mysql,
            res("ERROR: Connect error"),
            t1,
            0,
            true,
        );
        let t2 = t0 + Duration::from_millis(600);
        let out = st.result(
            H0,
            "db2",
            CheckKind::Mysql,
            res("OK: Connected"),
            t2,
            0,
            true,
        );
        assert!(st.ok(H0, CheckKind::Mysql));
        assert!(out.changed);
        assert!(out
            .decisions
            .iter()
            .any(|d| d.to_string() == "Check 'mysql' on 'db2' is ok!"));
    }

    /// A ping that had been unanswered for 0.5 s when its ERROR arrived: the trap period
    /// counts from the first unanswered echo, not from the result's arrival.
    #[test]
    fn trap_period_counts_from_when_the_failure_was_first_observed() {
        let t0 = Instant::now();
        let trap = Duration::from_secs(1);
        let mut st = ChecksStatus::new(1, [trap; 4], t0, 0);
        st.initial(H0, CheckKind::Ping, &res("OK"), t0);
        let arrived = t0 + Duration::from_secs(5);
        let observed = Duration::from_millis(500);
        let err = res("ERROR: Could not ping 198.18.0.102").observed_failing_for(observed);
        let out = st.result(H0, "db2", CheckKind::Ping, err, arrived, 0, true);
        assert!(!out.changed, "reported before the trap period");
        let due = arrived - observed + trap;
        assert_eq!(st.next_deadline(), Some(due));
        let early = st.fire_due(&["db2".into()], due - Duration::from_millis(1), 0);
        assert!(!early.changed);
        let out = st.fire_due(&["db2".into()], due, 0);
        assert!(out.changed && !st.ok(H0, CheckKind::Ping));
        assert!(out.decisions.iter().any(|d| d.to_string()
            == "Check 'ping' on 'db2' has failed for 1 seconds! Message: ERROR: Could not ping 198.18.0.102"));
    }

    /// A failure of an OK check that recovers within the trap period stays silent.
    #[test]
    fn short_failure_of_an_ok_check_stays_silent() {
        let t0 = Instant::now();
        let mut st = ChecksStatus::new(1, [Duration::from_secs(1); 4], t0, 0);
        st.initial(H0, CheckKind::Mysql, &res("OK: Connected"), t0);
        let t1 = t0 + Duration::from_millis(300);
        let _ = st.result(H0, "db2", CheckKind::Mysql, res("ERROR: x"), t1, 0, true);
        let t2 = t0 + Duration::from_millis(600);
        let out = st.result(
            H0,
            "db2",
            CheckKind::Mysql,
            res("OK: Connected"),
            t2,
            0,
            true,
        );
        assert!(st.ok(H0, CheckKind::Mysql));
        assert!(!out.changed);
        assert!(out.decisions.is_empty());
    }
}

#[cfg(test)]
mod network_gate_tests {
    use super::*;

    const H0: HostId = HostId(0);

    /// Once network confirmation is in use, a failure is reported only after a network
    /// round that began after it confirmed the monitor's own network.
    #[test]
    fn failure_waits_for_a_later_network_confirmation() {
        let t0 = Instant::now();
        let trap = Duration::from_secs(1);
        let mut st = ChecksStatus::new(1, [trap; 4], t0, 0);
        st.initial(
            H0,
            CheckKind::Mysql,
            &CheckResult::from_line("OK: Connected"),
            t0,
        );
        st.network_confirmed(t0);
        let t1 = t0 + Duration::from_millis(100);
        let _ = st.result(
            H0,
            "db1",
            CheckKind::Mysql,
            CheckResult::from_line("ERROR: x"),
            t1,
            0,
            true,
        );
        assert_eq!(st.next_deadline(), None);
        let t2 = t0 + Duration::from_secs(3);
        let out = st.fire_due(&["db1".to_string()], t2, 0);
        assert!(!out.changed, "fired without network confirmation");
        assert!(st.ok(H0, CheckKind::Mysql));
        st.network_confirmed(t2);
        assert_eq!(st.next_deadline(), Some(t1 + trap));
        let out = st.fire_due(&["db1".to_string()], t2, 0);
        assert!(out.changed);
        assert!(!st.ok(H0, CheckKind::Mysql));
    }

    /// A failure that began just before the monitor's link went down, confirmed by a round
    /// that ran before the cut, must not count once later errors (after the cut) arrive.
    #[test]
    fn confirmation_must_follow_the_latest_error() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut st = ChecksStatus::new(1, [Duration::from_secs(1); 4], t0, 0);
        st.initial(H0, CheckKind::Ping, &CheckResult::from_line("OK"), t0);
        let err = || CheckResult::from_line("ERROR: Could not ping 198.18.2.100");
        let _ = st.result(H0, "db1", CheckKind::Ping, err(), t0 + ms(100), 0, true);
        st.network_confirmed(t0 + ms(200)); // the round before the cut
        let _ = st.result(H0, "db1", CheckKind::Ping, err(), t0 + ms(700), 0, true);
        let out = st.fire_due(&["db1".to_string()], t0 + ms(1500), 0);
        assert!(
            !out.changed,
            "fired on a confirmation older than the latest error"
        );
        assert!(st.ok(H0, CheckKind::Ping));
    }

    /// Monitor HA takeover: a failure younger than its trap period is timed from when it
    /// began, an older one counts at once, an OK in between restarts the streak.
    #[test]
    fn warm_start_times_young_failures() {
        let t0 = Instant::now();
        let trap = Duration::from_secs(2);
        let mut st = ChecksStatus::new(1, [trap; 4], t0, 0);
        let ms = |n| t0 + Duration::from_millis(n);
        st.initial(
            H0,
            CheckKind::Mysql,
            &CheckResult::from_line("ERROR: old"),
            t0,
        );
        st.initial(
            H0,
            CheckKind::Mysql,
            &CheckResult::from_line("ERROR: old"),
            ms(500),
        );
        st.initial(
            H0,
            CheckKind::Ping,
            &CheckResult::from_line("ERROR: blip"),
            ms(500),
        );
        st.initial(H0, CheckKind::Ping, &CheckResult::from_line("OK"), ms(1000));
        st.initial(
            H0,
            CheckKind::Ping,
            &CheckResult::from_line("ERROR: young"),
            ms(2500),
        );
        st.warm_start(ms(3000));
        // mysql has failed for 3 s (> trap): counted now.
        assert!(!st.ok(H0, CheckKind::Mysql));
        // ping has failed for 0.5 s: OK for now, timed from 2.5 s.
        assert!(st.ok(H0, CheckKind::Ping));
        st.network_confirmed(ms(4600));
        assert_eq!(st.next_deadline(), Some(ms(4500)));
        let out = st.fire_due(&["db1".to_string()], ms(4600), 0);
        assert!(out.changed);
        assert!(!st.ok(H0, CheckKind::Ping));
    }
}
