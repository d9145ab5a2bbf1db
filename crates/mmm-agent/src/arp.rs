//! Gratuitous ARP (spec §4.7 "Gratuitous ARP"; 2.2.1's `send_arp` in `Helpers/Network.pm`):
//! per burst, `arp_count` rounds of an ARP *request* then an ARP *reply*, both with
//! sender IP = target IP = the VIP, sender MAC = the interface's MAC, Ethernet destination
//! broadcast. Frames go out through pnet's datalink (AF_PACKET) channel; no `arping`.
//!
//! API: [`frames`] (pure: the two 42-byte frames), [`send_burst`] (blocking; callers run it
//! with `spawn_blocking`), [`interface_mac`].

use std::net::Ipv4Addr;
use std::time::Duration;

use mmm_common::arp::{frame, ArpOp, FRAME_LEN};
use pnet_datalink::{Channel, MacAddr, NetworkInterface};

use crate::error::EffectError;

/// The gratuitous ARP request and reply for `ip` from `mac` (sender = target = `ip`;
/// target MAC zero in the request, broadcast in the reply, as 2.2.1's send_arp).
pub fn frames(mac: MacAddr, ip: Ipv4Addr) -> Option<[[u8; FRAME_LEN]; 2]> {
    Some([
        frame(ArpOp::Request, mac, ip, MacAddr::zero(), ip)?,
        frame(ArpOp::Reply, mac, ip, MacAddr::broadcast(), ip)?,
    ])
}

fn find_interface(name: &str) -> Result<NetworkInterface, EffectError> {
    pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| EffectError::Net(format!("No such interface {name}")))
}

/// The MAC address of `interface`.
pub fn interface_mac(interface: &str) -> Result<MacAddr, EffectError> {
    find_interface(interface)?
        .mac
        .filter(|m| *m != MacAddr::zero())
        .ok_or_else(|| {
            EffectError::Net(format!("Couldn't get mac adress of interface {interface}"))
        })
}

/// Sends one burst: `count` request+reply pairs for `ip` on `interface`. Blocking.
pub fn send_burst(interface: &str, ip: Ipv4Addr, count: u32) -> Result<(), EffectError> {
    let iface = find_interface(interface)?;
    let mac = iface.mac.filter(|m| *m != MacAddr::zero()).ok_or_else(|| {
        EffectError::Net(format!("Couldn't get mac adress of interface {interface}"))
    })?;
    let pair = frames(mac, ip).ok_or_else(|| EffectError::Net("ARP frame too short".into()))?;
    let config = pnet_datalink::Config {
        write_timeout: Some(Duration::from_secs(1)),
        read_timeout: Some(Duration::from_millis(10)),
        read_buffer_size: 256,
        promiscuous: false,
        ..Default::default()
    };
    let mut tx = match pnet_datalink::channel(&iface, config) {
        Ok(Channel::Ethernet(tx, _rx)) => tx,
        Ok(_) => return Err(EffectError::Net("unsupported datalink channel".into())),
        Err(e) => {
            return Err(EffectError::Net(format!(
                "could not open a packet socket on {interface}: {e}"
            )))
        }
    };
    for _ in 0..count.max(1) {
        for f in &pair {
            match tx.send_to(f, None) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    return Err(EffectError::Net(format!("sending ARP on {interface}: {e}")))
                }
                None => return Err(EffectError::Net("ARP send buffer too small".into())),
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_gratuitous() {
        let mac = MacAddr::new(2, 0, 0, 0, 0, 1);
        let [req, rep] = frames(mac, Ipv4Addr::new(198, 18, 0, 188)).unwrap();
        assert_eq!(&req[0..6], &[0xff; 6]);
        assert_eq!(&req[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&req[12..14], &[0x08, 0x06]);
        assert_eq!(&req[20..22], &[0, 1]); // request
        assert_eq!(&rep[20..22], &[0, 2]); // reply
        assert_eq!(&req[28..32], &[198, 18, 0, 188]); // sender ip
        assert_eq!(&req[38..42], &[198, 18, 0, 188]); // target ip
        assert_eq!(&rep[22..28], &[2, 0, 0, 0, 0, 1]); // sender mac
    }
}
