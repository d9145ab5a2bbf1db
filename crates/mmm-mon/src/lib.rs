//! mmm_mond, the MMM monitor, as a library so its parts can be tested.
//!
//! Layout:
//! - `core`: the pure monitor state machine (spec §3.5-§3.14, §5.3): no IO, no clock.

pub mod core;
