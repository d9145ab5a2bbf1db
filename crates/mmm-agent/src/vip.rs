//! Role IPs on `cluster_interface` through rtnetlink (spec §4.7 network primitives:
//! 2.2.1 ran `ip addr show/add/del <ip>/32 dev <if>`). Addresses are compared exactly
//! (no regex, unlike 2.2.1's `check_ip`). Gratuitous ARP goes through `arp.rs`.
//!
//! API: [`NetlinkVip::new`]`(interface, arp_count, timeout)` implements
//! [`Vip`](crate::effects::Vip). Every netlink call is bounded by the timeout. A netlink
//! connection is opened per operation (they are rare), so the agent holds no socket
//! between role changes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};

use crate::effects::{EffectFuture, Vip};
use crate::error::EffectError;

/// Role IPs via netlink, ARP via pnet.
#[derive(Debug, Clone)]
pub struct NetlinkVip {
    /// `cluster_interface`.
    interface: String,
    /// Request+reply pairs per ARP burst (`arp_count`).
    arp_count: u32,
    /// Bound on each netlink operation.
    timeout: Duration,
}

fn net_err(e: impl std::fmt::Display) -> EffectError {
    EffectError::Net(e.to_string())
}

impl NetlinkVip {
    /// A VIP manager for `interface`.
    pub fn new(interface: impl Into<String>, arp_count: u32, timeout: Duration) -> NetlinkVip {
        NetlinkVip {
            interface: interface.into(),
            arp_count,
            timeout,
        }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, EffectError>>,
    ) -> Result<T, EffectError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(EffectError::Timeout {
                what: what.to_string(),
                after: self.timeout,
            }),
        }
    }

    fn handle() -> Result<rtnetlink::Handle, EffectError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(net_err)?;
        tokio::spawn(conn);
        Ok(handle)
    }

    async fn link_index(&self, handle: &rtnetlink::Handle) -> Result<u32, EffectError> {
        let mut links = handle
            .link()
            .get()
            .match_name(self.interface.clone())
            .execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(l.header.index),
            Ok(None) => Err(EffectError::Net(format!(
                "No such interface {}",
                self.interface
            ))),
            Err(e) => Err(EffectError::Net(format!(
                "interface {}: {e}",
                self.interface
            ))),
        }
    }

    /// The address messages for `ip` on the interface (any prefix length).
    async fn find(
        &self,
        handle: &rtnetlink::Handle,
        ip: Ipv4Addr,
    ) -> Result<Vec<AddressMessage>, EffectError> {
        let index = self.link_index(handle).await?;
        let mut out = Vec::new();
        let mut addrs = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(m) = addrs.try_next().await.map_err(net_err)? {
            if m.header.index != index {
                continue;
            }
            let hit = m.attributes.iter().any(|a| {
                matches!(a, AddressAttribute::Local(IpAddr::V4(x)) | AddressAttribute::Address(IpAddr::V4(x)) if *x == ip)
            });
            if hit {
                out.push(m);
            }
        }
        Ok(out)
    }
}

impl Vip for NetlinkVip {
    fn has_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, bool> {
        Box::pin(self.bounded("checking IP", async move {
            let h = Self::handle()?;
            Ok(!self.find(&h, ip).await?.is_empty())
        }))
    }

    fn add_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
        Box::pin(self.bounded("adding IP", async move {
            let h = Self::handle()?;
            let index = self.link_index(&h).await?;
            h.address()
                .add(index, IpAddr::V4(ip), 32)
                .execute()
                .await
                .map_err(|e| {
                    EffectError::Net(format!(
                        "Could not configure ip adress {ip} on interface {}! ({e})",
                        self.interface
                    ))
                })
        }))
    }

    fn remove_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
        Box::pin(self.bounded("removing IP", async move {
            let h = Self::handle()?;
            for m in self.find(&h, ip).await? {
                h.address().del(m).execute().await.map_err(net_err)?;
            }
            Ok(())
        }))
    }

    fn announce(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()> {
        let interface = self.interface.clone();
        let count = self.arp_count;
        Box::pin(self.bounded("sending gratuitous ARP", async move {
            tokio::task::spawn_blocking(move || crate::arp::send_burst(&interface, ip, count))
                .await
                .map_err(net_err)?
        }))
    }

    fn announce_pairs(&self, ip: Ipv4Addr, pairs: u32) -> EffectFuture<'_, ()> {
        let interface = self.interface.clone();
        Box::pin(self.bounded("sending gratuitous ARP", async move {
            tokio::task::spawn_blocking(move || crate::arp::send_burst(&interface, ip, pairs))
                .await
                .map_err(net_err)?
        }))
    }

    fn interface(&self) -> &str {
        &self.interface
    }
}
