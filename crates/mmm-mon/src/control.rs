//! The monitor's control listener (spec §5.2, monitor side), shaped like mini-redis's
//! `Listener`/`Handler`: [`run`] accepts connections on `<monitor> ip:port` and gives each
//! its own task, so many clients are served at once and a slow one stalls nobody else.
//!
//! Per connection, for every line (newline stripped): `quit` closes the connection;
//! anything else goes to the driver as a [`ControlRequest`] (the driver feeds it to the
//! core as `Input::Command`), and the reply text is written back exactly, without an added
//! newline. What the commands mean is the core's business.

use std::sync::Arc;
use std::time::Duration;

use mmm_common::proto::MAX_LINE;
use mmm_common::socket::Listener;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn, Instrument};

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

/// Accepts connections until `shutdown` completes; each connection's lines go to
/// `commands`. Accept errors are logged and retried after a short pause.
pub async fn run(
    listener: Listener,
    commands: mpsc::UnboundedSender<ControlRequest>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok(accepted) => {
                let commands = commands.clone();
                let span = tracing::info_span!("control_conn", peer = %accepted.peer);
                tokio::spawn(
                    async move {
                        match accepted.establish(HANDSHAKE_TIMEOUT).await {
                            Ok(stream) => {
                                if let Err(e) = handle(stream, commands).await {
                                    debug!("connection ended: {e}");
                                }
                            }
                            Err(e) => warn!("Listener: connection failed: {e}"),
                        }
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                warn!("Listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
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

/// Serves one connection (any stream: plain or TLS).
pub async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    commands: mpsc::UnboundedSender<ControlRequest>,
) -> Result<(), ConnError> {
    let mut stream = BufReader::new(stream);
    loop {
        let mut buf = Vec::new();
        let mut limited = (&mut stream).take(MAX_LINE as u64 + 1);
        let read = limited.read_until(b'\n', &mut buf);
        let n = tokio::time::timeout(IDLE_TIMEOUT, read)
            .await
            .map_err(|_| ConnError::Timeout)??;
        if n == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            return Err(ConnError::TooLong);
        }
        // 2.2.1 chomps; a CRLF client (telnet) should work too.
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        if line == "quit" {
            break;
        }
        let (tx, rx) = oneshot::channel();
        commands
            .send(ControlRequest { line, reply: tx })
            .map_err(|_| ConnError::Shutdown)?;
        let text = tokio::time::timeout(REPLY_TIMEOUT, rx)
            .await
            .map_err(|_| ConnError::Timeout)?
            .map_err(|_| ConnError::Shutdown)?;
        let out = stream.get_mut();
        tokio::time::timeout(WRITE_TIMEOUT, async {
            out.write_all(text.as_bytes()).await?;
            out.flush().await
        })
        .await
        .map_err(|_| ConnError::Timeout)??;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.get_mut().shutdown()).await;
    Ok(())
}
