//! `mmm_agentd`, the MMM agent (spec §4): listens for the monitor's requests and carries
//! out role changes on its host (role IPs, gratuitous ARP, read_only, replication).
//!
//! Layout:
//! - `listener`: the agent port's handler for `mmm_common::server` (the shared accept loop
//!   and `Shutdown`), one request line per reply (spec §4.1); refuses sources not in
//!   `monitor_ips`.
//! - `agent`: state, command dispatch, the pure SET_STATUS plan (spec §4.2–§4.5).
//! - `role`: add/delete/check one role in MMM's order (spec §4.6); `revoke`: a SET_STATUS
//!   without the writer role stops the writer assertions in progress (issue 14).
//! - `lease`: the optional agent lease (an isolated writer fences itself); `fencing`: the
//!   monitor terms of monitor HA (a deposed leader's commands are refused).
//! - `effects`: the `Vip` and `MysqlOps` traits, `parse_ip`; `error`: effect errors.
//! - `vip`: role IPs through rtnetlink; `arp`: gratuitous ARP frames and bursts through
//!   pnet; `arp_schedule`: when bursts go out (the repeats after an add and the periodic
//!   refresh of held role IPs).
//! - `mysql`: the real `MysqlOps` (spec §4.7 helpers), with `mysql/catchup.rs` (the new
//!   master fetches from the most advanced survivor what it lacks); `flavor`: SQL per
//!   server version; `semi_sync`: semi-synchronous replication per server version
//!   (applied by `mysql/semi_sync.rs`).
//! - `daemon_main`: the binary's start-up (args, config, pid file, logging, signals).

pub mod agent;
pub mod arp;
pub mod arp_schedule;
pub mod daemon_main;
pub mod effects;
pub mod error;
pub mod fencing;
pub mod flavor;
pub mod lease;
pub mod listener;
pub mod mysql;
pub mod revoke;
pub mod role;
pub mod semi_sync;
pub mod vip;
