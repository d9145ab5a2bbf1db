//! Progress of a long copy on stderr: bytes, rate and time left, at most once a second.

use std::time::{Duration, Instant};

use crate::log::mib;

/// How often a progress line is written.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// A copy's progress.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    last: Instant,
    /// Bytes copied.
    pub bytes: u64,
    /// The expected total (the source's data size; the stream differs a little).
    pub total: Option<u64>,
}

impl Progress {
    /// Starts counting now.
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            bytes: 0,
            total: None,
        }
    }

    /// Adds `n` bytes; writes a progress line when [`PROGRESS_EVERY`] has passed.
    pub fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            tracing::info!("{}", self.line());
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        self.bytes as f64 / self.elapsed().as_secs_f64().max(1e-3)
    }

    /// `Copied 12.0 MiB of about 40.0 MiB (4.0 MiB/s, about 7 s left)`.
    pub fn line(&self) -> String {
        let rate = self.rate();
        match self.total {
            Some(total) if total > 0 => {
                let left = total.saturating_sub(self.bytes) as f64 / rate.max(1.0);
                format!(
                    "Copied {} of about {} ({}/s, about {:.0} s left)",
                    mib(self.bytes),
                    mib(total),
                    mib(rate as u64),
                    left
                )
            }
            _ => format!("Copied {} ({}/s)", mib(self.bytes), mib(rate as u64)),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let mut p = Progress::new();
        p.bytes = 3 * 1024 * 1024;
        assert!(p.line().starts_with("Copied 3.0 MiB ("), "{}", p.line());
        p.total = Some(6 * 1024 * 1024);
        assert!(p.line().starts_with("Copied 3.0 MiB of about 6.0 MiB ("));
        assert!(p.line().ends_with(" s left)"));
    }
}
