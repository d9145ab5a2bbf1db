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

use pnet_datalink::{Channel, DataLinkSender, MacAddr};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};

/// Length of an Ethernet frame carrying an ARP packet (without FCS).
const FRAME_LEN: usize = 14 + 28;

/// Sends "who has `target`? tell `source`" on the interface that reaches `target`.
pub struct ArpProber {
    tx: Box<dyn DataLinkSender>,
    frame: [u8; FRAME_LEN],
}

/// The broadcast ARP request from (`mac`, `source`) for `target`.
pub fn request_frame(mac: MacAddr, source: Ipv4Addr, target: Ipv4Addr) -> Option<[u8; FRAME_LEN]> {
    let mut buf = [0u8; FRAME_LEN];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf)?;
        eth.set_destination(MacAddr::broadcast());
        eth.set_source(mac);
        eth.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(buf.get_mut(14..)?)?;
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac);
    arp.set_sender_proto_addr(source);
    arp.set_target_hw_addr(MacAddr::zero());
    arp.set_target_proto_addr(target);
    Some(buf)
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
        let frame = request_frame(mac, source, target)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_asks_who_has_the_target() {
        let mac = MacAddr::new(2, 0, 0, 0, 0, 6);
        let f = request_frame(
            mac,
            Ipv4Addr::new(198, 18, 0, 106),
            Ipv4Addr::new(198, 18, 0, 100),
        )
        .unwrap();
        assert_eq!(&f[0..6], &[0xff; 6]); // broadcast
        assert_eq!(&f[12..14], &[0x08, 0x06]); // ARP
        assert_eq!(&f[20..22], &[0, 1]); // request
        assert_eq!(&f[22..28], &[2, 0, 0, 0, 0, 6]); // sender mac
        assert_eq!(&f[28..32], &[198, 18, 0, 106]); // sender ip
        assert_eq!(&f[32..38], &[0; 6]); // target mac unknown
        assert_eq!(&f[38..42], &[198, 18, 0, 100]); // target ip
    }
}
