//! Shared pieces of mmm-rs, the Rust port of MySQL-MMM 2.2.1.
//!
//! Layout:
//! - `config`: MMM's configuration language, the effective configuration and each program's
//!   settings (`MonitorSettings`, `AgentSettings`, `ControlSettings`) (spec §2).
//! - `state`: host states, host modes, monitor modes with their wire words.
//! - `role`: `name(ip)` role instances and role lists.
//! - `proto`: wire codecs, agent protocol (spec §4) and control protocol (spec §5).
//! - `socket`: plain/TLS listener and connector; `line`: line framing with a length cap.
//! - `server`: the one accept loop (connection limit, accept backoff, TLS handshake, a
//!   `Handler` per listener); `shutdown`: the shutdown signal every listener and task uses.
//! - `access`: who may command a daemon (`monitor_ips`, `control_allow`) and the rate limit
//!   of the refusal log lines.
//! - `gtid`: errant transactions (a returning master's GTIDs the active master lacks).
//! - `arp`: the ARP frames the agent (gratuitous ARP) and the monitor (ARP probe) send.
//! - `daemon`, `log`, `pidfile`, `uptime`: daemon plumbing (spec §7).
//! - `test_pki` (feature `test-support`): test certificates for the crates' TLS tests.

#![warn(missing_docs, unreachable_pub)]

pub mod access;
pub mod arp;
pub mod config;
pub mod daemon;
pub mod gtid;
pub mod line;
pub mod log;
pub mod mysql_tls;
pub mod pidfile;
pub mod proto;
pub mod role;
pub mod server;
pub mod shutdown;
pub mod socket;
pub mod state;
#[cfg(feature = "test-support")]
pub mod test_pki;
pub mod uptime;

/// The version string every binary prints after its name (`mmm_mond 2.2.1-rs.1`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// MMM's protocol version (spec §1): monitor and agent both speak version 1.
pub const PROTOCOL_VERSION: u32 = 1;
