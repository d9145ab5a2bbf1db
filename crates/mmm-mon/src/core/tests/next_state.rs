//! §3.6 transition table, called directly: one test per row (or group of rows) of the
//! table in spec order, on a [`View`] built by hand, without a `Monitor`. The row tests in
//! `transitions.rs` drive the same rows through a whole monitor.

use super::*;
use crate::core::transitions::{effect, next_state, Effect, PeerView, Verdicts, View};

const SEC: Duration = Duration::from_secs(1);

const ALL_OK: Verdicts = Verdicts {
    ping: true,
    mysql: true,
    rep_threads: true,
    rep_backlog: true,
};

/// A host in `state` with every check OK, an active master elsewhere, no peer, not
/// flapping, no uptime seen, auto_set_online off.
fn view(state: HostState) -> View {
    View {
        state,
        checks: ALL_OK,
        is_active_master: false,
        has_active_master: true,
        can_be_master: false,
        peer: None,
        flapping: false,
        in_state_for: Duration::ZERO,
        checks_quiet_for: None,
        uptime: 0.0,
        last_uptime: 0.0,
        auto_set_online: Duration::ZERO,
        flap_duration: Duration::from_secs(3600),
        errant_hold: false,
        errant_found: false,
    }
}

fn with(mut v: View, f: impl FnOnce(&mut Verdicts)) -> View {
    f(&mut v.checks);
    v
}

/// A peer ONLINE for `online_for`, its ping and mysql OK.
fn peer_online(online_for: Duration) -> Option<PeerView> {
    Some(PeerView {
        state: HostState::Online,
        reachable: true,
        online_for: Some(online_for),
    })
}

use HostState::{
    AdminOffline, AwaitingRecovery, HardOffline, Online, ReplicationDelay, ReplicationFail,
};

/// Row "ADMIN_OFFLINE | always | (unchanged)": whatever the checks say.
#[test]
fn admin_offline_always_unchanged() {
    let v = with(view(AdminOffline), |c| {
        *c = Verdicts {
            ping: false,
            mysql: false,
            rep_threads: false,
            rep_backlog: false,
        }
    });
    assert_eq!(next_state(&v), None);
    assert_eq!(next_state(&view(AdminOffline)), None);
}

/// Row "ONLINE | not (P and M) | HARD_OFFLINE" (the log names both verdicts; side effect:
/// unless manual, clear roles, send, kill-on-fail). First match: it wins over "host = AM".
#[test]
fn online_not_p_and_m_goes_hard_offline() {
    let mut v = with(view(Online), |c| c.ping = false);
    v.is_active_master = true;
    let reason = Reason::PingMysql {
        ping: false,
        mysql: true,
    };
    assert_eq!(next_state(&v), Some((HardOffline, reason)));
    let v = with(view(Online), |c| c.mysql = false);
    assert_eq!(
        next_state(&v),
        Some((
            HardOffline,
            Reason::PingMysql {
                ping: true,
                mysql: false
            }
        ))
    );
    assert_eq!(effect(Online, HardOffline), Effect::Fail);
}

/// Row "ONLINE | host = AM | (unchanged)": replication problems of the active master are
/// ignored.
#[test]
fn online_active_master_ignores_replication() {
    let mut v = with(view(Online), |c| {
        c.rep_threads = false;
        c.rep_backlog = false;
    });
    v.is_active_master = true;
    v.peer = peer_online(100 * SEC);
    assert_eq!(next_state(&v), None);
}

/// Row "ONLINE | PS = ONLINE and peer.online_since ≥ now − 60 | (unchanged)": the grace
/// period after the peer came online; after it the next rows apply.
#[test]
fn online_peer_grace() {
    let mut v = with(view(Online), |c| c.rep_threads = false);
    v.peer = peer_online(60 * SEC);
    assert_eq!(next_state(&v), None);
    v.peer = peer_online(60 * SEC + Duration::from_millis(1));
    assert_eq!(next_state(&v), Some((ReplicationFail, Reason::Checks)));
}

/// Row "ONLINE | P, M, not T, PS = ONLINE, peer P and M | REPLICATION_FAIL" (also with B
/// failing); without an ONLINE, reachable peer nothing happens (derived property).
#[test]
fn online_replication_fail() {
    let mut v = with(view(Online), |c| {
        c.rep_threads = false;
        c.rep_backlog = false;
    });
    v.peer = peer_online(100 * SEC);
    assert_eq!(next_state(&v), Some((ReplicationFail, Reason::Checks)));
    assert_eq!(effect(Online, ReplicationFail), Effect::Fail);
    v.peer = Some(PeerView {
        reachable: false,
        ..peer_online(100 * SEC).expect("peer")
    });
    assert_eq!(next_state(&v), None);
    v.peer = Some(PeerView {
        state: HardOffline,
        ..peer_online(100 * SEC).expect("peer")
    });
    assert_eq!(next_state(&v), None);
    v.peer = None;
    assert_eq!(next_state(&v), None);
}

/// Row "ONLINE | P, M, T, not B, PS = ONLINE, peer P and M | REPLICATION_DELAY".
#[test]
fn online_replication_delay() {
    let mut v = with(view(Online), |c| c.rep_backlog = false);
    v.peer = peer_online(100 * SEC);
    assert_eq!(next_state(&v), Some((ReplicationDelay, Reason::Checks)));
    assert_eq!(next_state(&view(Online)), None);
}

/// Row "AWAITING_RECOVERY | not (P and M) | HARD_OFFLINE" (no send); with P and M but not
/// T and B the host stays (derived: no automatic return without replication).
#[test]
fn awaiting_recovery_hard_offline_or_stays() {
    let v = with(view(AwaitingRecovery), |c| c.mysql = false);
    assert_eq!(next_state(&v), Some((HardOffline, Reason::Checks)));
    assert_eq!(effect(AwaitingRecovery, HardOffline), Effect::None);
    let mut v = with(view(AwaitingRecovery), |c| c.rep_backlog = false);
    v.auto_set_online = 10 * SEC;
    v.in_state_for = 100 * SEC;
    assert_eq!(next_state(&v), None);
}

/// Row "AWAITING_RECOVERY | P, M, T, B and flapping | ONLINE only if auto_set_online > 0
/// and now − (host's last check change) ≥ flap_duration"; flapping disables the uptime
/// rule.
#[test]
fn awaiting_recovery_flapping() {
    let mut v = view(AwaitingRecovery);
    v.flapping = true;
    v.flap_duration = 300 * SEC;
    v.checks_quiet_for = Some(400 * SEC);
    v.in_state_for = 250 * SEC;
    v.last_uptime = 2000.0;
    v.uptime = 2009.0;
    assert_eq!(next_state(&v), None, "auto_set_online off");
    v.auto_set_online = 10 * SEC;
    v.checks_quiet_for = Some(299 * SEC);
    assert_eq!(next_state(&v), None, "a check changed within flap_duration");
    v.checks_quiet_for = Some(300 * SEC);
    assert_eq!(
        next_state(&v),
        Some((
            Online,
            Reason::FlapQuiet {
                flap_duration: 300 * SEC,
                in_state_secs: 250
            }
        ))
    );
    assert_eq!(effect(AwaitingRecovery, Online), Effect::Tell);
}

/// Row "AWAITING_RECOVERY | P, M, T, B, not flapping, last_uptime > 0 and 0 < uptime −
/// last_uptime < 60 | ONLINE"; a reboot (uptime < last_uptime) or no uptime seen while
/// ONLINE defeats it.
#[test]
fn awaiting_recovery_short_downtime() {
    let mut v = view(AwaitingRecovery);
    v.last_uptime = 2000.0;
    v.uptime = 2009.5;
    assert_eq!(
        next_state(&v),
        Some((Online, Reason::ShortDowntime { down_secs: 9 }))
    );
    v.uptime = 30.0;
    assert_eq!(next_state(&v), None, "rebooted");
    v.uptime = 2060.0;
    assert_eq!(next_state(&v), None, "down for a minute");
    v.last_uptime = 0.0;
    v.uptime = 5.0;
    assert_eq!(next_state(&v), None, "never seen ONLINE");
}

/// Row "AWAITING_RECOVERY | P, M, T, B, not flapping, auto_set_online > 0 and now −
/// last_state_change ≥ auto_set_online | ONLINE".
#[test]
fn awaiting_recovery_auto_set_online() {
    let mut v = view(AwaitingRecovery);
    v.auto_set_online = 10 * SEC;
    v.in_state_for = 9 * SEC;
    assert_eq!(next_state(&v), None);
    v.in_state_for = 10 * SEC;
    assert_eq!(
        next_state(&v),
        Some((
            Online,
            Reason::AutoSetOnline {
                after: 10 * SEC,
                in_state_secs: 10
            }
        ))
    );
}

/// Rows "HARD_OFFLINE | P and M, (AM ≠ '' or host cannot hold the active-master role), not
/// T | REPLICATION_FAIL", "same guard, T, not B | REPLICATION_DELAY", "P and M (otherwise)
/// | AWAITING_RECOVERY" (all with send); without P and M it stays.
#[test]
fn hard_offline_rows() {
    assert_eq!(
        next_state(&with(view(HardOffline), |c| c.ping = false)),
        None
    );
    let fail = with(view(HardOffline), |c| c.rep_threads = false);
    assert_eq!(next_state(&fail), Some((ReplicationFail, Reason::Checks)));
    let delay = with(view(HardOffline), |c| c.rep_backlog = false);
    assert_eq!(next_state(&delay), Some((ReplicationDelay, Reason::Checks)));
    assert_eq!(
        next_state(&view(HardOffline)),
        Some((AwaitingRecovery, Reason::Checks))
    );
    // no active master and the host can be master: the replication states are skipped
    let mut v = fail;
    v.has_active_master = false;
    v.can_be_master = true;
    assert_eq!(next_state(&v), Some((AwaitingRecovery, Reason::Checks)));
    // no active master, but the host cannot be master: the guard holds
    v.can_be_master = false;
    assert_eq!(next_state(&v), Some((ReplicationFail, Reason::Checks)));
    assert_eq!(effect(HardOffline, ReplicationFail), Effect::Tell);
}

/// Rows "REPLICATION_FAIL | P, M, T, not B | REPLICATION_DELAY" and "REPLICATION_DELAY |
/// P, M, not T | REPLICATION_FAIL" (no send).
#[test]
fn replication_fail_delay_swap() {
    let mut v = with(view(ReplicationFail), |c| c.rep_backlog = false);
    v.peer = peer_online(100 * SEC);
    assert_eq!(next_state(&v), Some((ReplicationDelay, Reason::Checks)));
    assert_eq!(effect(ReplicationFail, ReplicationDelay), Effect::None);
    let mut v = with(view(ReplicationDelay), |c| c.rep_threads = false);
    v.peer = peer_online(100 * SEC);
    assert_eq!(next_state(&v), Some((ReplicationFail, Reason::Checks)));
    assert_eq!(effect(ReplicationDelay, ReplicationFail), Effect::None);
    // still broken with the peer ONLINE: stays
    let mut v = with(view(ReplicationFail), |c| c.rep_threads = false);
    v.peer = peer_online(100 * SEC);
    assert_eq!(next_state(&v), None);
}

/// Rows "REPLICATION_FAIL / _DELAY | P, M and ((T and B) or PS ≠ ONLINE), flapping |
/// AWAITING_RECOVERY" and "... | ONLINE" (send): fixed, or the peer left ONLINE although
/// replication is still broken (derived property).
#[test]
fn replication_states_back() {
    for s in [ReplicationFail, ReplicationDelay] {
        let mut v = view(s);
        v.peer = peer_online(100 * SEC);
        assert_eq!(next_state(&v), Some((Online, Reason::Checks)));
        // still broken (in the way that keeps it in `s`), but no peer ONLINE
        let mut broken = with(view(s), |c| match s {
            ReplicationFail => c.rep_threads = false,
            _ => c.rep_backlog = false,
        });
        broken.peer = None;
        assert_eq!(next_state(&broken), Some((Online, Reason::Checks)));
        v.flapping = true;
        assert_eq!(next_state(&v), Some((AwaitingRecovery, Reason::Flapping)));
        assert_eq!(effect(s, Online), Effect::Tell);
        assert_eq!(effect(s, AwaitingRecovery), Effect::Tell);
    }
}

/// Row "REPLICATION_FAIL / _DELAY | not (P and M) | HARD_OFFLINE" (the log names both
/// verdicts; send, kill-on-fail).
#[test]
fn replication_states_hard_offline() {
    for s in [ReplicationFail, ReplicationDelay] {
        let v = with(view(s), |c| c.ping = false);
        let reason = Reason::PingMysql {
            ping: false,
            mysql: true,
        };
        assert_eq!(next_state(&v), Some((HardOffline, reason)));
        assert_eq!(effect(s, HardOffline), Effect::TellOrKill);
    }
}
