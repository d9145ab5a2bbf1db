//! `mmm_mond`'s command line ([`CLI`]): what `main` parses and what the man page
//! `mmm_mond(8)` and the shell completions are generated from.

use mmm_common::daemon::{self, DaemonCli, Section};

/// The program name.
pub const PROG: &str = "mmm_mond";

/// `mmm_mond [@cluster] [--check-config] [--foreground]`, `--help`, `--version`.
pub const CLI: DaemonCli = DaemonCli {
    prog: PROG,
    about: "MySQL-MMM monitor: checks the servers and moves the writer and reader roles",
    long_about: "mmm_mond is the MySQL-MMM monitor (mmm-rs, a drop-in port of MySQL-MMM 2.2.1). \
It runs on the monitor host, checks every database server (ping, mysql, replication threads, \
replication backlog), runs MMM's host state machine and decides which host holds the writer \
role and the reader roles; the agents (mmm_agentd) carry that out. mmm_control talks to it \
on <monitor>->ip:port. It keeps the cluster's state in its status file, so a restarted \
monitor gives every host the roles it had.\n\n\
Started by hand without --foreground (and without `debug 1`) it detaches like 2.2.1's \
monitor; under systemd (the unit mysql-mmm-monitor.service) it stays in the foreground, \
reports readiness once it serves its control port and pings the watchdog from its main loop.",
    config_base: "mmm_mon",
    sections: &[
        Section {
            title: "FILES",
            items: &[
                ("/etc/mysql-mmm/mmm_mon.conf", "The monitor's configuration, which includes mmm_common.conf; looked up in /etc, /etc/mmm and /etc/mysql-mmm. Must not be world-readable. With @NAME: mmm_mon_NAME.conf."),
                ("/var/lib/misc/mmm_mond.status", "The status file (<monitor>->status_path): every host's state and roles, in 2.2.1's format."),
                ("/var/log/mysql-mmm/mmm_mond.log", "The log (2.2.1's layout), when the directory exists; also written to stderr (the journal under systemd). With @NAME: mmm_mond_NAME.log."),
                ("pid_path", "The pid file named by <monitor>->pid_path (/run/mysql-mmm-monitor.pid in the samples)."),
            ],
        },
        Section {
            title: "SIGNALS",
            items: &[
                ("SIGTERM, SIGINT, SIGQUIT", "Stop taking commands, write the status file a last time, exit 0."),
                ("SIGHUP", "Reopen the log file (after logrotate moved it) and go on."),
            ],
        },
        daemon::ENVIRONMENT,
        daemon::EXIT_STATUS,
        Section {
            title: "SEE ALSO",
            items: &[("", "mmm_agentd(8), mmm_control(8), /usr/share/doc/mysql-mmm-monitor/")],
        },
    ],
};
