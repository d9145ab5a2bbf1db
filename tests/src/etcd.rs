//! A real etcd cluster on the testbed (monitor HA, issue 16): Debian's `etcd-server`,
//! one member per host namespace (hosts without a database, see
//! [`crate::TestbedOptions::extra_hosts`]), data under the host's private directory,
//! fast Raft timings (heartbeat 100 ms, election 1 s). Members are child processes killed
//! on drop; the testbed's teardown kills whatever runs in its namespaces anyway.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Result, TestbedError};
use crate::testbed::Testbed;

/// The etcd client port.
pub const CLIENT_PORT: u16 = 2379;
/// The etcd peer port.
pub const PEER_PORT: u16 = 2380;

/// One member.
#[derive(Debug)]
struct Member {
    host: String,
    ip: Ipv4Addr,
    data: PathBuf,
    child: Mutex<Option<Child>>,
}

/// A running etcd cluster.
#[derive(Debug)]
pub struct Etcd {
    members: Vec<Member>,
    token: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Etcd {
    /// Starts one member on each of `hosts` and waits until the cluster answers.
    pub fn start(tb: &Testbed, hosts: &[&str]) -> Result<Etcd> {
        which("etcd")?;
        let mut members = Vec::new();
        for h in hosts {
            let info = tb.host(h)?;
            members.push(Member {
                host: (*h).to_string(),
                ip: info.ip,
                data: info.dir.join("etcd"),
                child: Mutex::new(None),
            });
        }
        let etcd = Etcd {
            members,
            token: format!("{}-etcd", tb.id()),
        };
        for m in &etcd.members {
            etcd.spawn(tb, m, "new")?;
        }
        etcd.wait_healthy(tb, Duration::from_secs(30))?;
        Ok(etcd)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://{}:{PEER_PORT}", m.host, m.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&self, tb: &Testbed, m: &Member, state: &str) -> Result<()> {
        let client = format!("http://{}:{CLIENT_PORT}", m.ip);
        let peer = format!("http://{}:{PEER_PORT}", m.ip);
        let data = m.data.to_string_lossy().into_owned();
        let cluster = self.initial_cluster();
        let argv = [
            "etcd",
            "--name",
            &m.host,
            "--data-dir",
            &data,
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &cluster,
            "--initial-cluster-token",
            &self.token,
            "--initial-cluster-state",
            state,
            "--heartbeat-interval",
            "100",
            "--election-timeout",
            "1000",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ];
        let child = tb.spawn(&m.host, &argv)?;
        *lock(&m.child) = Some(child);
        Ok(())
    }

    fn member(&self, host: &str) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.host == host)
            .ok_or_else(|| TestbedError::State(format!("no etcd member on {host}")))
    }

    /// `ip:port` of every member, comma-separated (the `etcd_endpoints` value).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}:{CLIENT_PORT}", m.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL to the member on `host`, reaped.
    pub fn kill(&self, host: &str) -> Result<()> {
        let m = self.member(host)?;
        if let Some(mut c) = lock(&m.child).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        Ok(())
    }

    /// Starts the member on `host` again with its data (after [`Etcd::kill`]).
    pub fn restart(&self, tb: &Testbed, host: &str) -> Result<()> {
        let m = self.member(host)?;
        if lock(&m.child).is_some() {
            return Err(TestbedError::State(format!("etcd on {host} already runs")));
        }
        self.spawn(tb, m, "existing")
    }

    /// Runs `etcdctl ARGS…` against the cluster from the first running member's host.
    pub fn ctl(&self, tb: &Testbed, args: &[&str]) -> Result<String> {
        let host = &self.members[0].host;
        let endpoints = self
            .members
            .iter()
            .map(|m| format!("http://{}:{CLIENT_PORT}", m.ip))
            .collect::<Vec<_>>()
            .join(",");
        let mut argv = vec![
            "env",
            "ETCDCTL_API=3",
            "etcdctl",
            "--dial-timeout=1s",
            "--command-timeout=2s",
        ];
        let ep = format!("--endpoints={endpoints}");
        argv.push(&ep);
        argv.extend_from_slice(args);
        let out = tb.exec_timeout(host, &argv, Duration::from_secs(10))?;
        if !out.status.success() {
            return Err(TestbedError::State(format!(
                "etcdctl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The value of `key` (`None`: absent).
    pub fn get(&self, tb: &Testbed, key: &str) -> Result<Option<String>> {
        let out = self.ctl(tb, &["get", "--print-value-only", key])?;
        Ok((!out.is_empty()).then(|| out.trim_end_matches('\n').to_string()))
    }

    /// Waits until a write through the cluster succeeds (a quorum answers).
    pub fn wait_healthy(&self, tb: &Testbed, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            match self.ctl(tb, &["put", "/mmm-tests/health", "ok"]) {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > limit => {
                    return Err(TestbedError::State(format!(
                        "etcd not healthy within {limit:?}: {e}"
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &self.members {
            if let Some(mut c) = lock(&m.child).take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn which(program: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if found {
        Ok(())
    } else {
        Err(TestbedError::State(format!(
            "{program} not found: install Debian's etcd-server and etcd-client (scripts/deps.sh)"
        )))
    }
}
