//! `mmm_mond`, the MMM monitor (spec §3), as a library so its parts can be tested.
//!
//! Layout:
//! - `core`: the pure monitor state machine (spec §3.5-§3.14, §5.3): no IO, no clock.
//! - `checks`: one task per (host, check) (§3.3). `network`: the ping_ips check (§3.4).
//! - `agent_client`: per-host request queues to the agents (§4.1-§4.3).
//! - `kill_host`: the kill_host binary (§3.11).
//! - `control`: the control listener (§5.2), a handler of `mmm_common::server`.
//! - `audit`: the decision audit (ring and JSON lines file, issue 17).
//! - `http`: the HTTP listener (metrics, JSON API, status page; issue 17).
//! - `ha`: monitor high availability on etcd (election, leader terms, follower forwarding;
//!   issue 16).
//! - `status_file`: the status file format and its atomic write (§3.12).
//! - `cli`: the command line (also the man page's source).
//! - `driver`: the shell that owns the core and runs its actions (§3.1, §3.2); its startup
//!   parts: `startup` (initial checks, status file load, startup queries, §3.1 8d-8g) and
//!   `master_check` (the master-master check, §3.13).

pub mod core;

pub mod agent_client;
pub mod alerts;
pub mod audit;
pub mod checks;
pub mod cli;
pub mod control;
pub mod driver;
pub mod ha;
pub mod hooks;
pub mod http;
pub mod kill_host;
pub mod log_conf;
pub mod master_check;
pub mod network;
pub mod startup;
pub mod status_file;
