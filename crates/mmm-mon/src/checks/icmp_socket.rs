//! The monitor's one ICMP socket (issue 14): every echo of the `ping` check, the network
//! check and the liveness watch goes out on it, and one receiver task hands each reply to
//! the echo waiting for it by its sequence number (and, on a raw socket, identifier).
//!
//! Before, each echo opened its own raw socket and waited for the reply on a thread of
//! tokio's blocking pool: with 204 hosts, 200-odd sockets, threads woken and parked a
//! second. Now an echo is one `sendto` and a wait on a [`Notify`].
//!
//! The socket is raw (root) or, without the privilege, the unprivileged "ping socket"
//! (`SOCK_DGRAM`/`IPPROTO_ICMP`, whose kernel rewrites the identifier and delivers only
//! this socket's replies: there the sequence number alone tells echoes apart). It is made
//! on first use in the current tokio runtime and made again when that runtime's receiver
//! task is gone (tests run several runtimes in one process).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// Who waits for a sequence number: the echo's target and its waker.
type Waiter = (Ipv4Addr, Arc<Notify>);

/// The shared socket and the echoes in flight.
pub struct IcmpSocket {
    /// tokio's datagram socket over the ICMP one (its `recvfrom`/`sendto` work on a raw
    /// or ping socket as they do on UDP).
    sock: UdpSocket,
    /// Raw socket (IP header in front of each reply; every ICMP packet of the host).
    raw: bool,
    /// This process's identifier (matched on a raw socket only).
    ident: u16,
    /// Next sequence number.
    seq: Mutex<u16>,
    /// Echoes in flight by sequence number.
    waiters: Mutex<HashMap<u16, Waiter>>,
    /// The receiver task is gone (its runtime shut down).
    closed: AtomicBool,
}

/// The socket of the current runtime, if one was made.
static SHARED: Mutex<Option<Arc<IcmpSocket>>> = Mutex::new(None);

/// Sets [`IcmpSocket::closed`] when the receiver task ends or is dropped.
struct ClosedOnDrop(Arc<IcmpSocket>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Relaxed);
    }
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

/// The ICMP message of a received datagram (a raw socket's IP header stripped).
pub fn icmp_payload(data: &[u8], raw: bool) -> &[u8] {
    if raw {
        let ihl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
        data.get(ihl..).unwrap_or_default()
    } else {
        data
    }
}

/// An echo reply's identifier and sequence number (`None` for any other message).
pub fn echo_reply_ids(icmp: &[u8]) -> Option<(u16, u16)> {
    match icmp {
        [0, 0, _, _, i1, i2, s1, s2, ..] => Some((
            u16::from_be_bytes([*i1, *i2]),
            u16::from_be_bytes([*s1, *s2]),
        )),
        _ => None,
    }
}

impl IcmpSocket {
    /// The socket of the current tokio runtime (made, with its receiver task, on first
    /// use). Must be called within a runtime.
    pub fn shared() -> io::Result<Arc<IcmpSocket>> {
        let mut slot = SHARED.lock().map_err(|_| io::Error::other("poisoned"))?;
        if let Some(s) = slot.as_ref() {
            if !s.closed.load(Ordering::Relaxed) {
                return Ok(s.clone());
            }
        }
        let (socket, raw) = open()?;
        socket.set_nonblocking(true)?;
        // Room for a burst of replies (every host answering within one scheduling pause).
        let _ = socket.set_recv_buffer_size(1 << 18);
        let s = Arc::new(IcmpSocket {
            sock: UdpSocket::from_std(socket.into())?,
            raw,
            ident: rand::random(),
            seq: Mutex::new(rand::random()),
            waiters: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let guard = ClosedOnDrop(s.clone());
        tokio::spawn(async move { guard.0.receive().await });
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Whether this is a raw socket (ARP probes need the same privilege).
    pub fn is_raw(&self) -> bool {
        self.raw
    }

    /// The identifier to put in echo requests.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// A sequence number not in flight, registered for `target`: its reply notifies `wake`.
    pub fn register(&self, target: Ipv4Addr, wake: &Arc<Notify>) -> u16 {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let s = *seq;
            *seq = seq.wrapping_add(1);
            if let std::collections::hash_map::Entry::Vacant(v) = waiters.entry(s) {
                v.insert((target, wake.clone()));
                return s;
            }
        }
    }

    /// Forgets sequence numbers (their echo is over).
    pub fn unregister(&self, seqs: &[u16]) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        for s in seqs {
            waiters.remove(s);
        }
    }

    /// Sends `packet` to `target` (a full send buffer drops it: the echo is resent).
    pub fn send(&self, packet: &[u8], target: Ipv4Addr) -> io::Result<()> {
        let to = SocketAddr::V4(SocketAddrV4::new(target, 0));
        match self.sock.try_send_to(packet, to) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands a received datagram from `from` to its waiter.
    fn deliver(&self, data: &[u8], from: IpAddr) {
        let Some((ident, seq)) = echo_reply_ids(icmp_payload(data, self.raw)) else {
            return;
        };
        if self.raw && ident != self.ident {
            return;
        }
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((target, _)) = waiters.get(&seq) {
            if IpAddr::V4(*target) == from {
                if let Some((_, wake)) = waiters.remove(&seq) {
                    wake.notify_one();
                }
            }
        }
    }

    /// The receiver task: reads every datagram and delivers it.
    async fn receive(&self) {
        let mut buf = [0u8; 2048];
        loop {
            match self.sock.recv_from(&mut buf).await {
                Ok((n, from)) => self.deliver(buf.get(..n).unwrap_or_default(), from.ip()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Not expected on a datagram socket; do not spin on it.
                    tracing::debug!("ICMP socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(ident: u16, seq: u16) -> Vec<u8> {
        let mut p = vec![0u8, 0, 0, 0];
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p
    }

    #[test]
    fn reply_ids_and_ip_header() {
        let r = reply(0x1234, 9);
        assert_eq!(echo_reply_ids(&r), Some((0x1234, 9)));
        let mut request = r.clone();
        request[0] = 8;
        assert_eq!(echo_reply_ids(&request), None);
        assert_eq!(echo_reply_ids(&[0, 0, 1]), None);
        // IHL 5 → 20 bytes of IP header in front on a raw socket.
        let mut ip = vec![0x45u8];
        ip.resize(20, 0);
        ip.extend_from_slice(&r);
        assert_eq!(echo_reply_ids(icmp_payload(&ip, true)), Some((0x1234, 9)));
        assert_eq!(icmp_payload(&r, false), &r[..]);
        assert_eq!(icmp_payload(&[0x4f], true), &[] as &[u8]);
    }

    /// A reply wakes only the echo with its sequence number, identifier and source.
    #[tokio::test]
    async fn replies_reach_their_echo_only() {
        let Ok(s) = IcmpSocket::shared() else {
            return; // no ICMP socket allowed here
        };
        let a: Ipv4Addr = "198.18.0.1".parse().unwrap_or(Ipv4Addr::LOCALHOST);
        let b: Ipv4Addr = "198.18.0.2".parse().unwrap_or(Ipv4Addr::LOCALHOST);
        let wa = Arc::new(Notify::new());
        let wb = Arc::new(Notify::new());
        let sa = s.register(a, &wa);
        let sb = s.register(b, &wb);
        assert_ne!(sa, sb);
        let raw_ip = |icmp: Vec<u8>| {
            if s.is_raw() {
                let mut ip = vec![0x45u8];
                ip.resize(20, 0);
                ip.extend_from_slice(&icmp);
                ip
            } else {
                icmp
            }
        };
        // Wrong source, wrong identifier (raw only): nothing.
        s.deliver(&raw_ip(reply(s.ident(), sa)), IpAddr::V4(b));
        if s.is_raw() {
            s.deliver(&raw_ip(reply(s.ident().wrapping_add(1), sa)), IpAddr::V4(a));
        }
        let short = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(short, wa.notified()).await.is_err());
        // The right one.
        s.deliver(&raw_ip(reply(s.ident(), sa)), IpAddr::V4(a));
        assert!(tokio::time::timeout(short, wa.notified()).await.is_ok());
        assert!(tokio::time::timeout(short, wb.notified()).await.is_err());
        s.unregister(&[sa, sb]);
        let left = s
            .waiters
            .lock()
            .map(|w| w.contains_key(&sa) || w.contains_key(&sb));
        assert_eq!(left.ok(), Some(false));
    }
}
