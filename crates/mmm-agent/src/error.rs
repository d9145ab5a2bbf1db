//! Errors of the agent's effects (spec §4.6, §4.7). The `Display` text is what goes into
//! an `ERROR: …` reply and MMM's FATAL log lines, so it keeps 2.2.1's helper wording
//! where one exists.

use std::time::Duration;

/// An effect that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// The local (or a remote) MySQL server could not be reached.
    #[error("Can't connect to MySQL (host = {host}, user = {user})! {reason}")]
    Connect {
        /// `ip:port`.
        host: String,
        /// The account.
        user: String,
        /// Why.
        reason: String,
    },
    /// A query failed.
    #[error("SQL Query Error: {0}")]
    Query(String),
    /// A wait did not finish in time (connect, query, MASTER_POS_WAIT...).
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// A network (netlink/ARP) operation failed.
    #[error("{0}")]
    Net(String),
    /// Anything else, already worded (e.g. `No peer defined`, `Unknown host db9`).
    #[error("{0}")]
    Other(String),
}

impl EffectError {
    /// Whether the error says the MySQL server is unreachable.
    pub fn is_connect(&self) -> bool {
        matches!(self, EffectError::Connect { .. })
    }
}
