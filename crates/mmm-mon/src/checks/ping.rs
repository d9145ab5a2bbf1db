//! The `ping` check and the network check's `ping_ip` (spec §3.3.1, §3.4): an ICMP echo
//! with a 0.5 s timeout, as 2.2.1 does as root with Net::Ping (mmm-rs resends the echo
//! every 0.1 s within that window, see [`ECHO_INTERVAL`]). Results are `OK` or
//! `ERROR: Could not ping <ip>`.
//!
//! The echoes go out on the monitor's one ICMP socket ([`IcmpSocket`], raw as root, else
//! the unprivileged ping socket); a check waits for its reply without holding a thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::arp_probe::ArpProber;
use super::icmp_socket::IcmpSocket;

/// 2.2.1's ICMP timeout.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// The check: `OK` or `ERROR: Could not ping <ip>`.
pub async fn ping_check(ip: &str, timeout: Duration) -> String {
    let ok = ping(ip, timeout).await.unwrap_or_else(|e| {
        tracing::debug!("ping {ip}: {e}");
        false
    });
    if ok {
        "OK".to_string()
    } else {
        format!("ERROR: Could not ping {ip}")
    }
}

/// The check on an address: `OK` or `ERROR: Could not ping <ip>`.
pub async fn ping_check_addr(ip: IpAddr, timeout: Duration) -> String {
    let ok = match ip {
        IpAddr::V4(a) => echo(a, timeout).await.unwrap_or_else(|e| {
            tracing::debug!("ping {ip}: {e}");
            false
        }),
        IpAddr::V6(_) => false,
    };
    if ok {
        "OK".to_string()
    } else {
        format!("ERROR: Could not ping {ip}")
    }
}

/// One ICMP echo to `ip`; `Ok(true)` when the reply came within `timeout`.
pub async fn ping(ip: &str, timeout: Duration) -> io::Result<bool> {
    let addr: Ipv4Addr = match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an IPv4 address: {ip}"),
            ))
        }
    };
    echo(addr, timeout).await
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Length of an echo request: 8 bytes of header, 32 of payload.
const REQUEST_LEN: usize = 40;

/// Builds an echo request.
fn echo_request(ident: u16, seq: u16) -> [u8; REQUEST_LEN] {
    let mut p = [0u8; REQUEST_LEN];
    p[0] = 8;
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..].copy_from_slice(b"mmm-rs monitor ping check......."); // 32 bytes payload
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Within one check's `timeout`, a new echo request goes out every [`ECHO_INTERVAL`] and a
/// reply to any of them is success: one lost packet does not fail the check, and a host
/// whose link heals while the check runs is seen within this interval instead of at the
/// next check.
pub const ECHO_INTERVAL: Duration = Duration::from_millis(100);

/// Forgets an echo's sequence numbers when it ends (also when its future is dropped).
struct InFlight<'a> {
    socket: &'a IcmpSocket,
    seqs: Vec<u16>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.socket.unregister(&self.seqs);
    }
}

async fn echo(addr: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    let socket = IcmpSocket::shared()?;
    let wake = Arc::new(Notify::new());
    let mut sent = InFlight {
        socket: &socket,
        seqs: Vec::with_capacity(6),
    };
    let deadline = Instant::now() + timeout;
    // Opened when the first echo went unanswered (see arp_probe.rs).
    let mut arp: Option<Option<ArpProber>> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        if !sent.seqs.is_empty() && socket.is_raw() {
            if let Some(p) = arp.get_or_insert_with(|| ArpProber::for_target(addr)) {
                p.send();
            }
        }
        let seq = socket.register(addr, &wake);
        sent.seqs.push(seq);
        socket.send(&echo_request(socket.ident(), seq), addr)?;
        let next_send = (now + ECHO_INTERVAL).min(deadline);
        tokio::select! {
            _ = wake.notified() => return Ok(true),
            _ = tokio::time::sleep_until(next_send) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::icmp_socket::echo_reply_ids;
    use super::*;

    #[test]
    fn checksum_of_request_verifies() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!(echo_reply_ids(&p), None); // a request is not a reply
        let mut r = p;
        r[0] = 0;
        assert_eq!(echo_reply_ids(&r), Some((0x1234, 7)));
    }

    #[tokio::test]
    async fn bad_address_is_an_error_result() {
        assert_eq!(
            ping_check("not-an-ip", PING_TIMEOUT).await,
            "ERROR: Could not ping not-an-ip"
        );
    }
}
