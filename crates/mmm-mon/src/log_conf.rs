//! 2.2.1's Log4perl file `mmm_mon_log[_<C>].conf` (issue 17): sites wired their alerting
//! through it (mail or syslog on FATAL). mmm-rs reads it at start-up and honours what it
//! can: the appenders named on the `log4perl.logger` (or `rootLogger`) line, with their
//! `Threshold`, layout and parameters, become [`crate::alerts::Alert`]s (mail through
//! sendmail or SMTP, syslog). File and screen appenders are covered by mmm-rs's own log
//! file and stderr. Any other appender class stops the monitor at start-up with a message
//! that names the file, the line and the replacement (`notify_bin`): an alert path that
//! silently stopped working after an upgrade is worse than a monitor that does not start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::alerts::{self, Alert, MmmLevel, Sink};

/// The first `mmm_mon_log[_<C>].conf` in the config directories, if any.
pub fn find(cluster: Option<&str>) -> Option<PathBuf> {
    let name = format!(
        "{}.conf",
        mmm_common::config::base_name("mmm_mon_log", cluster)
    );
    mmm_common::config::config_dirs()
        .into_iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// Appender classes that mmm-rs's own log file and stderr already cover.
const COVERED: &[&str] = &[
    "Log::Log4perl::Appender::File",
    "Log::Log4perl::Appender::Screen",
    "Log::Log4perl::Appender::ScreenColoredLevels",
    "Log::Dispatch::File",
    "Log::Dispatch::Screen",
];

/// Mail appender classes sent through the local sendmail.
const SENDMAIL: &[&str] = &[
    "Log::Dispatch::Email::MailSend",
    "Log::Dispatch::Email::MailSendmail",
    "Log::Dispatch::Email::MIMELite",
];

/// Reads `path` and returns its alerts, or the reason the monitor must not start.
pub fn read(path: &Path, program: &str) -> Result<Vec<Alert>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Can't read log config '{}': {e}", path.display()))?;
    alerts_of(&text, &path.display().to_string(), program)
}

/// One `key = value` line.
struct Entry {
    line: usize,
    value: String,
}

/// The alerts of the Log4perl config `text` (`file` names it in errors).
pub fn alerts_of(text: &str, file: &str, program: &str) -> Result<Vec<Alert>, String> {
    let mut entries: HashMap<String, Entry> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_string();
        if !order.contains(&key) {
            order.push(key.clone());
        }
        entries.insert(
            key,
            Entry {
                line: i + 1,
                value: value.trim().to_string(),
            },
        );
    }
    let logger = entries
        .get("log4perl.logger")
        .or_else(|| entries.get("log4perl.rootLogger"));
    let Some(logger) = logger else {
        return Ok(Vec::new());
    };
    let mut parts = logger.value.split(',').map(str::trim);
    let logger_level = match parts.next().filter(|s| !s.is_empty()) {
        Some(l) => MmmLevel::parse(l).ok_or_else(|| {
            format!(
                "{file} line {}: unknown log level '{l}' in log4perl.logger",
                logger.line
            )
        })?,
        None => MmmLevel::Info,
    };
    let mut alerts = Vec::new();
    for name in parts.filter(|s| !s.is_empty()) {
        let key = format!("log4perl.appender.{name}");
        let Some(class) = entries.get(&key) else {
            // Log4perl itself refuses a logger naming an undefined appender.
            return Err(format!(
                "{file} line {}: log4perl.logger names appender '{name}', which is not \
                 defined",
                logger.line
            ));
        };
        let param = |p: &str| -> Option<&Entry> {
            let want = format!("{key}.{p}").to_ascii_lowercase();
            order
                .iter()
                .find(|k| k.to_ascii_lowercase() == want)
                .and_then(|k| entries.get(k))
        };
        let threshold = match param("Threshold") {
            Some(t) => MmmLevel::parse(&t.value).ok_or_else(|| {
                format!(
                    "{file} line {}: unknown Threshold '{}' for appender {name}",
                    t.line, t.value
                )
            })?,
            None => MmmLevel::Trace,
        };
        let level = threshold.max(logger_level);
        let cls = class.value.as_str();
        if COVERED.contains(&cls) || level == MmmLevel::Off {
            continue;
        }
        let pattern = match param("layout").map(|e| e.value.as_str()) {
            Some("PatternLayout") | Some("Log::Log4perl::Layout::PatternLayout") => {
                param("layout.ConversionPattern")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| "%m%n".to_string())
            }
            _ => "%p - %m%n".to_string(),
        };
        let sink = if SENDMAIL.contains(&cls) || cls == "Log::Dispatch::Email::MailSender" {
            let Some(to) = param("to") else {
                return Err(format!(
                    "{file} line {}: mail appender {name} ({cls}) has no 'to'",
                    class.line
                ));
            };
            let to: Vec<String> = to
                .value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let smtp = (cls == "Log::Dispatch::Email::MailSender").then(|| {
                let host = param("smtp")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| "localhost".to_string());
                (
                    host,
                    param("port")
                        .and_then(|e| e.value.parse().ok())
                        .unwrap_or(25),
                )
            });
            Sink::Mail {
                to,
                from: param("from").map(|e| e.value.clone()),
                subject: param("subject")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| "Log::Dispatch message".to_string()),
                smtp,
                buffered: param("buffered").is_none_or(|e| e.value != "0"),
            }
        } else if cls == "Log::Dispatch::Syslog" {
            let facility = match param("facility") {
                Some(f) => alerts::facility(&f.value).ok_or_else(|| {
                    format!(
                        "{file} line {}: unknown syslog facility '{}' for appender {name}",
                        f.line, f.value
                    )
                })?,
                None => libc::LOG_USER,
            };
            Sink::Syslog {
                ident: param("ident")
                    .map(|e| e.value.clone())
                    .unwrap_or_else(|| program.to_string()),
                facility,
            }
        } else {
            return Err(format!(
                "{file} line {}: appender {name} ({cls}) is not supported by mmm-rs (it \
                 honours mail through Log::Dispatch::Email::MailSend, MailSendmail, \
                 MIMELite and MailSender, and Log::Dispatch::Syslog); remove it from \
                 log4perl.logger, or use notify_bin for alerts (docs/operations.md \
                 \"Alerts from the log\")",
                class.line
            ));
        };
        alerts.push(Alert {
            name: name.to_string(),
            level,
            pattern,
            sink,
        });
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2.2.1's documented mail-on-FATAL set-up (its manual's log config).
    const STOCK: &str = "log4perl.logger = INFO, LogFile, MailFatal\n\
        log4perl.appender.LogFile = Log::Log4perl::Appender::File\n\
        log4perl.appender.LogFile.Threshold = INFO\n\
        log4perl.appender.LogFile.filename = /var/log/mysql-mmm/mmm_mond.log\n\
        log4perl.appender.LogFile.recreate = 1\n\
        log4perl.appender.LogFile.layout = PatternLayout\n\
        log4perl.appender.LogFile.layout.ConversionPattern = %d %5p %m%n\n\
        log4perl.appender.MailFatal = Log::Dispatch::Email::MailSend\n\
        log4perl.appender.MailFatal.Threshold = FATAL\n\
        log4perl.appender.MailFatal.to = root\n\
        log4perl.appender.MailFatal.buffered = 0\n\
        log4perl.appender.MailFatal.subject = FATAL error in mysql-mmm-monitor\n\
        log4perl.appender.MailFatal.layout = PatternLayout\n\
        log4perl.appender.MailFatal.layout.ConversionPattern = %d %m%n\n";

    #[test]
    fn stock_mail_on_fatal() {
        let a = alerts_of(STOCK, "f", "mmm_mond").unwrap();
        assert_eq!(
            a,
            vec![Alert {
                name: "MailFatal".into(),
                level: MmmLevel::Fatal,
                pattern: "%d %m%n".into(),
                sink: Sink::Mail {
                    to: vec!["root".into()],
                    from: None,
                    subject: "FATAL error in mysql-mmm-monitor".into(),
                    smtp: None,
                    buffered: false,
                },
            }]
        );
    }

    #[test]
    fn seed_mail_sender_commented_out_and_logger_without_it() {
        // The seed's file: the logger names only MMMLog, MailSender is commented out.
        let text = "log4perl.logger = FATAL, MMMLog\n\
            log4perl.appender.MMMLog = Log::Log4perl::Appender::File\n\
            #log4perl.appender.MailFatal = Log::Dispatch::Email::MailSender\n";
        assert_eq!(alerts_of(text, "f", "mmm_mond").unwrap(), vec![]);
        let text = "log4perl.rootLogger = WARN, M\n\
            log4perl.appender.M = Log::Dispatch::Email::MailSender\n\
            log4perl.appender.M.to = ops@example.com, dba@example.com\n\
            log4perl.appender.M.from = mmm@example.com\n\
            log4perl.appender.M.smtp = 198.18.0.25\n";
        let a = alerts_of(text, "f", "mmm_mond").unwrap();
        assert_eq!(a[0].level, MmmLevel::Warn);
        assert_eq!(a[0].pattern, "%p - %m%n");
        assert_eq!(
            a[0].sink,
            Sink::Mail {
                to: vec!["ops@example.com".into(), "dba@example.com".into()],
                from: Some("mmm@example.com".into()),
                subject: "Log::Dispatch message".into(),
                smtp: Some(("198.18.0.25".into(), 25)),
                buffered: true,
            }
        );
    }

    #[test]
    fn syslog_appender() {
        let text = "log4perl.logger = INFO, S\n\
            log4perl.appender.S = Log::Dispatch::Syslog\n\
            log4perl.appender.S.threshold = ERROR\n\
            log4perl.appender.S.facility = daemon\n";
        let a = alerts_of(text, "f", "mmm_mond").unwrap();
        assert_eq!(a[0].level, MmmLevel::Error);
        assert_eq!(
            a[0].sink,
            Sink::Syslog {
                ident: "mmm_mond".into(),
                facility: libc::LOG_DAEMON
            }
        );
        let bad = text.replace("daemon", "nowhere");
        assert_eq!(
            alerts_of(&bad, "/etc/mysql-mmm/mmm_mon_log.conf", "mmm_mond").unwrap_err(),
            "/etc/mysql-mmm/mmm_mon_log.conf line 4: unknown syslog facility 'nowhere' for \
             appender S"
        );
    }

    #[test]
    fn unsupported_appender_refuses_with_file_line_and_replacement() {
        let text = "log4perl.logger = INFO, LogFile, J\n\
            log4perl.appender.LogFile = Log::Log4perl::Appender::File\n\
            log4perl.appender.J = Log::Dispatch::Jabber\n";
        let e = alerts_of(text, "/etc/mysql-mmm/mmm_mon_log.conf", "mmm_mond").unwrap_err();
        assert!(
            e.starts_with(
                "/etc/mysql-mmm/mmm_mon_log.conf line 3: appender J (Log::Dispatch::Jabber) \
                 is not supported by mmm-rs"
            ),
            "{e}"
        );
        assert!(e.contains("notify_bin"), "{e}");
        // Not on the logger line: not used by Log4perl either, so not refused.
        let text = "log4perl.logger = INFO, LogFile\n\
            log4perl.appender.LogFile = Log::Log4perl::Appender::File\n\
            log4perl.appender.J = Log::Dispatch::Jabber\n";
        assert_eq!(alerts_of(text, "f", "mmm_mond").unwrap(), vec![]);
        let text = "log4perl.logger = INFO, Nope\n";
        assert!(alerts_of(text, "f", "mmm_mond")
            .unwrap_err()
            .contains("'Nope', which is not defined"));
        let text =
            "log4perl.logger = INFO, M\nlog4perl.appender.M = Log::Dispatch::Email::MailSend\n";
        assert!(alerts_of(text, "f", "mmm_mond")
            .unwrap_err()
            .contains("has no 'to'"));
    }
}
