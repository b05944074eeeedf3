//! Background work: the scheduler that runs due jobs every `TANDEM_SCHEDULER_INTERVAL` and the
//! email delivery worker, each supervised. Every job is safe when several processes run it at
//! once.

pub mod delivery;
pub mod demo;
pub mod scheduler;
pub mod supervisor;

use crate::state::AppState;

/// Starts the scheduler and the delivery worker, each supervised, on the current runtime.
pub fn spawn_supervised(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let backoff = supervisor::Backoff::default();
    let scheduler_state = state.clone();
    let scheduler = tokio::spawn(supervisor::supervise(
        state.workers.clone(),
        state.shutdown.clone(),
        "scheduler",
        backoff,
        move || scheduler::run_forever(scheduler_state.clone()),
    ));
    let delivery_state = state.clone();
    let delivery = tokio::spawn(supervisor::supervise(
        state.workers.clone(),
        state.shutdown.clone(),
        "delivery",
        backoff,
        move || delivery::run_forever(delivery_state.clone()),
    ));
    vec![scheduler, delivery]
}

/// Waits for the workers to finish what they are doing after shutdown began, up to `grace`.
pub async fn drain(workers: Vec<tokio::task::JoinHandle<()>>, grace: std::time::Duration) {
    let all = async {
        for worker in workers {
            let _ = worker.await;
        }
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(?grace, "the workers did not stop within the grace period");
    }
}
