//! A line connection over a [`Stream`](crate::socket::Stream) (or any async byte stream),
//! MMM's framing for both protocols (spec §4.2, §5): one request or reply per `\n`-ended
//! line, at most [`MAX_LINE`](crate::proto::MAX_LINE) bytes.
//!
//! API: [`LineConn::new`]`(stream)`; [`LineConn::read_line`] → `Ok(Some(line))` without
//! the newline (a trailing `\r` is dropped too), `Ok(None)` on a clean EOF between lines,
//! `Err(LineError::Incomplete)` when the peer closes in the middle of a line,
//! `Err(LineError::TooLong)` for an oversized line (the caller closes the connection);
//! [`LineConn::read_line_within`] adds a timeout; [`LineConn::write_all`] writes and
//! flushes. Owns the buffering so handlers never touch bytes (mini-redis's `Connection`).
//!
//! Two options keep the peers' 2.2.1 reading as it was: [`LineConn::lossy`] replaces
//! invalid UTF-8 instead of refusing the line (the monitor's control port and its agent
//! client read bytes, as Perl does), and [`LineConn::last_line_at_eof`] takes bytes after
//! the last `\n` at EOF as a line (Perl's `<$socket>`: the control port runs a final
//! command sent without a newline).
//!
//! Used for every line protocol: the agent's listener, the monitor's agent client and its
//! control listener. (`mmm_control` reads its answer to EOF, not line by line.)

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::proto::MAX_LINE;

/// Errors while reading or writing lines.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line exceeded the maximum length.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The peer closed the connection in the middle of a line.
    #[error("connection closed in the middle of a line")]
    Incomplete,
    /// No complete line arrived in time.
    #[error("no line received within {0:?}")]
    Timeout(Duration),
    /// The line is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// IO error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A buffered line connection.
#[derive(Debug)]
pub struct LineConn<S> {
    /// The buffered stream.
    stream: BufReader<S>,
    /// The longest line accepted.
    max: usize,
    /// Bytes of the line being assembled (kept across a timed-out read).
    pending: Vec<u8>,
    /// Replace invalid UTF-8 (U+FFFD) instead of answering [`LineError::NotUtf8`].
    lossy: bool,
    /// At EOF, bytes after the last newline are a line rather than
    /// [`LineError::Incomplete`].
    last_line_at_eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    /// A connection with the protocol's maximum line length.
    pub fn new(stream: S) -> Self {
        Self::with_max(stream, MAX_LINE)
    }

    /// A connection with a custom maximum line length.
    pub fn with_max(stream: S, max: usize) -> Self {
        LineConn {
            stream: BufReader::new(stream),
            max,
            pending: Vec::new(),
            lossy: false,
            last_line_at_eof: false,
        }
    }

    /// Invalid UTF-8 in a line is replaced (U+FFFD) instead of refused.
    pub fn lossy(mut self) -> Self {
        self.lossy = true;
        self
    }

    /// At EOF, bytes after the last newline are returned as a last line (Perl's
    /// `<$socket>`) instead of [`LineError::Incomplete`].
    pub fn last_line_at_eof(mut self) -> Self {
        self.last_line_at_eof = true;
        self
    }

    /// Reads one line (see the module doc).
    pub async fn read_line(&mut self) -> Result<Option<String>, LineError> {
        loop {
            let buf = self.stream.fill_buf().await?;
            if buf.is_empty() {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                if self.last_line_at_eof {
                    return self.take_line().map(Some);
                }
                self.pending.clear();
                return Err(LineError::Incomplete);
            }
            let (take, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let body = if done { take - 1 } else { take };
            if self.pending.len() + body > self.max {
                self.pending.clear();
                return Err(LineError::TooLong { max: self.max });
            }
            self.pending
                .extend_from_slice(buf.get(..body).unwrap_or_default());
            self.stream.consume(take);
            if done {
                return self.take_line().map(Some);
            }
        }
    }

    /// The assembled line, without a trailing `\r`, as text.
    fn take_line(&mut self) -> Result<String, LineError> {
        let mut line = std::mem::take(&mut self.pending);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.lossy {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        String::from_utf8(line).map_err(|_| LineError::NotUtf8)
    }

    /// [`read_line`](Self::read_line) bounded by `timeout` (a half-open peer cannot pin
    /// the reader forever).
    pub async fn read_line_within(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<String>, LineError> {
        match tokio::time::timeout(timeout, self.read_line()).await {
            Ok(r) => r,
            Err(_) => Err(LineError::Timeout(timeout)),
        }
    }

    /// Writes `data` and flushes.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), LineError> {
        let s = self.stream.get_mut();
        s.write_all(data).await?;
        s.flush().await?;
        Ok(())
    }

    /// Shuts the write side down (TLS close_notify), ignoring errors.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.get_mut().shutdown().await;
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut S {
        self.stream.get_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_eof_and_limits() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut c = LineConn::with_max(a, 8);
        b.write_all(b"PING|1|db1\n").await.unwrap();
        assert!(matches!(
            c.read_line().await,
            Err(LineError::TooLong { .. })
        ));
        let (a, mut b) = tokio::io::duplex(1024);
        let mut c = LineConn::with_max(a, 16);
        b.write_all(b"PING|1|db1\r\nX|1\nhalf").await.unwrap();
        assert_eq!(c.read_line().await.unwrap().as_deref(), Some("PING|1|db1"));
        assert_eq!(c.read_line().await.unwrap().as_deref(), Some("X|1"));
        drop(b);
        assert!(matches!(c.read_line().await, Err(LineError::Incomplete)));
        let (a, b) = tokio::io::duplex(1024);
        let mut c = LineConn::new(a);
        drop(b);
        assert_eq!(c.read_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn lossy_and_last_line_at_eof() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut strict = LineConn::new(a);
        b.write_all(b"a\xffb\n").await.unwrap();
        assert!(matches!(strict.read_line().await, Err(LineError::NotUtf8)));
        let (a, mut b) = tokio::io::duplex(1024);
        let mut perl = LineConn::new(a).lossy().last_line_at_eof();
        b.write_all(b"a\xffb\nshow\r").await.unwrap();
        drop(b);
        assert_eq!(
            perl.read_line().await.unwrap().as_deref(),
            Some("a\u{fffd}b")
        );
        assert_eq!(perl.read_line().await.unwrap().as_deref(), Some("show"));
        assert_eq!(perl.read_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let (a, _b) = tokio::io::duplex(1024);
        let mut c = LineConn::new(a);
        assert!(matches!(
            c.read_line_within(Duration::from_millis(50)).await,
            Err(LineError::Timeout(_))
        ));
    }
}
