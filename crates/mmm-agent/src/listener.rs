//! The agent's listener (spec §4.1): accepts monitor connections on `ip:agent_port`
//! (plain or TLS), serves each connection line by line in its own task, and runs
//! "check roles" after every closed connection. Port of the loop in 2.2.1's
//! `Agent/Agent.pm::main`, shaped like mini-redis's `server.rs`.
//!
//! Differences from 2.2.1: connections are served concurrently (commands that change
//! state still apply one at a time: the agent's state mutex); an idle connection is closed
//! after [`ListenerOptions::idle_timeout`]; a line longer than
//! [`MAX_LINE`](mmm_common::proto::MAX_LINE) gets an `ERROR:` reply and the connection is
//! closed. On shutdown the accept loop stops, connections waiting for a request are
//! closed, and a request being applied is finished first.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mmm_common::line::{LineConn, LineError};
use mmm_common::socket::Listener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::agent::Agent;

/// Tunables of the listener.
#[derive(Debug, Clone)]
pub struct ListenerOptions {
    /// How long a connection may sit without sending a complete line.
    pub idle_timeout: Duration,
    /// TLS handshake bound.
    pub handshake_timeout: Duration,
    /// Most connections served at once (others wait in the backlog).
    pub max_connections: usize,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Serves `listener` until `shutdown` resolves, then waits for connections to finish the
/// request they are applying.
pub async fn run(
    listener: Listener,
    agent: Arc<Agent>,
    opts: ListenerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = accepted.peer;
        let agent = Arc::clone(&agent);
        let opts = opts.clone();
        let stop = stop_rx.clone();
        tasks.spawn(
            async move {
                let _permit = permit;
                let stream = match accepted.establish(opts.handshake_timeout).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("connection refused: {e}");
                        return;
                    }
                };
                serve(LineConn::new(stream), &agent, &opts, stop).await;
                agent.check_roles().await;
            }
            .instrument(tracing::info_span!("agent_conn", %peer)),
        );
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Serves one connection: one reply per request line, until EOF, an error, the idle
/// timeout or shutdown.
async fn serve<S>(
    mut conn: LineConn<S>,
    agent: &Agent,
    opts: &ListenerOptions,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let line = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            l = conn.read_line_within(opts.idle_timeout) => l,
        };
        let reply = match line {
            Ok(Some(line)) => {
                tracing::debug!(line, "request");
                agent.handle_line(&line).await
            }
            Ok(None) => return,
            Err(LineError::TooLong { max }) => {
                tracing::warn!("request longer than {max} bytes, closing connection");
                let r = agent.reply(&format!(
                    "ERROR: Invalid command (line longer than {max} bytes)!"
                ));
                let _ = conn.write_all(r.as_bytes()).await;
                conn.shutdown().await;
                return;
            }
            Err(LineError::NotUtf8) => agent.reply("ERROR: Invalid command (not UTF-8)!"),
            Err(e) => {
                tracing::debug!("closing connection: {e}");
                return;
            }
        };
        tracing::debug!(reply = reply.trim_end(), "reply");
        if let Err(e) = conn.write_all(reply.as_bytes()).await {
            tracing::debug!("write failed: {e}");
            return;
        }
    }
}
