//! [`ToolsError`]: why a tool stops. A usage error prints the usage and exits 1 (as 2.2.1's
//! `print_usage`); every other error is logged as `ERROR: …` and exits 255 (as Perl's `die`).

use mmm_common::config::ConfigError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// Bad command line or parameter: the message, then the usage (exit 1).
    #[error("{0}")]
    Usage(String),
    /// The configuration could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A step failed; the message says which and what was left as it was.
    #[error("{0}")]
    Failed(String),
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A MySQL query or connection failed.
    #[error("MySQL on {host}: {detail}")]
    Sql {
        /// The host's name.
        host: String,
        /// The driver's error.
        detail: String,
    },
}

impl ToolsError {
    /// The process exit code: 1 for usage errors, 255 (Perl's `die`) otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolsError::Usage(_) => 1,
            _ => 255,
        }
    }
}

/// A `map_err` helper for I/O errors.
pub fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolsError {
    let what = what.into();
    move |source| ToolsError::Io { what, source }
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, ToolsError>;
