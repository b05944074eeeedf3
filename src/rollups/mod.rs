//! The per-customer rollup the program metrics read: signup, channel, whether the customer came
//! through a referral that was not rejected, orders and revenue, the months after signup in
//! which they ordered, and the points they hold. Each writer updates it in its own transaction,
//! after locking the customer (so the row's lock is always taken second); `migration::rollups`
//! computes the same rows from scratch.

use chrono::{DateTime, Datelike, Utc};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use crate::db::statement;
use crate::entities::{customer, order};
use crate::error::{AppError, DbContext};

pub mod changes;
pub mod leaderboard;
pub mod months;

use months::MonthRuns;

pub use changes::{Change, Rollup};

pub use migration::rollups::{LATE_ACTIVITY_BIT, rebuild};

/// Customers a rebuild beside live writes takes at a time.
pub const REBUILD_BATCH: u64 = 1_000;

/// Recomputes every customer's rollups, kept points and counters, and leaderboard rows while
/// the API may be writing: a batch of customers at a time, each batch in its own transaction
/// that first holds the leaderboard's appliers and then locks its customers, ascending by id as
/// every writer does (`customers::locks`).
/// A write to one of them either committed before the batch reads, or waits for the batch and
/// then updates the rebuilt row; none is lost. Returns how many customers were rebuilt.
pub async fn rebuild_beside_writes(
    db: &sea_orm::DatabaseConnection,
    batch: u64,
) -> Result<u64, AppError> {
    use sea_orm::sea_query::LockType;
    use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

    let customers = if db.get_database_backend() == DbBackend::Postgres {
        "SELECT id FROM customers WHERE id >= $1 AND id <= $2"
    } else {
        "SELECT id FROM customers WHERE id >= ? AND id <= ?"
    };
    let mut after: Option<Uuid> = None;
    let mut rebuilt = 0;
    loop {
        let txn = crate::db::begin_write(db)
            .await
            .context("starting a rollup rebuild")?;
        crate::effects::leaderboard::hold_appliers(&txn).await?;
        let mut next = customer::Entity::find()
            .select_only()
            .column(customer::Column::Id)
            .order_by_asc(customer::Column::Id)
            .limit(batch.max(1))
            .lock(LockType::NoKeyUpdate);
        if let Some(after) = after {
            next = next.filter(customer::Column::Id.gt(after));
        }
        let ids: Vec<Uuid> = next
            .into_tuple()
            .all(&txn)
            .await
            .context("locking customers for a rollup rebuild")?;
        let (Some(first), Some(last)) = (ids.first().copied(), ids.last().copied()) else {
            txn.commit().await.context("ending a rollup rebuild")?;
            return Ok(rebuilt);
        };
        let bounds = vec![first.into(), last.into()];
        migration::rollups::rebuild_where(&txn, customers, bounds.clone())
            .await
            .context("rebuilding a batch of rollups")?;
        leaderboard::rebuild_where(
            &txn,
            "SELECT id FROM customers WHERE id >= ? AND id <= ?",
            bounds,
        )
        .await?;
        txn.commit()
            .await
            .context("committing a batch of rollups")?;
        rebuilt += ids.len() as u64;
        after = Some(last);
    }
}

/// The `active_months` bits an order placed at `placed_at` sets for a customer who signed up at
/// `signed_up_at`: bit `k - 1` for calendar month `k` (1 to 12) after the signup month, and
/// [`LATE_ACTIVITY_BIT`] from month 12 on.
pub fn activity_bits(signed_up_at: DateTime<Utc>, placed_at: DateTime<Utc>) -> i64 {
    let month = |at: DateTime<Utc>| i64::from(at.year()) * 12 + i64::from(at.month());
    let offset = month(placed_at) - month(signed_up_at);
    let mut bits = 0;
    if (1..=12).contains(&offset) {
        bits |= 1 << (offset - 1);
    }
    if offset >= 12 {
        bits |= LATE_ACTIVITY_BIT;
    }
    bits
}

/// A new customer's row: not referred (yet), nothing ordered, no points.
pub async fn customer_registered(
    txn: &impl ConnectionTrait,
    customer: &customer::Model,
) -> Result<(), AppError> {
    execute(
        txn,
        "INSERT INTO customer_rollups (customer_id, signed_up_at, channel, referred, orders, \
           gross, net, active_months, points_balance) VALUES (?, ?, ?, ?, 0, 0, 0, 0, 0)",
        vec![
            customer.id.into(),
            customer.created_at.into(),
            customer.acquisition_channel.clone().into(),
            false.into(),
        ],
        "adding a customer's rollup",
    )
    .await
}

/// Re-reads whether the customer came through a referral that was not rejected; call it after
/// creating a referral or changing its status.
pub async fn referral_changed(
    txn: &impl ConnectionTrait,
    referee_id: Uuid,
) -> Result<(), AppError> {
    execute(
        txn,
        "UPDATE customer_rollups SET referred = EXISTS (SELECT 1 FROM referrals r \
           WHERE r.referee_id = ? AND r.status <> 'REJECTED') \
         WHERE customer_id = ?",
        vec![referee_id.into(), referee_id.into()],
        "updating whether a customer was referred",
    )
    .await
}

/// What a customer's tier and badges are measured by that the rollup keeps: a writer holding the
/// customer's lock knows it from [`changes`] without reading it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// Points earned, ever (less take-backs).
    pub points_lifetime: i64,
    /// Order amounts less refunds, ever.
    pub net: i64,
    /// Orders that were not wholly refunded.
    pub kept_orders: i64,
    /// The longest run of consecutive calendar months with one of those orders.
    pub streak_months: i64,
    /// What the customer's debits still owe (points taken back beyond what they held).
    pub points_owed: i64,
}

/// What [`kept`] reads, in [`kept_of`]'s order.
const KEPT_COLUMNS: &str = "points_lifetime, net, kept_orders, order_months, points_owed";

/// Whether refunding the whole of `order` leaves its month without another kept order of the
/// customer (the caller holds the customer's lock and has not yet raised the refunded amount in
/// what this reads of other orders).
pub async fn month_emptied_by(
    txn: &impl ConnectionTrait,
    order: &order::Model,
) -> Result<bool, AppError> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

    let (start, end) = month_bounds(order.placed_at);
    let other: Option<uuid::Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::CustomerId.eq(order.customer_id))
        .filter(order::Column::Id.ne(order.id))
        .filter(order::Column::PlacedAt.gte(start))
        .filter(order::Column::PlacedAt.lt(end))
        .filter(Expr::col(order::Column::RefundedAmount).lt(Expr::col(order::Column::Amount)))
        .limit(1)
        .into_tuple()
        .one(txn)
        .await
        .context("finding another kept order in a month")?;
    Ok(other.is_none())
}

/// The first moment of the UTC calendar month of `at`, and of the month after.
fn month_bounds(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::TimeZone;
    let first = |year: i32, month: u32| {
        Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
            .single()
            .unwrap_or(at)
    };
    let (year, month) = (at.year(), at.month());
    let next = if month == 12 {
        first(year + 1, 1)
    } else {
        first(year, month + 1)
    };
    (first(year, month), next)
}

async fn execute(
    txn: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
    what: &'static str,
) -> Result<(), AppError> {
    let written = txn
        .execute_raw(statement(txn.get_database_backend(), sql, values))
        .await
        .context(what)?
        .rows_affected();
    if written == 0 {
        missing_row(what);
    }
    Ok(())
}

/// The customer's kept measures as committed (or as this transaction wrote them); `None`
/// without a rollup row.
pub async fn kept(db: &impl ConnectionTrait, customer_id: Uuid) -> Result<Option<Kept>, AppError> {
    let what = "reading a customer's kept measures";
    let row = db
        .query_one_raw(statement(
            db.get_database_backend(),
            &format!("SELECT {KEPT_COLUMNS} FROM customer_rollups WHERE customer_id = ?"),
            vec![customer_id.into()],
        ))
        .await
        .context(what)?;
    row.map(|row| kept_of(&row, what).map(|(kept, _)| kept))
        .transpose()
}

/// The [`KEPT_COLUMNS`] a statement returned, and the runs of months they hold.
fn kept_of(row: &sea_orm::QueryResult, what: &'static str) -> Result<(Kept, MonthRuns), AppError> {
    let months: String = row.try_get_by_index(3).context(what)?;
    let runs = MonthRuns::parse(&months).map_err(|e| AppError::internal(what, e))?;
    let kept = Kept {
        points_lifetime: row.try_get_by_index(0).context(what)?,
        net: row.try_get_by_index(1).context(what)?,
        kept_orders: row.try_get_by_index(2).context(what)?,
        streak_months: runs.longest(),
        points_owed: row.try_get_by_index(4).context(what)?,
    };
    Ok((kept, runs))
}

pub fn missing_row(what: &'static str) {
    // Only data loaded around the API (and not followed by `tandem rebuild-rollups`) lacks its
    // row; the write itself must not fail for that.
    tracing::warn!(
        what,
        "a customer has no rollup row; run `tandem rebuild-rollups`"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn activity_counts_calendar_months_after_the_signup_month() {
        let signup = at(2025, 1, 31);
        assert_eq!(activity_bits(signup, at(2025, 1, 1)), 0, "the signup month");
        assert_eq!(activity_bits(signup, at(2024, 12, 1)), 0, "before signup");
        assert_eq!(activity_bits(signup, at(2025, 2, 1)), 1, "month 1");
        assert_eq!(activity_bits(signup, at(2025, 12, 31)), 1 << 10, "month 11");
        assert_eq!(
            activity_bits(signup, at(2026, 1, 1)),
            (1 << 11) | LATE_ACTIVITY_BIT,
            "month 12 is also 12 or more"
        );
        assert_eq!(activity_bits(signup, at(2027, 6, 1)), LATE_ACTIVITY_BIT);
    }
}
