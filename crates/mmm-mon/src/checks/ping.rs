//! The `ping` check and the network check's `ping_ip` (spec §3.3.1, §3.4): an ICMP echo
//! with a 0.5 s timeout, as 2.2.1 does as root with Net::Ping (mmm-rs resends the echo
//! every 0.1 s within that window, see [`ECHO_INTERVAL`]). Results are `OK` or
//! `ERROR: Could not ping <ip>`.
//!
//! A raw ICMP socket is used (root); without the privilege the unprivileged "ping socket"
//! (`SOCK_DGRAM`/`IPPROTO_ICMP`) is tried. The echo runs on the blocking pool with the
//! socket's own receive timeout, so it never holds up a tokio worker.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::arp_probe::ArpProber;

/// 2.2.1's ICMP timeout.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Sequence numbers shared by every echo of this process (with a random identifier, they
/// tell our replies apart from each other's on a raw socket, which sees every echo reply).
static SEQ: AtomicU16 = AtomicU16::new(1);

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
    tokio::task::spawn_blocking(move || echo(addr, timeout))
        .await
        .map_err(io::Error::other)?
}

fn open() -> io::Result<(Socket, bool)> {
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(s) => Ok((s, true)),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)).map(|s| (s, false))
        }
        Err(e) => Err(e),
    }
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

/// Builds an echo request.
fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8u8, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"mmm-rs monitor ping check......."); // 32 bytes payload
    let c = checksum(&p);
    if let Some(slot) = p.get_mut(2..4) {
        slot.copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `packet` (ICMP message, IP header already stripped) is our echo reply.
fn is_our_reply(icmp: &[u8], ident: Option<u16>, seq: u16) -> bool {
    match icmp {
        [0, 0, _, _, i1, i2, s1, s2, ..] => {
            let id_ok = match ident {
                Some(id) => u16::from_be_bytes([*i1, *i2]) == id,
                None => true,
            };
            id_ok && u16::from_be_bytes([*s1, *s2]) == seq
        }
        _ => false,
    }
}

/// Within one check's `timeout`, a new echo request goes out every [`ECHO_INTERVAL`] and a
/// reply to any of them is success: one lost packet does not fail the check, and a host
/// whose link heals while the check runs is seen within this interval instead of at the
/// next check.
pub const ECHO_INTERVAL: Duration = Duration::from_millis(100);

fn echo(addr: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    let (socket, raw) = open()?;
    // std's datagram calls (recvfrom/sendto) work on a raw or ping socket as well.
    let socket: UdpSocket = socket.into();
    let ident: u16 = rand::random();
    let target = SocketAddr::V4(SocketAddrV4::new(addr, 0));
    let start = Instant::now();
    let deadline = start + timeout;
    let mut sent: Vec<u16> = Vec::new();
    let mut next_send = start;
    // Opened when the first echo went unanswered (see arp_probe.rs).
    let mut arp: Option<Option<ArpProber>> = None;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        if now >= next_send {
            if !sent.is_empty() && raw {
                if let Some(p) = arp.get_or_insert_with(|| ArpProber::for_target(addr)) {
                    p.send();
                }
            }
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            socket.send_to(&echo_request(ident, seq), target)?;
            sent.push(seq);
            next_send = now + ECHO_INTERVAL;
        }
        let wait = deadline
            .min(next_send)
            .saturating_duration_since(Instant::now());
        if wait.is_zero() {
            continue;
        }
        socket.set_read_timeout(Some(wait))?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        if from.ip() != IpAddr::V4(addr) {
            continue;
        }
        let data = buf.get(..n).unwrap_or_default();
        let icmp = if raw {
            let ihl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
            data.get(ihl..).unwrap_or_default()
        } else {
            data
        };
        // A ping socket rewrites the identifier; match on the sequence only.
        if sent
            .iter()
            .any(|&seq| is_our_reply(icmp, raw.then_some(ident), seq))
        {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_request_verifies() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert!(!is_our_reply(&p, Some(0x1234), 7)); // a request is not a reply
        let mut r = p.clone();
        r[0] = 0;
        assert!(is_our_reply(&r, Some(0x1234), 7));
        assert!(!is_our_reply(&r, Some(0x1235), 7));
        assert!(!is_our_reply(&r, None, 8));
        assert!(!is_our_reply(&[0, 0], None, 8));
    }

    #[tokio::test]
    async fn bad_address_is_an_error_result() {
        assert_eq!(
            ping_check("not-an-ip", PING_TIMEOUT).await,
            "ERROR: Could not ping not-an-ip"
        );
    }
}
