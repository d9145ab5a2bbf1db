//! Revoking the writer role while the agent is still busy asserting it (issue 14).
//!
//! A re-assertion of the writer role (MMM's "check roles" after every connection, a kept
//! role in SET_STATUS) or an add connects to the local server under the agent's state lock.
//! When that server is frozen the connect takes its bound (0.5 s for a re-assertion,
//! `mysql_timeout` for an add), and a SET_STATUS that takes the writer role away, queued
//! behind the lock, waited for it: the failover waited for a connect to the very server it
//! was moving away from. A SET_STATUS without the writer role now [`Revocation::revoke`]s
//! before it waits for the lock; every writer assertion that started earlier stops at once
//! (before `read_only=0` is answered, or before the IP is added), so the demotion runs
//! next. An assertion that started after the revocation is not affected.

use tokio::sync::watch;

/// The agent's revocation counter.
#[derive(Debug)]
pub struct Revocation {
    tx: watch::Sender<u64>,
}

impl Default for Revocation {
    fn default() -> Self {
        Revocation {
            tx: watch::channel(0).0,
        }
    }
}

impl Revocation {
    /// Stops every writer assertion that started before this call.
    pub fn revoke(&self) {
        self.tx.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A watch for an assertion starting now.
    pub fn watch(&self) -> RevokeWatch {
        let rx = self.tx.subscribe();
        let start = *rx.borrow();
        RevokeWatch { rx, start }
    }
}

/// Whether the writer role was revoked since the watch was taken.
#[derive(Debug, Clone)]
pub struct RevokeWatch {
    rx: watch::Receiver<u64>,
    start: u64,
}

impl RevokeWatch {
    /// The writer role was revoked since the watch was taken.
    pub fn revoked(&self) -> bool {
        *self.rx.borrow() != self.start
    }

    /// Resolves once the writer role is revoked (never, if it is not).
    pub async fn until_revoked(&self) {
        let mut rx = self.rx.clone();
        loop {
            if *rx.borrow_and_update() != self.start {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_earlier_watches_are_revoked() {
        let r = Revocation::default();
        let before = r.watch();
        assert!(!before.revoked());
        let waiting = tokio::spawn({
            let w = before.clone();
            async move { w.until_revoked().await }
        });
        r.revoke();
        waiting.await.unwrap();
        assert!(before.revoked());
        let after = r.watch();
        assert!(!after.revoked());
    }
}
