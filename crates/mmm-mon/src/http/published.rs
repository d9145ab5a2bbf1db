//! [`Published`]: what the driver hands the HTTP listener after each batch of actions (the
//! core's [`Snapshot`], a copy of the audit ring, the decision counters), through a
//! `tokio::sync::watch` channel: the listener clones an `Arc` and never touches the core, so
//! no request can delay a decision. [`Tally`] counts the decisions for the metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use mmm_common::state::HostState;

use crate::audit::AuditEvent;
use crate::checks::Observed;
use crate::core::{CheckKind, Decision, Snapshot};

/// One publication.
#[derive(Debug, Clone)]
pub struct Published {
    /// The facts of `show` and `checks all`.
    pub snapshot: Snapshot,
    /// The audit ring (oldest first), shared between publications until it changes.
    pub events: Arc<Vec<AuditEvent>>,
    /// The decision counters.
    pub tally: Tally,
    /// Check run times and replication lags (written by the check tasks).
    pub observed: Arc<Observed>,
    /// `semi_sync` is on (else the lossless state is not known, not false).
    pub semi_sync: bool,
    /// Monitor HA (`etcd_endpoints` set): what this monitor is.
    pub ha: Option<HaView>,
}

/// Monitor HA as the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaView {
    /// This monitor leads (also while holding).
    pub leading: bool,
    /// It leads but etcd does not confirm it: roles held.
    pub holding: bool,
    /// Its term when leading, else the leader's it knows (0: none known).
    pub term: u64,
}

impl HaView {
    /// The view of a leadership state.
    pub fn of(l: &crate::ha::Leadership) -> HaView {
        use crate::ha::Leadership;
        match l {
            Leadership::Leading { term, .. } => HaView {
                leading: true,
                holding: false,
                term: *term,
            },
            Leadership::Holding { term } => HaView {
                leading: true,
                holding: true,
                term: *term,
            },
            Leadership::Follower { leader, .. } => HaView {
                leading: false,
                holding: false,
                term: leader.as_ref().map_or(0, |l| l.term),
            },
        }
    }
}

/// Counters fed from the decisions (since the monitor started).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Failovers of the active master by the cause of the old one's failure (the reason
    /// word of its state change, `unknown` when none was seen).
    pub failovers: BTreeMap<String, u64>,
    /// Role moves by (role, cause): `failover`, `preferred`, `balance`, `admin`, `orphan`.
    pub role_moves: BTreeMap<(String, String), u64>,
    /// Held or refused failovers by reason (`pre_failover_bin`, `agent_lease`, `semi_sync`).
    pub failovers_held: BTreeMap<String, u64>,
    /// Seconds from the old active master's first failed check to the decision that gave
    /// the writer role to the new one, for the last failover where both are known.
    pub last_failover_seconds: Option<f64>,
    /// The last semi-sync verdict (`None`: none yet).
    pub semi_sync_lossless: Option<bool>,
    /// Per host: when its failure was first observed (cleared when it is ONLINE again).
    failing_since: HashMap<String, Instant>,
    /// Per host: the reason word of its last state change away from ONLINE.
    down_reason: HashMap<String, String>,
}

impl Tally {
    /// Counts one batch of decisions made at `now`.
    pub fn count(&mut self, decisions: &[Decision], now: Instant) {
        // An orphan assignment in the same batch as a failover is that failover's move.
        let failed_over = decisions.iter().any(|d| {
            matches!(
                d,
                Decision::FailoverMayLoseWrites { .. } | Decision::LosslessFailover { .. }
            )
        });
        for d in decisions {
            match d {
                Decision::CheckFailed {
                    name,
                    check: CheckKind::Ping | CheckKind::Mysql,
                    failing_for,
                    ..
                } => {
                    let since = now.checked_sub(*failing_for).unwrap_or(now);
                    self.failing_since.entry(name.clone()).or_insert(since);
                }
                Decision::StateChanged {
                    name, to, reason, ..
                } => {
                    if *to == HostState::Online {
                        self.failing_since.remove(name);
                        self.down_reason.remove(name);
                    } else {
                        self.down_reason
                            .insert(name.clone(), reason.word().to_string());
                    }
                }
                Decision::AdminStateChanged { name, to, .. } => {
                    if *to == HostState::Online {
                        self.failing_since.remove(name);
                        self.down_reason.remove(name);
                    } else {
                        self.down_reason.insert(name.clone(), "admin".to_string());
                    }
                }
                Decision::FailoverMayLoseWrites { old, .. }
                | Decision::LosslessFailover { old, .. } => {
                    let cause = self
                        .down_reason
                        .get(old)
                        .cloned()
                        .unwrap_or_else(|| "unknown".to_string());
                    *self.failovers.entry(cause).or_default() += 1;
                    if let Some(since) = self.failing_since.get(old) {
                        self.last_failover_seconds = Some(now.duration_since(*since).as_secs_f64());
                    }
                }
                Decision::OrphanAssigned { role, .. } => {
                    let cause = if failed_over { "failover" } else { "orphan" };
                    self.add_move(&role.role, cause);
                }
                Decision::RoleMoved {
                    role, preferred, ..
                } => self.add_move(&role.role, if *preferred { "preferred" } else { "balance" }),
                Decision::AdminMovedRole { role, .. } => self.add_move(role, "admin"),
                Decision::FailoverHeld { .. } => self.add_held("pre_failover_bin"),
                Decision::LeaseWait { .. } => self.add_held("agent_lease"),
                Decision::PromotionRefused { .. } => self.add_held("semi_sync"),
                Decision::SemiSyncState { lossless, .. } => {
                    self.semi_sync_lossless = Some(*lossless)
                }
                _ => {}
            }
        }
    }

    fn add_move(&mut self, role: &str, cause: &str) {
        *self
            .role_moves
            .entry((role.to_string(), cause.to_string()))
            .or_default() += 1;
    }

    fn add_held(&mut self, reason: &str) {
        *self.failovers_held.entry(reason.to_string()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{HostId, Reason};
    use mmm_common::role::RoleIp;
    use std::time::Duration;

    /// A failover is counted by its cause, its orphan assignment as a failover move, and
    /// its duration runs from the old writer's first failed check.
    #[test]
    fn failover_is_counted_with_cause_and_duration() {
        let t0 = Instant::now();
        let mut t = Tally::default();
        t.count(
            &[Decision::CheckFailed {
                host: HostId(0),
                name: "db1".into(),
                check: CheckKind::Mysql,
                failing_for: Duration::from_secs(2),
                message: "ERROR".into(),
            }],
            t0 + Duration::from_secs(2),
        );
        t.count(
            &[
                Decision::StateChanged {
                    host: HostId(0),
                    name: "db1".into(),
                    from: HostState::Online,
                    to: HostState::HardOffline,
                    reason: Reason::PingMysql {
                        ping: true,
                        mysql: false,
                    },
                },
                Decision::OrphanAssigned {
                    host: HostId(1),
                    name: "db2".into(),
                    role: RoleIp::new("writer", "198.18.0.188"),
                },
                Decision::FailoverMayLoseWrites {
                    host: HostId(1),
                    name: "db2".into(),
                    old: "db1".into(),
                },
            ],
            t0 + Duration::from_secs(3),
        );
        assert_eq!(t.failovers.get("ping_mysql"), Some(&1));
        assert_eq!(
            t.role_moves
                .get(&("writer".to_string(), "failover".to_string())),
            Some(&1)
        );
        let secs = t.last_failover_seconds.expect("duration");
        assert!((secs - 3.0).abs() < 0.01, "{secs}");
        t.count(
            &[Decision::AdminMovedRole {
                host: HostId(0),
                role: "writer".into(),
                from: "db2".into(),
                to: "db1".into(),
                forced: false,
            }],
            t0 + Duration::from_secs(9),
        );
        assert_eq!(
            t.role_moves
                .get(&("writer".to_string(), "admin".to_string())),
            Some(&1)
        );
    }
}
