//! The MySQL connections the checks of one host share (issue 14): a connection is made
//! when a check needs one and none is idle, and goes back to the host's idle list after a
//! query that left it usable, so the periodic checks (`mysql`, `rep_threads`,
//! `rep_backlog`, and any check added beside them) no longer connect and log in at every
//! run. 2.2.1 made a fresh connection per check; at 200 hosts that was most of the
//! monitor's CPU (docs/scaling.md).
//!
//! Detection is unchanged:
//!
//! - an idle connection that the server closed meanwhile (mysqld restarted, the agent's
//!   `deny_write` killed client threads) fails its query at once; the query then runs again
//!   on a fresh connection, whose connect error is the check's result, as before;
//! - a query that does not answer within the check's `timeout` fails the check (the
//!   connection is dropped): a hung server or a cut link fails after `timeout`, as a
//!   fresh connect did; it is not retried;
//! - a server error (`Too many connections`, access denied, …) is reported as it was.
//!
//! Each check holds its connection alone while its query runs (checks of one host run
//! at the same moment), so a host has at most as many idle connections as checks.
//!
//! `rep_threads` and `rep_backlog` both read `SHOW SLAVE STATUS` at the same moment: with
//! [`HostConns::query_row_shared`] the second one waits for the first one's query and
//! takes its result (at most [`SHARED_RESULT_FRESH`] old) instead of asking the server
//! again: one query of 60-odd columns per host and period instead of two.
//!
//! The API for a check: [`HostConns::query_first`], [`HostConns::query_drop`], or
//! [`HostConns::run`] for anything else done on a `mysql_async::Conn`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Error as MyError, Row};

use super::disk_full::Probe;
use super::mysql::{connect, ConnectError, MysqlTarget};

/// How many idle connections one host keeps at most (one per MySQL check).
pub const MAX_IDLE: usize = 4;

/// How old a shared result may be for another check to take it
/// ([`HostConns::query_row_shared`]): the checks that share it run at the same moment.
pub const SHARED_RESULT_FRESH: Duration = Duration::from_millis(250);

/// The last result of [`HostConns::query_row_shared`]: when, for which statement, what.
type SharedRow = (Instant, String, Result<Option<Row>, QueryError>);

/// MariaDB's "Connection was killed" (sent to a killed idle thread before it closes).
const ER_CONNECTION_KILLED: u16 = 1927;
/// "Server shutdown in progress".
const ER_SERVER_SHUTDOWN: u16 = 1053;

/// Why a query on a host failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No connection could be made (the check's `Connect error` results).
    #[error("{}", .0.errstr)]
    Connect(ConnectError),
    /// The server answered with an error, or the connection broke during the query.
    #[error("{errstr}")]
    Query {
        /// The server's error code, if it sent one.
        code: Option<u16>,
        /// The message.
        errstr: String,
    },
    /// No answer within the timeout (hung server, cut link).
    #[error("Lost connection to server during query (no answer within {0:?})")]
    Timeout(Duration),
}

impl QueryError {
    /// The server's error code, if it sent one (a query or a connect error).
    pub fn code(&self) -> Option<u16> {
        match self {
            QueryError::Connect(c) => c.code,
            QueryError::Query { code, .. } => *code,
            QueryError::Timeout(_) => None,
        }
    }
}

/// The shared connections of one host.
#[derive(Debug)]
pub struct HostConns {
    target: MysqlTarget,
    idle: Mutex<Vec<Conn>>,
    /// The `mysql` check's disk-full probe of this server (`super::disk_full`).
    disk_probe: Mutex<Probe>,
    /// The last shared row (held while its query runs, so a second check waits for it).
    shared_row: tokio::sync::Mutex<Option<SharedRow>>,
}

/// Whether `e` says the connection itself is gone (as opposed to a server error that
/// leaves it usable).
fn connection_gone(e: &MyError) -> bool {
    match e {
        MyError::Server(se) => matches!(se.code, ER_CONNECTION_KILLED | ER_SERVER_SHUTDOWN),
        MyError::Io(_) | MyError::Driver(_) => true,
        _ => false,
    }
}

fn query_error(e: &MyError) -> QueryError {
    match e {
        MyError::Server(se) if !connection_gone(e) => QueryError::Query {
            code: Some(se.code),
            errstr: se.message.clone(),
        },
        MyError::Io(_) | MyError::Server(_) => QueryError::Query {
            code: None,
            errstr: "Lost connection to server during query".to_string(),
        },
        other => QueryError::Query {
            code: None,
            errstr: other.to_string(),
        },
    }
}

impl HostConns {
    /// No connection yet; the first query makes one.
    pub fn new(target: MysqlTarget) -> HostConns {
        HostConns {
            target,
            idle: Mutex::new(Vec::new()),
            disk_probe: Mutex::new(Probe::default()),
            shared_row: tokio::sync::Mutex::new(None),
        }
    }

    /// The `mysql` check's disk-full probe of this server (held for a moment, never across
    /// a query).
    pub fn disk_probe(&self) -> std::sync::MutexGuard<'_, Probe> {
        self.disk_probe.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where and as whom the connections are made.
    pub fn target(&self) -> &MysqlTarget {
        &self.target
    }

    /// How many connections are idle now.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().ok().and_then(|mut v| v.pop())
    }

    fn put_back(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < MAX_IDLE {
                v.push(conn);
                return;
            }
        }
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
        });
    }

    /// Drops every idle connection (the next query connects afresh).
    pub fn clear(&self) {
        let conns: Vec<Conn> = self
            .idle
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        drop(conns);
    }

    /// Runs `work` on one of the host's connections: an idle one, or a new one (connect
    /// bounded by `timeout`). `work` is bounded by `timeout`. When a reused connection
    /// turns out to be gone, `work` runs once more on a fresh connection. `work` may run
    /// twice, so it must be a query that can be repeated.
    pub async fn run<T, F>(&self, timeout: Duration, work: F) -> Result<T, QueryError>
    where
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, Result<T, MyError>>,
    {
        let mut reused = self.take_idle();
        loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => connect(&self.target, timeout)
                    .await
                    .map_err(QueryError::Connect)?,
            };
            match tokio::time::timeout(timeout, work(&mut conn)).await {
                Ok(Ok(v)) => {
                    self.put_back(conn);
                    return Ok(v);
                }
                Ok(Err(e)) if connection_gone(&e) => {
                    tracing::debug!("{}: connection gone: {e}", self.target.ip);
                    if was_reused {
                        // The others were most likely closed by the same event.
                        self.clear();
                        continue;
                    }
                    return Err(query_error(&e));
                }
                Ok(Err(e)) => {
                    if matches!(e, MyError::Server(_)) {
                        self.put_back(conn);
                    }
                    return Err(query_error(&e));
                }
                // The connection is dropped with the query in flight (never reused).
                Err(_) => return Err(QueryError::Timeout(timeout)),
            }
        }
    }

    /// `query_first` on one of the host's connections (see [`HostConns::run`]).
    pub async fn query_first<T>(
        &self,
        timeout: Duration,
        sql: &str,
    ) -> Result<Option<T>, QueryError>
    where
        T: FromRow + Send + 'static,
    {
        self.run(timeout, |c| c.query_first::<T, _>(sql.to_string()))
            .await
    }

    /// The first row of `sql`, shared by the checks that ask for it at the same moment:
    /// a result of the same statement at most [`SHARED_RESULT_FRESH`] old is returned as
    /// is, and while a query runs the next caller waits for its result.
    pub async fn query_row_shared(
        &self,
        timeout: Duration,
        sql: &str,
    ) -> Result<Option<Row>, QueryError> {
        let mut slot = self.shared_row.lock().await;
        if let Some((at, last_sql, res)) = &*slot {
            if last_sql == sql && at.elapsed() <= SHARED_RESULT_FRESH {
                return res.clone();
            }
        }
        let res = self.query_first::<Row>(timeout, sql).await;
        *slot = Some((Instant::now(), sql.to_string(), res.clone()));
        res
    }

    /// `query_drop` on one of the host's connections (see [`HostConns::run`]).
    pub async fn query_drop(&self, timeout: Duration, sql: &str) -> Result<(), QueryError> {
        self.run(timeout, |c| c.query_drop(sql.to_string())).await
    }
}
