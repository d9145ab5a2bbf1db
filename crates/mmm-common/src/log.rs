//! Logging (spec §7.3): tracing to stderr, plus MMM's log file
//! `/var/log/mysql-mmm/<program>[_<C>].log` with 2.2.1's layout `%d %5p %m%n`
//! (`2026/11/25 14:19:07  INFO STARTING...`) when that directory exists. The file is
//! opened in append mode for every line, so a deleted or rotated file is re-created, as
//! Log4perl's default appender does. `debug 1` lowers the level to DEBUG; `RUST_LOG`
//! overrides the level when set.
//!
//! Levels map to Log4perl words: ERROR is written `FATAL` (MMM logs its failures at FATAL
//! and mmm-rs logs them with `error!`), WARN `WARN`, INFO `INFO`, DEBUG/TRACE `DEBUG`/`TRACE`.
//! MMM's own ERROR level is an `error!` with target [`ERROR_TARGET`], written `ERROR`.
//! The netlink crates' parser warnings about kernel attributes newer than the crate are
//! filtered out by default (they said nothing about our work, every few seconds).
//!
//! Because of that, log rotation needs nothing from the daemon: after logrotate moves the
//! file, the next line creates a new one. SIGHUP ([`reopen`], called by
//! [`crate::daemon::shutdown_signal`]) only logs that it was received, which creates the new
//! file at once; 2.2.1 died on SIGHUP.
//!
//! Under systemd with stderr connected to the journal (`JOURNAL_STREAM` names stderr's
//! device and inode), each stderr line starts with a `<N>` syslog priority that matches
//! MMM's level ([`journal_priority`]: FATAL 2 crit, ERROR 3 err, WARN 4 warning, INFO 6
//! info, DEBUG 7 debug), which journald strips and stores as the line's priority
//! (`journalctl -p err` shows FATAL and ERROR). Elsewhere stderr is unchanged.
//!
//! API: [`init`]`(program, cluster, debug)`, [`init_with_extra`], [`MmmLevel`] (the one level mapping), [`reopen`], [`log_file_path`], [`mmm_timestamp`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Target of `error!` events that MMM logs at its ERROR level (not FATAL):
/// `tracing::error!(target: mmm_common::log::ERROR_TARGET, ...)`.
pub const ERROR_TARGET: &str = "mmm_error";

/// The directory of MMM's log files.
pub const LOG_DIR: &str = "/var/log/mysql-mmm";

/// The environment variable that replaces [`LOG_DIR`] (an mmm-rs addition, like
/// `MMM_CONFIG_DIR`: tests that run the daemons use it to keep out of the host's logs).
pub const LOG_DIR_ENV: &str = "MMM_LOG_DIR";

/// `/var/log/mysql-mmm/<program>[_<C>].log`.
pub fn log_file_path(program: &str, cluster: Option<&str>) -> PathBuf {
    let name = match cluster {
        Some(c) => format!("{program}_{c}.log"),
        None => format!("{program}.log"),
    };
    Path::new(LOG_DIR).join(name)
}

/// The local time as Log4perl's `%d` (`yyyy/MM/dd HH:mm:ss`).
pub fn mmm_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r writes into our zeroed tm and reads only `now`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
    if !ok {
        return "1970/01/01 00:00:00".to_string();
    }
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// MMM's (Log4perl's) levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MmmLevel {
    /// `ALL`, `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
    /// `FATAL`: what MMM logs its failures and decisions at.
    Fatal,
    /// `OFF`: nothing.
    Off,
}

impl MmmLevel {
    /// A Log4perl level word (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "ALL" | "TRACE" => MmmLevel::Trace,
            "DEBUG" => MmmLevel::Debug,
            "INFO" => MmmLevel::Info,
            "WARN" => MmmLevel::Warn,
            "ERROR" => MmmLevel::Error,
            "FATAL" => MmmLevel::Fatal,
            "OFF" => MmmLevel::Off,
            _ => return None,
        })
    }

    /// The MMM level of a tracing event (mmm-rs logs MMM's FATAL with `error!`, its ERROR
    /// with `error!` and [`ERROR_TARGET`]).
    pub fn of(level: &tracing::Level, target: &str) -> Self {
        match *level {
            tracing::Level::ERROR if target == ERROR_TARGET => MmmLevel::Error,
            tracing::Level::ERROR => MmmLevel::Fatal,
            tracing::Level::WARN => MmmLevel::Warn,
            tracing::Level::INFO => MmmLevel::Info,
            tracing::Level::DEBUG => MmmLevel::Debug,
            tracing::Level::TRACE => MmmLevel::Trace,
        }
    }

    /// The journald priority of the level (FATAL 2 crit, ERROR 3 err, WARN 4 warning,
    /// INFO 6 info, DEBUG 7 debug).
    pub fn journal_priority(self) -> u8 {
        match self {
            MmmLevel::Fatal | MmmLevel::Off => 2,
            MmmLevel::Error => 3,
            MmmLevel::Warn => 4,
            MmmLevel::Info => 6,
            MmmLevel::Debug | MmmLevel::Trace => 7,
        }
    }

    /// The word Log4perl prints (`%p`).
    pub fn word(self) -> &'static str {
        match self {
            MmmLevel::Trace => "TRACE",
            MmmLevel::Debug => "DEBUG",
            MmmLevel::Info => "INFO",
            MmmLevel::Warn => "WARN",
            MmmLevel::Error => "ERROR",
            MmmLevel::Fatal => "FATAL",
            MmmLevel::Off => "OFF",
        }
    }
}

/// The syslog priority journald gets for an event of `level` and `target` (MMM's FATAL is
/// `error!`, its ERROR `error!` with [`ERROR_TARGET`]).
pub fn journal_priority(level: &Level, target: &str) -> u8 {
    MmmLevel::of(level, target).journal_priority()
}

/// Whether stderr is the journal stream systemd gave us (`JOURNAL_STREAM=<dev>:<ino>`).
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat on fd 2 into a zeroed stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == dev && st.st_ino as u64 == ino
}

/// Formats events for the journal: `<N>` and the message (journald adds the time).
struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        write!(
            writer,
            "<{}>",
            journal_priority(meta.level(), meta.target())
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Formats events as `%d %5p %m`.
struct MmmFormat;

impl<S, N> FormatEvent<S, N> for MmmFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let level = MmmLevel::of(meta.level(), meta.target()).word();
        write!(writer, "{} {:>5} ", mmm_timestamp(), level)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Opens the log file in append mode for every event (re-creates a deleted file).
struct ReopeningFile {
    /// The log file.
    path: PathBuf,
}

/// One event's writer: buffers the line and appends it in one write.
struct LineWriter {
    /// Target path.
    path: PathBuf,
    /// The formatted line.
    buf: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = f.write_all(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for ReopeningFile {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            path: self.path.clone(),
            buf: Vec::new(),
        }
    }
}

/// Initialises logging for `program` (`mmm_agentd`, `mmm_mond`) of `cluster`. Returns the
/// log file in use, if any. Calling it twice is harmless (the second call does nothing).
/// The directory is `$MMM_LOG_DIR` when set and not empty, else [`LOG_DIR`].
pub fn init(program: &str, cluster: Option<&str>, debug: bool) -> Option<PathBuf> {
    init_with_extra(program, cluster, debug, None)
}

/// A layer added beside the stderr, journal and file layers (the monitor's alerts from
/// `mmm_mon_log.conf`); it filters the events itself.
pub type ExtraLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// [`init`] with an [`ExtraLayer`].
pub fn init_with_extra(
    program: &str,
    cluster: Option<&str>,
    debug: bool,
    extra: Option<ExtraLayer>,
) -> Option<PathBuf> {
    let dir = std::env::var_os(LOG_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(LOG_DIR));
    init_layers(program, cluster, debug, &dir, extra)
}

/// [`init`] with another log directory (tests).
pub fn init_with_dir(
    program: &str,
    cluster: Option<&str>,
    debug: bool,
    dir: &Path,
) -> Option<PathBuf> {
    init_layers(program, cluster, debug, dir, None)
}

fn init_layers(
    program: &str,
    cluster: Option<&str>,
    debug: bool,
    dir: &Path,
    extra: Option<ExtraLayer>,
) -> Option<PathBuf> {
    let level = if debug { "debug" } else { "info" };
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{level},netlink_packet_route=error,netlink_packet_core=error,netlink_proto=error"
            ))
        })
    };
    let journal = stderr_is_journal();
    let stderr = (!journal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(filter())
    });
    let journal_layer = journal.then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(JournalFormat)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    let file_path = dir.is_dir().then(|| {
        let name = log_file_path(program, cluster);
        dir.join(name.file_name().unwrap_or_default())
    });
    let file_layer = file_path.clone().map(|path| {
        tracing_subscriber::fmt::layer()
            .event_format(MmmFormat)
            .with_ansi(false)
            .with_writer(ReopeningFile { path })
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(stderr)
        .with(journal_layer)
        .with(file_layer)
        .try_init();
    file_path
}

/// SIGHUP: "reopens" the log file. The file appender opens the file for every line, so this
/// only logs the signal, which creates the file again if logrotate moved it.
pub fn reopen() {
    tracing::info!("SIGHUP received: log file reopened");
}

/// Formats a line the way the file appender does (for tests and for the agent's own
/// messages written elsewhere).
pub fn format_line(level: &Level, msg: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{} {:>5} {}",
        mmm_timestamp(),
        MmmLevel::of(level, "").word(),
        msg
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_layout() {
        assert_eq!(
            log_file_path("mmm_agentd", Some("C1")),
            PathBuf::from("/var/log/mysql-mmm/mmm_agentd_C1.log")
        );
        let l = format_line(&Level::INFO, "STARTING...");
        assert_eq!(l.len(), 19 + 1 + 5 + 1 + "STARTING...".len());
        assert!(l.ends_with("  INFO STARTING..."), "{l}");
        assert!(format_line(&Level::ERROR, "x").ends_with(" FATAL x"));
    }

    #[test]
    fn journal_priorities_match_mmm_levels() {
        assert_eq!(journal_priority(&Level::ERROR, "mmm_mon::driver"), 2);
        assert_eq!(journal_priority(&Level::ERROR, ERROR_TARGET), 3);
        assert_eq!(journal_priority(&Level::WARN, "x"), 4);
        assert_eq!(journal_priority(&Level::INFO, "x"), 6);
        assert_eq!(journal_priority(&Level::DEBUG, "x"), 7);
    }

    #[test]
    fn file_gets_mmm_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = init_with_dir("mmm_test", None, false, dir.path()).unwrap();
        tracing::info!("STARTING...");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with("  INFO STARTING...\n"), "{text}");
        tracing::error!("Network is unreachable");
        tracing::error!(target: ERROR_TARGET, "Can't reach agent on host 'db1'");
        tracing::warn!(target: "netlink_packet_route", "IFLA_INET6_CONF expecting 236");
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].ends_with(" FATAL Network is unreachable"),
            "{text}"
        );
        assert!(
            lines[2].ends_with(" ERROR Can't reach agent on host 'db1'"),
            "{text}"
        );
    }
}
