//! The optional agent lease (mmm-rs extension `agent_lease`, DESIGN.md "Beyond MMM";
//! docs/differences.md): an agent holding the writer role that has not *received* a request
//! from the monitor for `agent_lease` seconds fences itself, so that a writer cut off from
//! the monitor stops being writable before the monitor gives the writer role to another
//! master (the monitor waits the old writer's lease out, see mmm-mon `core/send.rs`).
//!
//! - [`Lease::touch`]: every well-formed request line renews the lease.
//! - [`Lease::tick`] (every [`LEASE_TICK`]; `Agent::run_lease`, spawned by `daemon_main`):
//!   when the lease is on, the agent holds the writer role, it is not fenced yet and the
//!   lease has run out →
//!   **fence**: remove the writer IP (netlink, independent of mysqld), then `read_only=1`
//!   and the kill loop (`deny_write`). The role stays in the agent's role list (the wire
//!   format does not change) but is marked fenced: `check_roles` does not re-assert it, and
//!   the next SET_STATUS that still assigns it adds it again through the full add path.
//! - The write gate: the steps that make the host writable (read_only=0, writer IP add) run
//!   inside [`Lease::enter_writable`], which re-checks the lease inside the gate; the fence
//!   takes the same gate. So a lease that runs out while a SET_STATUS is syncing never
//!   leaves the host writable or holding the writer IP. The fence never waits on the
//!   agent's state mutex (a SET_STATUS may hold it for a long sync).

use std::time::Duration;

use mmm_common::role::RoleIp;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard};
use tokio::time::Instant;

use crate::effects::{parse_ip, MysqlOps, Vip};

/// How often the lease task checks the lease (the monitor's grace assumes ≤ 100 ms).
pub const LEASE_TICK: Duration = Duration::from_millis(100);

/// Retry interval of a fence's `deny_write` that failed (mysqld down or hung).
const DENY_RETRY: Duration = Duration::from_secs(1);

/// What the lease knows (a plain mutex, held only for a few field accesses).
#[derive(Debug)]
struct LeaseInner {
    /// When the agent last received a well-formed request.
    last_receipt: Instant,
    /// The writer role the agent holds (in its role list), if any.
    writer: Option<RoleIp>,
    /// The held writer role was fenced (IP removed, read_only=1 requested).
    fenced: bool,
    /// The fence's `deny_write` failed; retried on the next ticks.
    deny_pending: bool,
    /// When the next retry of a failed `deny_write` is due.
    deny_retry_at: Option<Instant>,
}

/// The agent's lease (off when its period is zero: then nothing ever fences).
#[derive(Debug)]
pub struct Lease {
    /// `agent_lease` (zero = off).
    period: Duration,
    /// State shared by the request handlers, the role steps and the lease task.
    inner: std::sync::Mutex<LeaseInner>,
    /// The write gate (see the module doc).
    gate: AsyncMutex<()>,
}

/// The write gate, held while a writable-making step runs.
#[derive(Debug)]
pub struct WriteGate<'a> {
    lease: &'a Lease,
    _guard: MutexGuard<'a, ()>,
}

impl WriteGate<'_> {
    /// Whether the step may go on (the lease has not run out and the writer was not fenced
    /// since the gate was entered). Checked between read_only=0 and the IP add.
    pub fn still_allowed(&self) -> bool {
        self.lease.refusal().is_none() && !self.lease.inner().fenced
    }
}

impl Lease {
    /// A lease of `period` (zero = off), renewed now.
    pub fn new(period: Duration) -> Lease {
        Lease {
            period,
            inner: std::sync::Mutex::new(LeaseInner {
                last_receipt: Instant::now(),
                writer: None,
                fenced: false,
                deny_pending: false,
                deny_retry_at: None,
            }),
            gate: AsyncMutex::new(()),
        }
    }

    /// Whether the lease is on.
    pub fn is_on(&self) -> bool {
        !self.period.is_zero()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, LeaseInner> {
        // A poisoned lock only means another thread panicked mid-update of plain fields.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request from the monitor was received: renew the lease.
    pub fn touch(&self) {
        self.inner().last_receipt = Instant::now();
    }

    /// Time since the last request.
    pub fn silence(&self) -> Duration {
        self.inner().last_receipt.elapsed()
    }

    /// Why a writable-making step must not run now (None: it may).
    fn refusal(&self) -> Option<String> {
        if !self.is_on() {
            return None;
        }
        let inner = self.inner();
        let silence = inner.last_receipt.elapsed();
        if silence >= self.period {
            return Some(format!(
                "the agent lease has run out (no word from the monitor for {:.1} s, \
                 agent_lease {} s)",
                silence.as_secs_f64(),
                self.period.as_secs_f64()
            ));
        }
        None
    }

    /// Enters the write gate for writer role `r`: refuses when the lease has run out (and,
    /// for a re-assertion, `readd` false, when `r` is fenced); otherwise records `r` as the
    /// held writer (no longer fenced) and returns the gate.
    pub async fn enter_writable(&self, r: &RoleIp, readd: bool) -> Result<WriteGate<'_>, String> {
        let guard = self.gate.lock().await;
        if let Some(why) = self.refusal() {
            return Err(why);
        }
        if !readd && self.is_fenced(r) {
            return Err("the writer role is fenced until the monitor assigns it again".into());
        }
        {
            let mut inner = self.inner();
            inner.writer = Some(r.clone());
            inner.fenced = false;
            inner.deny_pending = false;
            inner.deny_retry_at = None;
        }
        Ok(WriteGate {
            lease: self,
            _guard: guard,
        })
    }

    /// Whether held writer role `r` is fenced (not re-asserted; re-added by SET_STATUS).
    pub fn is_fenced(&self, r: &RoleIp) -> bool {
        let inner = self.inner();
        inner.fenced && inner.writer.as_ref() == Some(r)
    }

    /// Records the writer role the agent now holds after a SET_STATUS (`None`: none). A
    /// different or no writer role clears the fence mark.
    pub fn set_writer(&self, writer: Option<&RoleIp>) {
        let mut inner = self.inner();
        if inner.writer.as_ref() != writer {
            inner.fenced = false;
            inner.deny_pending = false;
            inner.deny_retry_at = None;
        }
        inner.writer = writer.cloned();
    }

    /// One lease check: fences the held writer role when the lease has run out. Returns
    /// whether it fenced (or retried a failed `deny_write`).
    pub async fn tick(&self, vip: &dyn Vip, mysql: &dyn MysqlOps) -> bool {
        if !self.is_on() {
            return false;
        }
        let (ip, silence, retry) = {
            let mut inner = self.inner();
            let silence = inner.last_receipt.elapsed();
            let Some(writer) = inner.writer.clone() else {
                return false;
            };
            if inner.fenced {
                if !inner.deny_pending || inner.deny_retry_at.is_some_and(|t| t > Instant::now()) {
                    return false;
                }
                (writer.ip, silence, true)
            } else {
                if silence < self.period {
                    return false;
                }
                inner.fenced = true;
                inner.deny_pending = true;
                (writer.ip, silence, false)
            }
        };
        if !retry {
            tracing::error!(
                "No word from the monitor for {:.1} s (agent_lease {} s): fencing myself \
                 (writer IP {ip} removed, read_only=1)",
                silence.as_secs_f64(),
                self.period.as_secs_f64()
            );
            // The IP first, without the gate: it does not depend on mysqld.
            remove_ip(vip, &ip).await;
        }
        let _gate = self.gate.lock().await;
        // A SET_STATUS received since (lease renewed) may have added the role again inside
        // the gate: then it is no longer fenced and stays as it is.
        if !self.inner().fenced {
            return true;
        }
        // Again inside the gate: a writable-making step that passed its check just before
        // the lease ran out may have added it meanwhile.
        remove_ip(vip, &ip).await;
        match mysql.deny_write().await {
            Ok(()) => {
                let mut inner = self.inner();
                inner.deny_pending = false;
                inner.deny_retry_at = None;
                if retry {
                    tracing::info!("Fence: read_only=1 is now set");
                }
            }
            Err(e) => {
                let mut inner = self.inner();
                inner.deny_retry_at = Some(Instant::now() + DENY_RETRY);
                if retry {
                    tracing::debug!("Fence: couldn't deny writes (retrying): {e}");
                } else {
                    tracing::error!(
                        "Fence: couldn't deny writes (retrying every {} s): {e}",
                        DENY_RETRY.as_secs_f64()
                    );
                }
            }
        }
        true
    }
}

/// Removes `ip` (fence step 1); logs failures.
async fn remove_ip(vip: &dyn Vip, ip: &str) {
    let addr = match parse_ip(ip) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("Fence: {e}");
            return;
        }
    };
    match vip.has_ip(addr).await {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = vip.remove_ip(addr).await {
                tracing::error!(
                    "Fence: couldn't clear IP '{ip}' from interface '{}': {e}",
                    vip.interface()
                );
            }
        }
        Err(e) => {
            tracing::error!("Fence: couldn't check IP '{ip}': {e}");
            if let Err(e) = vip.remove_ip(addr).await {
                tracing::error!("Fence: couldn't clear IP '{ip}': {e}");
            }
        }
    }
}
