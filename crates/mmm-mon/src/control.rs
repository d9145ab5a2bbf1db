//! The monitor's control listener (spec §5.2, monitor side): a [`Handler`] for
//! `mmm_common::server` (mini-redis's `Listener`/`Handler`). [`run`] accepts connections on
//! `<monitor> ip:port` and gives each its own task, so many clients are served at once and
//! a slow one stalls nobody else; at shutdown it waits for its connections.
//!
//! Per connection, for every line (newline stripped, framed by `LineConn` as 2.2.1's Perl
//! reads: invalid UTF-8 replaced, a last line without newline still a command): `quit`
//! closes the connection; anything else goes to the driver as a [`ControlRequest`] (the
//! driver feeds it to the core as `Input::Command`), and the reply text is written back
//! exactly, without an added newline. What the commands mean is the core's business. At
//! shutdown a connection waiting for a line or for its reply is closed.
//!
//! Who may connect ([`ControlAccess`], mmm-rs extension, issue 15): with `control_allow`
//! set, a client that is not on loopback, not the monitor's own `ip` and not listed gets
//! `ERROR: Access denied: <ip> is not in control_allow!` for its first line, nothing goes
//! to the driver and the connection is closed; the refusal is logged at WARN,
//! rate-limited. Without `control_allow` every client is served, as in 2.2.1; bound to a
//! non-loopback address without TLS, [`ControlAccess::startup_warning`] says so.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mmm_common::access::{self, Access, Refusal, RefusalLog};
use mmm_common::line::{LineConn, LineError};
use mmm_common::server::{self, Handler, Limits};
use mmm_common::shutdown::Shutdown;
use mmm_common::socket::{Listener, SocketError, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// Most connections served at once; further clients wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection may stay silent before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a command may wait for the monitor's answer before the connection is closed.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long writing one reply may take (a client that stops reading is dropped).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client's TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One command line from a client, with the way back for its reply.
#[derive(Debug)]
pub struct ControlRequest {
    /// The line, newline stripped (never `quit`).
    pub line: String,
    /// Where the driver sends the reply text.
    pub reply: oneshot::Sender<String>,
}

/// The control port's limits.
const LIMITS: Limits = Limits {
    max_connections: MAX_CONNECTIONS,
    handshake_timeout: HANDSHAKE_TIMEOUT,
};

/// How long a refused client may take to send its line, and to take the reply.
pub const REFUSED_TIMEOUT: Duration = access::REFUSED_TIMEOUT;

/// The control port's refusal (`mmm_common::access::refuse`).
const REFUSAL: Refusal<'static> = Refusal {
    request: "a control command",
    directive: "control_allow",
};

/// Who may use the control port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlAccess {
    /// `control_allow` ([`Access::Open`] when not set: everyone, as 2.2.1).
    allow: Access,
    /// The address the port is bound to (`<monitor> ip`): a client connecting from it is
    /// on the monitor's host, as a loopback client is.
    bound: IpAddr,
}

impl ControlAccess {
    /// The access of a port bound to `bound` with the `control_allow` list `allow`.
    pub fn new(bound: IpAddr, allow: &[IpAddr]) -> ControlAccess {
        ControlAccess {
            allow: Access::from_list(allow),
            bound: bound.to_canonical(),
        }
    }

    /// Everyone (2.2.1; the tests' loopback ports).
    pub fn open(bound: IpAddr) -> ControlAccess {
        ControlAccess::new(bound, &[])
    }

    /// Whether a client at `ip` is served: always when `control_allow` is not set; else
    /// loopback, the bound address, and the listed addresses.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow.is_open() || ip.is_loopback() || ip == self.bound || self.allow.permits(ip)
    }

    /// The start-up WARN for a port anyone on the network may use: bound to a non-loopback
    /// address, plain TCP and no `control_allow`. `None` otherwise.
    pub fn startup_warning(&self, tls: bool) -> Option<String> {
        if self.bound.is_loopback() || tls || !self.allow.is_open() {
            return None;
        }
        Some(format!(
            "The control port is bound to {} (not loopback), plain TCP, without control_allow: \
             anyone who can reach it can move roles and set hosts offline. Set control_allow \
             to the addresses mmm_control runs from, or use <socket> type ssl, or bind \
             <monitor> ip to 127.0.0.1",
            self.bound
        ))
    }
}

/// Accepts connections until `shutdown` completes, then waits for them to close; each
/// connection's lines go to `commands`, from the clients `access` permits. Accept errors
/// are logged and retried after a short pause.
pub async fn run(
    listener: Listener,
    commands: mpsc::UnboundedSender<ControlRequest>,
    access: ControlAccess,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let control = Control {
        commands,
        access,
        refusals: RefusalLog::new(),
    };
    server::run(listener, LIMITS, Arc::new(control), shutdown).await;
}

/// The control port's [`Handler`]: where commands go.
struct Control {
    /// The driver's command channel.
    commands: mpsc::UnboundedSender<ControlRequest>,
    /// Who may send commands.
    access: ControlAccess,
    /// Rate limit of the refusal log lines.
    refusals: RefusalLog,
}

impl Handler for Control {
    fn span(&self, peer: SocketAddr) -> tracing::Span {
        tracing::info_span!("control_conn", peer = %peer)
    }

    fn accept_failed(&self, error: &SocketError) {
        warn!("Listener: accept failed: {error}");
    }

    fn handshake_failed(&self, error: &SocketError) {
        warn!("Listener: connection failed: {error}");
    }

    async fn serve(&self, stream: Stream, peer: SocketAddr, shutdown: Shutdown) {
        if !self.access.permits(peer.ip()) {
            refuse(stream, peer.ip(), &self.refusals, shutdown).await;
            return;
        }
        if let Err(e) = handle(stream, self.commands.clone(), shutdown).await {
            debug!("connection ended: {e}");
        }
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// IO error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Line longer than the limit.
    #[error("line too long")]
    TooLong,
    /// No line within the idle timeout, no answer from the monitor in time, or a reply
    /// could not be written in time.
    #[error("timeout")]
    Timeout,
    /// The driver is gone (monitor shutting down).
    #[error("monitor shutting down")]
    Shutdown,
}

impl From<LineError> for ConnError {
    fn from(e: LineError) -> Self {
        match e {
            LineError::TooLong { .. } => ConnError::TooLong,
            LineError::Timeout(_) => ConnError::Timeout,
            LineError::Io(e) => ConnError::Io(e),
            // Not produced by this port's connection (lossy, last line at EOF); kept as
            // an error rather than a panic.
            e @ (LineError::Incomplete | LineError::NotUtf8) => ConnError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            )),
        }
    }
}

/// Serves one connection (any stream: plain or TLS) until `quit`, EOF, an error or
/// `shutdown`.
pub async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    commands: mpsc::UnboundedSender<ControlRequest>,
    mut shutdown: Shutdown,
) -> Result<(), ConnError> {
    // 2.2.1 chomps; a CRLF client (telnet) works too (LineConn drops the `\r`).
    let mut conn = LineConn::new(stream).lossy().last_line_at_eof();
    loop {
        let line = tokio::select! {
            _ = shutdown.recv() => return Ok(()),
            l = conn.read_line_within(IDLE_TIMEOUT) => l,
        };
        let Some(line) = line? else {
            return Ok(());
        };
        if line == "quit" {
            break;
        }
        let (tx, rx) = oneshot::channel();
        commands
            .send(ControlRequest { line, reply: tx })
            .map_err(|_| ConnError::Shutdown)?;
        let text = tokio::select! {
            // A reply that is there already is written, even at shutdown.
            biased;
            r = tokio::time::timeout(REPLY_TIMEOUT, rx) => r
                .map_err(|_| ConnError::Timeout)?
                .map_err(|_| ConnError::Shutdown)?,
            _ = shutdown.recv() => return Err(ConnError::Shutdown),
        };
        tokio::time::timeout(WRITE_TIMEOUT, conn.write_all(text.as_bytes()))
            .await
            .map_err(|_| ConnError::Timeout)??;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.shutdown()).await;
    Ok(())
}

/// Answers a client that may not use the port ([`mmm_common::access::refuse`]): its first
/// line gets `ERROR: Access denied: <ip> is not in control_allow!`, logged at WARN
/// (rate-limited), and the connection is closed after the client's further lines
/// (mmm_control's `quit`) are read.
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    ip: IpAddr,
    refusals: &RefusalLog,
    shutdown: Shutdown,
) {
    let conn = LineConn::new(stream).lossy().last_line_at_eof();
    access::refuse(conn, ip, REFUSAL, |text| text, refusals, shutdown).await;
}
