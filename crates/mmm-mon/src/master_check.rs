//! The master-master configuration check at startup (spec §3.13): both masters replicate
//! from each other and their auto_increment settings do not collide. Warnings only; the
//! monitor starts either way.

use std::time::Duration;

use mmm_common::config::MonitorSettings;
use tracing::{error, warn};

use crate::checks::mysql::master_settings;
use crate::core::{CheckKind, HostId};
use crate::startup::InitialChecks;

/// Timeout of the master-master check's MySQL connections (§3.13: 3 s).
pub const MASTER_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// §3.13: master-master configuration check, warnings only.
pub async fn run(config: &MonitorSettings, initial: &InitialChecks) {
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
        if !initial.ok(HostId(idx), CheckKind::Mysql) {
            warn!("Check 'mysql' is in state 'failed' on host '{name}'. Skipping check of master-master configuration.");
            return;
        }
        targets.push((name.clone(), h.ip.to_string(), h.mysql_target()));
    }
    let (Some(m1), Some(m2)) = (targets.first(), targets.get(1)) else {
        return;
    };
    let (Some(i1), Some(i2)) = (
        master_settings(&m1.2, MASTER_CHECK_TIMEOUT).await,
        master_settings(&m2.2, MASTER_CHECK_TIMEOUT).await,
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
