//! ARP requests from the monitor to a host whose ping goes unanswered (mmm-rs; 2.2.1 relies
//! on the kernel alone).
//!
//! Why: while a host is cut off, the monitor's neighbour entry for it fails, and Linux
//! re-probes a failed entry about once a second (`retrans_time`). When the link heals, the
//! monitor's echoes stay queued behind that ARP for up to a second (measured 0.3–0.95 s on
//! the testbed), and so does the SET_STATUS that tells the old writer to drop the writer
//! VIP. The ping check therefore sends its own ARP request beside each echo that follows an
//! unanswered one: the host's reply is unicast to the monitor, and the kernel takes it into
//! the existing (incomplete or failed) neighbour entry at once, so the next echo and the
//! agent connection go out.
//!
//! Only for hosts on a directly connected subnet (the interface is the one whose IPv4
//! network contains the host); AF_PACKET needs root or CAP_NET_RAW, like the raw ICMP
//! socket. Any failure here is silent: the kernel's own probes still work.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mmm_common::arp::{frame, ArpOp, FRAME_LEN};
use pnet_datalink::{Channel, DataLinkSender, MacAddr};

/// Sends "who has `target`? tell `source`" on the interface that reaches `target`.
pub struct ArpProber {
    tx: Box<dyn DataLinkSender>,
    frame: [u8; FRAME_LEN],
}

impl ArpProber {
    /// A prober for `target`, or `None` when no interface has `target` in its subnet (or
    /// the packet socket cannot be opened).
    pub fn for_target(target: Ipv4Addr) -> Option<ArpProber> {
        let (iface, source) = pnet_datalink::interfaces().into_iter().find_map(|i| {
            let source = i.ips.iter().find_map(|n| match n.ip() {
                IpAddr::V4(a) if n.contains(IpAddr::V4(target)) && a != target => Some(a),
                _ => None,
            })?;
            Some((i, source))
        })?;
        let mac = iface.mac.filter(|m| *m != MacAddr::zero())?;
        let frame = frame(ArpOp::Request, mac, source, MacAddr::zero(), target)?;
        let config = pnet_datalink::Config {
            write_timeout: Some(Duration::from_millis(100)),
            read_timeout: Some(Duration::from_millis(10)),
            read_buffer_size: 256,
            promiscuous: false,
            ..Default::default()
        };
        match pnet_datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(tx, _rx)) => Some(ArpProber { tx, frame }),
            _ => None,
        }
    }

    /// Sends one request (errors are ignored: the kernel's own probes remain).
    pub fn send(&mut self) {
        if let Some(Err(e)) = self.tx.send_to(&self.frame, None) {
            tracing::debug!("ARP probe: {e}");
        }
    }
}
