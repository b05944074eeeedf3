//! The scheduler loop. Each pass runs every job once; a failing job is logged and the loop goes on.

use crate::carts::abandonment;
use crate::email::outbox;
use crate::loyalty::{expiry, tiers};
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
    /// SQLite's live events older than an hour, deleted (subscribers read them within a second).
    pub live_events_pruned: u64,
    /// Lots whose remainder expired.
    pub lots_expired: usize,
    /// `points_expiring` emails written.
    pub expiry_notices: usize,
    /// Badges awarded by the job for badges created after the fact.
    pub badges_backfilled: u64,
    /// Customers whose tier was re-evaluated by the daily check.
    pub tiers_checked: usize,
    /// Queued leaderboard changes added to its days and totals.
    pub leaderboard_applied: u64,
}

/// Runs every job once, now (as the clock tells).
pub async fn run_once(state: &AppState) -> PassReport {
    let mut report = PassReport::default();
    match holds::release_due(&state.db, state.clock.as_ref(), &state.reactions()).await {
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
    // Real time, not the clock: the pollers read these in real time too.
    match crate::live::prune(&state.db, chrono::Utc::now() - chrono::Duration::hours(1)).await {
        Ok(pruned) => report.live_events_pruned = pruned,
        Err(error) => tracing::error!(%error, "pruning live events"),
    }
    let now = state.clock.now();
    match crate::loyalty::expiry_pass::expire_due(&state.db, now).await {
        Ok(expired) => report.lots_expired = expired,
        Err(error) => tracing::error!(%error, "expiring points"),
    }
    match expiry::notify_expiring(&state.db, now).await {
        Ok(written) => report.expiry_notices = written,
        Err(error) => tracing::error!(%error, "writing points expiry notices"),
    }
    // A bounded number of steps a pass, so one large backfill cannot hold the other jobs up.
    for _ in 0..BACKFILL_STEPS_PER_PASS {
        match crate::loyalty::badge_backfill::backfill_step(&state.db, now).await {
            Ok(Some(awarded)) => report.badges_backfilled += awarded,
            Ok(None) => break,
            Err(error) => {
                tracing::error!(%error, "awarding a new badge to existing customers");
                break;
            }
        }
    }
    match daily_tier_check(&state.db, now).await {
        Ok(checked) => report.tiers_checked = checked,
        Err(error) => tracing::error!(%error, "checking tiers"),
    }
    // Readers apply the queue too; the pass keeps it short when nobody reads the leaderboard.
    match crate::effects::leaderboard::apply_queued(&state.db).await {
        Ok(applied) => report.leaderboard_applied = applied,
        Err(error) => tracing::error!(%error, "applying the leaderboard queue"),
    }
    report
}

const BACKFILL_STEPS_PER_PASS: usize = 10;
const TIER_CHECKS_PER_PASS: u64 = 500;

/// Re-evaluates the tiers that can change with time alone (a sliding period, a grace period
/// running out), each customer at most once a day, one transaction each.
async fn daily_tier_check(
    db: &sea_orm::DatabaseConnection,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, crate::error::AppError> {
    use crate::error::DbContext;
    let program = crate::loyalty::program::Program::load(db).await?;
    let due = tiers::due_for_daily_check(db, &program.settings, now, TIER_CHECKS_PER_PASS).await?;
    let mut checked = 0;
    for customer_id in due {
        let result = async {
            let txn = crate::db::begin_write(db)
                .await
                .context("starting a tier check")?;
            let held = crate::customers::locks::one(&txn, customer_id).await?;
            let measures = crate::loyalty::facts::Measures::new(&txn, customer_id, None);
            let mut rows = tiers::TierRows::default();
            let customer = held.customer(customer_id)?;
            tiers::evaluate(&txn, &program, now, customer, &measures, &mut rows).await?;
            rows.write(&txn).await?;
            txn.commit().await.context("committing a tier check")
        }
        .await;
        match result {
            Ok(()) => checked += 1,
            Err(error) => tracing::error!(%error, %customer_id, "checking a tier"),
        }
    }
    Ok(checked)
}

/// Runs [`run_once`] every `TANDEM_SCHEDULER_INTERVAL` until the process ends.
pub async fn run_forever(state: AppState) {
    let mut ticker = tokio::time::interval(state.settings.scheduler_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = state.shutdown.stopped() => return,
        }
        let started = std::time::Instant::now();
        let report = run_once(&state).await;
        ::metrics::counter!("tandem_scheduler_runs_total").increment(1);
        ::metrics::histogram!("tandem_scheduler_run_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if report != PassReport::default() {
            tracing::info!(?report, "scheduler pass");
        }
    }
}
