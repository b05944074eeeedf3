//! The scheduler loop. Each pass runs every job once; a failing job is logged and the loop goes on.

use crate::carts::abandonment;
use crate::email::outbox;
use crate::referrals::holds;
use crate::state::AppState;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Held rewards issued because their hold passed.
    pub rewards_released: usize,
    /// Abandoned-cart emails written.
    pub cart_emails: usize,
    /// SENT emails deleted after `TANDEM_OUTBOX_RETENTION_DAYS`.
    pub emails_pruned: u64,
}

/// Runs every job once, now (as the clock tells).
pub async fn run_once(state: &AppState) -> PassReport {
    let mut report = PassReport::default();
    match holds::release_due(&state.db, state.clock.as_ref()).await {
        Ok(released) => report.rewards_released = released,
        Err(error) => tracing::error!(%error, "releasing held rewards"),
    }
    let scan = abandonment::Scan {
        db: &state.db,
        now: state.clock.now(),
        carts: &state.settings.carts,
        currency: &state.settings.currency,
        public_url: &state.settings.public_url,
        clock_skew: state.clock_skew(),
    };
    match abandonment::scan(&scan).await {
        Ok(written) => report.cart_emails = written,
        Err(error) => tracing::error!(%error, "scanning abandoned carts"),
    }
    match outbox::prune(
        &state.db,
        state.clock.now(),
        state.settings.mail.retention_days,
    )
    .await
    {
        Ok(pruned) => report.emails_pruned = pruned,
        Err(error) => tracing::error!(%error, "pruning sent emails"),
    }
    report
}

/// Runs [`run_once`] every `TANDEM_SCHEDULER_INTERVAL` until the process ends.
pub async fn run_forever(state: AppState) {
    let mut ticker = tokio::time::interval(state.settings.scheduler_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let report = run_once(&state).await;
        if report != PassReport::default() {
            tracing::info!(?report, "scheduler pass");
        }
    }
}
