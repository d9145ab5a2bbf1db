//! Alerts from 2.2.1's `mmm_mon_log.conf` through the `mmm_mond` binary: a FATAL line (the
//! monitor refusing to start because another one runs) is mailed through the local
//! `sendmail` (a program on `PATH` that keeps what it is given) and over SMTP (a listener
//! in the test that speaks the protocol), each with the appender's subject and layout; an
//! appender class mmm-rs cannot honour stops the monitor with file, line and replacement.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mmm_mond");

/// A config dir whose mmm_mon.conf names a pid file held by this (running) test process.
fn config_dir(log_conf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        "active_master_role writer\n\
<monitor>\n    ip 127.0.0.1\n    port 9\n    pid_path {d}/mmm_mond.pid\n    bin_path {d}\n    status_path {d}/mmm_mond.status\n    ping_ips 127.0.0.1\n</monitor>\n\
<host default>\n    monitor_user m\n    monitor_password p\n</host>\n\
<host db1>\n    ip 127.0.0.1\n    mode master\n    peer db2\n</host>\n\
<host db2>\n    ip 127.0.0.2\n    mode master\n    peer db1\n</host>\n\
<role writer>\n    hosts db1, db2\n    ips 127.0.0.188\n    mode exclusive\n</role>\n"
    );
    write_mode(&dir.path().join("mmm_mon.conf"), &conf, 0o640);
    write_mode(&dir.path().join("mmm_mon_log.conf"), log_conf, 0o640);
    std::fs::write(
        dir.path().join("mmm_mond.pid"),
        std::process::id().to_string(),
    )
    .unwrap();
    dir
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// One SMTP session on `listener`: answers as a relay would and returns the DATA.
fn smtp_session(listener: TcpListener) -> String {
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut lines = BufReader::new(stream);
    writeln!(out, "220 test ESMTP\r").unwrap();
    let mut data = String::new();
    let mut in_data = false;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                writeln!(out, "250 queued\r").unwrap();
            } else {
                data.push_str(&line);
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => writeln!(out, "250 test\r").unwrap(),
            "DATA" => {
                in_data = true;
                writeln!(out, "354 go on\r").unwrap();
            }
            "QUIT" => {
                writeln!(out, "221 bye\r").unwrap();
                break;
            }
            _ => writeln!(out, "250 ok\r").unwrap(),
        }
    }
    data
}

#[test]
fn fatal_lines_are_mailed_through_sendmail_and_smtp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let smtp = std::thread::spawn(move || smtp_session(listener));
    let log_conf = format!(
        "log4perl.logger = INFO, LogFile, MailFatal, Relay\n\
log4perl.appender.LogFile = Log::Log4perl::Appender::File\n\
log4perl.appender.LogFile.filename = /var/log/mysql-mmm/mmm_mond.log\n\
log4perl.appender.MailFatal = Log::Dispatch::Email::MailSend\n\
log4perl.appender.MailFatal.Threshold = FATAL\n\
log4perl.appender.MailFatal.to = root\n\
log4perl.appender.MailFatal.buffered = 0\n\
log4perl.appender.MailFatal.subject = FATAL error in mysql-mmm-monitor\n\
log4perl.appender.MailFatal.layout = PatternLayout\n\
log4perl.appender.MailFatal.layout.ConversionPattern = %d %m%n\n\
log4perl.appender.Relay = Log::Dispatch::Email::MailSender\n\
log4perl.appender.Relay.Threshold = FATAL\n\
log4perl.appender.Relay.to = dba@example.com\n\
log4perl.appender.Relay.from = mmm@example.com\n\
log4perl.appender.Relay.smtp = 127.0.0.1\n\
log4perl.appender.Relay.port = {port}\n\
log4perl.appender.Relay.subject = mmm alert\n\
log4perl.appender.Relay.layout = PatternLayout\n\
log4perl.appender.Relay.layout.ConversionPattern = %p %m%n\n"
    );
    let dir = config_dir(&log_conf);
    // The local sendmail: keeps its arguments and the message.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let kept = dir.path().join("sendmail.out");
    write_mode(
        &bin.join("sendmail"),
        &format!(
            "#!/bin/sh\necho \"ARGS: $*\" >> {k}\ncat >> {k}\n",
            k = kept.display()
        ),
        0o755,
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(BIN)
        .arg("--foreground")
        .env("MMM_CONFIG_DIR", dir.path())
        .env("MMM_LOG_DIR", dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Can't run second copy of mmm_mond"), "{err}");
    let mail = std::fs::read_to_string(&kept).expect("sendmail was run");
    assert!(mail.contains("root@"), "{mail}");
    assert!(
        mail.contains("Subject: FATAL error in mysql-mmm-monitor"),
        "{mail}"
    );
    assert!(mail.contains("Can't run second copy of mmm_mond"), "{mail}");
    // Only FATAL: the INFO start line is not mailed.
    assert!(!mail.contains("STARTING"), "{mail}");
    let data = smtp.join().unwrap();
    assert!(data.contains("Subject: mmm alert"), "{data}");
    assert!(data.contains("To: dba@example.com"), "{data}");
    assert!(data.contains("FATAL "), "{data}");
    assert!(data.contains("Can't run second copy of mmm_mond"), "{data}");
}

#[test]
fn an_appender_that_cannot_be_honoured_stops_the_monitor() {
    let dir = config_dir(
        "log4perl.logger = INFO, LogFile, Chat\n\
log4perl.appender.LogFile = Log::Log4perl::Appender::File\n\
log4perl.appender.Chat = Log::Dispatch::Jabber\n\
log4perl.appender.Chat.login = mmm\n",
    );
    let out = Command::new(BIN)
        .arg("--foreground")
        .env("MMM_CONFIG_DIR", dir.path())
        .env("MMM_LOG_DIR", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let file = dir.path().join("mmm_mon_log.conf");
    assert!(
        err.contains(&format!(
            "{} line 3: appender Chat (Log::Dispatch::Jabber) is not supported by mmm-rs",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("notify_bin"), "{err}");
    // Refused before anything else: the pid file of the "other" monitor is untouched.
    assert!(!err.contains("Can't run second copy of mmm_mond"), "{err}");
}
