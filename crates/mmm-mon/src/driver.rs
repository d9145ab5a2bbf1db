//! The monitor's shell (spec §3.1, §3.2; quinn's `ConnectionDriver` shape): owns the pure
//! [`Monitor`], one input channel and one timer re-armed from `poll_timeout`, and carries
//! out every [`Action`] (sends through the agent client, kill_host, status file writes,
//! replies to control clients, decisions to the log). It holds no MMM logic of its own.
//!
//! Startup (§3.1 step 8): wait for the network; resolve kill_host; start the check tasks
//! and feed their first results (the initial checks); master-master configuration check
//! (§3.13, warnings only); load the status file (§3.12); `GET_AGENT_STATUS` and
//! `GET_SYSTEM_STATUS` per host (up to 3 attempts each, hosts in parallel); hand it all to
//! the core as `Input::Startup`; then serve the control port. Shutdown: stop taking
//! commands, write the status file a last time, log `END`.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_common::config::Config;
use mmm_common::proto::agent::{
    parse_agent_status, parse_system_status, AgentCommand, AgentRequest, AgentStatus, SystemStatus,
};
use mmm_common::socket::Listener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::agent_client::{self, AgentClient, AgentError, AgentTarget};
use crate::checks::{self, mysql::MysqlTarget, wall_now, InputFn};
use crate::control::{self, ControlRequest};
use crate::core::{
    Action, CheckKind, CheckStatus, Decision, HostId, Input, Level, Monitor, StatusLine,
    StoredHost, Token,
};
use crate::kill_host;
use crate::network;
use crate::status_file::{self, StatusEntry};

/// Attempts per startup query (2.2.1: the request plus 2 retries).
pub const STARTUP_ATTEMPTS: usize = 3;

/// Bound on one startup query's reply (GET_AGENT_STATUS / GET_SYSTEM_STATUS answer at once
/// on a healthy agent); `agent_read_timeout` if that is shorter. Keeps a hung agent from
/// holding the startup for 3 × 2 × 60 s.
pub const STARTUP_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Timeout of the master-master check's MySQL connections (§3.13: 3 s).
pub const MASTER_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Errors that stop the monitor.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The configuration lacks something the monitor needs.
    #[error("{0}")]
    Config(String),
    /// The control listener could not be created.
    #[error("Listener: Can't create socket! ({0})")]
    Listener(String),
}

/// Something the driver loop reacts to.
enum Event {
    /// From the check tasks and the network checker.
    Input(Input),
    /// The outcome of an agent request.
    Agent {
        token: Token,
        outcome: Result<mmm_common::proto::agent::AgentReply, AgentError>,
    },
}

/// What `run` reports when it returns normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Shut down after running.
    Stopped,
    /// Shutdown requested while waiting for the network (§3.1 8a).
    StoppedBeforeStart,
}

/// Hooks for the embedding program (main.rs) and tests.
#[derive(Default)]
pub struct Hooks {
    /// Called once the monitor is running and its control port is served (main.rs sends
    /// sd_notify READY=1 here).
    pub on_ready: Option<Box<dyn FnOnce(std::net::SocketAddr) + Send>>,
    /// systemd's watchdog, pinged by the main loop each time it comes back to its `select!`
    /// (off by default): a loop stuck in a step stops the pings and systemd restarts us.
    pub watchdog: mmm_common::daemon::Watchdog,
}

/// The agent targets of a config (config order).
pub fn agent_targets(config: &Config) -> Vec<AgentTarget> {
    config
        .hosts
        .iter()
        .map(|h| {
            let ip = h.ip.clone().unwrap_or_default();
            AgentTarget {
                host: h.name.clone(),
                addr: join_addr(&ip, h.agent_port),
                socket: config.socket.clone(),
                connect_timeout: config.ext.agent_connect_timeout,
                read_timeout: config.ext.agent_read_timeout,
                ping_ok: Arc::new(AtomicBool::new(true)),
            }
        })
        .collect()
}

fn join_addr(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Runs the monitor until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    hooks: Hooks,
) -> Result<Exit, DriverError> {
    let monitor_cfg = config
        .monitor
        .clone()
        .ok_or_else(|| DriverError::Config("Required config entry 'monitor' is missing".into()))?;
    let listen_ip = monitor_cfg.ip.clone().ok_or_else(|| {
        DriverError::Config("Required config entry 'monitor->ip' is missing".into())
    })?;
    let status_path = monitor_cfg.status_path.clone().map(PathBuf::from);

    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));

    // §3.1 8a: wait for the network.
    let network_probed_at = Instant::now();
    if !network::wait_for_network(
        &monitor_cfg.ping_ips,
        monitor_cfg.ping_interval,
        shutdown.clone(),
    )
    .await
    {
        return Ok(Exit::StoppedBeforeStart);
    }
    // Bind early so a port conflict stops us before anything is changed.
    let listener = Listener::bind(&join_addr(&listen_ip, monitor_cfg.port), &config.socket)
        .await
        .map_err(|e| DriverError::Listener(e.to_string()))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| DriverError::Listener(e.to_string()))?;

    // §3.1 8c.
    let kill_bin = kill_host::resolve(&config);

    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let sink: InputFn = {
        let tx = event_tx.clone();
        Arc::new(move |input| {
            let _ = tx.send(Event::Input(input));
        })
    };
    let (network_tx, network_rx) = watch::channel(true);
    let _checks = checks::spawn(&config, sink.clone(), network_rx);
    // The network was confirmed up by wait_for_network: check failures from now on wait
    // for a later confirmation (core: Input::NetworkConfirmed), also before the network
    // task's first round.
    sink(Input::NetworkConfirmed {
        probed_at: network_probed_at,
    });
    let network_wake = Arc::new(tokio::sync::Notify::new());
    let network_task = tokio::spawn(network::run(
        monitor_cfg.ping_ips.clone(),
        monitor_cfg.ping_interval,
        network_tx,
        sink.clone(),
        network_wake.clone(),
    ));
    let targets = agent_targets(&config);
    let ping_flags: Vec<Arc<AtomicBool>> = targets.iter().map(|t| t.ping_ok.clone()).collect();
    let agents = {
        let tx = event_tx.clone();
        AgentClient::spawn(
            targets,
            Arc::new(move |_host, token, outcome| {
                let _ = tx.send(Event::Agent { token, outcome });
            }),
        )
    };

    let mut monitor = Monitor::new(&config, Instant::now(), wall_now());
    let mut driver = Shell {
        config: &config,
        agents,
        ping_flags,
        kill_bin,
        status_path,
        last_status: None,
        replies: HashMap::new(),
        next_command: 0,
        network_wake,
    };

    // §3.1 8d: initial checks: every (host, check) once, fed to the core as they come.
    let hosts = config.hosts.len();
    let mut initial: Vec<[Option<CheckStatus>; 4]> = vec![[None; 4]; hosts];
    let mut missing = hosts * 4;
    let mut shutdown_early = shutdown.clone();
    while missing > 0 {
        let ev = tokio::select! {
            _ = &mut shutdown_early => {
                info!("END");
                return Ok(Exit::Stopped);
            }
            ev = event_rx.recv() => ev,
        };
        let Some(ev) = ev else { break };
        if let Event::Input(Input::Check {
            host,
            check,
            result,
            ..
        }) = &ev
        {
            let slot = initial
                .get_mut(*host)
                .and_then(|h| h.get_mut(check_index(*check)));
            if let Some(slot) = slot {
                if slot.is_none() {
                    missing -= 1;
                }
                *slot = Some(result.status);
            }
        }
        driver.feed(&mut monitor, ev);
    }

    // §3.13, §3.12 and §3.1 8g, in 2.2.1's order; check results keep flowing to the core
    // meanwhile, and a shutdown request ends the startup.
    macro_rules! while_feeding {
        ($work:expr) => {{
            let work = $work;
            tokio::pin!(work);
            loop {
                tokio::select! {
                    _ = &mut shutdown_early => {
                        info!("END");
                        return Ok(Exit::Stopped);
                    }
                    r = &mut work => break r,
                    ev = event_rx.recv() => {
                        if let Some(ev) = ev {
                            driver.feed(&mut monitor, ev);
                        }
                    }
                }
            }
        }};
    }
    while_feeding!(master_master_check(&config, &initial));
    let stored = driver.load_status();
    let (agent_states, systems) = while_feeding!(startup_queries(&config, &initial));
    driver.handle(
        &mut monitor,
        Input::Startup {
            stored,
            agents: agent_states,
            systems,
        },
    );

    // Serve the control port.
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<ControlRequest>();
    let (stop_listener_tx, stop_listener_rx) = oneshot::channel::<()>();
    let listener_task = tokio::spawn(control::run(listener, control_tx, async move {
        let _ = stop_listener_rx.await;
    }));
    if let Some(ready) = hooks.on_ready {
        ready(local_addr);
    }

    // The main loop.
    let mut shutdown_main = shutdown.clone();
    let mut watchdog = hooks.watchdog;
    loop {
        let deadline = monitor.poll_timeout();
        let timer = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown_main => break,
            ev = event_rx.recv() => match ev {
                Some(ev) => driver.feed(&mut monitor, ev),
                None => break,
            },
            req = control_rx.recv() => {
                if let Some(req) = req {
                    let token = Token(driver.next_command);
                    driver.next_command += 1;
                    driver.replies.insert(token, req.reply);
                    driver.handle(&mut monitor, Input::Command { token, line: req.line });
                }
            },
            _ = timer => {
                monitor.handle_timeout(Instant::now());
                driver.drain(&mut monitor);
            }
            _ = watchdog.beat() => {}
        }
    }

    // Shutdown: no more commands, the status file a last time.
    let _ = stop_listener_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), listener_task).await;
    network_task.abort();
    driver.write_last_status();
    info!("END");
    Ok(Exit::Stopped)
}

fn check_index(kind: CheckKind) -> usize {
    match kind {
        CheckKind::Ping => 0,
        CheckKind::Mysql => 1,
        CheckKind::RepThreads => 2,
        CheckKind::RepBacklog => 3,
    }
}

/// The effect-running half of the driver.
struct Shell<'a> {
    /// The configuration.
    config: &'a Config,
    /// Per-host agent queues.
    agents: AgentClient<Token>,
    /// Per host: whether its latest ping check result was OK (read by the agent client).
    ping_flags: Vec<Arc<AtomicBool>>,
    /// The kill_host binary, when usable.
    kill_bin: Option<PathBuf>,
    /// `monitor->status_path`.
    status_path: Option<PathBuf>,
    /// The last content written (rewritten at shutdown).
    last_status: Option<String>,
    /// Control clients waiting for a reply.
    replies: HashMap<Token, oneshot::Sender<String>>,
    /// Wakes the network checker for a round now ([`Action::ProbeNetwork`]).
    network_wake: Arc<tokio::sync::Notify>,
    /// The next command token.
    next_command: u64,
}

impl Shell<'_> {
    fn feed(&mut self, monitor: &mut Monitor, ev: Event) {
        if let Event::Input(Input::Check {
            host,
            check: CheckKind::Ping,
            result,
            ..
        }) = &ev
        {
            if let Some(flag) = self.ping_flags.get(*host) {
                flag.store(result.status == CheckStatus::Ok, Ordering::Relaxed);
            }
        }
        match ev {
            Event::Input(input) => self.handle(monitor, input),
            Event::Agent { token, outcome } => self.handle(
                monitor,
                Input::AgentReply {
                    token,
                    maybe_delivered: outcome
                        .as_ref()
                        .map_or_else(AgentError::maybe_delivered, |_| true),
                    reply: outcome.map_err(|e| e.to_string()),
                },
            ),
        }
    }

    fn handle(&mut self, monitor: &mut Monitor, input: Input) {
        monitor.handle(Instant::now(), input);
        self.drain(monitor);
    }

    /// Carries out every pending action, feeding immediate failures back.
    fn drain(&mut self, monitor: &mut Monitor) {
        while let Some(action) = monitor.poll_action() {
            match action {
                Action::Send {
                    token,
                    host,
                    request,
                } => {
                    if let Err(token) = self.agents.send(host, token, request) {
                        monitor.handle(
                            Instant::now(),
                            Input::AgentReply {
                                token,
                                reply: Err("no agent queue for this host".into()),
                                maybe_delivered: false,
                            },
                        );
                    }
                }
                Action::KillHost { host, ping_ok } => {
                    let name = host_name(self.config, host);
                    let bin = self.kill_bin.clone();
                    tokio::spawn(async move {
                        kill_host::kill_host(
                            bin.as_deref(),
                            &name,
                            ping_ok,
                            kill_host::KILL_HOST_TIMEOUT,
                        )
                        .await;
                    });
                }
                Action::WriteStatus(lines) => self.write_status(&lines),
                Action::Reply { token, text } => match self.replies.remove(&token) {
                    Some(tx) => {
                        let _ = tx.send(text);
                    }
                    None => debug!("reply for unknown command token {token:?}"),
                },
                Action::Decision(d) => log_decision(&d),
                Action::ProbeNetwork => self.network_wake.notify_one(),
            }
        }
    }

    fn write_status(&mut self, lines: &[StatusLine]) {
        let entries: Vec<StatusEntry> = lines
            .iter()
            .map(|l| StatusEntry {
                host: l.host.clone(),
                state: l.state,
                roles: l.roles.clone(),
            })
            .collect();
        let text = status_file::render(&entries);
        self.write_text(&text);
        self.last_status = Some(text);
    }

    fn write_text(&self, text: &str) {
        let Some(path) = &self.status_path else {
            return;
        };
        if let Err(e) = status_file::write_atomic(path, text) {
            error!(
                "Can't savely overwrite status file '{}'! ({e})",
                path.display()
            );
        }
    }

    fn write_last_status(&self) {
        if let Some(text) = &self.last_status {
            self.write_text(text);
        }
    }

    /// §3.12: the stored picture, unknown hosts dropped with 2.2.1's warning.
    fn load_status(&self) -> Vec<StoredHost> {
        let Some(path) = &self.status_path else {
            return Vec::new();
        };
        match status_file::read(path) {
            Err(_) => {
                error!(
                    "Couldn't open status file '{}': Starting up without status information.",
                    path.display()
                );
                Vec::new()
            }
            Ok((entries, bad)) => {
                for b in bad {
                    warn!(
                        "Ignoring unparsable line {} of status file '{}': {}",
                        b.line,
                        path.display(),
                        b.text
                    );
                }
                entries
                    .into_iter()
                    .filter(|e| {
                        let known = self.config.host(&e.host).is_some();
                        if !known {
                            warn!(
                                "Ignoring saved status information for unknown host '{}'",
                                e.host
                            );
                        }
                        known
                    })
                    .map(|e| StoredHost {
                        host: e.host,
                        state: e.state,
                        roles: e.roles,
                    })
                    .collect()
            }
        }
    }
}

fn host_name(config: &Config, host: HostId) -> String {
    config
        .hosts
        .get(host)
        .map(|h| h.name.clone())
        .unwrap_or_else(|| format!("#{host}"))
}

/// Logs a core decision at its level with MMM's text (FATAL and ERROR → `error!`).
fn log_decision(d: &Decision) {
    match d.level {
        Level::Fatal => error!("{}", d.text),
        Level::Error => error!(target: mmm_common::log::ERROR_TARGET, "{}", d.text),
        Level::Warn => warn!("{}", d.text),
        Level::Info => info!("{}", d.text),
        Level::Debug => debug!("{}", d.text),
    }
}

/// One startup query with up to [`STARTUP_ATTEMPTS`] attempts; `Err` carries the last
/// answer (or failure) text.
async fn query_with_retries(target: &AgentTarget, command: AgentCommand) -> Result<String, String> {
    let mut last = String::new();
    for _ in 0..STARTUP_ATTEMPTS {
        let req = AgentRequest::new(target.host.clone(), command.clone());
        match agent_client::request(target, &req).await {
            Ok(reply) if reply.is_ok() => return Ok(reply.result),
            Ok(reply) => last = reply.result,
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// §3.1 8g: GET_AGENT_STATUS then GET_SYSTEM_STATUS per host, hosts in parallel. A host
/// whose initial ping check failed is not asked (2.2.1 sends nothing then).
async fn startup_queries(
    config: &Config,
    initial: &[[Option<CheckStatus>; 4]],
) -> (
    Vec<Result<AgentStatus, String>>,
    Vec<Result<SystemStatus, String>>,
) {
    let targets = agent_targets(config);
    let jobs = targets.into_iter().enumerate().map(|(i, mut target)| {
        target.read_timeout = target.read_timeout.min(STARTUP_READ_TIMEOUT);
        let ping_ok =
            initial.get(i).and_then(|c| c.first().copied().flatten()) == Some(CheckStatus::Ok);
        async move {
            if !ping_ok {
                return (Err(String::new()), Err(String::new()));
            }
            let agent = query_with_retries(&target, AgentCommand::GetAgentStatus)
                .await
                .and_then(|r| parse_agent_status(&r).ok_or(r));
            let system = query_with_retries(&target, AgentCommand::GetSystemStatus)
                .await
                .and_then(|r| parse_system_status(&r).ok_or(r));
            (agent, system)
        }
    });
    futures::future::join_all(jobs).await.into_iter().unzip()
}

/// §3.13: master-master configuration check, warnings only.
async fn master_master_check(config: &Config, initial: &[[Option<CheckStatus>; 4]]) {
    let Some(role) = config.active_master_role() else {
        return;
    };
    let masters = &role.hosts;
    if masters.len() < 2 {
        warn!("Only one host configured which can handle the active master role. Skipping check of master-master configuration.");
        return;
    }
    if masters.len() > 2 {
        // 2.2.1 dies here; we warn and go on (the core uses the first two).
        error!("There are more than two hosts configured which can handle the active master role.");
        return;
    }
    let mut targets = Vec::new();
    for name in masters {
        let Some((idx, h)) = config
            .hosts
            .iter()
            .enumerate()
            .find(|(_, h)| &h.name == name)
        else {
            return;
        };
        let mysql_ok =
            initial.get(idx).and_then(|c| c.get(1).copied().flatten()) == Some(CheckStatus::Ok);
        if !mysql_ok {
            warn!("Check 'mysql' is in state 'failed' on host '{name}'. Skipping check of master-master configuration.");
            return;
        }
        targets.push((
            name.clone(),
            h.ip.clone().unwrap_or_default(),
            MysqlTarget {
                ip: h.ip.clone().unwrap_or_default(),
                port: h.mysql_port,
                user: h.monitor_user.clone().unwrap_or_default(),
                password: h.monitor_password.clone().unwrap_or_default(),
            },
        ));
    }
    let (Some(m1), Some(m2)) = (targets.first(), targets.get(1)) else {
        return;
    };
    let (Some(i1), Some(i2)) = (
        checks::mysql::master_settings(&m1.2, MASTER_CHECK_TIMEOUT).await,
        checks::mysql::master_settings(&m2.2, MASTER_CHECK_TIMEOUT).await,
    ) else {
        warn!("Couldn't connect to both masters. Skipping check of master-master configuration.");
        return;
    };
    for (me, my, peer) in [(m1, &i1, m2), (m2, &i2, m1)] {
        if my.master_host.as_deref() != Some(peer.1.as_str()) {
            warn!("{} is not replicating from {}", me.0, peer.0);
        }
    }
    let (Some((o1, n1)), Some((o2, n2))) = (i1.auto_increment, i2.auto_increment) else {
        for (m, i) in [(m1, &i1), (m2, &i2)] {
            if i.auto_increment.is_none() {
                warn!("Couldn't get value of auto_increment_offset/auto_increment_increment from host {}. Skipping check of master-master replication.", m.0);
            }
        }
        return;
    };
    if n1 != n2 {
        warn!(
            "auto_increment_increment should be identical on both masters ({}: {n1} , {}: {n2})",
            m1.0, m2.0
        );
    }
    if o1 == o2 {
        warn!(
            "auto_increment_offset should be different on both masters ({}: {o1} , {}: {o2})",
            m1.0, m2.0
        );
    }
    for (m, o, n) in [(m1, o1, n1), (m2, o2, n2)] {
        if n < 2 {
            warn!("{}: auto_increment_increment ({n}) should be >= 2", m.0);
        }
        if o > n {
            warn!(
                "{}: auto_increment_offset ({o}) should not be greater than auto_increment_increment ({n})",
                m.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::state::HostState;

    #[test]
    fn addresses() {
        assert_eq!(join_addr("198.18.2.100", 9989), "198.18.2.100:9989");
        assert_eq!(join_addr("::1", 9989), "[::1]:9989");
    }

    #[test]
    fn status_lines_render_like_221() {
        let lines = [StatusLine {
            host: "db2".into(),
            state: HostState::HardOffline,
            roles: vec![],
        }];
        let entries: Vec<StatusEntry> = lines
            .iter()
            .map(|l| StatusEntry {
                host: l.host.clone(),
                state: l.state,
                roles: l.roles.clone(),
            })
            .collect();
        assert_eq!(status_file::render(&entries), "db2|HARD_OFFLINE|\n");
    }
}
