//! The one accept loop of mmm-rs (mini-redis's `server.rs`), shared by the agent's listener
//! (spec §4.1) and the monitor's control listener (spec §5.2).
//!
//! [`run`]`(listener, limits, handler, shutdown)` accepts connections until `shutdown`
//! completes. It serves at most [`Limits::max_connections`] at once (further clients wait
//! in the accept backlog), pauses [`ACCEPT_BACKOFF`] after a failed accept (EMFILE and
//! friends), and gives each connection its own task: the TLS handshake (if any) under
//! [`Limits::handshake_timeout`], then [`Handler::serve`]. At shutdown it stops accepting,
//! fires the [`Shutdown`] every connection holds, and returns only when every connection
//! task has finished (each stops at its own safe point: the agent finishes the request it
//! is applying).
//!
//! What a listener owns is its [`Handler`]: the per-connection protocol (framing with
//! `line::LineConn`), the connection's tracing span and the wording of its log lines.
//! A future HTTP listener is one more `Handler` (its `serve` hands the [`Stream`] to an HTTP
//! connection and starts a graceful shutdown when the [`Shutdown`] fires), so it gets the
//! same limits, TLS and shutdown for free.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::shutdown::{self, Shutdown};
use crate::socket::{Listener, SocketError, Stream};

/// Pause after a failed accept before the next one, so a full file table does not spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections served at once (at least 1); others wait in the backlog.
    pub max_connections: usize,
    /// Bound on a client's TLS handshake (a slow client holds only its own task).
    pub handshake_timeout: Duration,
}

/// What a listener does with its connections (one value shared by all of them).
pub trait Handler: Send + Sync + 'static {
    /// The span of one connection's task (`agent_conn{peer}`, `control_conn{peer}`).
    fn span(&self, peer: SocketAddr) -> tracing::Span;

    /// Logs a failed accept (the loop then pauses [`ACCEPT_BACKOFF`]).
    fn accept_failed(&self, error: &SocketError);

    /// Logs a failed TLS handshake (inside the connection's span).
    fn handshake_failed(&self, error: &SocketError);

    /// Serves one established connection until it ends; stops at a safe point once
    /// `shutdown` fires.
    fn serve(&self, stream: Stream, shutdown: Shutdown) -> impl Future<Output = ()> + Send;
}

/// Serves `listener` with `handler` until `shutdown` completes, then waits for every
/// connection to finish (see the module doc).
pub async fn run<H: Handler>(
    listener: Listener,
    limits: Limits,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let (trigger, connection_shutdown) = shutdown::channel();
    let limit = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
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
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                handler.accept_failed(&e);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let span = handler.span(accepted.peer);
        let handler = Arc::clone(&handler);
        let shutdown = connection_shutdown.clone();
        connections.spawn(
            async move {
                let _permit = permit;
                match accepted.establish(limits.handshake_timeout).await {
                    Ok(stream) => handler.serve(stream, shutdown).await,
                    Err(e) => handler.handshake_failed(&e),
                }
            }
            .instrument(span),
        );
    }
    trigger.fire();
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketConfig;
    use crate::line::LineConn;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Echoes lines; counts connections that saw the shutdown.
    struct Echo {
        stopped: AtomicUsize,
    }

    impl Handler for Echo {
        fn span(&self, peer: SocketAddr) -> tracing::Span {
            tracing::info_span!("echo_conn", %peer)
        }
        fn accept_failed(&self, _: &SocketError) {}
        fn handshake_failed(&self, _: &SocketError) {}
        async fn serve(&self, stream: Stream, mut shutdown: Shutdown) {
            let mut conn = LineConn::new(stream);
            loop {
                let line = tokio::select! {
                    _ = shutdown.recv() => {
                        self.stopped.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    l = conn.read_line() => l,
                };
                match line {
                    Ok(Some(l)) => {
                        if conn.write_all(format!("{l}\n").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }
    }

    fn plain() -> SocketConfig {
        crate::socket::plain_config()
    }

    #[tokio::test]
    async fn serves_then_waits_for_its_connections_at_shutdown() {
        let listener = Listener::bind("127.0.0.1:0", &plain()).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handler = Arc::new(Echo {
            stopped: AtomicUsize::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = Limits {
            max_connections: 4,
            handshake_timeout: Duration::from_secs(1),
        };
        let server = tokio::spawn(run(listener, limits, Arc::clone(&handler), async move {
            let _ = stopped.await;
        }));
        let stream = crate::socket::connect(&addr, &plain(), Duration::from_secs(1)).await;
        let mut client = LineConn::new(stream.unwrap());
        client.write_all(b"hello\n").await.unwrap();
        assert_eq!(client.read_line().await.unwrap().as_deref(), Some("hello"));
        // An idle connection is told to stop, and run() returns after it did.
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("server stopped")
            .unwrap();
        assert_eq!(handler.stopped.load(Ordering::SeqCst), 1);
        assert_eq!(client.read_line().await.unwrap(), None);
    }
}
