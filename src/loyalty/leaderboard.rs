//! The leaderboard: a rollup of each customer's change of a metric per UTC day, kept up to date in
//! the transaction of the event (a credit or take-back of points, a referral qualifying or being
//! reversed). Rankings sum the rollup over the days of the range through its index; the ledger is
//! never scanned for them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entities::enums::LeaderboardMetric;
use crate::entities::leaderboard_day as day;
use crate::error::{AppError, DbContext};

/// Adds `delta` to the customer's metric on the day of `on`.
pub async fn add(
    txn: &impl ConnectionTrait,
    metric: LeaderboardMetric,
    customer_id: Uuid,
    on: DateTime<Utc>,
    delta: i64,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if delta == 0 {
        return Ok(());
    }
    day::Entity::insert(day::ActiveModel {
        id: Set(Uuid::now_v7()),
        metric: Set(metric),
        customer_id: Set(customer_id),
        day: Set(on.format("%Y-%m-%d").to_string()),
        value: Set(delta),
        reached_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            day::Column::Metric,
            day::Column::CustomerId,
            day::Column::Day,
        ])
        .value(
            day::Column::Value,
            Expr::cust("leaderboard_days.value + excluded.value"),
        )
        .value(
            day::Column::ReachedAt,
            Expr::cust(
                "CASE WHEN excluded.value > 0 THEN excluded.reached_at \
                     ELSE leaderboard_days.reached_at END",
            ),
        )
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .context("updating the leaderboard rollup")?;
    Ok(())
}

/// One customer's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub rank: i64,
    pub customer_id: Uuid,
    pub value: i64,
}

/// Everyone with a positive value in the range, best first; ties go to whoever reached their
/// value first.
pub async fn standings(
    db: &impl ConnectionTrait,
    metric: LeaderboardMetric,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<u64>,
) -> Result<Vec<Standing>, AppError> {
    let mut query = day::Entity::find()
        .select_only()
        .column(day::Column::CustomerId)
        .column_as(Expr::cust("CAST(SUM(value) AS BIGINT)"), "total")
        .column_as(Expr::cust("MAX(reached_at)"), "reached")
        .filter(day::Column::Metric.eq(metric));
    if let Some(from) = from {
        query = query.filter(day::Column::Day.gte(from.format("%Y-%m-%d").to_string()));
    }
    if let Some(to) = to {
        query = query.filter(day::Column::Day.lte(to.format("%Y-%m-%d").to_string()));
    }
    let mut query = query
        .group_by(day::Column::CustomerId)
        .having(Expr::cust("SUM(value) > 0"))
        .order_by_desc(Expr::cust("CAST(SUM(value) AS BIGINT)"))
        .order_by_asc(Expr::cust("MAX(reached_at)"))
        .order_by_asc(day::Column::CustomerId);
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    let rows: Vec<(Uuid, i64, DateTime<Utc>)> = query
        .into_tuple()
        .all(db)
        .await
        .context("ranking the leaderboard")?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, (customer_id, value, _))| Standing {
            rank: i as i64 + 1,
            customer_id,
            value,
        })
        .collect())
}
