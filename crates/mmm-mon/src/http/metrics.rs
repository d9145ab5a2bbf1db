//! `/metrics`: the published facts for Prometheus. A fresh `prometheus-client` registry is
//! filled from one [`Published`] per request, so nothing is shared with the driver but that
//! copy. The crate writes OpenMetrics text, served as such to a client that asks for it
//! (`Accept: application/openmetrics-text`, as Prometheus does); anyone else gets the classic
//! text format 0.0.4 ([`to_classic`]: counters' HELP/TYPE named with their `_total`, no
//! `# UNIT`/`# EOF`). The metric names are documented in docs/operations.md ("Metrics").

use std::sync::atomic::AtomicU64;

use mmm_common::state::HostState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::published::Published;
use crate::core::{CheckKind, HostId};

/// The content type of [`render`]'s text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`to_classic`]'s text.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text (as [`render`] writes it) in the classic Prometheus text format.
pub fn to_classic(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = |rest: &str, kind: &str| -> Option<String> {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(
                format!("# {kind} {name}_total {tail}")
                    .trim_end()
                    .to_string(),
            )
        };
        let counter_type = |l: &str| l.starts_with("# TYPE ") && l.ends_with(" counter");
        let line = if let Some(rest) = line.strip_prefix("# HELP ") {
            // The TYPE line follows its HELP line.
            let next_is_counter = lines.get(i + 1).is_some_and(|l| counter_type(l));
            if next_is_counter {
                renamed(rest, "HELP").unwrap_or_default()
            } else {
                line.to_string()
            }
        } else if counter_type(line) {
            renamed(&line["# TYPE ".len()..], "TYPE").unwrap_or_default()
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn float_family(
    reg: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
) -> Family<Labels, Gauge<f64, AtomicU64>> {
    let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    match unit {
        Some(u) => reg.register_with_unit(name, help, u, f.clone()),
        None => reg.register(name, help, f.clone()),
    }
    f
}

fn counter_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

const MODES: [&str; 4] = ["ACTIVE", "MANUAL", "WAIT", "PASSIVE"];

/// The metrics text of one publication.
pub fn render(p: &Published) -> String {
    let s = &p.snapshot;
    let mut reg = Registry::default();

    let mode = gauge_family(
        &mut reg,
        "mmm_monitor_mode",
        "The monitor's mode: 1 for the current one (ACTIVE, MANUAL, WAIT, PASSIVE)",
    );
    for m in MODES {
        mode.get_or_create(&labels(&[("mode", m)]))
            .set(i64::from(s.mode == m));
    }
    if let Some(ha) = p.ha {
        for (name, help, v) in [
            (
                "mmm_ha_leader",
                "Monitor HA: 1 when this monitor leads (also while it holds)",
                i64::from(ha.leading),
            ),
            (
                "mmm_ha_holding",
                "Monitor HA: 1 when this monitor leads but etcd does not confirm it (roles held, no failover)",
                i64::from(ha.holding),
            ),
            (
                "mmm_ha_term",
                "Monitor HA: this monitor's term when it leads, else the known leader's (0: none known)",
                i64::try_from(ha.term).unwrap_or(i64::MAX),
            ),
        ] {
            let g = Gauge::<i64>::default();
            g.set(v);
            reg.register(name, help, g);
        }
    }
    let network = Gauge::<i64>::default();
    reg.register(
        "mmm_network_up",
        "The monitor's own network check (ping_ips) passes",
        network.clone(),
    );
    network.set(i64::from(s.network_up));

    let state = gauge_family(
        &mut reg,
        "mmm_host_state",
        "Each host's state: 1 for the current one",
    );
    let role = gauge_family(
        &mut reg,
        "mmm_host_role",
        "The roles each host holds (1 per role IP held)",
    );
    let agent = gauge_family(
        &mut reg,
        "mmm_agent_reachable",
        "The host's agent answers the monitor",
    );
    let flapping = gauge_family(
        &mut reg,
        "mmm_host_flapping",
        "The host flapped (cleared by set_online)",
    );
    let lag = float_family(
        &mut reg,
        "mmm_replication_lag",
        "Seconds_Behind_Master seen by the host's last rep_backlog check, where known",
        Some(Unit::Seconds),
    );
    for (i, h) in s.hosts.iter().enumerate() {
        for st in HostState::ALL {
            state
                .get_or_create(&labels(&[("host", &h.name), ("state", st.as_str())]))
                .set(i64::from(h.state == st.as_str()));
        }
        for r in &h.roles {
            let (name, ip) = r
                .strip_suffix(')')
                .and_then(|t| t.split_once('('))
                .unwrap_or((r.as_str(), ""));
            role.get_or_create(&labels(&[("host", &h.name), ("role", name), ("ip", ip)]))
                .set(1);
        }
        agent
            .get_or_create(&labels(&[("host", &h.name)]))
            .set(i64::from(h.agent_reachable));
        flapping
            .get_or_create(&labels(&[("host", &h.name)]))
            .set(i64::from(h.flapping));
        if let Some(l) = p.observed.lag(HostId(i)) {
            lag.get_or_create(&labels(&[("host", &h.name)]))
                .set(l as f64);
        }
    }

    let check_ok = gauge_family(
        &mut reg,
        "mmm_check_ok",
        "Each check's status as the monitor acts on it (trap periods applied)",
    );
    let duration = float_family(
        &mut reg,
        "mmm_check_duration",
        "How long each check's last run took",
        Some(Unit::Seconds),
    );
    for c in &s.checks {
        check_ok
            .get_or_create(&labels(&[("host", &c.host), ("check", &c.check)]))
            .set(i64::from(c.ok));
        let host = s.hosts.iter().position(|h| h.name == c.host);
        let kind = CheckKind::ALL.into_iter().find(|k| k.as_str() == c.check);
        if let (Some(h), Some(k)) = (host, kind) {
            if let Some(d) = p.observed.duration(HostId(h), k) {
                duration
                    .get_or_create(&labels(&[("host", &c.host), ("check", &c.check)]))
                    .set(d.as_secs_f64());
            }
        }
    }

    let t = &p.tally;
    if p.semi_sync {
        let lossless = Gauge::<i64>::default();
        reg.register(
            "mmm_semi_sync_lossless",
            "semi_sync: a failover now would keep every acknowledged write (-1: not known yet)",
            lossless.clone(),
        );
        lossless.set(t.semi_sync_lossless.map_or(-1, i64::from));
    }
    let failovers = counter_family(
        &mut reg,
        "mmm_failovers",
        "Failovers of the active master, by the cause of the old one's failure",
    );
    for (cause, n) in &t.failovers {
        failovers
            .get_or_create(&labels(&[("cause", cause)]))
            .inc_by(*n);
    }
    let moves = counter_family(
        &mut reg,
        "mmm_role_moves",
        "Role IPs given to a host, by role and cause (failover, orphan, preferred, balance, admin)",
    );
    for ((r, cause), n) in &t.role_moves {
        moves
            .get_or_create(&labels(&[("role", r), ("cause", cause)]))
            .inc_by(*n);
    }
    let held = counter_family(
        &mut reg,
        "mmm_failovers_held",
        "Failovers held or refused, by reason (pre_failover_bin, agent_lease, semi_sync)",
    );
    for (reason, n) in &t.failovers_held {
        held.get_or_create(&labels(&[("reason", reason)]))
            .inc_by(*n);
    }
    if let Some(secs) = t.last_failover_seconds {
        let last = Gauge::<f64, AtomicU64>::default();
        reg.register_with_unit(
            "mmm_last_failover_duration",
            "From the old active master's first failed check to the decision that gave the \
             writer role to the new one, for the last failover",
            Unit::Seconds,
            last.clone(),
        );
        last.set(secs);
    }
    let events = Gauge::<i64>::default();
    reg.register(
        "mmm_audit_last_seq",
        "Sequence number of the newest decision audit event",
        events.clone(),
    );
    events.set(
        p.events
            .last()
            .map_or(0, |e| i64::try_from(e.seq).unwrap_or(i64::MAX)),
    );

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_names_counters_with_total() {
        let om = "# HELP mmm_failovers Failovers.\n# TYPE mmm_failovers counter\nmmm_failovers_total{cause=\"x\"} 1\n# HELP mmm_x_seconds X.\n# TYPE mmm_x_seconds gauge\n# UNIT mmm_x_seconds seconds\nmmm_x_seconds 1.5\n# EOF\n";
        assert_eq!(
            to_classic(om),
            "# HELP mmm_failovers_total Failovers.\n# TYPE mmm_failovers_total counter\nmmm_failovers_total{cause=\"x\"} 1\n# HELP mmm_x_seconds X.\n# TYPE mmm_x_seconds gauge\nmmm_x_seconds 1.5\n"
        );
    }
}
