//! Running Rust code of the test process "on" a host: a thread that enters the host's
//! network namespace (`setns`, which moves only the calling thread). Sockets keep the
//! namespace they were created in, so a `TcpStream` made there can be handed back and used
//! from anywhere (e.g. `tokio::net::TcpStream::from_std`). The test process itself, and so
//! everything else, stays in the root namespace.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use crate::error::{io_err, Result, TestbedError};
use crate::testbed::Testbed;

impl Testbed {
    /// Runs `f` on a fresh thread inside `host`'s network namespace and returns its
    /// result. The closure must not spawn threads expecting them to share the namespace
    /// (new threads inherit it, so they do; tokio's blocking pool threads created later
    /// elsewhere do not). A `current_thread` tokio runtime built inside `f` works.
    pub fn run_in_netns<T, F>(&self, host: &str, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let path = format!("/run/netns/{}", self.host(host)?.netns);
        let ns = File::open(&path).map_err(io_err(format!("opening {path}")))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| TestbedError::Io {
                        what: format!("setns {path}"),
                        source: std::io::Error::from(e),
                    })?;
                    Ok(f())
                })
                .join()
                .map_err(|_| TestbedError::State("the closure run in a host panicked".into()))?
        })
    }

    /// A TCP connection from `host` to `to`, bounded by `timeout`.
    pub fn tcp_connect_from(
        &self,
        host: &str,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<std::io::Result<TcpStream>> {
        self.run_in_netns(host, move || TcpStream::connect_timeout(&to, timeout))
    }

    /// A TCP listener bound in `host`'s namespace.
    pub fn tcp_listen_on(
        &self,
        host: &str,
        addr: SocketAddr,
    ) -> Result<std::io::Result<TcpListener>> {
        self.run_in_netns(host, move || TcpListener::bind(addr))
    }
}
