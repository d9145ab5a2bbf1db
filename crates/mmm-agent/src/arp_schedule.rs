//! Periodic gratuitous ARP for the role IPs this host holds (`arp_refresh`, an mmm-rs
//! extension; 2.2.1 announces an IP only when it adds it).
//!
//! Why: after a network split heals, the old holder of an IP may answer a client's ARP
//! request before the monitor has told it to let the IP go; that client then sends to a
//! host that drops the IP a moment later, and stays misdirected until its ARP entry ages
//! out (tens of seconds; measured ~5 s of extra write outage on the testbed). One
//! request+reply pair per held IP every `arp_refresh` bounds that to one interval.
//!
//! The loop asks the interface which configured role IPs are bound (rtnetlink, the same
//! exact comparison as the role code), so it needs no access to the agent's state and
//! never announces an IP the host does not hold.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::effects::Vip;

/// Gratuitous ARP pairs per refresh (the bursts after adding an IP use `arp_count`).
const PAIRS_PER_REFRESH: u32 = 1;

/// Runs until the task is dropped: every `every`, one gratuitous ARP pair for each IP of
/// `ips` that is bound to `vip`'s interface. `every` zero: returns at once (refresh off).
pub async fn run(vip: &dyn Vip, ips: Vec<Ipv4Addr>, every: Duration) {
    if every.is_zero() || ips.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for &ip in &ips {
            match vip.has_ip(ip).await {
                Ok(true) => {
                    if let Err(e) = vip.announce_pairs(ip, PAIRS_PER_REFRESH).await {
                        tracing::debug!("ARP refresh of {ip}: {e}");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::debug!("ARP refresh: checking {ip}: {e}"),
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
        let fake = Fake {
            held: vec![a],
            announced: Mutex::new(Vec::new()),
        };
        let every = Duration::from_secs(1);
        // First tick at once, then every second: 0, 1, 2, 3 s within 3.5 s.
        let _ =
            tokio::time::timeout(Duration::from_millis(3500), run(&fake, vec![a, b], every)).await;
        assert_eq!(*fake.announced.lock().unwrap(), vec![a; 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_interval_is_off() {
        let a = Ipv4Addr::new(198, 18, 0, 188);
        let fake = Fake {
            held: vec![a],
            announced: Mutex::new(Vec::new()),
        };
        // Returns at once instead of running forever.
        run(&fake, vec![a], Duration::ZERO).await;
        assert!(fake.announced.lock().unwrap().is_empty());
    }
}
