//! The decision audit (issue 17): every [`Decision`] the core makes above DEBUG (state
//! changes, role moves, held failovers with their reason, admin commands, agent
//! reachability, check verdicts) as an [`AuditEvent`] {seq, time, level, kind, host,
//! fields, message = 2.2.1's log line}. Kept in a bounded ring in memory and appended as
//! JSON lines to a file (`audit_log`, by default beside the log file) by a writer thread,
//! so a slow disk never holds up the core. At start the tail of the file is read back into
//! the ring, so the audit survives restarts; a corrupt line is skipped with a WARN.

use std::collections::VecDeque;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tracing::warn;

use crate::core::{Decision, Level};

/// Events kept in memory.
pub const RING_CAPACITY: usize = 1000;

/// How much of the end of the file is read back at start.
const RELOAD_TAIL_BYTES: u64 = 4 << 20;

/// At most this many corrupt lines are named one by one at start (then one summary).
const MAX_CORRUPT_WARNINGS: usize = 5;

/// One audited decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increases by one per event, also across restarts.
    pub seq: u64,
    /// Epoch seconds (millisecond precision).
    pub time: f64,
    /// MMM's level word (`FATAL`, `ERROR`, `WARN`, `INFO`).
    pub level: String,
    /// What happened (`state_changed`, `role_moved`, `admin_moved_role`, …).
    pub kind: String,
    /// The host concerned, if any.
    pub host: Option<String>,
    /// The decision's facts.
    pub fields: Map<String, Value>,
    /// 2.2.1's log line.
    pub message: String,
}

/// The kind name and the facts of a decision (`None`: not audited, DEBUG).
pub fn describe(d: &Decision) -> Option<(&'static str, Option<String>, Map<String, Value>)> {
    use Decision::*;
    if d.level() == Level::Debug {
        return None;
    }
    let (kind, host, fields) = match d {
        CheckOk { name, check, .. } => ("check_ok", Some(name), json!({"check": check.as_str()})),
        CheckUnknown {
            name,
            check,
            message,
            ..
        } => (
            "check_unknown",
            Some(name),
            json!({"check": check.as_str(), "result": message}),
        ),
        CheckFailed {
            name,
            check,
            failing_for,
            message,
            ..
        } => (
            "check_failed",
            Some(name),
            json!({"check": check.as_str(), "failing_for_s": failing_for.as_secs_f64(), "result": message}),
        ),
        Network { up } => ("network", None, json!({"up": up})),
        StateChanged {
            name,
            from,
            to,
            reason,
            ..
        } => (
            "state_changed",
            Some(name),
            json!({"from": from.to_string(), "to": to.to_string(), "reason": reason.word()}),
        ),
        Flapping { name, .. } => ("flapping", Some(name), json!({})),
        RolesCleared { name, .. } => ("roles_cleared", Some(name), json!({})),
        RoleRemoved { name, role, .. } => (
            "role_removed",
            Some(name),
            json!({"role": role.role, "ip": role.ip}),
        ),
        OrphanAssigned { name, role, .. } => (
            "orphan_assigned",
            Some(name),
            json!({"role": role.role, "ip": role.ip}),
        ),
        RoleMoved {
            role,
            from,
            to,
            preferred,
            ..
        } => (
            "role_moved",
            Some(to),
            json!({"role": role.role, "ip": role.ip, "from": from, "to": to,
                   "cause": if *preferred { "preferred" } else { "balance" }}),
        ),
        AgentAnswered { name, answer, .. } => {
            ("agent_answered", Some(name), json!({"answer": answer}))
        }
        AgentNoAnswer { name, error, .. } => {
            ("agent_no_answer", Some(name), json!({"error": error}))
        }
        AgentUnreachable {
            name, at_startup, ..
        } => (
            "agent_unreachable",
            Some(name),
            json!({"at_startup": at_startup}),
        ),
        AgentReachable { name, .. } => ("agent_reachable", Some(name), json!({})),
        KillHost { name, .. } => ("kill_host", Some(name), json!({})),
        LeaseKeepaliveFailed { name, error, .. } => (
            "lease_keepalive_failed",
            Some(name),
            json!({"error": error}),
        ),
        StaleActiveMaster { name, old, why, .. } => (
            "stale_active_master",
            Some(name),
            json!({"old": old, "why": why}),
        ),
        ErrantFound {
            name,
            active,
            count,
            ranges,
            ..
        } => (
            "errant_found",
            Some(name),
            json!({"active": active, "count": count, "ranges": ranges}),
        ),
        ErrantGuardUnavailable { name, why, .. } => {
            ("errant_guard_unavailable", Some(name), json!({"why": why}))
        }
        ErrantCleared { name, active, .. } => {
            ("errant_cleared", Some(name), json!({"active": active}))
        }
        ErrantAccepted { name, what, .. } => ("errant_accepted", Some(name), json!({"what": what})),
        PeerLinkResumed { name, answer, .. } => {
            ("peer_link_resumed", Some(name), json!({"answer": answer}))
        }
        SemiSyncState { lossless, why } => (
            "semi_sync_state",
            None,
            json!({"lossless": lossless, "why": why}),
        ),
        PromotionRefused {
            old,
            candidates,
            role,
            why,
            ..
        } => (
            "failover_refused",
            Some(old),
            json!({"reason": "semi_sync", "role": role, "candidates": candidates, "why": why}),
        ),
        LosslessFailover {
            name, old, seen, ..
        } => (
            "failover_lossless",
            Some(name),
            json!({"old": old, "seen": seen}),
        ),
        FailoverMayLoseWrites { name, old, .. } => {
            ("failover_may_lose_writes", Some(name), json!({"old": old}))
        }
        Failover { role, from, to, .. } => (
            "failover",
            Some(to),
            json!({"role": role.role, "ip": role.ip, "from": from, "to": to}),
        ),
        FailoverHeld {
            role,
            from,
            to,
            why,
            retry,
        } => (
            "failover_held",
            Some(to),
            json!({"reason": "pre_failover_bin", "role": role.role, "ip": role.ip, "from": from,
                   "why": why, "retry_s": retry.as_secs_f64()}),
        ),
        FailoverAllowed { role, from, to } => (
            "failover_allowed",
            Some(to),
            json!({"role": role.role, "ip": role.ip, "from": from}),
        ),
        LeaseWait {
            holder,
            gainer,
            wait,
        } => (
            "failover_held",
            Some(gainer),
            json!({"reason": "agent_lease", "holder": holder,
                   "wait_s": wait.map(|w| w.as_secs_f64())}),
        ),
        ModeChanged { from, to } => (
            "admin_mode_changed",
            None,
            json!({"from": from.as_str(), "to": to.as_str()}),
        ),
        HaHold { on, mode } => (
            if *on { "ha_hold" } else { "ha_resume" },
            None,
            json!({"mode": mode.as_str()}),
        ),
        AdminStateChanged { name, from, to, .. } => (
            "admin_state_changed",
            Some(name),
            json!({"from": from.to_string(), "to": to.to_string()}),
        ),
        AdminMovedRole {
            role,
            from,
            to,
            forced,
            ..
        } => (
            "admin_moved_role",
            Some(to),
            json!({"role": role, "from": from, "to": to, "forced": forced}),
        ),
        AdminSetIp { name, role, .. } => (
            "admin_set_ip",
            Some(name),
            json!({"role": role.role, "ip": role.ip}),
        ),
        WaitEndedBothOnline { first, second } => (
            "wait_ended",
            None,
            json!({"reason": "both_online", "masters": [first, second]}),
        ),
        WaitEndedTimeout { dead, waited } => (
            "wait_ended",
            Some(dead),
            json!({"reason": "timeout", "waited_s": waited.as_secs_f64()}),
        ),
        UnknownStoredHost { name } => ("unknown_stored_host", Some(name), json!({})),
        RoleGone { role, .. } => ("role_gone", None, json!({"role": role.role, "ip": role.ip})),
        RoleNotAllowed { name, role, .. } => (
            "role_not_allowed",
            Some(name),
            json!({"role": role.role, "ip": role.ip}),
        ),
        RoleOnSeveralHosts { role, hosts } => (
            "role_on_several_hosts",
            None,
            json!({"role": role.role, "ip": role.ip, "hosts": hosts}),
        ),
        StartupStatusUnknown {
            name,
            query,
            answer,
            ..
        } => (
            "startup_status_unknown",
            Some(name),
            json!({"query": format!("{query:?}").to_lowercase(), "answer": answer}),
        ),
        StartupTable(_) => ("startup_table", None, json!({})),
        MonitorStarted { mode } => ("monitor_started", None, json!({"mode": mode.as_str()})),
    };
    let fields = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Some((kind, host.cloned(), fields))
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

/// The audit: the ring and the file's writer thread.
#[derive(Debug)]
pub struct Audit {
    ring: VecDeque<AuditEvent>,
    next_seq: u64,
    writer: Option<mpsc::Sender<String>>,
}

impl Audit {
    /// An audit kept in memory only.
    pub fn in_memory() -> Audit {
        Audit {
            ring: VecDeque::new(),
            next_seq: 1,
            writer: None,
        }
    }

    /// An audit appended to `path`, its tail read back first (corrupt lines skipped with a
    /// WARN). A file that cannot be read is a WARN; the audit then starts empty.
    pub fn with_file(path: &Path) -> Audit {
        let mut audit = Audit::in_memory();
        match reload(path) {
            Ok(events) => {
                for e in events {
                    audit.next_seq = audit.next_seq.max(e.seq + 1);
                    audit.push_ring(e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!("Audit file '{}' could not be read: {e}", path.display()),
        }
        audit.writer = Some(spawn_writer(path.to_path_buf()));
        audit
    }

    fn push_ring(&mut self, e: AuditEvent) {
        if self.ring.len() == RING_CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(e);
    }

    /// Records the audited decisions of one batch; returns how many were recorded.
    pub fn record(&mut self, decisions: &[Decision]) -> usize {
        let time = epoch_now();
        let mut n = 0;
        for d in decisions {
            let Some((kind, host, fields)) = describe(d) else {
                continue;
            };
            let level = d.level().as_mmm().trim().to_string();
            self.append(time, level, kind, host, fields, d.to_string());
            n += 1;
        }
        n
    }

    /// Records a finished hook run (`kind` `hook_run`; INFO when it exited 0, else WARN).
    pub fn record_hook(&mut self, r: &crate::hooks::HookReport) {
        let fields = json!({"hook": r.what, "program": r.program, "event": r.event,
                            "ok": r.ok, "result": r.summary,
                            "took_s": r.took.as_secs_f64()});
        let fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let message = format!(
            "{} {} ({}) {} after {} ms: {}",
            r.what,
            r.program,
            r.event,
            if r.ok { "ended" } else { "failed" },
            r.took.as_millis(),
            r.summary
        );
        let level = if r.ok { "INFO" } else { "WARN" };
        self.append(
            epoch_now(),
            level.to_string(),
            "hook_run",
            r.host.clone(),
            fields,
            message,
        );
    }

    fn append(
        &mut self,
        time: f64,
        level: String,
        kind: &str,
        host: Option<String>,
        fields: Map<String, Value>,
        message: String,
    ) {
        let e = AuditEvent {
            seq: self.next_seq,
            time,
            level,
            kind: kind.to_string(),
            host,
            fields,
            message,
        };
        self.next_seq += 1;
        if let Some(w) = &self.writer {
            if let Ok(line) = serde_json::to_string(&e) {
                let _ = w.send(line);
            }
        }
        self.push_ring(e);
    }

    /// The events after epoch second `since` (all when `None`), the last `limit` of them.
    pub fn events(&self, since: Option<f64>, limit: usize) -> Vec<AuditEvent> {
        let matching: Vec<&AuditEvent> = self
            .ring
            .iter()
            .filter(|e| since.is_none_or(|s| e.time > s))
            .collect();
        let skip = matching.len().saturating_sub(limit);
        matching.into_iter().skip(skip).cloned().collect()
    }
}

/// Reads the last [`RELOAD_TAIL_BYTES`] of `path` (the last [`RING_CAPACITY`] events).
fn reload(path: &Path) -> std::io::Result<Vec<AuditEvent>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(RELOAD_TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut reader = std::io::BufReader::new(f);
    if start > 0 {
        // Skip the partial first line.
        let mut skip = Vec::new();
        reader.read_until(b'\n', &mut skip)?;
    }
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    // A line that is not UTF-8 is corrupt like any other: read lossily, skip it below.
    let text = String::from_utf8_lossy(&bytes);
    let mut events = VecDeque::new();
    let mut corrupt = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditEvent>(line) {
            Ok(e) => {
                if events.len() == RING_CAPACITY {
                    events.pop_front();
                }
                events.push_back(e);
            }
            Err(err) => {
                corrupt += 1;
                if corrupt <= MAX_CORRUPT_WARNINGS {
                    warn!(
                        "Audit file '{}': skipped a corrupt line ({} of the part read): {err}",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
    }
    if corrupt > MAX_CORRUPT_WARNINGS {
        warn!(
            "Audit file '{}': skipped {corrupt} corrupt lines in all",
            path.display()
        );
    }
    Ok(events.into())
}

/// The writer thread: appends each line to `path` (opened per batch, so a rotated file is
/// re-created); a failure is a WARN (once until a write succeeds again).
fn spawn_writer(path: PathBuf) -> mpsc::Sender<String> {
    let (tx, rx) = mpsc::channel::<String>();
    let spawned = std::thread::Builder::new()
        .name("mmm-audit".into())
        .spawn(move || {
            let mut failing = false;
            while let Ok(first) = rx.recv() {
                let mut batch = first;
                batch.push('\n');
                while let Ok(more) = rx.try_recv() {
                    batch.push_str(&more);
                    batch.push('\n');
                }
                let r = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(batch.as_bytes()));
                match r {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        warn!("Can't append to audit file '{}': {e}", path.display());
                    }
                    Err(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        warn!("Can't start the audit writer: {e}");
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::HostId;
    use mmm_common::role::RoleIp;
    use mmm_common::state::HostState;
    use std::time::Duration;

    fn failover() -> Vec<Decision> {
        vec![
            Decision::StateChanged {
                host: HostId(0),
                name: "db1".into(),
                from: HostState::Online,
                to: HostState::HardOffline,
                reason: crate::core::Reason::PingMysql {
                    ping: true,
                    mysql: false,
                },
            },
            Decision::RoleRemoved {
                host: HostId(0),
                name: "db1".into(),
                role: RoleIp::new("writer", "198.18.0.188"),
            },
            Decision::LeaseKeepaliveFailed {
                host: HostId(0),
                name: "db1".into(),
                error: "x".into(),
            },
            Decision::LeaseWait {
                holder: "db1".into(),
                gainer: "db2".into(),
                wait: Some(Duration::from_millis(1500)),
            },
        ]
    }

    /// Each audited decision becomes one event with its kind, host, facts and 2.2.1's
    /// exact log line; DEBUG decisions are left out; seq increases.
    #[test]
    fn decisions_become_events() {
        let mut a = Audit::in_memory();
        assert_eq!(a.record(&failover()), 3);
        let ev = a.events(None, 100);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].kind, "state_changed");
        assert_eq!(ev[0].level, "FATAL");
        assert_eq!(ev[0].host.as_deref(), Some("db1"));
        assert_eq!(ev[0].fields["to"], "HARD_OFFLINE");
        assert_eq!(ev[0].fields["reason"], "ping_mysql");
        assert_eq!(
            ev[0].message,
            "State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK)"
        );
        assert_eq!(ev[1].kind, "role_removed");
        assert_eq!(ev[2].kind, "failover_held");
        assert_eq!(ev[2].fields["reason"], "agent_lease");
        assert_eq!(ev[2].level, "WARN");
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        // limit keeps the newest; since filters by time.
        assert_eq!(a.events(None, 1)[0].seq, 3);
        assert!(a.events(Some(ev[2].time), 100).is_empty());
    }

    /// The ring is bounded.
    #[test]
    fn ring_is_bounded() {
        let mut a = Audit::in_memory();
        for _ in 0..(RING_CAPACITY / 3 + 10) {
            a.record(&failover());
        }
        let ev = a.events(None, usize::MAX);
        assert_eq!(ev.len(), RING_CAPACITY);
        assert_eq!(ev.last().map(|e| e.seq), Some(a.next_seq - 1));
    }

    /// Events written to the file are read back at the next start (seq continues); a
    /// corrupt or truncated line is skipped, never a panic.
    #[test]
    fn file_survives_restart_and_corrupt_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mmm_mond.audit.jsonl");
        {
            let mut a = Audit::with_file(&path);
            a.record(&failover());
        }
        // The writer thread appends asynchronously: wait for the 3 lines.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            < 3
        {
            assert!(
                std::time::Instant::now() < deadline,
                "audit lines not written"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"{not json\n\xff\xfe garbage\n{\"seq\":9,\"time\":1.0,\"level\"")
            .expect("write");
        drop(f);
        let a = Audit::with_file(&path);
        let ev = a.events(None, 100);
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert_eq!(ev[0].kind, "state_changed");
        assert_eq!(a.next_seq, 4);
    }
}
