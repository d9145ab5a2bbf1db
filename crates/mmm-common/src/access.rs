//! Who may command a daemon (mmm-rs extension, issue 15; 2.2.1 obeys every source): the
//! source-address allow-list of the agent port (`monitor_ips`) and of the monitor's control
//! port (`control_allow`), and [`RefusalLog`], which rate-limits the WARN line written for
//! each refused client so that a flood of refused connections cannot fill the log.
//!
//! The listeners (`mmm_agent::listener`, `mmm_mon::control`) ask [`Access::permits`] with
//! the peer's address; a client that is not permitted is answered by [`refuse`] (one
//! `ERROR: Access denied` line, a rate-limited WARN through [`RefusalLog::note`], then the
//! connection is closed), the same way on both ports.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::line::{LineConn, LineError};
use crate::shutdown::Shutdown;

/// The source addresses a listener obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every source (2.2.1; no list configured).
    Open,
    /// Only these addresses.
    Only(Vec<IpAddr>),
}

impl Access {
    /// [`Access::Only`] the given addresses, or [`Access::Open`] when there are none.
    pub fn from_list(addrs: &[IpAddr]) -> Access {
        if addrs.is_empty() {
            Access::Open
        } else {
            Access::Only(addrs.iter().map(IpAddr::to_canonical).collect())
        }
    }

    /// Whether no list is configured.
    pub fn is_open(&self) -> bool {
        matches!(self, Access::Open)
    }

    /// Whether a client at `ip` may send commands. An IPv4-mapped IPv6 source
    /// (`::ffff:192.168.2.106`, seen on a dual-stack socket) counts as its IPv4 address.
    pub fn permits(&self, ip: IpAddr) -> bool {
        match self {
            Access::Open => true,
            Access::Only(list) => list.contains(&ip.to_canonical()),
        }
    }
}

/// Most refusals logged per [`REFUSAL_LOG_WINDOW`]; later ones in the window are counted.
pub const REFUSALS_LOGGED_PER_WINDOW: u32 = 10;

/// The window of [`REFUSALS_LOGGED_PER_WINDOW`].
pub const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(60);

/// Rate limit of the refusal WARN lines: at most [`REFUSALS_LOGGED_PER_WINDOW`] per
/// [`REFUSAL_LOG_WINDOW`]; the first line logged after a quiet stretch says how many
/// refusals were not logged.
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// The current window.
    window: Mutex<Window>,
}

/// One window of the rate limit.
#[derive(Debug, Default)]
struct Window {
    /// When the window began (`None`: no refusal yet).
    start: Option<Instant>,
    /// Lines logged in this window.
    logged: u32,
    /// Refusals not logged since the last line.
    suppressed: u64,
}

impl RefusalLog {
    /// A fresh log (nothing refused yet).
    pub fn new() -> RefusalLog {
        RefusalLog::default()
    }

    /// Notes one refusal at `now`. `Some(n)`: log this refusal, and say that `n` refusals
    /// before it were not logged (0: none); `None`: stay quiet (counted for the next line).
    pub fn note(&self, now: Instant) -> Option<u64> {
        let mut w = match self.window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        let expired = w
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= REFUSAL_LOG_WINDOW);
        if expired {
            w.start = Some(now);
            w.logged = 0;
        }
        if w.logged < REFUSALS_LOGGED_PER_WINDOW {
            w.logged += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed = w.suppressed.saturating_add(1);
            None
        }
    }
}

/// How long a refused client may take to send its line, and to take the reply.
pub const REFUSED_TIMEOUT: Duration = Duration::from_secs(5);

/// The refusal for a client at `ip` not in the list `directive` (`monitor_ips`,
/// `control_allow`).
pub fn denial_text(ip: IpAddr, directive: &str) -> String {
    format!("ERROR: Access denied: {ip} is not in {directive}!")
}

/// A port's refusal: what its WARN line calls a request and which directive lists the
/// permitted clients.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// `a command` (agent port), `a control command` (control port).
    pub request: &'a str,
    /// `monitor_ips`, `control_allow`.
    pub directive: &'a str,
}

/// Answers a client at `ip` that may not use the port: its first line (within
/// [`REFUSED_TIMEOUT`]) is logged at WARN (rate-limited by `refusals`) and answered with
/// `reply` applied to [`denial_text`] (the agent adds its `|UP:`); nothing is carried out.
/// Then the connection is closed after the client's further lines (mmm_control's `quit`,
/// at most 16, bounded in time) are read, so that the close does not reset the connection
/// before the client has read the reply.
pub async fn refuse<S>(
    mut conn: LineConn<S>,
    ip: IpAddr,
    port: Refusal<'_>,
    reply: impl FnOnce(String) -> String,
    refusals: &RefusalLog,
    mut shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let line = tokio::select! {
        _ = shutdown.recv() => return,
        l = conn.read_line_within(REFUSED_TIMEOUT) => l,
    };
    let what = match &line {
        Ok(Some(line)) => line.chars().take(120).collect::<String>(),
        Err(LineError::TooLong { max }) => format!("(a line longer than {max} bytes)"),
        Err(LineError::NotUtf8) => "(a line that is not UTF-8)".to_string(),
        Ok(None) | Err(_) => {
            tracing::debug!(
                "connection from {ip} (not in {}) closed without a command",
                port.directive
            );
            return;
        }
    };
    if let Some(unlogged) = refusals.note(Instant::now()) {
        let more = if unlogged > 0 {
            format!(" ({unlogged} earlier refusals not logged)")
        } else {
            String::new()
        };
        tracing::warn!(
            %ip,
            "Refused {} from {ip}: not in {}: {what}{more}",
            port.request,
            port.directive
        );
    }
    let text = reply(denial_text(ip, port.directive));
    let _ = tokio::time::timeout(REFUSED_TIMEOUT, async {
        if conn.write_all(text.as_bytes()).await.is_ok() {
            conn.shutdown().await;
            for _ in 0..16 {
                if !matches!(
                    conn.read_line_within(Duration::from_secs(1)).await,
                    Ok(Some(_)) | Err(LineError::NotUtf8)
                ) {
                    break;
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_only() {
        let a: IpAddr = "192.168.2.106".parse().unwrap();
        let b: IpAddr = "192.168.2.103".parse().unwrap();
        assert!(Access::from_list(&[]).permits(b));
        assert!(Access::from_list(&[]).is_open());
        let only = Access::from_list(&[a]);
        assert!(only.permits(a));
        assert!(!only.permits(b));
        assert!(only.permits("::ffff:192.168.2.106".parse().unwrap()));
        assert!(!only.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn refusals_are_rate_limited_per_window() {
        let log = RefusalLog::new();
        let t0 = Instant::now();
        for _ in 0..REFUSALS_LOGGED_PER_WINDOW {
            assert_eq!(log.note(t0), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(log.note(t0 + Duration::from_secs(30)), None);
        }
        // The next window's first line reports the ones not logged.
        assert_eq!(log.note(t0 + REFUSAL_LOG_WINDOW), Some(1000));
        assert_eq!(log.note(t0 + REFUSAL_LOG_WINDOW), Some(0));
    }
}
