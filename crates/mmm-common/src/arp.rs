//! ARP frames: Ethernet (destination broadcast) + ARP for IPv4, 42 bytes without FCS. The
//! agent's gratuitous ARP (spec §4.7, sender = target = the VIP) and the monitor's ARP
//! probe of a host that does not answer its pings are both built here; sending them is the
//! callers' business (pnet datalink channels).

use std::net::Ipv4Addr;

pub use pnet_base::MacAddr;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};

/// Length of an Ethernet frame carrying an ARP packet (without FCS).
pub const FRAME_LEN: usize = 14 + 28;

/// An ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// Who has `target_ip`? Tell `sender_ip`.
    Request,
    /// `sender_ip` is at `sender_mac`.
    Reply,
}

/// One broadcast ARP frame from `sender_mac`.
pub fn frame(
    op: ArpOp,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Option<[u8; FRAME_LEN]> {
    let mut buf = [0u8; FRAME_LEN];
    {
        let mut eth = MutableEthernetPacket::new(&mut buf)?;
        eth.set_destination(MacAddr::broadcast());
        eth.set_source(sender_mac);
        eth.set_ethertype(EtherTypes::Arp);
    }
    let mut arp = MutableArpPacket::new(buf.get_mut(14..)?)?;
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(match op {
        ArpOp::Request => ArpOperations::Request,
        ArpOp::Reply => ArpOperations::Reply,
    });
    arp.set_sender_hw_addr(sender_mac);
    arp.set_sender_proto_addr(sender_ip);
    arp.set_target_hw_addr(target_mac);
    arp.set_target_proto_addr(target_ip);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let mac = MacAddr::new(2, 0, 0, 0, 0, 6);
        let f = frame(
            ArpOp::Request,
            mac,
            Ipv4Addr::new(198, 18, 0, 106),
            MacAddr::zero(),
            Ipv4Addr::new(198, 18, 0, 100),
        )
        .unwrap();
        assert_eq!(&f[0..6], &[0xff; 6]); // broadcast
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]); // ARP
        assert_eq!(&f[20..22], &[0, 1]); // request
        assert_eq!(&f[22..28], &[2, 0, 0, 0, 0, 6]); // sender mac
        assert_eq!(&f[28..32], &[198, 18, 0, 106]); // sender ip
        assert_eq!(&f[32..38], &[0; 6]); // target mac
        assert_eq!(&f[38..42], &[198, 18, 0, 100]); // target ip
        let r = frame(
            ArpOp::Reply,
            mac,
            Ipv4Addr::new(198, 18, 0, 188),
            MacAddr::broadcast(),
            Ipv4Addr::new(198, 18, 0, 188),
        )
        .unwrap();
        assert_eq!(&r[20..22], &[0, 2]); // reply
        assert_eq!(&r[32..38], &[0xff; 6]);
    }
}
