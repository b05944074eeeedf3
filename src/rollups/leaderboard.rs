//! The leaderboard recounted from what it ranks: points earned from the ledger, successful
//! referrals from the referrals. What the writes queue and the appliers add up
//! (`effects::leaderboard`) must come to the same values; a rebuild is how an operator gets
//! there after rows were loaded around the API, and how a test checks the queue.
//!
//! A value's `reached_at` is rebuilt as the last moment something that still counts raised it.
//! The kept one may be later, from a rise that was taken back (a referral reversed or refused):
//! only ties between equal values can rank differently.

use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::db::statement;
use crate::effects::LeaderboardDelta;
use crate::effects::leaderboard as queue;
use crate::entities::enums::LeaderboardMetric;
use crate::error::{AppError, DbContext};

/// Replaces the leaderboard rows of the customers `customers` selects (a subquery of their ids,
/// `?` placeholders bound to `values`) with a recount, and drops what is queued for them: the
/// recount already holds it. The caller holds those customers' locks, which every write that
/// changes their leaderboard takes first, and the appliers' lock ([`queue::hold_appliers`]), so
/// nothing queued for them is being added meanwhile. Returns how many days it wrote.
pub async fn rebuild_where(
    txn: &impl ConnectionTrait,
    customers: &str,
    values: Vec<Value>,
) -> Result<u64, AppError> {
    let backend = txn.get_database_backend();
    for table in [
        "leaderboard_queue",
        "leaderboard_days",
        "leaderboard_totals",
    ] {
        let sql = format!("DELETE FROM {table} WHERE customer_id IN ({customers})");
        txn.execute_raw(statement(backend, &sql, values.clone()))
            .await
            .context("rebuilding the leaderboard")?;
    }
    let mut days = recount(txn, &points_earned(backend, customers), values.clone()).await?;
    days.extend(recount(txn, &successful_referrals(backend, customers), values).await?);
    // Added in the order they were reached, a day a delta: the totals then keep the latest
    // rise, as the queue's do.
    days.sort_by_key(|d| d.at);
    let written = days.len() as u64;
    queue::add_all(txn, days).await?;
    Ok(written)
}

/// `YYYY-MM-DD` of a UTC timestamp column.
fn day_of(backend: DbBackend, column: &str) -> String {
    if backend == DbBackend::Postgres {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
    } else {
        // SQLite keeps timestamps as UTC text that starts with the date.
        format!("substr({column}, 1, 10)")
    }
}

/// Points earned or taken back, on the entry's own date (`loyalty::ledger::counts_toward_lifetime`
/// says which reasons count), a row per customer and day, in the columns [`recount`] reads.
fn points_earned(backend: DbBackend, customers: &str) -> String {
    let on = day_of(backend, "COALESCE(earned_at, created_at)");
    format!(
        "SELECT 'POINTS_EARNED', customer_id, {on}, CAST(SUM(delta) AS BIGINT), \
           COALESCE(MAX(CASE WHEN delta > 0 THEN created_at END), MIN(created_at)) \
         FROM points_ledger \
         WHERE reason NOT IN ('REDEMPTION', 'EXPIRY') AND customer_id IN ({customers}) \
         GROUP BY customer_id, {on}"
    )
}

/// Referrals that qualified and were neither reversed nor refused, on the day they qualified.
fn successful_referrals(backend: DbBackend, customers: &str) -> String {
    let on = day_of(backend, "qualified_at");
    format!(
        "SELECT 'SUCCESSFUL_REFERRALS', referrer_id, {on}, CAST(COUNT(*) AS BIGINT), \
           MAX(qualified_at) \
         FROM referrals \
         WHERE status IN ('QUALIFIED', 'REWARDED') AND qualified_at IS NOT NULL \
           AND referrer_id IN ({customers}) \
         GROUP BY referrer_id, {on}"
    )
}

/// The rows of a recount query as deltas onto empty rows, days whose changes cancel out left
/// out (no ranking shows them).
async fn recount(
    txn: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<LeaderboardDelta>, AppError> {
    use sea_orm::ActiveEnum;
    let what = "recounting the leaderboard";
    let backend = txn.get_database_backend();
    let rows = txn
        .query_all_raw(statement(backend, sql, values))
        .await
        .context(what)?;
    let mut days = Vec::with_capacity(rows.len());
    for row in rows {
        let metric: String = row.try_get_by_index(0).context(what)?;
        let delta: i64 = row.try_get_by_index(3).context(what)?;
        if delta == 0 {
            continue;
        }
        days.push(LeaderboardDelta {
            metric: LeaderboardMetric::try_from_value(&metric).context(what)?,
            customer_id: row.try_get_by_index(1).context(what)?,
            day: row.try_get_by_index(2).context(what)?,
            delta,
            at: row.try_get_by_index(4).context(what)?,
        });
    }
    Ok(days)
}
