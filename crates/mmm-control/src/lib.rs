//! `mmm_control`, MMM's admin client (spec §5.1): sends one command line to the monitor's
//! control port and prints the answer, byte for byte as 2.2.1 does.
//!
//! Layout: [`run`] is the whole program (argument handling, config, exit codes);
//! [`execute`] talks to a monitor at a given address and is what tests drive;
//! [`connect`] is the one place that opens the connection (plain or TLS, per `<socket>`).
//!
//! Behaviour (2.2.1): `--version` prints the version; `@cluster` selects
//! `mmm_mon_<cluster>.conf`; no command → `See '<argv0> help' for usage information` and
//! exit 255; the command is sent as `<args joined by spaces>\n` followed by `quit\n`;
//! everything up to EOF is printed plus one `\n`, exit 0 (also for `ERROR:` answers). A
//! monitor that cannot be reached → `ERROR: Can't connect to monitor daemon!`, exit 1.
//! Unlike 2.2.1 the answer is awaited under a read timeout, so a frozen monitor cannot
//! hang the client forever.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use mmm_common::config::{self, ControlSettings, ProgramClass, SocketConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// 2.2.1's connect timeout for the control connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The message printed when the monitor cannot be reached.
pub const CANT_CONNECT: &str = "ERROR: Can't connect to monitor daemon!";

/// Longest answer accepted from the monitor (a `show` of a large cluster is a few KiB).
pub const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Errors talking to the monitor.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Connect (or TLS handshake) failed or timed out.
    #[error("connect: {0}")]
    Connect(String),
    /// Sending the command failed.
    #[error("send: {0}")]
    Send(std::io::Error),
    /// Reading the answer failed.
    #[error("read: {0}")]
    Read(std::io::Error),
    /// No EOF within the read timeout.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}

/// Where and how to reach the monitor.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ip:port` of `<monitor>`.
    pub addr: String,
    /// `<socket>` (plain or ssl).
    pub socket: SocketConfig,
    /// Connect (and handshake) timeout.
    pub connect_timeout: Duration,
    /// Bound on waiting for the whole answer.
    pub read_timeout: Duration,
}

/// Opens the control connection (the single place that knows about sockets).
pub async fn connect(
    target: &Target,
) -> Result<impl AsyncRead + AsyncWrite + Unpin + Send, ControlError> {
    mmm_common::socket::connect(&target.addr, &target.socket, target.connect_timeout)
        .await
        .map_err(|e| ControlError::Connect(e.to_string()))
}

/// Sends `command` (one line, no newline) and returns everything the monitor wrote until it
/// closed the connection.
pub async fn send_command(target: &Target, command: &str) -> Result<String, ControlError> {
    let mut stream = connect(target).await?;
    let request = format!("{command}\nquit\n");
    let work = async {
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(ControlError::Send)?;
        stream.flush().await.map_err(ControlError::Send)?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(ControlError::Read)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(target.read_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ControlError::Timeout(target.read_timeout)),
    }
}

/// Runs one command against `target` and prints like 2.2.1: the answer plus `\n` and
/// exit 0, or [`CANT_CONNECT`] and exit 1. `args` are the command words (no `@cluster`).
pub fn execute(target: &Target, args: &[String], out: &mut dyn Write) -> ExitCode {
    let command = args.join(" ");
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(out, "{CANT_CONNECT}");
            tracing::error!("can't start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(send_command(target, &command)) {
        Ok(answer) => {
            let _ = writeln!(out, "{answer}");
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::debug!("{e}");
            let _ = writeln!(out, "{CANT_CONNECT}");
            let _ = out.flush();
            ExitCode::from(1)
        }
    }
}

/// The whole program: `args` is the full argv (`argv[0]` first).
pub fn run(args: Vec<String>) -> ExitCode {
    let mut stdout = std::io::stdout();
    let argv0 = args
        .first()
        .cloned()
        .unwrap_or_else(|| "mmm_control".into());
    let mut rest: Vec<String> = args.into_iter().skip(1).collect();
    if rest.first().map(String::as_str) == Some("--version") {
        let _ = writeln!(stdout, "mmm_control {}", mmm_common::VERSION);
        return ExitCode::SUCCESS;
    }
    let cluster = match rest.first() {
        Some(a) if a.starts_with('@') => {
            let c = a.trim_start_matches('@').to_string();
            rest.remove(0);
            Some(c)
        }
        _ => None,
    };
    let target = match load_target(cluster.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(255);
        }
    };
    if rest.is_empty() {
        eprintln!("See '{argv0} help' for usage information");
        return ExitCode::from(255);
    }
    execute(&target, &rest, &mut stdout)
}

/// Reads `mmm_mon[_<cluster>].conf` as class CONTROL and builds the [`Target`].
fn load_target(cluster: Option<&str>) -> Result<Target, String> {
    let name = config::base_name("mmm_mon", cluster);
    let cfg = config::load(&name, ProgramClass::Control).map_err(|e| e.to_string())?;
    let settings = cfg.control_settings().map_err(|e| e.to_string())?;
    Ok(target_from_config(&settings))
}

/// The [`Target`] described by mmm_control's settings: `<monitor> ip:port`, `<socket>`,
/// connect timeout 10 s, and a read timeout long enough for the slowest command (one agent
/// connect + reply, as `set_online` pings the agent) plus a margin.
pub fn target_from_config(cfg: &ControlSettings) -> Target {
    Target {
        addr: cfg.monitor_addr(),
        socket: cfg.socket.clone(),
        connect_timeout: CONNECT_TIMEOUT,
        read_timeout: cfg.ext.agent_connect_timeout
            + cfg.ext.agent_read_timeout
            + Duration::from_secs(10),
    }
}
