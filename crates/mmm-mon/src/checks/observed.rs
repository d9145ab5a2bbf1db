//! [`Observed`]: what the check tasks measure beside their result line, for the metrics
//! (issue 17): each check's last run time and each host's replication lag
//! (`Seconds_Behind_Master` of its last `rep_backlog` check). Plain atomics written by the
//! check tasks and read by the HTTP listener: neither waits for the other, nor for the core.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::core::{CheckKind, HostId};

/// "Not measured yet" for a duration, in microseconds.
const UNKNOWN_MICROS: u64 = u64::MAX;
/// "Not known" for a lag.
const UNKNOWN_LAG: i64 = -1;

/// Per (host, check) the last run time, per host the replication lag.
#[derive(Debug)]
pub struct Observed {
    durations: Vec<AtomicU64>,
    lags: Vec<AtomicI64>,
}

impl Observed {
    /// Nothing known for `hosts` hosts.
    pub fn new(hosts: usize) -> Observed {
        Observed {
            durations: (0..hosts * CheckKind::ALL.len())
                .map(|_| AtomicU64::new(UNKNOWN_MICROS))
                .collect(),
            lags: (0..hosts).map(|_| AtomicI64::new(UNKNOWN_LAG)).collect(),
        }
    }

    fn slot(host: HostId, check: CheckKind) -> usize {
        host.index() * CheckKind::ALL.len()
            + CheckKind::ALL.iter().position(|&c| c == check).unwrap_or(0)
    }

    /// Records how long one run of `check` on `host` took.
    pub fn set_duration(&self, host: HostId, check: CheckKind, took: Duration) {
        if let Some(a) = self.durations.get(Self::slot(host, check)) {
            let micros = u64::try_from(took.as_micros()).unwrap_or(UNKNOWN_MICROS - 1);
            a.store(micros.min(UNKNOWN_MICROS - 1), Ordering::Relaxed);
        }
    }

    /// The last run time of `check` on `host`, if it ran.
    pub fn duration(&self, host: HostId, check: CheckKind) -> Option<Duration> {
        let v = self
            .durations
            .get(Self::slot(host, check))?
            .load(Ordering::Relaxed);
        (v != UNKNOWN_MICROS).then(|| Duration::from_micros(v))
    }

    /// Records `host`'s replication lag in seconds (`None`: not known, e.g. replication
    /// stopped or the server unreachable).
    pub fn set_lag(&self, host: HostId, lag: Option<u64>) {
        if let Some(a) = self.lags.get(host.index()) {
            let v = lag
                .and_then(|l| i64::try_from(l).ok())
                .unwrap_or(UNKNOWN_LAG);
            a.store(v, Ordering::Relaxed);
        }
    }

    /// `host`'s replication lag in seconds, if known.
    pub fn lag(&self, host: HostId) -> Option<u64> {
        let v = self.lags.get(host.index())?.load(Ordering::Relaxed);
        u64::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_until_set() {
        let o = Observed::new(2);
        assert_eq!(o.duration(HostId(1), CheckKind::Mysql), None);
        o.set_duration(HostId(1), CheckKind::Mysql, Duration::from_millis(3));
        assert_eq!(
            o.duration(HostId(1), CheckKind::Mysql),
            Some(Duration::from_millis(3))
        );
        assert_eq!(o.duration(HostId(0), CheckKind::Mysql), None);
        assert_eq!(o.lag(HostId(0)), None);
        o.set_lag(HostId(0), Some(7));
        assert_eq!(o.lag(HostId(0)), Some(7));
        o.set_lag(HostId(0), None);
        assert_eq!(o.lag(HostId(0)), None);
        // Out of range: ignored, never a panic.
        o.set_lag(HostId(9), Some(1));
        assert_eq!(o.duration(HostId(9), CheckKind::Ping), None);
    }
}
