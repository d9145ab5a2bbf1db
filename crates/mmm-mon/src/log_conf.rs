//! 2.2.1's Log4perl file `mmm_mon_log[_<C>].conf` (issue 17, partly done): mmm-rs does not
//! honour its appenders yet. At start-up every appender other than a plain file or screen
//! appender (mail, syslog, …) is named with its file and line in a WARN that points to the
//! replacement (`notify_bin`), instead of being ignored silently.

use std::path::{Path, PathBuf};

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

/// The appenders of `text` mmm-rs does not honour: (line, name, class).
pub fn unhonoured_appenders(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let Some(name) = key.trim().strip_prefix("log4perl.appender.") else {
            continue;
        };
        if name.contains('.') {
            continue;
        }
        let class = value.trim();
        if !matches!(
            class,
            "Log::Log4perl::Appender::File"
                | "Log::Log4perl::Appender::Screen"
                | "Log::Log4perl::Appender::ScreenColoredLevels"
        ) {
            out.push((i + 1, name.to_string(), class.to_string()));
        }
    }
    out
}

/// Logs a WARN for every appender of `path` that mmm-rs does not honour.
pub fn warn_unhonoured(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for (line, name, class) in unhonoured_appenders(&text) {
        tracing::warn!(
            "{} line {line}: appender {name} ({class}) is not honoured by mmm-rs (alerts \
             from the log are not implemented); use notify_bin (docs/operations.md \"Hooks\")",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_and_syslog_appenders_are_named_with_their_line() {
        let text = "log4perl.logger = INFO, LogFile, MailFatal\n\
                    log4perl.appender.LogFile = Log::Log4perl::Appender::File\n\
                    log4perl.appender.LogFile.filename = /var/log/mysql-mmm/mmm_mond.log\n\
                    # log4perl.appender.Old = Log::Dispatch::Syslog\n\
                    log4perl.appender.MailFatal = Log::Dispatch::Email::MailSend\n\
                    log4perl.appender.MailFatal.to = root\n\
                    log4perl.appender.Sys=Log::Dispatch::Syslog\n";
        assert_eq!(
            unhonoured_appenders(text),
            vec![
                (
                    5,
                    "MailFatal".into(),
                    "Log::Dispatch::Email::MailSend".into()
                ),
                (7, "Sys".into(), "Log::Dispatch::Syslog".into()),
            ]
        );
    }
}
