//! The errant-transaction guard on the testbed (issue 13; docs/data-safety.md): a crash
//! failover with a lagging standby, the returning old master kept out with its errant
//! transactions listed and none of them on another server, then accepted by the operator.
//!
//! Needs root and the binaries: `cargo build -p mmm-mon -p mmm-agent -p mmm-control`,
//! then `cargo test -p mmm-tests --test errant -- --nocapture`.

mod scenarios;

use scenarios::{fast, Cluster};

#[test]
fn returning_master_with_errant_transactions() {
    let mut c = Cluster::start(fast(120));
    scenarios::errant::old_master_kept_out_then_accepted(&mut c);
}
