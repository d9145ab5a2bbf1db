//! A master's liveness watch (issue 14): a MySQL connection of its own on which the monitor
//! sends a `COM_PING` every [`LIVENESS_INTERVAL`]. A frozen mysqld (SIGSTOP, a hang in the
//! server) still accepts TCP connections and its host still answers ICMP, but it answers
//! nothing: the held connection's `SELECT SLEEP` noticed that only when it overran
//! `sleep + timeout`, and back-dated the failure by `timeout` alone (seconds late with the
//! seed's settings). Here a ping unanswered for [`LIVENESS_WINDOW`] while the host answers
//! ICMP reports `CheckConnLost` back-dated to when that ping was sent: the `mysql` trap
//! period counts from (at most [`LIVENESS_INTERVAL`] after) the freeze, whatever `timeout`.
//!
//! A busy server is not taken for a dead one: `COM_PING` on an idle connection of its own is
//! answered by the connection's thread without touching tables or locks, however slow the
//! server's queries are. A server that does not answer it for [`LIVENESS_WINDOW`] only
//! starts the trap period; the woken `mysql` check confirms the failure or clears it (it
//! is woken again as soon as the late ping is answered), and nothing is reported before the
//! trap period ends. A host that does not answer ICMP either is left to the ping check (a
//! cut link is reported as `ping: not OK`, so nothing waits on sends to it), and a closed
//! connection to the held connection's watch ([`super::watch_connection`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_common::config::CheckConfig;
use mysql_async::prelude::Queryable;
use tokio::sync::Notify;
use tracing::debug;

use super::{mysql, ping, CheckHost, InputFn, MASTER_PING_INTERVAL};
use crate::core::Input;

/// How often a master's liveness connection sends a `COM_PING`.
pub const LIVENESS_INTERVAL: Duration = MASTER_PING_INTERVAL;

/// How long a ping may stay unanswered before the server counts as not answering (five
/// intervals: far above a live server's answer, below the shortest trap period in use).
pub const LIVENESS_WINDOW: Duration = Duration::from_millis(500);

/// How long a late ping is waited for before the connection is dropped and made again.
pub const LIVENESS_GIVE_UP: Duration = Duration::from_secs(30);

/// Runs for the monitor's life: connects, pings every [`LIVENESS_INTERVAL`], reports a
/// server that stops answering (module doc), reconnects after a lost connection.
pub async fn watch_liveness(
    host: CheckHost,
    cfg: CheckConfig,
    sink: InputFn,
    wake_mysql: Arc<Notify>,
) {
    let ip = host.mysql.ip.to_string();
    loop {
        match mysql::connect(&host.mysql, cfg.timeout).await {
            Ok(mut conn) => {
                if let Err(e) = ping_until_lost(&mut conn, &host, &ip, &sink, &wake_mysql).await {
                    debug!("liveness connection lost: {e}");
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
            }
            Err(e) => debug!("liveness connection not established: {}", e.errstr),
        }
        // Not connected: try again soon (the periodic checks report the failure).
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Pings on `conn` until it fails or a late answer is given up on.
async fn ping_until_lost(
    conn: &mut mysql_async::Conn,
    host: &CheckHost,
    ip: &str,
    sink: &InputFn,
    wake_mysql: &Notify,
) -> Result<(), String> {
    loop {
        let sent = Instant::now();
        let answer = conn.ping();
        tokio::pin!(answer);
        match tokio::time::timeout(LIVENESS_WINDOW, &mut answer).await {
            Ok(r) => r.map_err(|e| e.to_string())?,
            Err(_) => {
                if ping::ping(ip, ping::PING_TIMEOUT).await.unwrap_or(false) {
                    debug!(
                        "mysqld answers no ping for {:?} while its host answers ICMP",
                        sent.elapsed()
                    );
                    sink(Input::CheckConnLost {
                        host: host.id,
                        silent_for: sent.elapsed(),
                    });
                    wake_mysql.notify_one();
                }
                // Keep waiting for this answer: a server that answers again is alive, and
                // the mysql check (woken again) clears the failure before it is reported.
                match tokio::time::timeout(LIVENESS_GIVE_UP, &mut answer).await {
                    Ok(r) => {
                        r.map_err(|e| e.to_string())?;
                        debug!("mysqld answers pings again after {:?}", sent.elapsed());
                        wake_mysql.notify_one();
                    }
                    Err(_) => return Err(format!("no answer for {:?}", sent.elapsed())),
                }
            }
        }
        tokio::time::sleep_until((sent + LIVENESS_INTERVAL).into()).await;
    }
}
