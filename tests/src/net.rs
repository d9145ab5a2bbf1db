//! The testbed's network: one network namespace per host joined by a bridge that lives in
//! a namespace of its own (DESIGN.md "Tests: real servers, real hosts"). Everything is done
//! with `ip -n <namespace>`, so nothing in the root namespace changes; the veth pairs are
//! created inside the host's namespace with their peer moved straight into the bridge's.
//!
//! Addresses: 198.18.<subnet>.0/24 only (RFC 2544 test range).

use std::fmt;
use std::net::Ipv4Addr;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TestbedError};
use crate::process::{output_with_timeout, run_ok};

/// Bound on one `ip` invocation.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// The interface name every host has (the seed's `cluster_interface`).
pub const CLUSTER_INTERFACE: &str = "ens33";

/// The bridge's name inside the bridge namespace.
const BRIDGE: &str = "br0";

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = TestbedError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || TestbedError::State(format!("not a MAC address: {s:?}"));
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts.next().ok_or_else(bad)?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The deterministic, locally administered MAC of a host's `ens33`:
/// `02:00:c6:12:<subnet>:<last octet>` (0xc6 0x12 = 198.18).
pub fn host_mac(subnet: u8, last_octet: u8) -> MacAddr {
    MacAddr([0x02, 0x00, 0xc6, 0x12, subnet, last_octet])
}

/// `ip <args>`, checked.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run_ok(Command::new("ip").args(args), IP_TIMEOUT)
}

/// `ip -n <netns> <args>`, checked.
pub(crate) fn ip_in(netns: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["-n", netns];
    all.extend_from_slice(args);
    ip(&all)
}

/// Names of all network namespaces (`ip netns list`).
pub(crate) fn list_netns() -> Result<Vec<String>> {
    let out = ip(&["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Pids of the processes living in `netns` (`ip netns pids`).
pub(crate) fn netns_pids(netns: &str) -> Result<Vec<u32>> {
    let out = output_with_timeout(
        Command::new("ip").args(["netns", "pids", netns]),
        IP_TIMEOUT,
    )?;
    if !out.status.success() {
        // The namespace is already gone: no processes.
        return Ok(Vec::new());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Creates the bridge namespace with `br0` up.
pub(crate) fn create_bridge(bridge_ns: &str) -> Result<()> {
    ip(&["netns", "add", bridge_ns])?;
    ip_in(bridge_ns, &["link", "set", "lo", "up"])?;
    ip_in(
        bridge_ns,
        &[
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ],
    )?;
    ip_in(bridge_ns, &["link", "set", BRIDGE, "up"])?;
    Ok(())
}

/// Creates a host's namespace, its `ens33` (veth; the peer, named after the host, is
/// enslaved to the bridge), its address and loopback.
pub(crate) fn create_host(
    bridge_ns: &str,
    host_ns: &str,
    port_name: &str,
    addr: Ipv4Addr,
    mac: MacAddr,
) -> Result<()> {
    ip(&["netns", "add", host_ns])?;
    let mac = mac.to_string();
    ip_in(
        host_ns,
        &[
            "link",
            "add",
            CLUSTER_INTERFACE,
            "address",
            &mac,
            "type",
            "veth",
            "peer",
            "name",
            port_name,
            "netns",
            bridge_ns,
        ],
    )?;
    ip_in(host_ns, &["link", "set", "lo", "up"])?;
    ip_in(
        host_ns,
        &[
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            CLUSTER_INTERFACE,
        ],
    )?;
    ip_in(host_ns, &["link", "set", CLUSTER_INTERFACE, "up"])?;
    ip_in(bridge_ns, &["link", "set", port_name, "master", BRIDGE])?;
    ip_in(bridge_ns, &["link", "set", port_name, "up"])?;
    Ok(())
}

/// Brings a host's bridge port down (`up == false`) or up again.
pub(crate) fn set_port(bridge_ns: &str, port_name: &str, up: bool) -> Result<()> {
    ip_in(
        bridge_ns,
        &["link", "set", port_name, if up { "up" } else { "down" }],
    )?;
    Ok(())
}

/// Limits what the bridge sends out of a host's port (the host's inbound traffic) to
/// `kbit` kbit/s with a token bucket (`tc qdisc replace ... root tbf`; this kernel has no
/// `netem`), or removes the limit (`None`; a port without one is fine). Done inside the
/// bridge namespace (`tc -n`), never in the root namespace.
pub(crate) fn set_port_rate(bridge_ns: &str, port_name: &str, kbit: Option<u32>) -> Result<()> {
    let mut tc = Command::new("tc");
    tc.args(["-n", bridge_ns, "qdisc"]);
    match kbit {
        Some(kbit) => {
            let rate = format!("{kbit}kbit");
            // A queue of at most 400 ms at the rate (at least 64 KiB, so a burst of
            // segments is not dropped outright); 16 KiB of burst (> one MTU).
            let limit = (u64::from(kbit) * 1000 / 8 * 4 / 10)
                .max(64 * 1024)
                .to_string();
            tc.args([
                "replace", "dev", port_name, "root", "tbf", "rate", &rate, "burst", "16kb",
                "limit", &limit,
            ]);
            run_ok(&mut tc, IP_TIMEOUT)?;
        }
        None => {
            tc.args(["del", "dev", port_name, "root"]);
            let out = output_with_timeout(&mut tc, IP_TIMEOUT)?;
            let err = String::from_utf8_lossy(&out.stderr);
            // No qdisc of ours to remove: already unlimited.
            if !out.status.success()
                && !err.contains("Cannot delete qdisc with handle of zero")
                && !err.contains("No such file or directory")
            {
                return Err(TestbedError::Command {
                    cmd: format!("tc -n {bridge_ns} qdisc del dev {port_name} root"),
                    detail: format!("{}: {}", out.status, err.trim()),
                });
            }
        }
    }
    Ok(())
}

/// The rate (kbit/s) of the tbf qdisc on a host's bridge port, if it has one.
pub(crate) fn port_rate(bridge_ns: &str, port_name: &str) -> Result<Option<u32>> {
    let out = run_ok(
        Command::new("tc").args(["-n", bridge_ns, "qdisc", "show", "dev", port_name]),
        IP_TIMEOUT,
    )?;
    Ok(parse_tbf_rate(&out))
}

/// The rate of a `tc qdisc show` line of a tbf ("... tbf 8001: root refcnt 2 rate 2Mbit
/// burst ...") in kbit/s.
fn parse_tbf_rate(out: &str) -> Option<u32> {
    let line = out.lines().find(|l| l.contains(" tbf "))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "rate")?;
    let rate = words.next()?;
    let (num, mult) = if let Some(n) = rate.strip_suffix("Gbit") {
        (n, 1_000_000.0)
    } else if let Some(n) = rate.strip_suffix("Mbit") {
        (n, 1000.0)
    } else if let Some(n) = rate.strip_suffix("Kbit") {
        (n, 1.0)
    } else if let Some(n) = rate.strip_suffix("bit") {
        (n, 0.001)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    Some((v * mult).round() as u32)
}

/// Deletes a namespace; one that is already gone is fine.
pub(crate) fn delete_netns(netns: &str) -> Result<()> {
    let out = output_with_timeout(Command::new("ip").args(["netns", "del", netns]), IP_TIMEOUT)?;
    if out.status.success() || !list_netns()?.iter().any(|n| n == netns) {
        Ok(())
    } else {
        Err(TestbedError::Command {
            cmd: format!("ip netns del {netns}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The MAC that `netns`'s neighbour (ARP) cache holds for `addr` on `ens33`, if it holds a
/// usable one (not FAILED/INCOMPLETE).
pub(crate) fn neighbour(netns: &str, addr: Ipv4Addr) -> Result<Option<MacAddr>> {
    let out = ip_in(
        netns,
        &[
            "neigh",
            "show",
            "to",
            &addr.to_string(),
            "dev",
            CLUSTER_INTERFACE,
        ],
    )?;
    Ok(parse_neigh(&out))
}

/// Parses `ip neigh show` output: the `lladdr` of the first line that has one.
fn parse_neigh(out: &str) -> Option<MacAddr> {
    out.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "lladdr" {
                return words.next().and_then(|m| m.parse().ok());
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac = host_mac(7, 100);
        assert_eq!(mac.to_string(), "02:00:c6:12:07:64");
        assert_eq!("02:00:c6:12:07:64".parse::<MacAddr>().ok(), Some(mac));
        assert!("02:00:c6:12:07".parse::<MacAddr>().is_err());
        assert!("02:00:c6:12:07:64:01".parse::<MacAddr>().is_err());
    }

    #[test]
    fn tbf_rates() {
        let show = "qdisc tbf 8001: root refcnt 2 rate 2Mbit burst 16Kb lat 400ms \n";
        assert_eq!(parse_tbf_rate(show), Some(2000));
        assert_eq!(
            parse_tbf_rate("qdisc tbf 8002: root refcnt 2 rate 512Kbit burst 16Kb"),
            Some(512)
        );
        assert_eq!(parse_tbf_rate("qdisc noqueue 0: root refcnt 2"), None);
    }

    #[test]
    fn neigh_lines() {
        let out = "198.18.7.100 lladdr 02:00:c6:12:07:64 REACHABLE\n";
        assert_eq!(parse_neigh(out), Some(host_mac(7, 100)));
        assert_eq!(parse_neigh("198.18.7.100 INCOMPLETE\n"), None);
        assert_eq!(parse_neigh(""), None);
    }
}
