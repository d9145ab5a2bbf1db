//! The monitor core: MMM's decision logic as a pure state machine (spec §3.5-§3.14, §5.3).
//!
//! [`Monitor`] is the only entry point. It takes check results, agent replies, admin
//! commands, network verdicts and the current time, and returns the [`Action`]s to carry
//! out. It never does IO, never reads a clock, never waits; whatever depends on an effect's
//! outcome happens when that outcome comes back as an input with the same [`Token`].
//!
//! Calls, in quinn-proto's shape:
//! - inputs: [`Monitor::handle`] (one [`Input`]), [`Monitor::handle_timeout`] (time passed);
//! - outputs: [`Monitor::poll_action`] (drain after every `handle_*`), [`Monitor::poll_timeout`]
//!   (the next deadline: trap period, retry, broadcast, grace, auto_set_online...).
//!
//! Time never goes backwards: every call's `now` must be ≥ the previous one.
//!
//! Layout: `types.rs` (inputs, actions), `host.rs` (per-host record, state setter, flapping),
//! `checks_status.rs` (check table and trap periods), `roles.rs` (role table and
//! distribution), `transitions.rs` (§3.6 table, WAIT exit), `commands.rs` (§5.3),
//! `startup.rs` (§3.14), `send.rs` (SET_STATUS sends, retries, broadcast, cross-host
//! sequencing of a master switch).
//!
//! Order: configuration order everywhere (hosts, roles, IPs); no hash map is iterated.

#![warn(missing_docs, unreachable_pub)]

mod types;

pub use types::*;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mmm_common::config::Config;
use mmm_common::state::MonitorMode;

/// Interval of the periodic SET_STATUS broadcast to every host (spec §3.2 step 5: ~3 s).
pub const BROADCAST_INTERVAL: Duration = Duration::from_secs(3);

/// The MMM monitor's decision core. See the module documentation for the calling contract.
#[derive(Debug)]
pub struct Monitor {
    config: Config,
    mode: MonitorMode,
    actions: VecDeque<Action>,
    now: Instant,
}

impl Monitor {
    /// A monitor for `config` (validated for the monitor class), started at `now` / `wall`
    /// (epoch seconds, used as `last_change` of the initial checks).
    pub fn new(config: &Config, now: Instant, wall: i64) -> Monitor {
        let _ = wall;
        let mode = config
            .monitor
            .as_ref()
            .map(|m| m.mode)
            .unwrap_or(MonitorMode::Active);
        Monitor {
            config: config.clone(),
            mode,
            actions: VecDeque::new(),
            now,
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = now;
        let _ = input;
    }

    /// Lets time pass: fires every deadline ≤ `now`. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest deadline at which [`Monitor::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The current monitor mode.
    pub fn mode(&self) -> MonitorMode {
        self.mode
    }

    /// The configuration the monitor runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
