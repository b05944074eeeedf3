//! The process-wide "we are stopping" signal: set once on SIGTERM (or Ctrl-C). Workers finish
//! the step they are in and stop, the delivery worker gives back the emails it claimed but did
//! not send, and subscriptions close with 1001 (going away).

use tokio::sync::watch;

#[derive(Debug)]
pub struct Shutdown {
    stopping: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            stopping: watch::Sender::new(false),
        }
    }
}

impl Shutdown {
    /// Starts stopping; every waiter wakes.
    pub fn begin(&self) {
        self.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once stopping has begun (at once if it already has).
    pub async fn stopped(&self) {
        let mut receiver = self.stopping.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_stopping_begins_and_late_ones_return_at_once() {
        let shutdown = std::sync::Arc::new(Shutdown::default());
        assert!(!shutdown.is_stopping());
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.stopped().await }
        });
        shutdown.begin();
        waiter.await.unwrap();
        assert!(shutdown.is_stopping());
        shutdown.stopped().await;
    }
}
