//! The network check (spec §3.4, §3.1 step 8a): pings `ping_ips` in order, stopping at the
//! first answer, every `ping_interval`. The verdict is published on a `watch` channel (the
//! check tasks pause while it is down) and each change is handed to the core as
//! `Input::Network{up}` with 2.2.1's log line.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{error, info};

use crate::checks::ping::{ping, PING_TIMEOUT};
use crate::checks::InputFn;
use crate::core::Input;

/// One round: `true` as soon as one address answers. The addresses are pinged at once
/// (2.2.1 tried them in order): the verdict is the same, but a dead first address (often
/// the failed host itself) no longer makes every round last its 0.5 s timeout, so a round
/// asked for by the core ([`crate::core::Action::ProbeNetwork`]) confirms within
/// milliseconds.
pub async fn probe(ping_ips: &[String]) -> bool {
    let rounds: Vec<_> = ping_ips
        .iter()
        .map(|ip| {
            Box::pin(async move {
                match ping(ip, PING_TIMEOUT).await {
                    Ok(true) => Ok(()),
                    _ => Err(()),
                }
            })
        })
        .collect();
    if rounds.is_empty() {
        return false;
    }
    futures::future::select_ok(rounds).await.is_ok()
}

/// Blocks until one `ping_ips` address answers (spec §3.1 8a), logging 2.2.1's lines.
/// Returns `false` when `shutdown` completed first.
pub async fn wait_for_network(
    ping_ips: &[String],
    ping_interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> bool {
    info!("Waiting for network connection...");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                info!("Received shutdown request while waiting for network connection.");
                return false;
            }
            up = probe(ping_ips) => if up {
                info!("Network connection is available.");
                return true;
            },
        }
        tokio::select! {
            _ = &mut shutdown => {
                info!("Received shutdown request while waiting for network connection.");
                return false;
            }
            _ = tokio::time::sleep(ping_interval) => {}
        }
    }
}

/// The network checker task: starts "up" (after [`wait_for_network`]), then probes every
/// `ping_interval`, and at once when `wake` is notified (the core asks for a confirmation
/// before it reports a check failure), publishing changes on `state` and to the core.
pub async fn run(
    ping_ips: Vec<String>,
    ping_interval: Duration,
    state: watch::Sender<bool>,
    sink: InputFn,
    wake: Arc<Notify>,
) {
    let mut up = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ping_interval) => {}
            _ = wake.notified() => {}
        }
        let probed_at = std::time::Instant::now();
        let now_up = probe(&ping_ips).await;
        if now_up {
            // Check failures wait for this (core: Input::NetworkConfirmed).
            sink(Input::NetworkConfirmed { probed_at });
        }
        if now_up != up {
            up = now_up;
            if up {
                error!("Network is reachable");
            } else {
                error!("Network is unreachable");
            }
            let _ = state.send(up);
            sink(Input::Network { up });
        }
    }
}
