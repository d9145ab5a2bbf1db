//! Daemon plumbing shared by `mmm_agentd` and `mmm_mond` (spec §1, §3.1, §7):
//! command line (`@cluster` first argument, `--version`, `--check-config`,
//! `--foreground`), shutdown on SIGINT/SIGTERM/SIGQUIT, sd_notify `READY=1`, and optional
//! daemonizing.
//!
//! API:
//! - [`Invocation::parse`]`(args)` (args without argv\[0\]); [`version_line`]`(prog)` →
//!   `mmm_agentd 2.2.1-rs.1`; [`config_base`]`("mmm_agent", cluster)` → `mmm_agent_C`;
//!   [`process_title`]`(prog, cluster)` → `mmm_agentd-C`.
//! - [`shutdown_signal`]: a future that resolves on SIGINT/SIGTERM/SIGQUIT (logs
//!   `Signal received: exiting...`), SIGPIPE is ignored by Rust already.
//! - [`notify_ready`]: writes `READY=1` to `$NOTIFY_SOCKET` (no-op when unset).
//! - [`under_systemd`], [`daemonize`]: a daemon started by hand (no `$NOTIFY_SOCKET`,
//!   no `$INVOCATION_ID`) and without `--foreground` detaches like 2.2.1 (fork, setsid,
//!   chdir /, umask 022, stdio to /dev/null). Call it before starting the tokio runtime.
//!   There is no angel process: under systemd, `Restart=on-failure` restarts a crashed
//!   daemon; by hand, nothing does (documented in docs/agent.md).

use std::ffi::OsString;

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `@NAME` as first argument.
    pub cluster: Option<String>,
    /// `--version` as first argument (after an optional `@NAME`).
    pub version: bool,
    /// `--check-config`: load, validate, print the effective config, exit 0/1.
    pub check_config: bool,
    /// `--foreground` (or `-f`): do not daemonize even when started by hand.
    pub foreground: bool,
    /// Anything else (an error for the daemons).
    pub unknown: Vec<String>,
}

impl Invocation {
    /// Parses the arguments (without the program name).
    pub fn parse<I, S>(args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut inv = Invocation::default();
        let mut first = true;
        for a in args {
            let a = a.into().to_string_lossy().into_owned();
            if first {
                first = false;
                if let Some(c) = a.strip_prefix('@') {
                    inv.cluster = Some(c.to_string());
                    continue;
                }
            }
            match a.as_str() {
                "--version" => inv.version = true,
                "--check-config" => inv.check_config = true,
                "--foreground" | "-f" => inv.foreground = true,
                _ => inv.unknown.push(a),
            }
        }
        inv
    }
}

/// `<prog> <version>` (spec §1: `--version`).
pub fn version_line(prog: &str) -> String {
    format!("{prog} {}", crate::VERSION)
}

/// The configuration base name: `mmm_agent` or `mmm_agent_<C>`.
pub fn config_base(base: &str, cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("{base}_{c}"),
        None => base.to_string(),
    }
}

/// The process title: `mmm_agentd` or `mmm_agentd-<C>`.
pub fn process_title(prog: &str, cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("{prog}-{c}"),
        None => prog.to_string(),
    }
}

/// Sets the thread/process name shown by `ps -o comm` (Linux truncates to 15 bytes).
pub fn set_process_title(title: &str) {
    let mut name: Vec<u8> = title.bytes().filter(|b| *b != 0).take(15).collect();
    name.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Resolves when SIGINT, SIGTERM or SIGQUIT arrives; logs 2.2.1's line.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int, mut quit) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) {
        (Ok(t), Ok(i), Ok(q)) => (t, i, q),
        _ => {
            tracing::error!("could not install signal handlers");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = quit.recv() => {}
    }
    tracing::info!("Signal received: exiting...");
}

/// Whether the process runs under systemd (`$NOTIFY_SOCKET` or `$INVOCATION_ID`).
pub fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("INVOCATION_ID").is_some()
}

/// Sends `state` (e.g. `READY=1`, `STOPPING=1`) to `$NOTIFY_SOCKET`. Returns whether a
/// message was sent; errors are logged, never fatal.
pub fn notify(state: &str) -> bool {
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    let sock = match UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("sd_notify: {e}");
            return false;
        }
    };
    let res = if let Some(abs) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abs.as_bytes())
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    match res {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("sd_notify to {path}: {e}");
            false
        }
    }
}

/// `READY=1` (Type=notify units).
pub fn notify_ready() -> bool {
    notify("READY=1")
}

/// Errors of [`daemonize`].
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// fork/setsid/dup2 failed.
    #[error("could not daemonize: {0}")]
    Sys(#[from] nix::Error),
}

/// Detaches from the terminal (fork, setsid, chdir /, umask 022, stdio → /dev/null).
/// The parent exits 0. Must run before any thread (tokio runtime) is started.
pub fn daemonize() -> Result<(), DaemonError> {
    use nix::unistd::{fork, setsid, ForkResult};
    // SAFETY: called before any other thread exists (documented contract).
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    setsid()?;
    let _ = std::env::set_current_dir("/");
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let devnull = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )?;
    for fd in 0..=2 {
        nix::unistd::dup2(devnull, fd)?;
    }
    if devnull > 2 {
        let _ = nix::unistd::close(devnull);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mmm_command_lines() {
        let i = Invocation::parse(["@C1", "--check-config"]);
        assert_eq!(i.cluster.as_deref(), Some("C1"));
        assert!(i.check_config && !i.version);
        assert!(Invocation::parse(["--version"]).version);
        assert_eq!(Invocation::parse(["x", "@C"]).unknown, vec!["x", "@C"]);
        assert_eq!(config_base("mmm_agent", Some("C1")), "mmm_agent_C1");
        assert_eq!(process_title("mmm_agentd", Some("C1")), "mmm_agentd-C1");
        assert_eq!(version_line("mmm_agentd"), "mmm_agentd 2.2.1-rs.1");
    }

    #[test]
    fn notify_writes_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&p).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &p);
        assert!(notify_ready());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut b = [0u8; 32];
        let n = rx.recv(&mut b).unwrap();
        assert_eq!(&b[..n], b"READY=1");
    }
}
