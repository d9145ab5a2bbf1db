//! The two effect traits the agent acts through (DESIGN.md "Agent effects behind small
//! traits"): [`Vip`] (role IPs on `cluster_interface` and gratuitous ARP) and
//! [`MysqlOps`] (2.2.1's MySQL helpers, spec §4.7). The real implementations are
//! `vip::NetlinkVip` and `mysql::MysqlServer`; protocol tests use fakes.
//!
//! Futures are boxed so the traits are object-safe (`Arc<dyn Vip>`) and `Send`.
//! [`parse_ip`] turns a configured role IP into the address the `Vip` calls take (used by
//! the role steps and the lease's fence alike).

use std::net::Ipv4Addr;

use futures::future::BoxFuture;

use crate::error::EffectError;

/// The result of an effect.
pub type EffectFuture<'a, T> = BoxFuture<'a, Result<T, EffectError>>;

/// Parses a role IP (IPv4 only, as MMM's `/32` addresses).
pub fn parse_ip(ip: &str) -> Result<Ipv4Addr, EffectError> {
    ip.parse()
        .map_err(|_| EffectError::Other(format!("Invalid IP address '{ip}'")))
}

/// Role IPs on the cluster interface (2.2.1's `check_ip`, `configure_ip`, `clear_ip`).
pub trait Vip: Send + Sync {
    /// Whether `ip/32` is configured on the interface (exact address comparison).
    fn has_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, bool>;
    /// Adds `ip/32` to the interface.
    fn add_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()>;
    /// Removes `ip/32` from the interface.
    fn remove_ip(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()>;
    /// Sends one burst of gratuitous ARP for `ip` (`arp_count` request+reply pairs).
    fn announce(&self, ip: Ipv4Addr) -> EffectFuture<'_, ()>;
    /// Sends `pairs` request+reply pairs for `ip` (the periodic `arp_refresh`); by default
    /// one [`Vip::announce`] burst.
    fn announce_pairs(&self, ip: Ipv4Addr, pairs: u32) -> EffectFuture<'_, ()> {
        let _ = pairs;
        self.announce(ip)
    }
    /// The interface name (for log and error messages).
    fn interface(&self) -> &str;
}

/// The local MySQL server, as 2.2.1's helper programs use it (spec §4.7).
pub trait MysqlOps: Send + Sync {
    /// `mysql_may_write`: whether `read_only` is off.
    fn may_write(&self) -> EffectFuture<'_, bool>;
    /// `mysql_allow_write`: `read_only=0` (and `super_read_only=0` where it exists).
    fn allow_write(&self) -> EffectFuture<'_, ()>;
    /// [`MysqlOps::allow_write`] for a writer role the agent already holds (the re-assertion
    /// of MMM's "check roles"): the same, with the connect bounded as for a server whose
    /// answer is optional (issue 14: a frozen server held the agent for `mysql_timeout` at
    /// every re-assertion, and a failed writer's demotion waited behind it). Nothing is
    /// sent to a server that did not complete the handshake.
    fn reassert_write(&self) -> EffectFuture<'_, ()> {
        self.allow_write()
    }
    /// `mysql_deny_write`: `read_only=1` (+ `super_read_only=1`), then MMM's kill loop.
    fn deny_write(&self) -> EffectFuture<'_, ()>;
    /// `sync_with_master`: wait (bounded) until everything received from the peer is
    /// applied locally. `failed`: masters the monitor found failed (issue 14); a peer named
    /// there is treated as unreachable at once (no handshake awaited).
    fn sync_with_master<'a>(&'a self, failed: &'a [String]) -> EffectFuture<'a, ()>;
    /// `set_active_master <host>`: re-point this slave to `new_master` without losing or
    /// repeating events. Returns the helper's `OK…` message.
    fn set_active_master<'a>(&'a self, new_master: &'a str) -> EffectFuture<'a, String>;
    /// `Master_Host` of SHOW SLAVE STATUS (None when not a slave).
    fn master_host(&self) -> EffectFuture<'_, Option<String>>;
    /// `turn_on_slave`: START SLAVE.
    fn start_slave(&self) -> EffectFuture<'_, ()>;
    /// `turn_off_slave`: STOP SLAVE.
    fn stop_slave(&self) -> EffectFuture<'_, ()>;
    /// `RESUME_PEER_LINK` (issue 13): start the replication from the peer again if the
    /// errant-transaction guard held it at a promotion. Returns the `OK: …` text. By default
    /// nothing is held.
    fn resume_peer_link(&self) -> EffectFuture<'_, String> {
        Box::pin(async { Ok("OK: Replication from the peer was not held".to_string()) })
    }
}
