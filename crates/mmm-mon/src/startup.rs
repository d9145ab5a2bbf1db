//! The shell's part of the monitor's startup (spec §3.1 step 8): the initial check results
//! as they come in, the status file loaded and filtered (§3.12), and the
//! `GET_AGENT_STATUS` / `GET_SYSTEM_STATUS` queries per host (§3.1 8g). The core turns it
//! all into states and roles (`Input::Startup`, §3.14).

use std::path::Path;
use std::time::Duration;

use mmm_common::config::MonitorSettings;
use mmm_common::proto::agent::{
    parse_agent_status, parse_system_status, AgentCommand, AgentRequest, AgentStatus, SystemStatus,
};
use tracing::{error, warn};

use crate::agent_client::{self, AgentTarget};
use crate::core::{CheckKind, CheckStatus, HostId, StatusLine};
use crate::driver::agent_targets;
use crate::status_file;

/// Attempts per startup query (2.2.1: the request plus 2 retries).
pub const STARTUP_ATTEMPTS: usize = 3;

/// Bound on one startup query's reply (GET_AGENT_STATUS / GET_SYSTEM_STATUS answer at once
/// on a healthy agent); `agent_read_timeout` if that is shorter. Keeps a hung agent from
/// holding the startup for 3 × 2 × 60 s.
pub const STARTUP_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The initial check results (§3.3.3) per host (config order), per check
/// ([`CheckKind::index`]); `None` until the first result of that check came.
#[derive(Debug, Clone)]
pub struct InitialChecks(Vec<[Option<CheckStatus>; 4]>);

impl InitialChecks {
    /// Nothing received yet for `hosts` hosts.
    pub fn new(hosts: usize) -> InitialChecks {
        InitialChecks(vec![[None; 4]; hosts])
    }

    /// Records a result; returns whether it was the first of its (host, check).
    pub fn record(&mut self, host: HostId, check: CheckKind, status: CheckStatus) -> bool {
        let Some(slot) = self
            .0
            .get_mut(host.index())
            .and_then(|h| h.get_mut(check.index()))
        else {
            return false;
        };
        let first = slot.is_none();
        *slot = Some(status);
        first
    }

    /// Whether the initial result of (host, check) was OK.
    pub fn ok(&self, host: HostId, check: CheckKind) -> bool {
        self.0.get(host.index()).and_then(|c| c[check.index()]) == Some(CheckStatus::Ok)
    }
}

/// §3.12: the stored picture, unknown hosts dropped with 2.2.1's warning.
pub fn load_status(path: Option<&Path>, config: &MonitorSettings) -> Vec<StatusLine> {
    let Some(path) = path else {
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
        Ok((lines, bad)) => {
            for b in bad {
                warn!(
                    "Ignoring unparsable line {} of status file '{}': {}",
                    b.line,
                    path.display(),
                    b.text
                );
            }
            lines
                .into_iter()
                .filter(|l| {
                    let known = config.host(&l.host).is_some();
                    if !known {
                        warn!(
                            "Ignoring saved status information for unknown host '{}'",
                            l.host
                        );
                    }
                    known
                })
                .collect()
        }
    }
}

/// One startup query with up to [`STARTUP_ATTEMPTS`] attempts; `Err` carries the last
/// answer (or failure) text.
async fn query_with_retries(
    target: &AgentTarget,
    command: AgentCommand,
    term: Option<u64>,
) -> Result<String, String> {
    let mut last = String::new();
    for _ in 0..STARTUP_ATTEMPTS {
        let req = AgentRequest::new(target.host.clone(), command.clone()).with_term(term);
        match agent_client::request(target, &req).await {
            Ok(reply) if reply.is_ok() => return Ok(reply.result),
            Ok(reply) => last = reply.result,
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The agents' answers, per host in config order.
pub type StartupAnswers = (
    Vec<Result<AgentStatus, String>>,
    Vec<Result<SystemStatus, String>>,
);

/// §3.1 8g: GET_AGENT_STATUS then GET_SYSTEM_STATUS per host, hosts in parallel. A host
/// whose initial ping check failed is not asked (2.2.1 sends nothing then).
pub async fn queries(config: &MonitorSettings, initial: &InitialChecks) -> StartupAnswers {
    let ping_ok: Vec<bool> = (0..config.hosts.len())
        .map(|i| initial.ok(HostId(i), CheckKind::Ping))
        .collect();
    queries_with(config, &ping_ok, None).await
}

/// [`queries`] for the hosts whose ping is OK in `ping_ok` (config order), each request
/// carrying `term` (monitor HA: a new leader's first words to an agent, after which a
/// deposed leader's requests renew no lease).
pub async fn queries_with(
    config: &MonitorSettings,
    ping_ok: &[bool],
    term: Option<u64>,
) -> StartupAnswers {
    let targets = agent_targets(config);
    let jobs = targets.into_iter().enumerate().map(|(i, mut target)| {
        target.read_timeout = target.read_timeout.min(STARTUP_READ_TIMEOUT);
        let ping_ok = ping_ok.get(i).copied().unwrap_or(false);
        async move {
            if !ping_ok {
                return (Err(String::new()), Err(String::new()));
            }
            let agent = query_with_retries(&target, AgentCommand::GetAgentStatus, term)
                .await
                .and_then(|r| parse_agent_status(&r).ok_or(r));
            let system = query_with_retries(&target, AgentCommand::GetSystemStatus, term)
                .await
                .and_then(|r| parse_system_status(&r).ok_or(r));
            (agent, system)
        }
    });
    futures::future::join_all(jobs).await.into_iter().unzip()
}
