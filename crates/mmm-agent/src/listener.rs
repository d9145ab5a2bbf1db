//! The agent's listener (spec §4.1): a [`Handler`] for `mmm_common::server` that serves
//! monitor connections on `ip:agent_port` (plain or TLS) line by line, each in its own task,
//! and runs "check roles" after every closed connection. Port of the loop in 2.2.1's
//! `Agent/Agent.pm::main`; the accept loop itself is mini-redis's `server.rs`, shared with
//! the monitor's control listener.
//!
//! Differences from 2.2.1: with `monitor_ips` set ([`ListenerOptions::access`]), a client
//! whose source address is not listed gets one `ERROR: Access denied: <ip> is not in
//! monitor_ips!` reply to its first line, nothing is carried out (no "check roles", no
//! lease refresh) and the connection is closed; the refusal is logged at WARN, rate-limited
//! (`mmm_common::access::RefusalLog`). Connections are served concurrently (commands that change
//! state still apply one at a time: the agent's state mutex); an idle connection is closed
//! after [`ListenerOptions::idle_timeout`]; a line longer than
//! [`MAX_LINE`](mmm_common::proto::MAX_LINE) gets an `ERROR:` reply and the connection is
//! closed. On shutdown the accept loop stops, connections waiting for a request are
//! closed, and a request being applied is finished first.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mmm_common::access::{self, Access, Refusal, RefusalLog};
use mmm_common::line::{LineConn, LineError};
use mmm_common::server::{self, Handler, Limits};
use mmm_common::shutdown::Shutdown;
use mmm_common::socket::{Listener, SocketError, Stream};

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
    /// Whose commands are obeyed (`monitor_ips`; [`Access::Open`] as 2.2.1).
    pub access: Access,
}

/// How long a refused client may take to send its line before the connection is closed
/// (short: a refused client must not hold one of the agent's connections for long).
pub const REFUSED_READ_TIMEOUT: Duration = access::REFUSED_TIMEOUT;

/// The reply to a command from a source not in `monitor_ips` (before `|UP:`).
pub fn refusal_text(ip: IpAddr) -> String {
    access::denial_text(ip, "monitor_ips")
}

/// The agent port's refusal (`mmm_common::access::refuse`).
const REFUSAL: Refusal<'static> = Refusal {
    request: "a command",
    directive: "monitor_ips",
};

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 64,
            access: Access::Open,
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
    let limits = Limits {
        max_connections: opts.max_connections,
        handshake_timeout: opts.handshake_timeout,
    };
    let handler = AgentPort {
        agent,
        idle_timeout: opts.idle_timeout,
        access: opts.access,
        refusals: RefusalLog::new(),
    };
    server::run(listener, limits, Arc::new(handler), shutdown).await;
}

/// The agent port's [`Handler`].
struct AgentPort {
    /// Shared by every connection.
    agent: Arc<Agent>,
    /// [`ListenerOptions::idle_timeout`].
    idle_timeout: Duration,
    /// [`ListenerOptions::access`].
    access: Access,
    /// Rate limit of the refusal log lines (shared by every connection).
    refusals: RefusalLog,
}

impl Handler for AgentPort {
    fn span(&self, peer: SocketAddr) -> tracing::Span {
        tracing::info_span!("agent_conn", %peer)
    }

    fn accept_failed(&self, error: &SocketError) {
        tracing::warn!("accept failed: {error}");
    }

    fn handshake_failed(&self, error: &SocketError) {
        tracing::warn!("connection refused: {error}");
    }

    async fn serve(&self, stream: Stream, peer: SocketAddr, shutdown: Shutdown) {
        if !self.access.permits(peer.ip()) {
            // Nothing is carried out for a refused client, not even "check roles".
            let agent = &self.agent;
            access::refuse(
                LineConn::new(stream),
                peer.ip(),
                REFUSAL,
                |text| agent.reply(&text),
                &self.refusals,
                shutdown,
            )
            .await;
            return;
        }
        serve(
            LineConn::new(stream),
            &self.agent,
            self.idle_timeout,
            shutdown,
        )
        .await;
        self.agent.check_roles().await;
    }
}

/// Serves one connection: one reply per request line, until EOF, an error, the idle
/// timeout or shutdown.
async fn serve<S>(
    mut conn: LineConn<S>,
    agent: &Agent,
    idle_timeout: Duration,
    mut shutdown: Shutdown,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let line = tokio::select! {
            _ = shutdown.recv() => return,
            l = conn.read_line_within(idle_timeout) => l,
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
