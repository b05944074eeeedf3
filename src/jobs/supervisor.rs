//! Supervision: each background worker runs as its own task; when it panics or stops, the
//! supervisor logs it, marks it down (so `/ready` answers 503) and restarts it after a backoff
//! that doubles from one second to a minute.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Which workers this process runs, and whether each is up.
#[derive(Debug, Default)]
pub struct WorkerHealth {
    workers: Mutex<BTreeMap<&'static str, WorkerState>>,
}

/// One worker as the supervisor sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerState {
    pub up: bool,
    pub restarts: u32,
    pub last_failure: Option<String>,
}

impl WorkerHealth {
    /// The workers that are down, with why; empty when all run (or none are run here).
    pub fn down(&self) -> Vec<(&'static str, WorkerState)> {
        self.lock()
            .iter()
            .filter(|(_, state)| !state.up)
            .map(|(name, state)| (*name, state.clone()))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<WorkerState> {
        self.lock().get(name).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, WorkerState>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark_up(&self, name: &'static str) {
        self.lock().entry(name).or_default().up = true;
    }

    fn mark_down(&self, name: &'static str, why: String) {
        let mut workers = self.lock();
        let state = workers.entry(name).or_default();
        state.up = false;
        state.restarts = state.restarts.saturating_add(1);
        state.last_failure = Some(why);
    }
}

/// How long the supervisor waits before a restart.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub longest: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            longest: Duration::from_secs(60),
        }
    }
}

/// Runs `worker()` forever: a run that panics or returns is logged, marked down and started
/// again after the backoff. A run that lasted longer than the longest backoff resets it.
pub async fn supervise<F, Fut>(
    health: std::sync::Arc<WorkerHealth>,
    shutdown: std::sync::Arc<crate::shutdown::Shutdown>,
    name: &'static str,
    backoff: Backoff,
    worker: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut wait = backoff.first;
    while !shutdown.is_stopping() {
        health.mark_up(name);
        let started = std::time::Instant::now();
        let why = match tokio::spawn(worker()).await {
            Ok(()) => "it stopped".to_owned(),
            Err(error) if error.is_panic() => {
                let payload = error.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                format!("it panicked: {message}")
            }
            Err(error) => format!("it was cancelled: {error}"),
        };
        if shutdown.is_stopping() {
            break;
        }
        if started.elapsed() > backoff.longest {
            wait = backoff.first;
        }
        tracing::error!(worker = name, %why, restart_in = ?wait, "a worker went down; restarting it");
        health.mark_down(name, why);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.stopped() => break,
        }
        wait = (wait * 2).min(backoff.longest);
    }
}
