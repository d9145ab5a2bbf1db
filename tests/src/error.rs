//! The testbed's error type (one `thiserror` enum for the `mmm_tests` library).

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, driving or tearing down a testbed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The testbed needs root (network namespaces, bind mounts, starting mariadbd).
    #[error("the testbed needs root (euid 0); running as euid {0}")]
    NotRoot(u32),
    /// A program the testbed needs is not installed (and could not be installed).
    #[error("prerequisite missing: {what} ({hint})")]
    MissingPrerequisite {
        /// The program or file that is missing.
        what: String,
        /// How to get it.
        hint: String,
    },
    /// A host name that is not one of this testbed's hosts.
    #[error("no host named {0:?} in this testbed")]
    UnknownHost(String),
    /// An operation that only makes sense on a database host was asked of another host.
    #[error("host {0} runs no MariaDB server")]
    NotADatabaseHost(String),
    /// A command the testbed ran failed.
    #[error("command failed: {cmd}: {detail}")]
    Command {
        /// The command line, for the message.
        cmd: String,
        /// Exit status and stderr.
        detail: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A MariaDB server exited while the testbed waited for it to come up.
    #[error("mariadbd on {host} exited during start-up ({status}); error log tail:\n{log_tail}")]
    ServerDied {
        /// The host.
        host: String,
        /// Its exit status.
        status: String,
        /// The last lines of its error log.
        log_tail: String,
    },
    /// A SQL statement failed (CLI or mysql_async).
    #[error("SQL on {host} failed: {query}: {detail}")]
    Sql {
        /// The host the query ran on.
        host: String,
        /// The query.
        query: String,
        /// The server's or driver's message.
        detail: String,
    },
    /// Something about the testbed's state is not as expected.
    #[error("{0}")]
    State(String),
    /// The state file could not be read or parsed.
    #[error("state file {path}: {detail}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// An I/O error, with what we were doing.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for the testbed.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;

/// Wraps an `io::Error` with a description of what was being done.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestbedError {
    let what = what.into();
    move |source| TestbedError::Io { what, source }
}
