//! The monitor's agent client (spec §4.1-§4.3, client side): one connection per request
//! like 2.2.1 (so a Perl agent works), connect timeout `agent_connect_timeout`, reply read
//! timeout `agent_read_timeout` (2.2.1 has none), plain or TLS per `<socket>`.
//!
//! [`AgentClient`] keeps one queue (one tokio task) per host: requests to one host go out
//! in order, hosts are served in parallel, so a hung agent never delays another host.
//! Each outcome is handed to a callback with the request's token; the driver turns it into
//! `Input::AgentReply`. Whether a reply means success (`OK…`) is the core's call; this file
//! only reports what came back: a reply line (framed by `mmm_common::line::LineConn`), or
//! why none did.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmm_common::config::SocketConfig;
use mmm_common::line::{LineConn, LineError};
use mmm_common::proto::agent::{decode_reply, AgentReply, AgentRequest};
use mmm_common::proto::MAX_LINE;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{debug, warn, Instrument};

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// Connect (or TLS handshake) failed.
    #[error("Can't connect: {0}")]
    Connect(String),
    /// Connect did not finish within the connect timeout.
    #[error("Connect timeout after {0:?}")]
    ConnectTimeout(Duration),
    /// Writing the request failed.
    #[error("Can't send request: {0}")]
    Send(String),
    /// No reply line within the read timeout.
    #[error("Timeout after {0:?} waiting for the reply")]
    ReadTimeout(Duration),
    /// The agent closed the connection without a complete reply line.
    #[error("No reply: {0}")]
    NoReply(String),
}

impl AgentError {
    /// Whether the request may have reached the agent (everything after the connect): the
    /// monitor's lease anchor (`agent_lease`) moves only then.
    pub fn maybe_delivered(&self) -> bool {
        !matches!(self, AgentError::Connect(_) | AgentError::ConnectTimeout(_))
    }
}

/// How to reach one host's agent.
#[derive(Debug, Clone)]
pub struct AgentTarget {
    /// Host name (for logs).
    pub host: String,
    /// `ip:agent_port`.
    pub addr: String,
    /// `<socket>`.
    pub socket: SocketConfig,
    /// Connect (and handshake) timeout.
    pub connect_timeout: Duration,
    /// Bound on waiting for the reply line.
    pub read_timeout: Duration,
    /// The host's latest ping check result (set by the driver). While it is failing, a
    /// connect attempt that times out is not retried: the request fails after one
    /// [`CONNECT_ATTEMPT`] instead of the whole connect timeout, so nothing waits 10 s on
    /// a host that is known to be unreachable.
    pub ping_ok: Arc<AtomicBool>,
}

/// One connect attempt's bound inside the connect timeout: a host whose link was cut is
/// retried every 0.3 s, so the moment the link heals the request gets through (a single
/// long connect would wait for the kernel's SYN backoff: 1, 2, 4, 8 s…). An agent on the
/// cluster's LAN accepts in milliseconds; a slow one only costs more attempts within
/// `agent_connect_timeout`.
pub const CONNECT_ATTEMPT: Duration = Duration::from_millis(300);

/// Opens a connection to an agent (the one place that knows about sockets): attempts of
/// at most [`CONNECT_ATTEMPT`] until `connect_timeout` has passed; a refused or unreachable
/// host fails at once, and so does a timed-out attempt while the host's ping is failing.
async fn connect(
    target: &AgentTarget,
) -> Result<impl AsyncRead + AsyncWrite + Unpin + Send, AgentError> {
    let deadline = tokio::time::Instant::now() + target.connect_timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(AgentError::ConnectTimeout(target.connect_timeout));
        }
        let attempt = left.min(CONNECT_ATTEMPT);
        match mmm_common::socket::connect(&target.addr, &target.socket, attempt).await {
            Ok(s) => return Ok(s),
            Err(mmm_common::socket::SocketError::Timeout { after, .. }) => {
                if !target.ping_ok.load(Ordering::Relaxed) {
                    return Err(AgentError::ConnectTimeout(after));
                }
            }
            Err(other) => return Err(AgentError::Connect(other.to_string())),
        }
    }
}

/// Sends one request on a fresh connection and reads one reply line (spec §4.1).
/// Logs 2.2.1's WARN lines for a missing or malformed reply.
pub async fn request(
    target: &AgentTarget,
    request: &AgentRequest,
) -> Result<AgentReply, AgentError> {
    let result = exchange(target, request).await;
    log_outcome(&target.host, &result, true);
    result
}

/// 2.2.1's lines for a reply without `|UP:` and for no reply; the latter at DEBUG instead
/// of WARN when `loud` is false (the queue path: the core logs failed sends itself).
fn log_outcome(host: &str, result: &Result<AgentReply, AgentError>, loud: bool) {
    match result {
        Ok(reply) if reply.uptime.is_none() => {
            warn!("Received bad answer '{}' from host {host}.", reply.result);
        }
        Ok(_) => {}
        Err(e) if loud => warn!("Received undefined answer from host {host}. $!: {e}"),
        Err(e) => debug!("Received undefined answer from host {host}. $!: {e}"),
    }
}

/// Longest reply line accepted: the protocol's line plus a `\r` (2.2.1 agents end lines
/// with `\n`; a CRLF reply of a full-length line still fits).
const MAX_REPLY_LINE: usize = MAX_LINE + 1;

async fn exchange(target: &AgentTarget, request: &AgentRequest) -> Result<AgentReply, AgentError> {
    let stream = connect(target).await?;
    // Read as 2.2.1's Perl monitor does: bytes, invalid UTF-8 replaced.
    let mut conn = LineConn::with_max(stream, MAX_REPLY_LINE).lossy();
    let line = format!("{request}\n");
    debug!("Sending command '{request}'");
    let work = async {
        conn.write_all(line.as_bytes())
            .await
            .map_err(|e| AgentError::Send(e.to_string()))?;
        match conn.read_line().await {
            Ok(Some(reply)) => Ok(decode_reply(&reply)),
            Ok(None) => Err(AgentError::NoReply("connection closed".into())),
            Err(LineError::Incomplete | LineError::TooLong { .. }) => Err(AgentError::NoReply(
                "incomplete or too long reply line".into(),
            )),
            Err(e) => Err(AgentError::NoReply(e.to_string())),
        }
    };
    let reply = match tokio::time::timeout(target.read_timeout, work).await {
        Ok(r) => r?,
        Err(_) => return Err(AgentError::ReadTimeout(target.read_timeout)),
    };
    debug!("Received answer '{}'", reply.result);
    // Close our side politely; the agent runs its role check after the close (§4.1).
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.shutdown()).await;
    Ok(reply)
}

/// Where outcomes go: `(host index, token, outcome)`.
pub type OutcomeFn<T> = Arc<dyn Fn(usize, T, Result<AgentReply, AgentError>) + Send + Sync>;

/// One request in a host's queue.
struct Job<T> {
    token: T,
    request: AgentRequest,
}

/// Per-host request queues (in order per host, hosts in parallel).
pub struct AgentClient<T> {
    /// One sender per host, in config order.
    queues: Vec<mpsc::UnboundedSender<Job<T>>>,
    /// The queue tasks (aborted when the client is dropped).
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<T> Drop for AgentClient<T> {
    /// Requests still queued are never sent (a monitor HA leader that stepped down must
    /// send nothing more).
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl<T: Send + 'static> AgentClient<T> {
    /// Starts one queue task per target (config order); outcomes go to `on_outcome`. The
    /// tasks end when the client is dropped.
    pub fn spawn(targets: Vec<AgentTarget>, on_outcome: OutcomeFn<T>) -> Self {
        let mut queues = Vec::with_capacity(targets.len());
        let mut tasks = Vec::with_capacity(targets.len());
        for (index, target) in targets.into_iter().enumerate() {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job<T>>();
            let on_outcome = on_outcome.clone();
            let span = tracing::info_span!("agent_client", host = %target.host);
            tasks.push(tokio::spawn(
                async move {
                    while let Some(job) = rx.recv().await {
                        let outcome = exchange(&target, &job.request).await;
                        // The core logs a failed send itself (2.2.1's "Received undefined
                        // answer" line, rate-limited), so only DEBUG here.
                        log_outcome(&target.host, &outcome, false);
                        on_outcome(index, job.token, outcome);
                    }
                }
                .instrument(span),
            ));
            queues.push(tx);
        }
        AgentClient { queues, tasks }
    }

    /// Queues `request` for host `host`. Returns the job back when the host index is
    /// unknown or its queue is gone.
    pub fn send(&self, host: usize, token: T, request: AgentRequest) -> Result<(), T> {
        match self.queues.get(host) {
            Some(q) => q
                .send(Job { token, request })
                .map_err(|mpsc::error::SendError(job)| job.token),
            None => Err(token),
        }
    }
}
