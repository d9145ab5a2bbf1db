//! Daemon plumbing shared by `mmm_agentd` and `mmm_mond` (spec §1, §3.1, §7):
//! command line (`@cluster` first argument, `--version`, `--check-config`,
//! `--foreground`), shutdown on SIGINT/SIGTERM/SIGQUIT, sd_notify `READY=1`, and optional
//! daemonizing.
//!
//! API:
//! - [`DaemonCli`]: a daemon's command line as texts; [`DaemonCli::command`] is the clap
//!   definition (also the man page's source), [`Invocation::parse`]`(&cli, argv)` parses
//!   it, printing `--help`/`--version` (`mmm_agentd 2.2.1-rs.1`, exit 0) and usage errors
//!   (exit 1) itself. [`Section`]: FILES/SIGNALS/… of `--help` and the man page.
//! - [`version_line`]`(prog)` → `mmm_agentd 2.2.1-rs.1`;
//!   [`config_base`]`("mmm_agent", cluster)` → `mmm_agent_C`;
//!   [`process_title`]`(prog, cluster)` → `mmm_agentd-C`.
//! - [`shutdown_signal`]: a future that resolves on SIGINT/SIGTERM/SIGQUIT (logs
//!   `Signal received: exiting...`), SIGPIPE is ignored by Rust already.
//!   SIGHUP reopens the log instead ([`ignore_sighup`] covers the time before).
//! - [`notify_ready`]: writes `READY=1` to `$NOTIFY_SOCKET` (no-op when unset);
//!   [`Watchdog`]: `WATCHDOG=1` pings for `WatchdogSec=`.
//! - [`under_systemd`], [`daemonize`]: a daemon started by hand (no `$NOTIFY_SOCKET`,
//!   no `$INVOCATION_ID`) and without `--foreground` detaches like 2.2.1 (fork, setsid,
//!   chdir /, umask 022, stdio to /dev/null). Call it before starting the tokio runtime.
//!   There is no angel process: under systemd, `Restart=on-failure` restarts a crashed
//!   daemon; by hand, nothing does (documented in docs/agent.md).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

/// What a daemon's command line asked for (after `--help` and `--version`, which
/// [`Invocation::parse`] answers itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `@NAME` (first argument in MMM's command lines).
    pub cluster: Option<String>,
    /// `--check-config`: load, validate, print the effective config, exit 0/1.
    pub check_config: bool,
    /// `--foreground` (or `-f`): do not daemonize even when started by hand.
    pub foreground: bool,
}

/// The texts that make one daemon's command line (and its man page).
#[derive(Debug, Clone, Copy)]
pub struct DaemonCli {
    /// The program name (`mmm_agentd`).
    pub prog: &'static str,
    /// One line for `-h` and the man page's NAME.
    pub about: &'static str,
    /// The DESCRIPTION (`--help` and the man page).
    pub long_about: &'static str,
    /// The config base name (`mmm_agent`): `@C` selects `<base>_C.conf`.
    pub config_base: &'static str,
    /// Sections after the options (`--help` and the man page): files, signals, exit status.
    pub sections: &'static [Section],
}

/// A section of a program's `--help` after the options, and of its man page (FILES,
/// SIGNALS, EXIT STATUS…): a list of items, each a term and its description.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The heading (`FILES`); the man page's `.SH`.
    pub title: &'static str,
    /// `(term, description)`; an empty term makes a plain paragraph.
    pub items: &'static [(&'static str, &'static str)],
}

/// The ENVIRONMENT section both daemons share.
#[rustfmt::skip]
pub const ENVIRONMENT: Section = Section {
    title: "ENVIRONMENT",
    items: &[
        ("MMM_CONFIG_DIR", "Colon-separated directories searched for the configuration instead of /etc, /etc/mmm and /etc/mysql-mmm."),
        ("MMM_LOG_DIR", "The log directory instead of /var/log/mysql-mmm."),
        ("RUST_LOG", "Overrides the log level (error, warn, info, debug)."),
    ],
};

/// The EXIT STATUS section both daemons share.
#[rustfmt::skip]
pub const EXIT_STATUS: Section = Section {
    title: "EXIT STATUS",
    items: &[
        ("0", "Stopped by a signal, or --check-config, --help, --version."),
        ("1", "A usage, configuration or start-up error (printed to stderr and logged)."),
    ],
};

/// The sections as `--help` shows them after the options.
pub fn sections_help(sections: &[Section]) -> String {
    let mut s = String::new();
    for sec in sections {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&format!("{}:\n", title_case(sec.title)));
        for (term, desc) in sec.items {
            if term.is_empty() {
                s.push_str(&format!("  {desc}\n"));
            } else {
                s.push_str(&format!("  {term}\n          {desc}\n"));
            }
        }
    }
    s
}

/// `EXIT STATUS` → `Exit status` (clap's own headings are capitalised that way).
fn title_case(t: &str) -> String {
    let lower = t.to_lowercase();
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => lower,
    }
}

/// `@NAME` → `NAME` (clap value parser of the `@cluster` argument).
fn parse_cluster(s: &str) -> Result<String, String> {
    match s.strip_prefix('@') {
        Some(c) if !c.is_empty() => Ok(c.to_string()),
        _ => Err("a cluster is given as @NAME".to_string()),
    }
}

/// The `[@cluster]` argument shared by the three programs.
pub fn cluster_arg(config_base: &'static str) -> Arg {
    Arg::new("cluster")
        .value_name("@CLUSTER")
        .value_parser(parse_cluster)
        .help(format!(
            "Run for cluster NAME: read {config_base}_NAME.conf instead of {config_base}.conf"
        ))
}

impl DaemonCli {
    /// The daemon's command line: `<prog> [@cluster] [--check-config] [--foreground]`, with
    /// `--help` and `--version` (`<prog> 2.2.1-rs.1`). The man page and the shell
    /// completions are generated from it (`cargo run -p xtask`).
    pub fn command(&self) -> Command {
        Command::new(self.prog)
            .version(crate::VERSION)
            .about(self.about)
            .long_about(self.long_about)
            .after_long_help(sections_help(self.sections))
            .arg(cluster_arg(self.config_base))
            .arg(
                Arg::new("check-config")
                    .long("check-config")
                    .action(ArgAction::SetTrue)
                    .help("Load and validate the configuration, print it with every default filled in and passwords masked (or the first error with file and line), and exit 0 (1 on an error)"),
            )
            .arg(
                Arg::new("foreground")
                    .long("foreground")
                    .short('f')
                    .action(ArgAction::SetTrue)
                    .help("Stay in the foreground when started by hand (under systemd and with `debug 1` the daemon never detaches)"),
            )
    }
}

impl Invocation {
    /// Parses a daemon's command line (`args` with argv\[0\]). `--help` and `--version`
    /// are printed here (stdout, exit 0); a usage error is printed to stderr with exit 1
    /// (MMM's daemons exit 1 on every start-up error).
    pub fn parse<I, S>(cli: &DaemonCli, args: I) -> Result<Invocation, ExitCode>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString> + Clone,
    {
        Self::try_parse(cli, args).map_err(|e| print_clap_error(&e))
    }

    /// [`parse`](Self::parse) without printing: help, version and usage errors are clap's
    /// errors.
    pub fn try_parse<I, S>(cli: &DaemonCli, args: I) -> Result<Invocation, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString> + Clone,
    {
        let m = cli.command().try_get_matches_from(args)?;
        Ok(Invocation {
            cluster: m.get_one::<String>("cluster").cloned(),
            check_config: m.get_flag("check-config"),
            foreground: m.get_flag("foreground"),
        })
    }
}

/// Prints a clap outcome that ends the program: help and version on stdout (exit 0),
/// errors on stderr (exit 1).
pub fn print_clap_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
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

/// Resolves when SIGINT, SIGTERM or SIGQUIT arrives; logs 2.2.1's line. Until then it also
/// answers SIGHUP: the log file is reopened (it is opened for every line anyway, see
/// [`crate::log`]; the HUP is logged, which re-creates a file logrotate moved away) and the
/// daemon goes on. 2.2.1 died on SIGHUP.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int, mut quit, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(q), Ok(h)) => (t, i, q, h),
        _ => {
            tracing::error!("could not install signal handlers");
            return std::future::pending().await;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = quit.recv() => break,
            _ = hup.recv() => crate::log::reopen(),
        }
    }
    tracing::info!("Signal received: exiting...");
}

/// Ignores SIGHUP until [`shutdown_signal`] handles it (a HUP between start and the
/// runtime's signal handlers must not kill the daemon). Call it first thing in `main`.
pub fn ignore_sighup() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code.
    let _ = unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) };
}

/// systemd's watchdog (`WatchdogSec=` in the unit): a daemon sends `WATCHDOG=1` at least
/// every `$WATCHDOG_USEC`, or systemd kills and restarts it. [`Watchdog::from_env`] reads
/// the environment (off when unset, or when `$WATCHDOG_PID` names another process); the
/// pings go out every half of the timeout, as sd_watchdog_enabled(3) advises.
///
/// Put the ping where a hang must be noticed: [`Watchdog::beat`] in the `select!` of the
/// loop that must stay alive (it only completes while the loop comes back to the select),
/// or [`Watchdog::due`] then a probe then [`Watchdog::ping`] in a task of its own.
#[derive(Debug, Default)]
pub struct Watchdog {
    /// Half the timeout; `None` when off.
    every: Option<std::time::Duration>,
    /// When the next ping is due.
    next: Option<tokio::time::Instant>,
}

impl Watchdog {
    /// The watchdog systemd asked for, if any.
    pub fn from_env() -> Watchdog {
        Self::from_values(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )
    }

    /// [`from_env`](Self::from_env) with the values given.
    pub fn from_values(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Watchdog {
        let usec = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0);
        let for_us = match pid {
            None => true,
            Some(p) => p.trim().parse::<u32>().ok() == Some(my_pid),
        };
        match usec {
            Some(u) if for_us => Watchdog {
                every: Some(std::time::Duration::from_micros(u / 2)),
                next: None,
            },
            _ => Watchdog::default(),
        }
    }

    /// How often it pings (half the timeout), when on.
    pub fn interval(&self) -> Option<std::time::Duration> {
        self.every
    }

    /// Waits until the next ping is due (at once the first time); pending forever when the
    /// watchdog is off. Cancel-safe.
    pub async fn due(&mut self) {
        if self.every.is_none() {
            return std::future::pending().await;
        }
        let next = *self.next.get_or_insert_with(tokio::time::Instant::now);
        tokio::time::sleep_until(next).await;
    }

    /// Sends `WATCHDOG=1` and schedules the next ping.
    pub fn ping(&mut self) {
        if let Some(every) = self.every {
            notify("WATCHDOG=1");
            self.next = Some(tokio::time::Instant::now() + every);
        }
    }

    /// [`due`](Self::due) then [`ping`](Self::ping). Cancel-safe.
    pub async fn beat(&mut self) {
        self.due().await;
        self.ping();
    }
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

    const CLI: DaemonCli = DaemonCli {
        prog: "mmm_agentd",
        about: "a",
        long_about: "b",
        config_base: "mmm_agent",
        sections: &[Section {
            title: "EXIT STATUS",
            items: &[("0", "fine"), ("", "text")],
        }],
    };

    #[test]
    fn parses_mmm_command_lines() {
        let i = Invocation::try_parse(&CLI, ["mmm_agentd", "@C1", "--check-config"]).unwrap();
        assert_eq!(i.cluster.as_deref(), Some("C1"));
        assert!(i.check_config && !i.foreground);
        let i = Invocation::try_parse(&CLI, ["/usr/sbin/mmm_agentd", "@C1", "-f"]).unwrap();
        assert!(i.foreground);
        assert_eq!(
            Invocation::try_parse(&CLI, ["mmm_agentd"]).unwrap(),
            Invocation::default()
        );
        for bad in [&["x"][..], &["@C", "x"], &["--nope"], &["@"]] {
            let args = std::iter::once("mmm_agentd").chain(bad.iter().copied());
            let e = Invocation::try_parse(&CLI, args).unwrap_err();
            assert!(e.use_stderr(), "{bad:?}");
        }
        CLI.command().debug_assert();
        assert_eq!(
            sections_help(CLI.sections),
            "Exit status:\n  0\n          fine\n  text\n"
        );
        assert_eq!(config_base("mmm_agent", Some("C1")), "mmm_agent_C1");
        assert_eq!(process_title("mmm_agentd", Some("C1")), "mmm_agentd-C1");
        assert_eq!(version_line("mmm_agentd"), "mmm_agentd 2.2.1-rs.1");
    }

    #[test]
    fn watchdog_from_environment() {
        let w = Watchdog::from_values(Some("30000000"), Some("42"), 42);
        assert_eq!(w.interval(), Some(std::time::Duration::from_secs(15)));
        assert_eq!(
            Watchdog::from_values(Some("30000000"), None, 42).interval(),
            Some(std::time::Duration::from_secs(15))
        );
        assert_eq!(
            Watchdog::from_values(Some("30000000"), Some("7"), 42).interval(),
            None
        );
        assert_eq!(Watchdog::from_values(None, None, 42).interval(), None);
        assert_eq!(Watchdog::from_values(Some("x"), None, 42).interval(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_beats_every_half_timeout() {
        let mut w = Watchdog::from_values(Some("2000000"), None, 1);
        let t0 = tokio::time::Instant::now();
        w.beat().await;
        assert_eq!(t0.elapsed(), std::time::Duration::ZERO);
        // Cancelled halfway: the next beat still comes 1 s after the first.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), w.beat()).await;
        w.beat().await;
        assert_eq!(t0.elapsed(), std::time::Duration::from_secs(1));
        let mut off = Watchdog::default();
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(3600), off.beat())
                .await
                .is_err()
        );
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
