//! What tiers and badges are measured by: a customer's points, referrals, orders and spend,
//! optionally since a date. Each is read from the tables that hold the truth, by each event's
//! own date (an order's `placedAt`, a referral's qualification).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::entities::enums::{BadgeRule, ReferralStatus, TierMetric};
use crate::entities::{order, referral};
use crate::error::{AppError, DbContext};
use crate::loyalty::balance;
use crate::rollups::{self, Kept};

/// Friends referred whose first order qualified, and whose referral was not reversed.
pub async fn successful_referrals(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<i64, AppError> {
    let mut query = referral::Entity::find()
        .filter(referral::Column::ReferrerId.eq(customer_id))
        .filter(
            referral::Column::Status.is_in([ReferralStatus::Qualified, ReferralStatus::Rewarded]),
        );
    if let Some(since) = since {
        query = query.filter(referral::Column::QualifiedAt.gte(since));
    }
    let count = query
        .count(db)
        .await
        .context("counting successful referrals")?;
    Ok(count as i64)
}

/// Order amounts less refunds, in minor units.
pub async fn spend(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<i64, AppError> {
    if since.is_none() {
        // Ever: the rollup keeps it (amounts less refunds), so it costs a key read.
        let kept = db
            .query_one_raw(crate::db::statement(
                db.get_database_backend(),
                "SELECT net FROM customer_rollups WHERE customer_id = ?",
                vec![customer_id.into()],
            ))
            .await
            .context("reading a customer's spend")?;
        if let Some(row) = kept {
            return row
                .try_get_by_index(0)
                .context("reading a customer's spend");
        }
    }
    let mut query = order::Entity::find()
        .select_only()
        // SUM of a BIGINT is NUMERIC on PostgreSQL; the cast keeps one type on both databases.
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(amount - refunded_amount), 0) AS BIGINT)"),
            "spend",
        )
        .filter(order::Column::CustomerId.eq(customer_id));
    if let Some(since) = since {
        query = query.filter(order::Column::PlacedAt.gte(since));
    }
    let spend: Option<i64> = query
        .into_tuple()
        .one(db)
        .await
        .context("summing a customer's spend")?;
    Ok(spend.unwrap_or(0))
}

/// When each of the customer's orders that was not wholly refunded was placed.
async fn kept_order_dates(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
) -> Result<Vec<DateTime<Utc>>, AppError> {
    order::Entity::find()
        .select_only()
        .column(order::Column::PlacedAt)
        .filter(order::Column::CustomerId.eq(customer_id))
        .filter(Expr::col(order::Column::RefundedAmount).lt(Expr::col(order::Column::Amount)))
        .into_tuple()
        .all(db)
        .await
        .context("loading a customer's order dates")
}

/// The longest run of consecutive calendar months (UTC) with at least one order.
pub fn longest_month_streak(dates: &[DateTime<Utc>]) -> i64 {
    let months: BTreeSet<i64> = dates
        .iter()
        .map(|d| i64::from(d.year()) * 12 + i64::from(d.month0()))
        .collect();
    let (mut best, mut run, mut previous): (i64, i64, Option<i64>) = (0, 0, None);
    for month in months {
        run = if previous == Some(month - 1) {
            run + 1
        } else {
            1
        };
        best = std::cmp::max(best, run);
        previous = Some(month);
    }
    best
}

/// The tier metric of a customer in the period starting at `since`.
pub async fn tier_metric(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    metric: TierMetric,
    since: Option<DateTime<Utc>>,
) -> Result<i64, AppError> {
    match metric {
        TierMetric::LifetimePoints => balance::lifetime_since(db, customer_id, since).await,
        TierMetric::SuccessfulReferrals => successful_referrals(db, customer_id, since).await,
        TierMetric::Spend => spend(db, customer_id, since).await,
    }
}

/// One customer's measures for one evaluation of their tier and badges: the kept ones (lifetime
/// points and lifetime spend, from the rollup) are read at most once, in one statement, however
/// many of the tier metric and the badges ask for them; the others are read as asked.
pub struct Measures<'a, C> {
    db: &'a C,
    customer_id: Uuid,
    /// The rollup's kept measures; `None` without a rollup row.
    kept: tokio::sync::OnceCell<Option<Kept>>,
}

impl<'a, C: ConnectionTrait> Measures<'a, C> {
    /// The measures of customer `customer_id`; `known` is the kept pair when the caller has it
    /// (a writer holding the customer's lock knows what its last rollup write returned).
    pub fn new(db: &'a C, customer_id: Uuid, known: Option<Kept>) -> Self {
        let kept = tokio::sync::OnceCell::new();
        if known.is_some() {
            let _ = kept.set(known);
        }
        Self {
            db,
            customer_id,
            kept,
        }
    }

    async fn kept(&self) -> Result<Option<(i64, i64)>, AppError> {
        let kept = self
            .kept
            .get_or_try_init(|| rollups::kept(self.db, self.customer_id))
            .await?;
        Ok(kept.map(|kept| (kept.points_lifetime, kept.net)))
    }

    /// [`tier_metric`] of this customer.
    pub async fn tier_metric(
        &self,
        metric: TierMetric,
        since: Option<DateTime<Utc>>,
    ) -> Result<i64, AppError> {
        if since.is_none()
            && let Some((points, spend)) = self.kept().await?
        {
            match metric {
                TierMetric::LifetimePoints => return Ok(points),
                TierMetric::Spend => return Ok(spend),
                TierMetric::SuccessfulReferrals => {}
            }
        }
        tier_metric(self.db, self.customer_id, metric, since).await
    }

    /// [`badge_value`] of this customer.
    pub async fn badge_value(&self, rule: BadgeRule) -> Result<i64, AppError> {
        if matches!(rule, BadgeRule::LifetimePoints | BadgeRule::LifetimeSpend)
            && let Some((points, spend)) = self.kept().await?
        {
            return Ok(if rule == BadgeRule::LifetimePoints {
                points
            } else {
                spend
            });
        }
        badge_value(self.db, self.customer_id, rule).await
    }
}

/// Where a customer stands on a badge's rule, ever.
pub async fn badge_value(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    rule: BadgeRule,
) -> Result<i64, AppError> {
    match rule {
        BadgeRule::SuccessfulReferrals => successful_referrals(db, customer_id, None).await,
        BadgeRule::Orders => Ok(kept_order_dates(db, customer_id).await?.len() as i64),
        BadgeRule::LifetimeSpend => spend(db, customer_id, None).await,
        BadgeRule::LifetimePoints => balance::lifetime_since(db, customer_id, None).await,
        BadgeRule::OrderStreakMonths => Ok(longest_month_streak(
            &kept_order_dates(db, customer_id).await?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::longest_month_streak;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_streak_counts_consecutive_months_across_a_new_year() {
        let d = |y, m, day| Utc.with_ymd_and_hms(y, m, day, 12, 0, 0).unwrap();
        let dates = [
            d(2025, 11, 3),
            d(2025, 12, 30),
            d(2025, 12, 1),
            d(2026, 1, 15),
            d(2026, 3, 1),
        ];
        assert_eq!(longest_month_streak(&dates), 3);
        assert_eq!(longest_month_streak(&[]), 0);
    }
}
