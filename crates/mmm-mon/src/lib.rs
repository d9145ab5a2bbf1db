//! `mmm_mond`, the MMM monitor (spec §3), as a library so tests can drive its parts.
//!
//! Layout:
//! - `status_file`: the status file format and its atomic write (§3.12).
//! - `kill_host`: the kill_host binary (§3.11).

pub mod agent_client;
pub mod control;
pub mod kill_host;
pub mod status_file;
