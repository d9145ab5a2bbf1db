//! One shutdown signal for many tasks (mini-redis's `shutdown.rs`): a [`ShutdownTrigger`]
//! fires once; every [`Shutdown`] subscribed to it sees the signal, also one subscribed
//! after it fired. Tasks `select!` on [`Shutdown::recv`] where they may stop (a connection
//! waiting for its next line) and leave it out where they must not (a SET_STATUS being
//! applied), so each stops at a safe point.
//!
//! Used by every listener through `server.rs` (one per connection), and by the daemons for
//! their background tasks (the agent's lease and ARP refresh). A future HTTP listener takes
//! a [`Shutdown`] the same way (e.g. hyper's graceful shutdown on `shutdown.wait()`).
//!
//! Dropping the trigger counts as firing it, so a task never waits on a signal that can no
//! longer come.

use tokio::sync::watch;

/// The sending side: fires the signal for every subscribed [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    /// `true` once fired.
    tx: watch::Sender<bool>,
}

/// The receiving side: cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// `true` once fired; closed when the trigger is gone (also a shutdown).
    rx: watch::Receiver<bool>,
}

/// A new trigger and a first subscriber.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Fires the signal (idempotent).
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    /// Another subscriber (sees the signal even when it fired before).
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// Whether the signal has fired (or the trigger is gone).
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Waits for the signal; returns at once when it has fired already.
    pub async fn recv(&mut self) {
        // An error means the trigger was dropped: that is a shutdown too.
        let _ = self.rx.wait_for(|fired| *fired).await;
    }

    /// [`recv`](Self::recv) as an owned future, for APIs that take
    /// `shutdown: impl Future<Output = ()>`.
    pub async fn wait(mut self) {
        self.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_subscriber_sees_the_signal() {
        let (trigger, mut a) = channel();
        let b = a.clone();
        assert!(!a.is_shutdown());
        let waiting = tokio::spawn(b.wait());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        trigger.fire();
        a.recv().await;
        assert!(a.is_shutdown());
        waiting.await.unwrap();
        // A late subscriber sees it at once.
        let mut late = trigger.subscribe();
        assert!(late.is_shutdown());
        late.recv().await;
    }

    #[tokio::test]
    async fn a_dropped_trigger_is_a_shutdown() {
        let (trigger, mut s) = channel();
        drop(trigger);
        assert!(s.is_shutdown());
        tokio::time::timeout(Duration::from_secs(1), s.recv())
            .await
            .expect("recv returns");
    }
}
