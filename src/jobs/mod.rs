//! Background work: the scheduler that runs due jobs every `TANDEM_SCHEDULER_INTERVAL` and the
//! email delivery worker, each supervised. Every job is safe when several processes run it at
//! once.

pub mod delivery;
pub mod demo;
pub mod scheduler;
pub mod supervisor;

use crate::state::AppState;

/// Starts the scheduler and the delivery worker, each supervised, on the current runtime.
pub fn spawn_supervised(state: &AppState) {
    let backoff = supervisor::Backoff::default();
    let scheduler_state = state.clone();
    tokio::spawn(supervisor::supervise(
        state.workers.clone(),
        "scheduler",
        backoff,
        move || scheduler::run_forever(scheduler_state.clone()),
    ));
    let delivery_state = state.clone();
    tokio::spawn(supervisor::supervise(
        state.workers.clone(),
        "delivery",
        backoff,
        move || delivery::run_forever(delivery_state.clone()),
    ));
}
