//! `mmm_mond [@cluster] [--check-config] [--foreground]` ([`mmm_mon::cli`]; `--help`,
//! `--version`): the MMM monitor daemon (spec §3.1 steps 1-7). Reads `mmm_mon[_<C>].conf` (class MONITOR), sets up logging, the pid file,
//! detaches when started by hand (not under systemd, not `debug 1`, not `--foreground`),
//! then runs [`mmm_mon::driver::run`] until SIGTERM/SIGINT/SIGQUIT. Under systemd
//! (Type=notify) READY=1 is sent once the monitor has started and serves its control port,
//! and the driver's main loop pings the watchdog (`WatchdogSec=`). SIGHUP reopens the log.

use std::path::PathBuf;
use std::process::ExitCode;

use mmm_common::config::{self, ProgramClass};
use mmm_common::daemon::{self, Invocation};
use mmm_common::pidfile::PidFile;
use mmm_mon::cli::{CLI, PROG};
use mmm_mon::driver::{self, Hooks};
use tracing::{error, info, Instrument};

fn main() -> ExitCode {
    let code = run();
    // What the log appenders of mmm_mon_log.conf still hold (buffered mails, a FATAL line
    // that stopped the monitor) goes out first.
    mmm_mon::alerts::flush(std::time::Duration::from_secs(10));
    code
}

fn run() -> ExitCode {
    daemon::ignore_sighup();
    let inv = match Invocation::parse(&CLI, std::env::args_os()) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    let cluster = inv.cluster.as_deref();
    let name = config::base_name("mmm_mon", cluster);
    let cfg = match config::load(&name, ProgramClass::Monitor) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if inv.check_config {
        print!("{}", config::render_effective(&cfg));
        return ExitCode::SUCCESS;
    }
    let cfg = match cfg.monitor_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // 2.2.1's Log4perl file: its mail and syslog appenders are honoured; one that cannot be
    // stops the monitor (after logging is up, so the reason reaches the log and journal).
    let (alerts, refused) = match mmm_mon::log_conf::find(cluster)
        .map(|p| mmm_mon::log_conf::read(&p, PROG))
        .transpose()
    {
        Ok(a) => (a.unwrap_or_default(), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let layer = mmm_mon::alerts::AlertLayer::new(PROG, alerts)
        .map(|l| Box::new(l) as mmm_common::log::ExtraLayer);
    let log_file = mmm_common::log::init_with_extra(PROG, cluster, cfg.debug, layer);
    info!("STARTING...");
    if let Some(e) = refused {
        error!("{e}");
        return ExitCode::from(1);
    }
    let pid_path = Some(PathBuf::from(&cfg.monitor.pid_path));
    if let Some(p) = &pid_path {
        if let Err(e) = PidFile::check(p, PROG) {
            error!("{e}");
            return ExitCode::from(1);
        }
    }
    if !inv.foreground && !cfg.debug && !daemon::under_systemd() {
        if let Err(e) = daemon::daemonize() {
            error!("{e}");
            return ExitCode::from(1);
        }
    }
    daemon::set_process_title(&daemon::process_title(PROG, cluster));
    let mut pid_file = match pid_path.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("can't start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let hooks = Hooks {
        on_ready: Some(Box::new(|_addr| {
            daemon::notify_ready();
        })),
        watchdog: daemon::Watchdog::from_env(),
        audit_file: audit_file(&cfg.monitor.audit_log, log_file.as_deref()),
        cluster: cluster.map(str::to_string),
    };
    let span = tracing::info_span!("monitor", cluster = cluster.unwrap_or(""));
    let result = rt.block_on(driver::run(cfg, daemon::shutdown_signal(), hooks).instrument(span));
    daemon::notify("STOPPING=1");
    if let Some(p) = pid_file.as_mut() {
        p.remove();
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Where the decision audit is appended (`audit_log`): by default beside the log file
/// (`mmm_mond[_<C>].audit.jsonl`; in memory only when there is no log file), `off`: in
/// memory only, or the path given.
fn audit_file(cfg: &config::AuditLog, log_file: Option<&std::path::Path>) -> Option<PathBuf> {
    match cfg {
        config::AuditLog::Off => None,
        config::AuditLog::Path(p) => Some(PathBuf::from(p)),
        config::AuditLog::Beside => log_file.map(|l| l.with_extension("audit.jsonl")),
    }
}
