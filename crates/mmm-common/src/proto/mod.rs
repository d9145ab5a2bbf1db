//! Wire codecs: pure functions over `&str`, no sockets.
//!
//! - `agent`: monitor ↔ agent requests and replies (spec §4.2, §4.3).

pub mod agent;

/// Longest request or reply line accepted from a peer, in bytes (newline excluded).
/// 2.2.1 has no limit; role lists of large clusters stay far below this.
pub const MAX_LINE: usize = 64 * 1024;
