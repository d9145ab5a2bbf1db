//! Alerts from the log (issue 17): the mail and syslog appenders of 2.2.1's Log4perl file
//! `mmm_mon_log[_<C>].conf` ([`crate::log_conf`] reads them), honoured as Log4perl would.
//!
//! [`AlertLayer`] is a tracing layer: an event of mmm-rs at or above an appender's level
//! goes, formatted with the appender's layout, into a bounded queue that one worker thread
//! (`mmm-alerts`) empties: a mail through the local `sendmail` (`Log::Dispatch::Email::
//! MailSend` and its siblings) or over SMTP (`…::MailSender`), or a syslog(3) line
//! (`Log::Dispatch::Syslog`). The daemon never waits for a mail: a full queue drops lines
//! (counted, said once the queue drains). Lines queued together for one appender go out as
//! one mail. `buffered 1` (Log::Dispatch::Email's default) keeps a mail appender's lines
//! until the monitor exits, as 2.2.1 did; the stock file sets `buffered 0`.
//!
//! The worker is started on first use and again after a fork (the daemon detaches after
//! logging is set up), and [`flush`] waits, bounded, for everything queued at exit. The
//! worker's own messages (a mail that could not be sent) are logged but never alerted.

use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// The worker thread's name (its own log lines are not alerted).
const WORKER: &str = "mmm-alerts";
/// Lines waiting for the worker before new ones are dropped.
const QUEUE: usize = 1000;
/// How long one mail may take (sendmail or SMTP).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub use mmm_common::log::MmmLevel;

/// The syslog priority Log::Dispatch::Syslog gives `level` (Log4perl maps FATAL to
/// Log::Dispatch's `emergency`).
fn syslog_priority(level: MmmLevel) -> libc::c_int {
    match level {
        MmmLevel::Fatal | MmmLevel::Off => libc::LOG_EMERG,
        MmmLevel::Error => libc::LOG_ERR,
        MmmLevel::Warn => libc::LOG_WARNING,
        MmmLevel::Info => libc::LOG_INFO,
        MmmLevel::Debug | MmmLevel::Trace => libc::LOG_DEBUG,
    }
}

/// Where an appender's lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A mail. `smtp`: `Some((host, port))` for `Log::Dispatch::Email::MailSender` (SMTP
    /// to that relay), `None` for the local `sendmail` program (`MailSend`, `MailSendmail`,
    /// `MIMELite`).
    Mail {
        /// Recipients.
        to: Vec<String>,
        /// Sender; default `<program>@<host name>`.
        from: Option<String>,
        /// Subject.
        subject: String,
        /// The SMTP relay, or the local sendmail.
        smtp: Option<(String, u16)>,
        /// Keep the lines until exit (`buffered`, Log::Dispatch::Email's default 1).
        buffered: bool,
    },
    /// syslog(3) (`Log::Dispatch::Syslog`).
    Syslog {
        /// `ident` (default: the program's name).
        ident: String,
        /// `facility` as syslog's constant (default `user`).
        facility: libc::c_int,
    },
}

/// One honoured appender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The appender's name in the file.
    pub name: String,
    /// The lowest level it gets (its `Threshold` and the logger's level).
    pub level: MmmLevel,
    /// Its layout as a Log4perl conversion pattern (`%d`, `%p`, `%m`, `%n`, `%H`, `%%`).
    pub pattern: String,
    /// Where it goes.
    pub sink: Sink,
}

/// A line for the worker.
enum Job {
    Line {
        alert: usize,
        level: MmmLevel,
        text: String,
    },
    /// Send everything queued and buffered, then answer.
    Flush(SyncSender<()>),
}

/// The running worker: its queue and the process it belongs to.
struct Worker {
    tx: SyncSender<Job>,
    pid: u32,
}

struct Shared {
    alerts: Vec<Alert>,
    program: String,
    worker: Mutex<Option<Worker>>,
    dropped: AtomicU64,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The tracing layer that feeds the alerts.
pub struct AlertLayer {
    shared: Arc<Shared>,
    lowest: MmmLevel,
}

impl AlertLayer {
    /// A layer for `alerts` of `program` (`None` when there are none). Only one is active
    /// per process ([`flush`] finds it).
    pub fn new(program: &str, alerts: Vec<Alert>) -> Option<AlertLayer> {
        let lowest = alerts.iter().map(|a| a.level).min()?;
        let shared = Arc::new(Shared {
            alerts,
            program: program.to_string(),
            worker: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        let _ = SHARED.set(shared.clone());
        Some(AlertLayer { shared, lowest })
    }
}

impl<S: Subscriber> Layer<S> for AlertLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // mmm-rs's own lines only (not the libraries'), never the worker's.
        if !meta.target().starts_with("mmm") || std::thread::current().name() == Some(WORKER) {
            return;
        }
        let level = MmmLevel::of(meta.level(), meta.target());
        if level < self.lowest {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let time = mmm_common::log::mmm_timestamp();
        for (i, a) in self.shared.alerts.iter().enumerate() {
            if level >= a.level {
                let text = layout(&a.pattern, &time, level, &message.0);
                self.shared.send(Job::Line {
                    alert: i,
                    level,
                    text,
                });
            }
        }
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

/// Formats one line with a Log4perl conversion pattern: `%d` (`yyyy/MM/dd HH:mm:ss`),
/// `%p` with an optional width (`%5p`), `%m`, `%n`, `%H` (host name), `%%`; anything else
/// is kept as written.
pub fn layout(pattern: &str, time: &str, level: MmmLevel, message: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '-') {
            width.push(*d);
            chars.next();
        }
        let padded = |s: &str| -> String {
            match width.parse::<i64>() {
                Ok(w) if w < 0 => format!("{s:<width$}", width = (-w) as usize),
                Ok(w) => format!("{s:>width$}", width = w as usize),
                Err(_) => s.to_string(),
            }
        };
        match chars.next() {
            Some('d') => {
                // `%d{…}` formats are not supported: the default format is used.
                if chars.peek() == Some(&'{') {
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                }
                out.push_str(&padded(time));
            }
            Some('p') => out.push_str(&padded(level.word())),
            Some('m') => out.push_str(&padded(message)),
            Some('n') => out.push('\n'),
            Some('H') => out.push_str(&padded(&host_name())),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push_str(&width);
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Shared {
    /// Queues a job for the worker, starting it in this process if needed.
    fn send(self: &Arc<Self>, job: Job) {
        let mut guard = match self.worker.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let pid = std::process::id();
        if guard.as_ref().is_none_or(|w| w.pid != pid) {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            let me = self.clone();
            let started = std::thread::Builder::new()
                .name(WORKER.into())
                .spawn(move || me.run(rx));
            if started.is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *guard = Some(Worker { tx, pid });
        }
        let Some(w) = guard.as_ref() else { return };
        match w.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The worker: takes what is queued, groups it per appender, sends it.
    fn run(self: Arc<Self>, rx: Receiver<Job>) {
        let mut buffered: Vec<Vec<(MmmLevel, String)>> = vec![Vec::new(); self.alerts.len()];
        let mut syslog_open = false;
        while let Ok(first) = rx.recv() {
            let mut now: Vec<Vec<(MmmLevel, String)>> = vec![Vec::new(); self.alerts.len()];
            let mut acks = Vec::new();
            let mut flush = false;
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Line { alert, level, text } => {
                        if let Some(v) = now.get_mut(alert) {
                            v.push((level, text));
                        }
                    }
                    Job::Flush(ack) => {
                        flush = true;
                        acks.push(ack);
                    }
                }
                next = rx.try_recv().ok();
            }
            for (i, alert) in self.alerts.iter().enumerate() {
                let lines = std::mem::take(&mut now[i]);
                match &alert.sink {
                    Sink::Syslog { ident, facility } => {
                        if !lines.is_empty() && !syslog_open {
                            open_syslog(ident, *facility);
                            syslog_open = true;
                        }
                        for (level, line) in &lines {
                            syslog_line(line, *level);
                        }
                    }
                    Sink::Mail { buffered: true, .. } if !flush => buffered[i].extend(lines),
                    Sink::Mail { .. } => {
                        let mut all = std::mem::take(&mut buffered[i]);
                        all.extend(lines);
                        if !all.is_empty() {
                            let body: String = all.into_iter().map(|(_, l)| l).collect();
                            if let Err(e) = self.mail(alert, &body) {
                                tracing::warn!(
                                    "log appender {}: could not send the mail: {e}",
                                    alert.name
                                );
                            }
                        }
                    }
                }
            }
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::warn!("log appenders: {dropped} line(s) not sent (queue full)");
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    fn mail(&self, alert: &Alert, body: &str) -> Result<(), String> {
        use lettre::Transport as _;
        let Sink::Mail {
            to,
            from,
            subject,
            smtp,
            ..
        } = &alert.sink
        else {
            return Ok(());
        };
        let from = from
            .clone()
            .unwrap_or_else(|| format!("{}@{}", self.program, host_name()));
        let mut b = lettre::Message::builder()
            .from(mailbox(&from)?)
            .subject(subject.clone());
        for t in to {
            b = b.to(mailbox(t)?);
        }
        let msg = b.body(body.to_string()).map_err(|e| e.to_string())?;
        match smtp {
            Some((host, port)) => lettre::SmtpTransport::builder_dangerous(host)
                .port(*port)
                .timeout(Some(SEND_TIMEOUT))
                .build()
                .send(&msg)
                .map(|_| ())
                .map_err(|e| format!("SMTP {host}:{port}: {e}")),
            None => {
                let cmd = sendmail_program();
                lettre::SendmailTransport::new_with_command(&cmd)
                    .send(&msg)
                    .map_err(|e| format!("{cmd}: {e}"))
            }
        }
    }
}

/// The local mailer: `sendmail` on `PATH`, else where MTAs install it (Mail::Mailer's
/// search).
fn sendmail_program() -> String {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("sendmail"))
            .find(|f| f.is_file())
    });
    on_path
        .or_else(|| {
            ["/usr/sbin/sendmail", "/usr/lib/sendmail"]
                .iter()
                .map(std::path::PathBuf::from)
                .find(|f| f.is_file())
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "sendmail".to_string())
}

/// A recipient or sender: `user@host`, or a bare local user (`root`) as Mail::Send takes
/// it, completed with the local host name.
fn mailbox(addr: &str) -> Result<lettre::message::Mailbox, String> {
    let full = if addr.contains('@') {
        addr.to_string()
    } else {
        format!("{addr}@{}", host_name())
    };
    full.parse()
        .map_err(|e| format!("bad mail address '{addr}': {e}"))
}

fn open_syslog(ident: &str, facility: libc::c_int) {
    // openlog keeps the pointer: the ident lives for the rest of the process.
    let ident = CString::new(ident.replace('\0', "")).unwrap_or_default();
    let ident: &'static std::ffi::CStr = Box::leak(ident.into_boxed_c_str());
    // SAFETY: ident is a valid, never freed C string.
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, facility) };
}

fn syslog_line(line: &str, level: MmmLevel) {
    let Ok(text) = CString::new(line.trim_end_matches('\n').replace('\0', "")) else {
        return;
    };
    // SAFETY: a constant format and a valid C string argument.
    unsafe { libc::syslog(syslog_priority(level), c"%s".as_ptr(), text.as_ptr()) };
}

/// Sends everything queued (and the buffered mails) and waits for it, at most `timeout`:
/// called when the monitor exits.
pub fn flush(timeout: Duration) {
    let Some(shared) = SHARED.get() else { return };
    let (tx, rx) = mpsc::sync_channel(1);
    shared.send(Job::Flush(tx));
    let _ = rx.recv_timeout(timeout);
}

/// The syslog facility named `name` (Log::Dispatch::Syslog's names).
pub fn facility(name: &str) -> Option<libc::c_int> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "kern" => libc::LOG_KERN,
        "user" => libc::LOG_USER,
        "mail" => libc::LOG_MAIL,
        "daemon" => libc::LOG_DAEMON,
        "auth" => libc::LOG_AUTH,
        "syslog" => libc::LOG_SYSLOG,
        "lpr" => libc::LOG_LPR,
        "news" => libc::LOG_NEWS,
        "uucp" => libc::LOG_UUCP,
        "cron" => libc::LOG_CRON,
        "authpriv" => libc::LOG_AUTHPRIV,
        "ftp" => libc::LOG_FTP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let t = "2026/12/06 20:00:00";
        assert_eq!(
            layout("%d %5p %m%n", t, MmmLevel::Info, "STARTING..."),
            "2026/12/06 20:00:00  INFO STARTING...\n"
        );
        assert_eq!(
            layout("%d %m%n", t, MmmLevel::Fatal, "x"),
            "2026/12/06 20:00:00 x\n"
        );
        assert_eq!(layout("%p - %m%n", t, MmmLevel::Fatal, "x"), "FATAL - x\n");
        assert_eq!(layout("%-6p|%%|%q", t, MmmLevel::Warn, ""), "WARN  |%|%q");
        assert_eq!(
            layout("%d{HH:mm} %m", t, MmmLevel::Warn, "y"),
            format!("{t} y")
        );
    }

    #[test]
    fn levels() {
        use tracing::Level;
        assert_eq!(MmmLevel::of(&Level::ERROR, "mmm_mon::x"), MmmLevel::Fatal);
        assert_eq!(
            MmmLevel::of(&Level::ERROR, mmm_common::log::ERROR_TARGET),
            MmmLevel::Error
        );
        assert!(MmmLevel::parse("fatal").unwrap() > MmmLevel::parse("ERROR").unwrap());
        assert_eq!(MmmLevel::parse("nope"), None);
        assert_eq!(facility("LOCAL3"), Some(libc::LOG_LOCAL3));
        assert_eq!(facility("x"), None);
    }
}
