//! When the agent sends gratuitous ARP: the one scheduler of both kinds of announcement
//! (the frames and the burst itself are `arp.rs`, sent through [`Vip`]).
//!
//! - **After an add** (spec §4.7 "Gratuitous ARP": `arp_repeat`, `arp_interval`; 2.2.1's
//!   `configure_ip`): [`ArpSchedule::after_add`] sends the first burst before the add
//!   returns, the remaining `arp_repeat - 1` bursts `arp_interval` apart in the background,
//!   and stops early once the IP is no longer bound.
//! - **Refresh** (`arp_refresh`, an mmm-rs extension; 2.2.1 announces an IP only when it adds
//!   it): [`ArpSchedule::refresh`] sends one request+reply pair per held role IP every
//!   `arp_refresh`. Why: after a network split heals, the old holder of an IP may answer a
//!   client's ARP request before the monitor has told it to let the IP go; that client then
//!   sends to a host that drops the IP a moment later, and stays misdirected until its ARP
//!   entry ages out (tens of seconds; measured ~5 s of extra write outage on the testbed).
//!   One pair per held IP every `arp_refresh` bounds that to one interval.
//!
//! Both ask the interface whether an IP is bound (rtnetlink, the same exact comparison as
//! the role code) before announcing it, so the scheduler needs no access to the agent's
//! state and never announces an IP the host does not hold.

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::effects::Vip;

/// Gratuitous ARP pairs per refresh (the bursts after adding an IP use `arp_count`).
const PAIRS_PER_REFRESH: u32 = 1;

/// The agent's ARP scheduler (one per agent, shared by the role steps and the refresh task).
pub struct ArpSchedule {
    /// Where the bursts go out (owned: the repeats after an add outlive the request).
    vip: Arc<dyn Vip>,
    /// `arp_repeat`: bursts after an add (0: none).
    repeat: u32,
    /// `arp_interval`: time between those bursts.
    interval: Duration,
}

/// What one run of the scheduler announces.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// The repeats after an add: `rounds` full bursts; ends when the IP is gone.
    AfterAdd {
        /// Bursts still to send.
        rounds: u32,
    },
    /// The refresh: [`PAIRS_PER_REFRESH`] pairs per held IP, until stopped.
    Refresh,
}

impl ArpSchedule {
    /// A scheduler announcing through `vip`: `repeat` bursts `interval` apart after an add.
    pub fn new(vip: Arc<dyn Vip>, repeat: u32, interval: Duration) -> ArpSchedule {
        ArpSchedule {
            vip,
            repeat,
            interval,
        }
    }

    /// `ip` was just added: the first burst now (a failure is logged, as 2.2.1 ignores it:
    /// the address is configured), the other `arp_repeat - 1` in the background.
    pub async fn after_add(&self, ip: Ipv4Addr) {
        if self.repeat == 0 {
            return;
        }
        if let Err(e) = self.vip.announce(ip).await {
            tracing::error!("Couldn't send gratuitous ARP for '{ip}': {e}");
        }
        if self.repeat > 1 {
            let vip = Arc::clone(&self.vip);
            let kind = Kind::AfterAdd {
                rounds: self.repeat - 1,
            };
            let every = self.interval;
            tokio::spawn(async move { announce_every(vip.as_ref(), &[ip], every, kind).await });
        }
    }

    /// The refresh: every `every`, one gratuitous ARP pair for each IP of `ips` that is
    /// bound, until `shutdown` resolves. `every` zero: returns at once (refresh off).
    pub async fn refresh(
        &self,
        ips: Vec<Ipv4Addr>,
        every: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        if every.is_zero() || ips.is_empty() {
            return;
        }
        tokio::select! {
            _ = shutdown => {}
            _ = announce_every(self.vip.as_ref(), &ips, every, Kind::Refresh) => {}
        }
    }
}

/// The one loop: every `every` (the refresh starts at once, the repeats after an add one
/// interval after the first burst), announce each of `ips` that is still bound.
async fn announce_every(vip: &dyn Vip, ips: &[Ipv4Addr], every: Duration, kind: Kind) {
    let first = match kind {
        Kind::AfterAdd { .. } => tokio::time::Instant::now() + every,
        Kind::Refresh => tokio::time::Instant::now(),
    };
    let mut tick = tokio::time::interval_at(first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut left = match kind {
        Kind::AfterAdd { rounds } => Some(rounds),
        Kind::Refresh => None,
    };
    while left != Some(0) {
        tick.tick().await;
        left = left.map(|n| n - 1);
        for &ip in ips {
            match (vip.has_ip(ip).await, kind) {
                (Ok(true), _) => {}
                // Stop announcing an address that was removed meanwhile.
                (_, Kind::AfterAdd { .. }) => return,
                (Ok(false), Kind::Refresh) => continue,
                (Err(e), Kind::Refresh) => {
                    tracing::debug!("ARP refresh: checking {ip}: {e}");
                    continue;
                }
            }
            match kind {
                Kind::AfterAdd { .. } => {
                    if let Err(e) = vip.announce(ip).await {
                        tracing::warn!("gratuitous ARP for {ip}: {e}");
                    }
                }
                Kind::Refresh => {
                    if let Err(e) = vip.announce_pairs(ip, PAIRS_PER_REFRESH).await {
                        tracing::debug!("ARP refresh of {ip}: {e}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::effects::EffectFuture;

    /// Holds `held`; records every announced IP.
    struct Fake {
        held: Vec<Ipv4Addr>,
        announced: Mutex<Vec<Ipv4Addr>>,
    }

    /// A fake holding `held` and its scheduler (`repeat` bursts `interval` apart).
    fn scheduler(held: Ipv4Addr, repeat: u32, interval: Duration) -> (Arc<Fake>, ArpSchedule) {
        let fake = Arc::new(Fake {
            held: vec![held],
            announced: Mutex::new(Vec::new()),
        });
        let arp = ArpSchedule::new(fake.clone(), repeat, interval);
        (fake, arp)
    }

    impl Vip for Fake {
        fn has_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, bool> {
            let held = self.held.contains(&ip);
            Box::pin(async move { Ok(held) })
        }
        fn add_ip(&self, _: Ipv4Addr) -> EffectFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn remove_ip(&self, _: Ipv4Addr) -> EffectFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn announce(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
            self.announced.lock().unwrap().push(ip);
            Box::pin(async { Ok(()) })
        }
        fn interface(&self) -> &str {
            "ens33"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_held_ips_are_announced_every_interval() {
        let a = Ipv4Addr::new(198, 18, 0, 188);
        let b = Ipv4Addr::new(198, 18, 0, 199);
        let (fake, arp) = scheduler(a, 0, Duration::ZERO);
        let every = Duration::from_secs(1);
        // First tick at once, then every second: 0, 1, 2, 3 s within 3.5 s.
        let stop = tokio::time::sleep(Duration::from_millis(3500));
        arp.refresh(vec![a, b], every, stop).await;
        assert_eq!(*fake.announced.lock().unwrap(), vec![a; 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn repeats_after_an_add_stop_once_the_ip_is_gone() {
        let a = Ipv4Addr::new(198, 18, 0, 188);
        let (fake, arp) = scheduler(a, 3, Duration::from_millis(500));
        // The first burst before returning, two more 0.5 s apart.
        arp.after_add(a).await;
        assert_eq!(fake.announced.lock().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(fake.announced.lock().unwrap().len(), 3);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(fake.announced.lock().unwrap().len(), 3);
        // An IP the host no longer holds gets no repeats.
        let b = Ipv4Addr::new(198, 18, 0, 199);
        arp.after_add(b).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(*fake.announced.lock().unwrap(), vec![a, a, a, b]);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_interval_is_off() {
        let a = Ipv4Addr::new(198, 18, 0, 188);
        let (fake, arp) = scheduler(a, 0, Duration::ZERO);
        // Returns at once instead of running forever.
        arp.refresh(vec![a], Duration::ZERO, std::future::pending())
            .await;
        assert!(fake.announced.lock().unwrap().is_empty());
    }
}
