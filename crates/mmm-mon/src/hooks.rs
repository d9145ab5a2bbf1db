//! Hooks (issue 17, extension directives `notify_bin`, `pre_failover_bin`,
//! `post_failover_bin`, `hook_timeout`): programs the monitor runs with the facts of a
//! decision in `MMM_*` environment variables (keepalived's notify, MHA's report_script).
//!
//! - `notify_bin` runs for every state change, role move and failover ([`notify_env`]), one
//!   run at a time in the order of the decisions, on a task of its own: a slow or hanging
//!   hook delays later notifications, never the core.
//! - `post_failover_bin` runs (same queue) for a [`Decision::Failover`].
//! - `pre_failover_bin` runs at once for an [`Action::PreFailover`](crate::core::Action)
//!   and its verdict goes back to the core (exit 0 allows the failover; anything else, a
//!   timeout included, holds it).
//!
//! Every run: no shell, no arguments, stdin `/dev/null`, a process group of its own that
//! is killed (SIGKILL) at `hook_timeout`; its output (stdout and stderr, up to
//! [`MAX_OUTPUT`] bytes) is logged at INFO (WARN when it failed).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mmm_common::config::MonitorSettings;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::core::Decision;

/// Output kept from a hook run (the rest is dropped).
pub const MAX_OUTPUT: usize = 64 * 1024;

/// Notifications queued beyond this are dropped (with a WARN): a hook that hangs every
/// time must not make the monitor's memory grow.
pub const MAX_QUEUED: usize = 1000;

/// How a hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Exit status 0.
    Ok,
    /// Non-zero exit status (or killed by a signal: -1).
    Failed(i32),
    /// Killed at `hook_timeout`.
    TimedOut(Duration),
    /// Could not be started.
    NotStarted(String),
}

/// One finished run: how it ended, what it printed, how long it took.
#[derive(Debug, Clone)]
pub struct HookRun {
    /// How it ended.
    pub outcome: HookOutcome,
    /// stdout and stderr (interleaved as read, up to [`MAX_OUTPUT`]).
    pub output: String,
    /// How long it ran.
    pub took: Duration,
}

impl HookRun {
    /// Exit status or timeout and the output's first lines, for a log line or `show`.
    pub fn summary(&self) -> String {
        let status = match &self.outcome {
            HookOutcome::Ok => "exit 0".to_string(),
            HookOutcome::Failed(rc) => format!("exit {rc}"),
            HookOutcome::TimedOut(t) => format!("killed after hook_timeout {} s", t.as_secs_f64()),
            HookOutcome::NotStarted(e) => format!("can't start: {e}"),
        };
        let out = self.output.trim();
        if out.is_empty() {
            status
        } else {
            format!("{status}; output: {}", out.replace('\n', " | "))
        }
    }
}

/// A finished hook run as the decision audit records it (`kind` `hook_run`).
#[derive(Debug, Clone)]
pub struct HookReport {
    /// `notify_bin`, `pre_failover_bin`, `post_failover_bin`.
    pub what: &'static str,
    /// The program.
    pub program: String,
    /// The event it was run for (`MMM_EVENT`).
    pub event: String,
    /// The host the event is about (`MMM_HOST`), if any.
    pub host: Option<String>,
    /// Exit 0.
    pub ok: bool,
    /// Exit status or timeout and the output's first lines.
    pub summary: String,
    /// How long it ran.
    pub took: Duration,
}

impl HookReport {
    fn of(
        what: &'static str,
        program: &str,
        env: &BTreeMap<String, String>,
        run: &HookRun,
    ) -> HookReport {
        HookReport {
            what,
            program: program.to_string(),
            event: env.get("MMM_EVENT").cloned().unwrap_or_default(),
            host: env
                .get("MMM_HOST")
                .or_else(|| env.get("MMM_NEW_HOST"))
                .cloned(),
            ok: run.outcome == HookOutcome::Ok,
            summary: run.summary(),
            took: run.took,
        }
    }
}

/// Where finished runs are reported (the driver: the decision audit).
pub type Reporter = std::sync::Arc<dyn Fn(HookReport) + Send + Sync>;

/// Runs `program` with `env` under `timeout`, killing its process group on timeout.
pub async fn run_hook(program: &str, env: &BTreeMap<String, String>, timeout: Duration) -> HookRun {
    let started = Instant::now();
    let mut cmd = Command::new(program);
    cmd.envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return HookRun {
                outcome: HookOutcome::NotStarted(e.to_string()),
                output: String::new(),
                took: started.elapsed(),
            }
        }
    };
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(s) = stdout.as_mut() {
                let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut err).await;
            }
        };
        let (status, _, _) = tokio::join!(child.wait(), read_out, read_err);
        out.extend_from_slice(&err);
        (status, out)
    };
    let (outcome, output) = match tokio::time::timeout(timeout, work).await {
        Ok((Ok(status), out)) => (
            if status.success() {
                HookOutcome::Ok
            } else {
                HookOutcome::Failed(status.code().unwrap_or(-1))
            },
            out,
        ),
        Ok((Err(e), out)) => (HookOutcome::NotStarted(e.to_string()), out),
        Err(_) => {
            if let Some(pgid) = pgid {
                // The whole group: the program and whatever it started.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            (HookOutcome::TimedOut(timeout), Vec::new())
        }
    };
    let mut output = String::from_utf8_lossy(&output).into_owned();
    output.truncate(MAX_OUTPUT);
    HookRun {
        outcome,
        output,
        took: started.elapsed(),
    }
}

/// Logs a finished run of hook `what` (`notify_bin`, …).
fn log_run(what: &str, program: &str, event: &str, run: &HookRun) {
    let ms = run.took.as_millis();
    if run.outcome == HookOutcome::Ok {
        info!(
            "{what} {program} ({event}) ended after {ms} ms: {}",
            run.summary()
        );
    } else {
        warn!(
            "{what} {program} ({event}) failed after {ms} ms: {}",
            run.summary()
        );
    }
}

/// The environment of a `notify_bin` / `post_failover_bin` run for `d`, or `None` when `d`
/// is not an event hooks are told about. `time` is epoch seconds. Variables (all strings):
/// `MMM_EVENT` (`state_change`, `admin_state_change`, `role_assigned`, `role_moved`,
/// `role_removed`, `admin_move_role`, `admin_set_ip`, `failover`, `failover_held`,
/// `mode_change`), `MMM_MESSAGE` (the log line), `MMM_LEVEL` (`FATAL`, …), `MMM_TIME`, and
/// as the event has them: `MMM_HOST`, `MMM_OLD_STATE`, `MMM_NEW_STATE`, `MMM_REASON`,
/// `MMM_ROLE`, `MMM_ROLE_IP`, `MMM_OLD_HOST`, `MMM_NEW_HOST`, `MMM_OLD_MODE`,
/// `MMM_NEW_MODE`.
pub fn notify_env(d: &Decision, time: i64) -> Option<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(format!("MMM_{k}"), v);
    };
    let event = match d {
        Decision::StateChanged {
            name,
            from,
            to,
            reason,
            ..
        } => {
            set("HOST", name.clone());
            set("OLD_STATE", from.to_string());
            set("NEW_STATE", to.to_string());
            set("REASON", reason.word().into());
            "state_change"
        }
        Decision::AdminStateChanged { name, from, to, .. } => {
            set("HOST", name.clone());
            set("OLD_STATE", from.to_string());
            set("NEW_STATE", to.to_string());
            set("REASON", "admin".into());
            "admin_state_change"
        }
        Decision::OrphanAssigned { name, role, .. } => {
            set("HOST", name.clone());
            set("NEW_HOST", name.clone());
            role_vars(&mut set, role);
            "role_assigned"
        }
        Decision::RoleMoved { role, from, to, .. } => {
            set("HOST", to.clone());
            set("OLD_HOST", from.clone());
            set("NEW_HOST", to.clone());
            role_vars(&mut set, role);
            "role_moved"
        }
        Decision::RoleRemoved { name, role, .. } => {
            set("HOST", name.clone());
            set("OLD_HOST", name.clone());
            role_vars(&mut set, role);
            "role_removed"
        }
        Decision::AdminMovedRole { role, from, to, .. } => {
            set("HOST", to.clone());
            set("OLD_HOST", from.clone());
            set("NEW_HOST", to.clone());
            set("ROLE", role.clone());
            "admin_move_role"
        }
        Decision::AdminSetIp { name, role, .. } => {
            set("HOST", name.clone());
            set("NEW_HOST", name.clone());
            role_vars(&mut set, role);
            "admin_set_ip"
        }
        Decision::Failover { role, from, to, .. } => {
            set("HOST", to.clone());
            set("OLD_HOST", from.clone());
            set("NEW_HOST", to.clone());
            role_vars(&mut set, role);
            "failover"
        }
        Decision::FailoverHeld { role, from, to, .. } => {
            set("OLD_HOST", from.clone());
            set("NEW_HOST", to.clone());
            role_vars(&mut set, role);
            "failover_held"
        }
        Decision::ModeChanged { from, to } => {
            set("OLD_MODE", from.to_string());
            set("NEW_MODE", to.to_string());
            "mode_change"
        }
        Decision::HaHold { on, mode } => {
            set("MODE", mode.to_string());
            if *on {
                "ha_hold"
            } else {
                "ha_resume"
            }
        }
        _ => return None,
    };
    set("EVENT", event.into());
    set("MESSAGE", d.to_string());
    set("LEVEL", d.level().as_mmm().trim().into());
    set("TIME", time.to_string());
    Some(env)
}

/// The environment of a `pre_failover_bin` run: `MMM_EVENT=pre_failover`, `MMM_ROLE`,
/// `MMM_ROLE_IP`, `MMM_OLD_HOST`, `MMM_NEW_HOST`, `MMM_TIME`.
pub fn pre_failover_env(
    role: &mmm_common::role::RoleIp,
    from: &str,
    to: &str,
    time: i64,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(format!("MMM_{k}"), v);
    };
    set("EVENT", "pre_failover".into());
    role_vars(&mut set, role);
    set("OLD_HOST", from.into());
    set("NEW_HOST", to.into());
    set("HOST", to.into());
    set("TIME", time.to_string());
    env
}

fn role_vars(set: &mut impl FnMut(&str, String), role: &mmm_common::role::RoleIp) {
    set("ROLE", role.role.clone());
    set("ROLE_IP", role.ip.clone());
}

/// One queued notification: which program, its environment.
struct Job {
    what: &'static str,
    program: String,
    env: BTreeMap<String, String>,
}

/// The monitor's hooks: the driver calls [`Hooks::decisions`] once per batch of decisions
/// and [`Hooks::pre_failover`] for a gated failover.
pub struct Hooks {
    notify_bin: Option<String>,
    post_failover_bin: Option<String>,
    pre_failover_bin: Option<String>,
    timeout: Duration,
    queue: Option<mpsc::Sender<Job>>,
    report: Option<Reporter>,
}

impl Hooks {
    /// The hooks of `config`; starts the notification task when a hook is configured (call
    /// within the runtime).
    pub fn new(config: &MonitorSettings, report: Option<Reporter>) -> Hooks {
        let ext = &config.ext;
        let queue = if ext.notify_bin.is_some() || ext.post_failover_bin.is_some() {
            let (tx, mut rx) = mpsc::channel::<Job>(MAX_QUEUED);
            let timeout = ext.hook_timeout;
            let report = report.clone();
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    let event = job.env.get("MMM_EVENT").cloned().unwrap_or_default();
                    let run = run_hook(&job.program, &job.env, timeout).await;
                    log_run(job.what, &job.program, &event, &run);
                    if let Some(r) = &report {
                        r(HookReport::of(job.what, &job.program, &job.env, &run));
                    }
                }
            });
            Some(tx)
        } else {
            None
        };
        Hooks {
            notify_bin: ext.notify_bin.clone(),
            post_failover_bin: ext.post_failover_bin.clone(),
            pre_failover_bin: ext.pre_failover_bin.clone(),
            timeout: ext.hook_timeout,
            queue,
            report,
        }
    }

    /// Queues `notify_bin` for each decision it is told about, and `post_failover_bin` for
    /// a failover. Never waits.
    pub fn decisions(&self, batch: &[Decision]) {
        let Some(queue) = &self.queue else { return };
        let time = crate::checks::wall_now();
        for d in batch {
            let Some(env) = notify_env(d, time) else {
                continue;
            };
            let mut jobs = Vec::new();
            if let (Some(p), Decision::Failover { .. }) = (&self.post_failover_bin, d) {
                let mut env = env.clone();
                env.insert("MMM_EVENT".into(), "post_failover".into());
                jobs.push(Job {
                    what: "post_failover_bin",
                    program: p.clone(),
                    env,
                });
            }
            if let Some(p) = &self.notify_bin {
                jobs.push(Job {
                    what: "notify_bin",
                    program: p.clone(),
                    env,
                });
            }
            for job in jobs {
                if queue.try_send(job).is_err() {
                    warn!("Hook queue full ({MAX_QUEUED} runs waiting): a notification was dropped: {d}");
                }
            }
        }
    }

    /// Runs `pre_failover_bin` on a task of its own and calls `done(allowed, why)` with the
    /// verdict. Without the directive, allows at once.
    pub fn pre_failover(
        &self,
        role: mmm_common::role::RoleIp,
        from: String,
        to: String,
        done: impl FnOnce(bool, String) + Send + 'static,
    ) {
        let Some(program) = self.pre_failover_bin.clone() else {
            done(true, String::new());
            return;
        };
        let timeout = self.timeout;
        let report = self.report.clone();
        tokio::spawn(async move {
            let env = pre_failover_env(&role, &from, &to, crate::checks::wall_now());
            info!("Running pre_failover_bin {program} for the failover of role '{role}' from host '{from}' to host '{to}'");
            let run = run_hook(&program, &env, timeout).await;
            log_run("pre_failover_bin", &program, "pre_failover", &run);
            if let Some(r) = &report {
                r(HookReport::of("pre_failover_bin", &program, &env, &run));
            }
            done(run.outcome == HookOutcome::Ok, run.summary());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::HostId;
    use mmm_common::role::RoleIp;
    use mmm_common::state::HostState;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> String {
        let p = dir.join("hook");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn state_change_env() {
        let d = Decision::StateChanged {
            host: HostId(0),
            name: "db1".into(),
            from: HostState::Online,
            to: HostState::HardOffline,
            reason: crate::core::Reason::PingMysql {
                ping: false,
                mysql: false,
            },
        };
        let env = notify_env(&d, 1_700_000_000).unwrap();
        assert_eq!(env["MMM_EVENT"], "state_change");
        assert_eq!(env["MMM_HOST"], "db1");
        assert_eq!(env["MMM_OLD_STATE"], "ONLINE");
        assert_eq!(env["MMM_NEW_STATE"], "HARD_OFFLINE");
        assert_eq!(env["MMM_REASON"], "ping_mysql");
        assert_eq!(env["MMM_LEVEL"], "FATAL");
        assert_eq!(env["MMM_TIME"], "1700000000");
        assert_eq!(
            env["MMM_MESSAGE"],
            "State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: not OK, mysql: not OK)"
        );
    }

    #[test]
    fn role_move_and_failover_env() {
        let role = RoleIp::new("writer", "198.18.2.188");
        let d = Decision::RoleMoved {
            host: HostId(1),
            role: role.clone(),
            from: "db2".into(),
            to: "db1".into(),
            preferred: true,
        };
        let env = notify_env(&d, 0).unwrap();
        assert_eq!(env["MMM_EVENT"], "role_moved");
        assert_eq!(env["MMM_ROLE"], "writer");
        assert_eq!(env["MMM_ROLE_IP"], "198.18.2.188");
        assert_eq!(env["MMM_OLD_HOST"], "db2");
        assert_eq!(env["MMM_NEW_HOST"], "db1");
        let d = Decision::Failover {
            host: HostId(1),
            role: role.clone(),
            from: "db1".into(),
            to: "db2".into(),
        };
        assert_eq!(notify_env(&d, 0).unwrap()["MMM_EVENT"], "failover");
        let env = pre_failover_env(&role, "db1", "db2", 5);
        assert_eq!(env["MMM_EVENT"], "pre_failover");
        assert_eq!(env["MMM_NEW_HOST"], "db2");
        // Check verdicts are not hook events.
        assert!(notify_env(&Decision::Network { up: true }, 0).is_none());
    }

    #[tokio::test]
    async fn run_captures_output_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "echo out $MMM_EVENT; echo err >&2; exit 3");
        let env = BTreeMap::from([("MMM_EVENT".to_string(), "x".to_string())]);
        let run = run_hook(&p, &env, Duration::from_secs(20)).await;
        assert_eq!(run.outcome, HookOutcome::Failed(3));
        assert!(run.output.contains("out x"), "{}", run.output);
        assert!(run.output.contains("err"), "{}", run.output);
        assert!(run.summary().starts_with("exit 3; output: "));
    }

    #[tokio::test]
    async fn hanging_hook_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let p = script(
            dir.path(),
            &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
        );
        let run = run_hook(&p, &BTreeMap::new(), Duration::from_millis(500)).await;
        assert_eq!(
            run.outcome,
            HookOutcome::TimedOut(Duration::from_millis(500))
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: gone (or a zombie being reaped) soon.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                break;
            }
            assert!(Instant::now() < deadline, "child {pid} still alive: {stat}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn missing_program_is_reported() {
        let run = run_hook(
            "/nonexistent/hook",
            &BTreeMap::new(),
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(run.outcome, HookOutcome::NotStarted(_)));
    }
}
