//! The monitor's HTTP listener (issue 17, extension directives `http_listen`, `http_tls`):
//! `/metrics` (Prometheus), `/api/v1/status`, `/api/v1/checks`, `/api/v1/events` (JSON)
//! and `/`, a read-only status page. Read-only: every answer comes from the last
//! [`Published`] copy the driver sent through a `watch` channel, so a request never waits
//! for the core nor the core for a request.
//!
//! hyper's HTTP/1 server, with limits against abuse: the request head must arrive within
//! [`HEADER_READ_TIMEOUT`] (slowloris), be at most [`MAX_HEAD_BYTES`] (a larger head gets
//! `431`, malformed HTTP `400`, then the connection is closed), at most
//! [`MAX_CONNECTIONS`] connections are served at once (more are closed at once) and a
//! connection lives at most [`CONNECTION_LIFETIME`]. With `http_tls 1` it speaks TLS with
//! the `<socket>` certificates and requires client certificates, like the agent channel.

mod api;
mod metrics;
pub mod published;
mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

pub use published::{HaView, Published, Tally};

/// The request head (request line and headers) must arrive within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read (hyper's read buffer); larger gets `431`.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection is closed after this (keep-alive clients reconnect).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `http_listen` could not be bound.
    #[error("HTTP listener: Can't bind {addr} (http_listen) ({source})")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `http_tls 1` without usable `<socket>` certificates.
    #[error("HTTP listener: http_tls 1 needs the <socket> cert_file, key_file and ca_file: {0}")]
    Tls(String),
}

/// A bound listener, not yet serving.
pub struct HttpListener {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl HttpListener {
    /// Binds `addr`; with `tls`, connections must do a TLS handshake with a client
    /// certificate first.
    pub async fn bind(addr: SocketAddr, tls: Option<TlsAcceptor>) -> Result<Self, HttpError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        Ok(HttpListener { listener, tls })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes; open connections are closed then.
    pub async fn run(
        self,
        published: watch::Receiver<Arc<Published>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = self.listener.accept() => a,
                // Reap finished connections.
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: do not spin.
                    debug!("HTTP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                debug!("HTTP: {peer} refused, {MAX_CONNECTIONS} connections open");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let published = published.clone();
            let tls = self.tls.clone();
            conns.spawn(async move {
                let _slot = slot;
                match tls {
                    None => serve_connection(stream, published, peer).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => serve_connection(tls, published, peer).await,
                            Ok(Err(e)) => debug!("HTTP: TLS handshake with {peer}: {e}"),
                            Err(_) => debug!("HTTP: TLS handshake with {peer} timed out"),
                        }
                    }
                }
            });
        }
        conns.shutdown().await;
    }
}

/// Serves one connection with the limits of the module doc.
async fn serve_connection<IO>(io: IO, published: watch::Receiver<Arc<Published>>, peer: SocketAddr)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        // Clone the Arc and let go of the channel at once.
        let p = published.borrow().clone();
        async move { Ok::<_, Infallible>(routes::respond(&req, &p)) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!("HTTP connection from {peer}: {e}");
            }
        }
        _ = tokio::time::sleep(CONNECTION_LIFETIME) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
