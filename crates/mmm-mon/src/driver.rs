//! The monitor's shell (spec §3.1, §3.2; quinn's `ConnectionDriver` shape): owns the pure
//! [`Monitor`], one input channel and one timer re-armed from `poll_timeout`, and carries
//! out every [`Action`] (sends through the agent client, kill_host, status file writes,
//! replies to control clients, decisions to the log). It holds no MMM logic of its own.
//! After each batch of actions it feeds the decision audit, the hooks and the metrics'
//! counters, and publishes a copy of the facts for the HTTP listener (`http`, issue 17).
//!
//! Startup (§3.1 step 8): wait for the network; resolve kill_host; start the check tasks
//! and feed their first results (the initial checks); master-master configuration check
//! (§3.13, warnings only, `master_check.rs`); load the status file (§3.12) and ask every
//! agent for its status (`startup.rs`); hand it all to the core as `Input::Startup`; then
//! serve the control port. Shutdown: stop taking commands, write the status file a last
//! time, log `END`.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_common::config::{MonitorConfig, MonitorSettings};
use mmm_common::socket::Listener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::agent_client::{AgentClient, AgentError, AgentTarget};
use crate::audit::{Audit, AuditEvent};
use crate::checks::{self, wall_now, CheckTasks, InputFn, Observed};
use crate::control::{self, ControlRequest};
use crate::core::{
    Action, CheckKind, CheckStatus, Decision, HostId, Input, Level, Monitor, StatusLine, Token,
};
use crate::hooks::Hooks as HookRunner;
use crate::http::{HttpError, HttpListener, Published, Tally};
use crate::kill_host;
use crate::master_check;
use crate::network;
use crate::startup::{self, InitialChecks};
use crate::status_file;

/// Errors that stop the monitor.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The configuration lacks something the monitor needs.
    #[error("{0}")]
    Config(String),
    /// The control listener could not be created.
    #[error("Listener: Can't create socket! ({0})")]
    Listener(String),
    /// The HTTP listener (`http_listen`, `http_tls`) could not be set up.
    #[error("{0}")]
    Http(#[from] HttpError),
}

/// Something the driver loop reacts to.
enum Event {
    /// From the check tasks and the network checker.
    Input(Input),
    /// A `pre_failover_bin` run ended.
    PreFailover {
        seq: u64,
        allowed: bool,
        why: String,
    },
    /// A hook run ended (for the decision audit).
    HookRan(crate::hooks::HookReport),
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
    /// The decision audit's file (`audit_log`, resolved by main.rs); `None`: in memory only.
    pub audit_file: Option<PathBuf>,
    /// The cluster name (`@cluster`), for the default etcd prefix (monitor HA).
    pub cluster: Option<String>,
}

/// How one run of the monitor ended (a monitor HA leader that steps down starts over).
enum Ended {
    Exit(Exit),
    SteppedDown,
}

/// The agent targets of a config (config order).
pub fn agent_targets(config: &MonitorSettings) -> Vec<AgentTarget> {
    config
        .hosts
        .iter()
        .map(|h| AgentTarget {
            host: h.name.clone(),
            addr: h.agent_addr().to_string(),
            socket: config.socket.clone(),
            connect_timeout: config.ext.agent_connect_timeout,
            read_timeout: config.ext.agent_read_timeout,
            ping_ok: Arc::new(AtomicBool::new(true)),
        })
        .collect()
}

/// Runs the monitor until `shutdown` completes. With monitor HA (`etcd_endpoints`), a
/// leader that loses its leadership drops everything it runs and starts over as a
/// follower.
pub async fn run(
    config: MonitorSettings,
    shutdown: impl Future<Output = ()> + Send,
    mut hooks: Hooks,
) -> Result<Exit, DriverError> {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    loop {
        match run_once(&config, shutdown.clone(), &mut hooks).await? {
            Ended::Exit(e) => return Ok(e),
            Ended::SteppedDown => info!("Monitor HA: starting over as a follower"),
        }
    }
}

/// One run of the monitor: until shutdown, or (HA) until it stops leading.
async fn run_once<F>(
    config: &MonitorSettings,
    shutdown: F,
    hooks: &mut Hooks,
) -> Result<Ended, DriverError>
where
    F: Future<Output = ()> + Clone + Send + Unpin,
{
    let monitor_cfg = config.monitor.clone();
    let status_path = Some(PathBuf::from(&monitor_cfg.status_path));

    // §3.1 8a: wait for the network.
    let network_probed_at = Instant::now();
    let (ping_ips, ping_interval) = (&monitor_cfg.ping_ips, monitor_cfg.ping_interval);
    if !network::wait_for_network(ping_ips, ping_interval, shutdown.clone()).await {
        return Ok(Ended::Exit(Exit::StoppedBeforeStart));
    }
    check_hook_programs(config)?;
    // Bind early so a port conflict stops us before anything is changed.
    let listener = Listener::bind(&monitor_cfg.listen_addr(), &config.socket)
        .await
        .map_err(|e| DriverError::Listener(e.to_string()))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| DriverError::Listener(e.to_string()))?;
    // Who may use the control port (control_allow); a WARN when anyone on the network may.
    let access = control::ControlAccess::new(local_addr.ip(), &config.ext.control_allow);
    let tls = matches!(config.socket.kind, mmm_common::config::SocketType::Ssl);
    if let Some(warning) = access.startup_warning(tls) {
        warn!("{warning}");
    }

    // The HTTP listener (issue 17), bound before anything is changed too.
    let http = match monitor_cfg.http_listen {
        Some(addr) => {
            let tls = if monitor_cfg.http_tls {
                Some(
                    mmm_common::socket::tls_acceptor(&config.socket)
                        .map_err(|e| HttpError::Tls(e.to_string()))?,
                )
            } else {
                None
            };
            Some(HttpListener::bind(addr, tls).await?)
        }
        None => None,
    };

    let audit = match &hooks.audit_file {
        Some(path) => Audit::with_file(path),
        None => Audit::in_memory(),
    };
    // Monitor HA: campaign from now on; the checks run warm while following.
    let mut ha = monitor_cfg.ha.as_ref().map(|h| {
        crate::ha::election::spawn(crate::ha::election::ElectionConfig {
            endpoints: h.endpoints.clone(),
            prefix: h.prefix(hooks.cluster.as_deref()),
            lease: h.leader_lease,
            name: nix::unistd::gethostname()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "monitor".into()),
            control: local_addr.to_string(),
        })
    });
    let (mut driver, network_task) = Driver::start(
        config,
        &monitor_cfg,
        shutdown.clone(),
        network_probed_at,
        audit,
    );
    driver.shell.leadership = ha.as_ref().map(|h| h.leadership.clone());
    // Serve HTTP from now on (the startup's states too); it stops with the monitor.
    let (stop_http_tx, stop_http_rx) = oneshot::channel::<()>();
    let http_task = http.map(|http| {
        if let Some(addr) = http.local_addr() {
            debug!("HTTP listener on {addr}");
        }
        let published = driver.shell.publisher.subscribe();
        tokio::spawn(http.run(published, async move {
            let _ = stop_http_rx.await;
        }))
    });

    // §3.1 8d (initial checks), §3.13, §3.12 and 8g, in 2.2.1's order; check results keep
    // flowing to the core meanwhile, and a shutdown request ends the startup.
    // With HA the control port is served from the start: a follower forwards commands.
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<ControlRequest>();
    let (stop_listener_tx, stop_listener_rx) = oneshot::channel::<()>();
    let mut control_port = Some(ControlPort {
        listener,
        requests: control_tx,
        access,
        stop: stop_listener_rx,
    });
    let mut listener_task = None;
    if ha.is_some() {
        listener_task = control_port.take().map(ControlPort::spawn);
        if let Some(ready) = hooks.on_ready.take() {
            ready(local_addr);
        }
    }
    let started = async {
        let initial = driver.initial_checks(config.hosts.len()).await?;
        driver
            .while_feeding(master_check::run(config, &initial))
            .await?;
        let mut stored = None;
        if let Some(ha) = ha.as_mut() {
            // Follow until this monitor leads; then start from the status stored in etcd.
            driver.monitor.set_warm(true);
            let (term, text, carried) = driver.follow(&mut control_rx, ha, config).await?;
            driver.shell.lead(term, ha);
            match carried.map(|c| serde_json::from_str::<crate::core::Carried>(&c)) {
                Some(Ok(c)) => driver.monitor.restore_carried(&c, wall_now()),
                Some(Err(e)) => warn!("Ignoring the monitor state in etcd: {e}"),
                None => {}
            }
            stored = text.map(|t| {
                let (lines, bad) = status_file::parse(&t);
                for b in bad {
                    warn!(
                        "Ignoring unparsable line {} of the status in etcd: {}",
                        b.line, b.text
                    );
                }
                lines
                    .into_iter()
                    .filter(|l| config.host(&l.host).is_some())
                    .collect::<Vec<_>>()
            });
        }
        let stored = stored.unwrap_or_else(|| startup::load_status(status_path.as_deref(), config));
        let answers = match &driver.shell.lead {
            // A new leader asks with its term and by the latest ping results.
            Some(lead) => {
                let ping_ok: Vec<bool> = driver
                    .shell
                    .ping_flags
                    .iter()
                    .map(|f| f.load(Ordering::Relaxed))
                    .collect();
                let term = Some(lead.term);
                driver
                    .while_feeding(startup::queries_with(config, &ping_ok, term))
                    .await?
            }
            None => {
                driver
                    .while_feeding(startup::queries(config, &initial))
                    .await?
            }
        };
        Some((stored, answers))
    };
    let Some((stored, (agent_states, systems))) = started.await else {
        if let Some(ha) = &ha {
            ha.resign().await;
        }
        info!("END");
        return Ok(Ended::Exit(Exit::Stopped));
    };
    driver.handle(Input::Startup {
        stored,
        agents: agent_states,
        systems,
    });

    // Serve the control port until shutdown.
    if let Some(port) = control_port.take() {
        listener_task = Some(port.spawn());
        if let Some(ready) = hooks.on_ready.take() {
            ready(local_addr);
        }
    }
    // The main loop; it pings systemd's watchdog each time it comes back to its select.
    let stepped_down = driver
        .serve(
            control_rx,
            &mut hooks.watchdog,
            ha.as_mut().map(|h| &mut h.leadership),
        )
        .await;

    // A deposed leader sends nothing more: its agent queues (requests still queued are
    // never sent) and its checks go with the driver at once; the local status file keeps
    // what it last wrote.
    let driver = if stepped_down {
        drop(driver);
        None
    } else {
        Some(driver)
    };

    // Shutdown: no more commands, the status file a last time.
    let _ = stop_listener_tx.send(());
    if let Some(t) = listener_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    let _ = stop_http_tx.send(());
    if let Some(t) = http_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    network_task.abort();
    let Some(driver) = driver else {
        return Ok(Ended::SteppedDown);
    };
    driver.shell.write_last_status();
    if let Some(ha) = &ha {
        ha.resign().await;
    }
    info!("END");
    Ok(Ended::Exit(Exit::Stopped))
}

/// The control port, bound and not yet served.
struct ControlPort {
    listener: Listener,
    requests: mpsc::UnboundedSender<ControlRequest>,
    access: control::ControlAccess,
    stop: oneshot::Receiver<()>,
}

impl ControlPort {
    fn spawn(self) -> JoinHandle<()> {
        let stop = self.stop;
        tokio::spawn(control::run(
            self.listener,
            self.requests,
            self.access,
            async move {
                let _ = stop.await;
            },
        ))
    }
}

/// The core, the effects it asks for, the events that feed it and the shutdown request
/// (`S`, shared between the startup and the main loop).
struct Driver<'a, S> {
    monitor: Monitor,
    shell: Shell<'a>,
    events: mpsc::UnboundedReceiver<Event>,
    shutdown: S,
    /// The check tasks (they stop when dropped).
    _checks: CheckTasks,
}

impl<'a, S: Future<Output = ()> + Unpin> Driver<'a, S> {
    /// §3.1 8c-8d: resolves kill_host, starts the check tasks, the network checker (its
    /// task is returned) and the agent queues, and a core for `config`.
    fn start(
        config: &'a MonitorSettings,
        monitor_cfg: &MonitorConfig,
        shutdown: S,
        network_probed_at: Instant,
        audit: Audit,
    ) -> (Self, JoinHandle<()>) {
        let kill_bin = kill_host::resolve(monitor_cfg);
        let (event_tx, events) = mpsc::unbounded_channel::<Event>();
        let sink: InputFn = {
            let tx = event_tx.clone();
            Arc::new(move |input| {
                let _ = tx.send(Event::Input(input));
            })
        };
        let hook_events = event_tx.clone();
        let hook_report: crate::hooks::Reporter = {
            let tx = event_tx.clone();
            Arc::new(move |r| {
                let _ = tx.send(Event::HookRan(r));
            })
        };
        let (network_tx, network_rx) = watch::channel(true);
        let observed = Arc::new(Observed::new(config.hosts.len()));
        let checks = checks::spawn(config, sink.clone(), network_rx, observed.clone());
        // The network was confirmed up by wait_for_network: check failures from now on
        // wait for a later confirmation (core: Input::NetworkConfirmed), also before the
        // network task's first round.
        sink(Input::NetworkConfirmed {
            probed_at: network_probed_at,
        });
        let network_wake = Arc::new(tokio::sync::Notify::new());
        // Issue 13: the errant-transaction comparison runs beside the network check (one
        // task, aborted with it) when the guard is on.
        let guard = config.ext.errant_transactions == mmm_common::config::ErrantPolicy::Hold;
        let gtid = guard.then(|| checks::gtid::run(config.clone(), sink.clone()));
        let network = network::run(
            monitor_cfg.ping_ips.clone(),
            monitor_cfg.ping_interval,
            network_tx,
            sink,
            network_wake.clone(),
        );
        let network_task = tokio::spawn(async move {
            match gtid {
                Some(g) => {
                    tokio::join!(network, g);
                }
                None => network.await,
            }
        });
        let targets = agent_targets(config);
        let ping_flags: Vec<Arc<AtomicBool>> = targets.iter().map(|t| t.ping_ok.clone()).collect();
        let agents = AgentClient::spawn(
            targets,
            Arc::new(move |_host, token, outcome| {
                let _ = event_tx.send(Event::Agent { token, outcome });
            }),
        );
        let monitor = {
            let mut m = Monitor::new(config, Instant::now(), wall_now());
            m.set_errant_guard(guard);
            m
        };
        let ring = Arc::new(audit.events(None, usize::MAX));
        let (publisher, _) = watch::channel(Arc::new(Published {
            snapshot: monitor.snapshot(),
            events: ring.clone(),
            tally: Tally::default(),
            observed: observed.clone(),
            semi_sync: config.ext.semi_sync,
            ha: None,
        }));
        let driver = Driver {
            monitor,
            shell: Shell {
                config,
                agents,
                ping_flags,
                kill_bin,
                status_path: Some(PathBuf::from(&monitor_cfg.status_path)),
                last_status: None,
                replies: HashMap::new(),
                next_command: 0,
                network_wake,
                hooks: HookRunner::new(config, Some(hook_report)),
                hook_events,
                batch: Vec::new(),
                audit,
                publisher,
                tally: Tally::default(),
                ring,
                observed,
                last_publish: None,
                publish_owed: false,
                ring_owed: false,
                lead: None,
                show_tokens: Default::default(),
                leadership: None,
            },
            events,
            shutdown,
            _checks: checks,
        };
        (driver, network_task)
    }

    /// Feeds one input and carries out what the core asks for.
    fn handle(&mut self, input: Input) {
        self.shell.handle(&mut self.monitor, input);
    }

    /// §3.1 8d: every (host, check) once, fed to the core as they come (the initial
    /// checks). `None` when shutdown came first.
    async fn initial_checks(&mut self, hosts: usize) -> Option<InitialChecks> {
        let mut initial = InitialChecks::new(hosts);
        let mut missing = hosts * 4;
        while missing > 0 {
            let ev = tokio::select! {
                _ = &mut self.shutdown => return None,
                ev = self.events.recv() => ev,
            };
            let Some(ev) = ev else { break };
            if let Event::Input(Input::Check {
                host,
                check,
                result,
                ..
            }) = &ev
            {
                if initial.record(*host, *check, result.status) {
                    missing -= 1;
                }
            }
            self.shell.feed(&mut self.monitor, ev);
        }
        Some(initial)
    }

    /// Runs `work` while events keep flowing to the core. `None` when shutdown came first.
    async fn while_feeding<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                _ = &mut self.shutdown => return None,
                r = &mut work => return Some(r),
                ev = self.events.recv() => {
                    if let Some(ev) = ev {
                        self.shell.feed(&mut self.monitor, ev);
                    }
                }
            }
        }
    }

    /// Monitor HA: until this monitor leads, feeds check results to the core (warm, not
    /// started: they count as its initial checks) and answers control commands as a
    /// follower ([`crate::ha::forward`]). The term and the status stored in etcd; `None`
    /// at shutdown.
    async fn follow(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<ControlRequest>,
        ha: &mut crate::ha::Ha,
        config: &MonitorSettings,
    ) -> Option<(u64, Option<String>, Option<String>)> {
        use crate::ha::Leadership;
        loop {
            if let Leadership::Leading {
                term,
                stored,
                carried,
            } = &*ha.leadership.borrow_and_update()
            {
                return Some((*term, stored.clone(), carried.clone()));
            }
            tokio::select! {
                _ = &mut self.shutdown => return None,
                ev = self.events.recv() => {
                    if let Some(ev) = ev {
                        self.shell.feed(&mut self.monitor, ev);
                    }
                }
                req = control.recv() => {
                    if let Some(req) = req {
                        let now = ha.leadership.borrow().clone();
                        crate::ha::forward::answer(req, now, ha.name.clone(), config.socket.clone());
                    }
                }
                r = ha.leadership.changed() => {
                    if r.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// The main loop: events, control commands and the core's timer, until shutdown, or
    /// (monitor HA) until this monitor no longer leads: then `true`.
    async fn serve(
        &mut self,
        mut control: mpsc::UnboundedReceiver<ControlRequest>,
        watchdog: &mut mmm_common::daemon::Watchdog,
        mut leadership: Option<&mut watch::Receiver<crate::ha::Leadership>>,
    ) -> bool {
        let term = self.shell.lead.as_ref().map(|l| l.term);
        // The core's next deadline, recomputed only when the core may have changed (issue
        // 14: with 200 hosts, most events are OK results that change nothing, and the
        // deadline walks every host).
        let mut deadline_of: Option<(u64, Option<Instant>)> = None;
        loop {
            let generation = self.monitor.generation();
            let deadline = match deadline_of {
                Some((g, d)) if g == generation => d,
                _ => {
                    let d = self.monitor.poll_timeout();
                    deadline_of = Some((generation, d));
                    d
                }
            };
            let timer = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            // Monitor HA: leadership held (etcd unconfirmed), confirmed again, or lost.
            let lead_event = async {
                use crate::ha::Leadership;
                match leadership.as_mut() {
                    Some(rx) => {
                        if rx.changed().await.is_err() {
                            return None;
                        }
                        let now = rx.borrow().clone();
                        match now {
                            Leadership::Leading { term: t, .. } if Some(t) == term => {
                                Some((false, now))
                            }
                            Leadership::Holding { term: t } if Some(t) == term => Some((true, now)),
                            _ => None,
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut self.shutdown => return false,
                ev = self.events.recv() => match ev {
                    Some(ev) => self.shell.feed(&mut self.monitor, ev),
                    None => return false,
                },
                req = control.recv() => {
                    if let Some(req) = req {
                        let token = Token(self.shell.next_command);
                        self.shell.next_command += 1;
                        if self.shell.lead.is_some()
                            && req.line.split_whitespace().next() == Some("show")
                        {
                            self.shell.show_tokens.insert(token);
                        }
                        self.shell.replies.insert(token, req.reply);
                        self.handle(Input::Command { token, line: req.line });
                    }
                },
                _ = timer => {
                    self.monitor.handle_timeout(Instant::now());
                    self.shell.drain(&mut self.monitor);
                }
                ev = lead_event => match ev {
                    None => return true,
                    Some((on, now)) => {
                        if let Some(lead) = self.shell.lead.as_mut() {
                            lead.show_line = crate::ha::show_line(&lead.name, &now);
                        }
                        let cause = format!(
                            "Monitor HA: etcd does not confirm this monitor's leadership (term {}); \
                             roles are held, no failover until it does.",
                            term.unwrap_or(0)
                        );
                        self.handle(Input::Hold { on, cause });
                    }
                },
                _ = watchdog.beat() => {}
            }
        }
    }
}

/// The effect-running half of the driver.
struct Shell<'a> {
    /// The configuration.
    config: &'a MonitorSettings,
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
    /// notify_bin, pre/post_failover_bin.
    hooks: HookRunner,
    /// Where a pre_failover_bin verdict goes.
    hook_events: mpsc::UnboundedSender<Event>,
    /// The decisions of the current [`Shell::drain`], handed to the audit and the hooks at
    /// its end.
    batch: Vec<Decision>,
    /// The decision audit (fed once per batch of actions).
    audit: Audit,
    /// Where the HTTP listener reads the facts from (one publication per batch).
    publisher: watch::Sender<Arc<Published>>,
    /// The decision counters of the metrics.
    tally: Tally,
    /// The audit ring as last published.
    ring: Arc<Vec<AuditEvent>>,
    /// Check run times and replication lags (written by the check tasks).
    observed: Arc<Observed>,
    /// When the last copy was published.
    last_publish: Option<Instant>,
    /// Decisions made since the last copy for the HTTP listener.
    publish_owed: bool,
    /// Audit events recorded since `ring` was copied from the audit.
    ring_owed: bool,
    /// Monitor HA, while leading: the term, the way to etcd, the `show` line.
    lead: Option<Lead>,
    /// Commands whose answer gets the HA line (`show` while leading).
    show_tokens: std::collections::HashSet<Token>,
    /// Monitor HA: what this monitor is (for the metrics).
    leadership: Option<watch::Receiver<crate::ha::Leadership>>,
}

/// What a leading monitor adds to its effects (monitor HA, issue 16).
struct Lead {
    /// Every agent request carries it (`|term=<n>`).
    term: u64,
    /// Status file contents and the carried state, also stored in etcd by the election
    /// task.
    status: mpsc::UnboundedSender<crate::ha::Record>,
    /// The carried state last handed over.
    carried: Option<crate::core::Carried>,
    /// The first line of `show`.
    show_line: String,
    /// This monitor as `show` names it.
    name: String,
}

/// How stale the HTTP listener's copy may get between batches without decisions.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The HTTP listener's copy after decisions: at most this often (see `publish`).
const PUBLISH_DECIDED_EVERY: Duration = Duration::from_millis(100);

impl Shell<'_> {
    fn feed(&mut self, monitor: &mut Monitor, ev: Event) {
        if let Event::Input(Input::Check {
            host,
            check: CheckKind::Ping,
            result,
            ..
        }) = &ev
        {
            if let Some(flag) = self.ping_flags.get(host.index()) {
                flag.store(result.status == CheckStatus::Ok, Ordering::Relaxed);
            }
        }
        match ev {
            Event::Input(input) => self.handle(monitor, input),
            Event::PreFailover { seq, allowed, why } => {
                self.handle(monitor, Input::PreFailoverResult { seq, allowed, why })
            }
            Event::HookRan(r) => {
                self.audit.record_hook(&r);
                self.ring_owed = true;
                self.publish(monitor, true);
            }
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
                    let request = request.with_term(self.lead.as_ref().map(|l| l.term));
                    if let Err(token) = self.agents.send(host.index(), token, request) {
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
                        let text = match (self.show_tokens.remove(&token), &self.lead) {
                            (true, Some(lead)) => format!("{}{text}", lead.show_line),
                            _ => text,
                        };
                        let _ = tx.send(text);
                    }
                    None => debug!("reply for unknown command token {token:?}"),
                },
                Action::Decision(d) => {
                    log_decision(&d);
                    self.batch.push(d);
                }
                Action::PreFailover {
                    seq,
                    role,
                    from,
                    to,
                } => {
                    let tx = self.hook_events.clone();
                    self.hooks
                        .pre_failover(role, from, to, move |allowed, why| {
                            let _ = tx.send(Event::PreFailover { seq, allowed, why });
                        });
                }
                Action::ProbeNetwork => self.network_wake.notify_one(),
            }
        }
        // The one tap per batch: the decision audit, then the hooks.
        let decided = !self.batch.is_empty();
        if decided {
            self.store_carried(monitor);
            let batch = std::mem::take(&mut self.batch);
            if self.audit.record(&batch) > 0 {
                self.ring_owed = true;
            }
            self.tally.count(&batch, Instant::now());
            self.hooks.decisions(&batch);
        }
        self.publish(monitor, decided);
    }

    /// Hands the HTTP listener a copy of the facts (nothing when it is off): after a batch
    /// with decisions at most every [`PUBLISH_DECIDED_EVERY`] (the next input after that
    /// publishes what was decided meanwhile), else every [`PUBLISH_EVERY`]. Check results
    /// and decisions can come hundreds of times a second with many hosts (200 hosts whose
    /// agents refuse: 400 a second); a copy of every host's facts each time cost the main
    /// loop a quarter of a core.
    fn publish(&mut self, monitor: &Monitor, decided: bool) {
        if self.publisher.receiver_count() == 0 {
            return;
        }
        self.publish_owed |= decided;
        let now = Instant::now();
        let every = if self.publish_owed {
            PUBLISH_DECIDED_EVERY
        } else {
            PUBLISH_EVERY
        };
        if self
            .last_publish
            .is_some_and(|t| now.duration_since(t) < every)
        {
            return;
        }
        self.last_publish = Some(now);
        self.publish_owed = false;
        if std::mem::take(&mut self.ring_owed) {
            self.ring = Arc::new(self.audit.events(None, usize::MAX));
        }
        self.publisher.send_replace(Arc::new(Published {
            snapshot: monitor.snapshot(),
            events: self.ring.clone(),
            tally: self.tally.clone(),
            observed: self.observed.clone(),
            semi_sync: self.config.ext.semi_sync,
            ha: self
                .leadership
                .as_ref()
                .map(|rx| crate::http::HaView::of(&rx.borrow())),
        }));
    }

    /// Monitor HA: hands the election task the mode and flapping bookkeeping when they
    /// changed. Called after batches with decisions only: every change of either is one
    /// (a mode change, a state change, `set_online`, a hold).
    fn store_carried(&mut self, monitor: &Monitor) {
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        let now = monitor.carried();
        if lead.carried.as_ref() == Some(&now) {
            return;
        }
        if let Ok(json) = serde_json::to_string(&now) {
            let _ = lead.status.send(crate::ha::Record::Carried(json));
        }
        lead.carried = Some(now);
    }

    /// Monitor HA: from now on this monitor leads with `term`.
    fn lead(&mut self, term: u64, ha: &crate::ha::Ha) {
        self.lead = Some(Lead {
            term,
            status: ha.status.clone(),
            show_line: crate::ha::show_line(&ha.name, &ha.leadership.borrow()),
            name: ha.name.clone(),
            carried: None,
        });
    }

    fn write_status(&mut self, lines: &[StatusLine]) {
        let text = status_file::render(lines);
        if let Some(lead) = &self.lead {
            let _ = lead.status.send(crate::ha::Record::Status(text.clone()));
        }
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
}

/// The hook programs must exist and be executable: a hook that cannot run would hold every
/// failover (`pre_failover_bin`) or tell nobody.
fn check_hook_programs(config: &MonitorSettings) -> Result<(), DriverError> {
    use std::os::unix::fs::PermissionsExt;
    let ext = &config.ext;
    for (var, path) in [
        ("notify_bin", &ext.notify_bin),
        ("pre_failover_bin", &ext.pre_failover_bin),
        ("post_failover_bin", &ext.post_failover_bin),
    ] {
        let Some(path) = path else { continue };
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            Ok(_) => {
                return Err(DriverError::Config(format!(
                    "{var} {path} is not an executable file"
                )))
            }
            Err(e) => return Err(DriverError::Config(format!("{var} {path}: {e}"))),
        }
    }
    Ok(())
}

fn host_name(config: &MonitorSettings, host: HostId) -> String {
    config
        .hosts
        .get(host.index())
        .map(|h| h.name.clone())
        .unwrap_or_else(|| format!("#{host}"))
}

/// Logs a core decision at its level with MMM's text (FATAL and ERROR → `error!`).
fn log_decision(d: &Decision) {
    match d.level() {
        Level::Fatal => error!("{d}"),
        Level::Error => error!(target: mmm_common::log::ERROR_TARGET, "{d}"),
        Level::Warn => warn!("{d}"),
        Level::Info => info!("{d}"),
        Level::Debug => debug!("{d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::state::HostState;

    #[test]
    fn status_lines_render_like_221() {
        let lines = [StatusLine {
            host: "db2".into(),
            state: HostState::HardOffline,
            roles: vec![],
        }];
        assert_eq!(status_file::render(&lines), "db2|HARD_OFFLINE|\n");
    }
}
