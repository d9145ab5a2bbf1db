//! `mmm_agentd`'s start-up and shutdown (spec §4.4 "Startup", §3.1 steps 1–7, §7):
//! `mmm_agentd [@cluster] [--version] [--check-config] [--foreground]`.
//!
//! 1. The command line ([`CLI`], clap): `--version` → `mmm_agentd 2.2.1-rs.1`, `--help`,
//!    exit 0; a usage error exits 1.
//! 2. Load `mmm_agent[_<C>]` (class AGENT); an error is printed and exits 1.
//!    `--check-config` prints the effective configuration (passwords masked), exit 0.
//! 3. Logging (stderr + `/var/log/mysql-mmm/mmm_agentd[_<C>].log`), `STARTING...`.
//! 4. Pid file `host-><this>->pid_path`: a live second copy is refused, a stale file warned
//!    about.
//! 5. Started by hand (no systemd in the environment), without `--foreground` and without
//!    `debug 1`: daemonize as 2.2.1 does. Under systemd: stay in the foreground.
//! 6. Bind `ip:agent_port` (plain or TLS); without `monitor_ips` a WARN that anyone who
//!    reaches the port can move roles (with it, an INFO naming the addresses); sd_notify
//!    `READY=1` and watchdog pings, serve until SIGINT/SIGTERM/SIGQUIT (SIGHUP reopens the
//!    log); then finish the request being applied, stop the lease, ARP refresh, upkeep and
//!    watchdog tasks (one `Shutdown`), remove the pid file, log `END`, exit 0. Role IPs and
//!    read_only stay as they are (as in MMM): the monitor
//!    or the next agent start decides about them.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mmm_common::access::Access;
use mmm_common::config::{self, ProgramClass};
use mmm_common::daemon::{self, DaemonCli, Invocation, Section};
use mmm_common::pidfile::PidFile;
use mmm_common::shutdown;
use mmm_common::socket::Listener;

use crate::agent::{Agent, AgentSettings};
use crate::listener::{self, ListenerOptions};
use crate::mysql::MysqlServer;
use crate::vip::NetlinkVip;

/// The program name.
pub const PROG: &str = "mmm_agentd";

/// The command line, `--help` and the man page `mmm_agentd(8)`.
pub const CLI: DaemonCli = DaemonCli {
    prog: PROG,
    about: "MySQL-MMM agent: role IPs, read_only and replication on a database host",
    long_about: "mmm_agentd is the MySQL-MMM agent (mmm-rs, a drop-in port of MySQL-MMM 2.2.1). \
It runs on every database host of an MMM cluster and carries out what the monitor (mmm_mond) \
decides: it adds and removes the role IPs of the host (with gratuitous ARP), sets read_only \
on the local MySQL/MariaDB server, and points a slave at the new active master. It listens on \
<host>->ip:agent_port from its configuration (plain TCP or TLS, see <socket>).\n\n\
Started by hand without --foreground (and without `debug 1`) it detaches like 2.2.1's agent; \
under systemd (the unit mysql-mmm-agent.service) it stays in the foreground, reports \
readiness and pings the watchdog.",
    config_base: "mmm_agent",
    sections: &[
        Section {
            title: "FILES",
            items: &[
                ("/etc/mysql-mmm/mmm_agent.conf", "The agent's configuration (`this <host>`), which includes mmm_common.conf; looked up in /etc, /etc/mmm and /etc/mysql-mmm. Must not be world-readable. With @NAME: mmm_agent_NAME.conf."),
                ("/var/log/mysql-mmm/mmm_agentd.log", "The log (2.2.1's layout), when the directory exists; also written to stderr (the journal under systemd). With @NAME: mmm_agentd_NAME.log."),
                ("pid_path", "The pid file named by the host's pid_path (/run/mysql-mmm-agent.pid in the samples)."),
            ],
        },
        Section {
            title: "SIGNALS",
            items: &[
                ("SIGTERM, SIGINT, SIGQUIT", "Finish the request being applied and exit 0; role IPs and read_only stay as they are."),
                ("SIGHUP", "Reopen the log file (after logrotate moved it) and go on."),
            ],
        },
        daemon::ENVIRONMENT,
        daemon::EXIT_STATUS,
        Section {
            title: "SEE ALSO",
            items: &[("", "mmm_mond(8), mmm_control(8), /usr/share/doc/mysql-mmm-agent/")],
        },
    ],
};

/// Bound on each netlink operation.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

/// systemd's watchdog (`WatchdogSec=`, off otherwise): pings while the agent's role state
/// can be taken within the ping interval. Requests hold that state while they are applied
/// (bounded by sync_timeout and the netlink and MySQL timeouts), so a request hung for
/// longer than the unit's WatchdogSec, or a wedged runtime, gets the agent restarted.
async fn watchdog(agent: Arc<Agent>) {
    let mut wd = daemon::Watchdog::from_env();
    let Some(every) = wd.interval() else {
        return;
    };
    loop {
        wd.due().await;
        if tokio::time::timeout(every, agent.snapshot()).await.is_ok() {
            wd.ping();
        } else {
            tracing::warn!("watchdog: the role state is held for over {every:?}: not pinging");
        }
    }
}

/// Runs `mmm_agentd` with `args` (argv\[0\] first).
pub fn run<I, S>(args: I) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    daemon::ignore_sighup();
    let inv = match Invocation::parse(&CLI, args) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    let cluster = inv.cluster.as_deref();
    let base = config::base_name("mmm_agent", cluster);
    let cfg = match config::load(&base, ProgramClass::Agent) {
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
    let cfg = match cfg.agent_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let settings = AgentSettings::from_config(&cfg);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    mmm_common::log::init(PROG, cluster, cfg.debug);
    tracing::info!("STARTING...");
    let pid_path = cfg.pid_path.clone();
    if !pid_path.is_empty() {
        if let Err(e) = PidFile::check(Path::new(&pid_path), PROG) {
            tracing::error!("{e}");
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    if !inv.foreground && !cfg.debug && !daemon::under_systemd() {
        if let Err(e) = daemon::daemonize() {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    }
    daemon::set_process_title(&daemon::process_title(PROG, cluster));
    let mut pidfile = if pid_path.is_empty() {
        None
    } else {
        match PidFile::create(Path::new(&pid_path)) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(1);
            }
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("could not start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        let addr = cfg.local.host.agent_addr().to_string();
        let listener = match Listener::bind(&addr, &cfg.socket).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("Listener: could not bind {addr}: {e}");
                return ExitCode::from(1);
            }
        };
        let mysql = MysqlServer::from_config(&cfg);
        let vip = NetlinkVip::new(
            cfg.cluster_interface.clone(),
            cfg.ext.arp_count,
            NETLINK_TIMEOUT,
        );
        let refresh_ips: Vec<std::net::Ipv4Addr> = settings
            .role_ips
            .iter()
            .filter_map(|r| r.ip.parse().ok())
            .collect();
        let upkeep_mysql = mysql.clone();
        let mut agent = Agent::new(settings, Arc::new(vip), Arc::new(mysql));
        if !pid_path.is_empty() {
            agent = agent.with_fencing(crate::fencing::Fencing::load(
                format!("{pid_path}.term").into(),
            ));
        }
        let agent = Arc::new(agent);
        let tls = matches!(cfg.socket.kind, config::SocketType::Ssl);
        tracing::info!(%addr, tls, "Listening on {addr}");
        let access = Access::from_list(&cfg.ext.monitor_ips);
        match &access {
            Access::Open if !tls => tracing::warn!(
                "monitor_ips is not set and the agent port is plain TCP: anyone who can reach \
                 {addr} can move roles (take the writer IP, set read_only=0). Set monitor_ips \
                 in mmm_common.conf to the monitor's address(es), and/or use <socket> type ssl"
            ),
            Access::Open => tracing::info!(
                "monitor_ips is not set: any client with a certificate of the cluster's CA can \
                 move roles"
            ),
            Access::Only(ips) => {
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                tracing::info!(
                    "Commands accepted only from monitor_ips: {}",
                    list.join(", ")
                );
            }
        }
        if agent.lease().is_on() {
            tracing::info!(
                "Agent lease on: {} s without a request from the monitor fences the writer role",
                cfg.ext.agent_lease.as_secs_f64()
            );
        }
        // The background tasks stop once the listener has finished its last request.
        let (stop_tasks, tasks_shutdown) = shutdown::channel();
        let refresh = {
            let agent = Arc::clone(&agent);
            let every = cfg.ext.arp_refresh;
            let shutdown = tasks_shutdown.clone().wait();
            tokio::spawn(async move { agent.arp().refresh(refresh_ips, every, shutdown).await })
        };
        let lease_task = tokio::spawn(Arc::clone(&agent).run_lease(tasks_shutdown.clone().wait()));
        // The replication upkeep (short connect retry, heartbeat, GTID; mysql.rs).
        let upkeep = tokio::spawn(upkeep_mysql.run_upkeep(tasks_shutdown.wait()));
        let watchdog = tokio::spawn(watchdog(Arc::clone(&agent)));
        daemon::notify_ready();
        listener::run(
            listener,
            agent,
            ListenerOptions {
                access,
                ..ListenerOptions::default()
            },
            daemon::shutdown_signal(),
        )
        .await;
        stop_tasks.fire();
        watchdog.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = tokio::join!(refresh, lease_task);
        })
        .await;
        // A pass under way finishes (it may have stopped the slave threads).
        let _ = tokio::time::timeout(cfg.ext.sync_timeout + Duration::from_secs(10), upkeep).await;
        daemon::notify("STOPPING=1");
        ExitCode::SUCCESS
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    if let Some(p) = pidfile.as_mut() {
        p.remove();
    }
    tracing::info!("END");
    code
}
