//! What tiers and badges are measured by: a customer's points, referrals, orders and spend,
//! optionally since a date. Measures over all time are kept in the customer's rollup
//! (lifetime points, spend, orders not wholly refunded, the longest run of ordering months) and
//! cost one key read; measures since a date, and referrals, are read from the tables that hold
//! the truth, by each event's own date (an order's `placedAt`, a referral's qualification).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
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

/// [`successful_referrals`] ever of each of `referrer_ids`, in one statement; a referrer with
/// none is missing from the map.
pub async fn successful_referrals_of(
    db: &impl ConnectionTrait,
    referrer_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, i64>, AppError> {
    if referrer_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Uuid, i64)> = referral::Entity::find()
        .select_only()
        .column(referral::Column::ReferrerId)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .filter(referral::Column::ReferrerId.is_in(referrer_ids.iter().copied()))
        .filter(
            referral::Column::Status.is_in([ReferralStatus::Qualified, ReferralStatus::Rewarded]),
        )
        .group_by(referral::Column::ReferrerId)
        .into_tuple()
        .all(db)
        .await
        .context("counting successful referrals")?;
    Ok(rows.into_iter().collect())
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

    async fn kept(&self) -> Result<Option<Kept>, AppError> {
        let kept = self
            .kept
            .get_or_try_init(|| rollups::kept(self.db, self.customer_id))
            .await?;
        Ok(*kept)
    }

    /// [`tier_metric`] of this customer.
    pub async fn tier_metric(
        &self,
        metric: TierMetric,
        since: Option<DateTime<Utc>>,
    ) -> Result<i64, AppError> {
        if since.is_none()
            && let Some(kept) = self.kept().await?
        {
            match metric {
                TierMetric::LifetimePoints => return Ok(kept.points_lifetime),
                TierMetric::Spend => return Ok(kept.net),
                TierMetric::SuccessfulReferrals => {}
            }
        }
        tier_metric(self.db, self.customer_id, metric, since).await
    }

    /// [`badge_value`] of this customer.
    pub async fn badge_value(&self, rule: BadgeRule) -> Result<i64, AppError> {
        match rule {
            BadgeRule::SuccessfulReferrals => {
                successful_referrals(self.db, self.customer_id, None).await
            }
            kept_rule => match self.kept().await? {
                Some(kept) => Ok(of_kept(kept_rule, kept)),
                None => without_rollup(self.db, self.customer_id, kept_rule).await,
            },
        }
    }
}

/// A badge rule the rollup keeps, measured from it (referrals, which it does not keep, read 0:
/// callers measure them with [`successful_referrals`]).
pub fn of_kept(rule: BadgeRule, kept: Kept) -> i64 {
    match rule {
        BadgeRule::Orders => kept.kept_orders,
        BadgeRule::LifetimeSpend => kept.net,
        BadgeRule::LifetimePoints => kept.points_lifetime,
        BadgeRule::OrderStreakMonths => kept.streak_months,
        BadgeRule::SuccessfulReferrals => 0,
    }
}

/// A kept rule of a customer without a rollup row (data loaded around the API and not rebuilt):
/// spend and points from their tables; orders and streaks, which only the rollup keeps, 0 until
/// `tandem rebuild-rollups`.
async fn without_rollup(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    rule: BadgeRule,
) -> Result<i64, AppError> {
    match rule {
        BadgeRule::LifetimeSpend => spend(db, customer_id, None).await,
        BadgeRule::LifetimePoints => balance::lifetime_since(db, customer_id, None).await,
        _ => Ok(0),
    }
}

/// Where a customer stands on a badge's rule, ever. Every rule but referrals is a kept measure,
/// one key read whatever the history.
pub async fn badge_value(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    rule: BadgeRule,
) -> Result<i64, AppError> {
    Measures::new(db, customer_id, None).badge_value(rule).await
}
