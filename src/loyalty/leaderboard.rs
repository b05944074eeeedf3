//! The leaderboard: two rollups fed by the events that move it (a credit or take-back of
//! points, a referral qualifying or being reversed): each customer's change of a metric per UTC
//! day, which ranges sum through the `(metric, day)` index, and each customer's all-time total,
//! which all-time rankings and a customer's own rank read in index order. The ledger is never
//! scanned for them. The event's transaction queues the change (`effects::leaderboard`); every
//! read here applies the queue first, so it sees every change committed before it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::effects::leaderboard as queue;
use crate::effects::{self, Effect, LeaderboardDelta};
use crate::entities::enums::LeaderboardMetric;
use crate::entities::leaderboard_day as day;
use crate::entities::leaderboard_total as total;
use crate::error::{AppError, DbContext};

/// Adds `delta` to the customer's metric on the day of `on`, with the transaction's other
/// effects (`crate::effects`).
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
    let delta = LeaderboardDelta {
        metric,
        customer_id,
        day: on.format("%Y-%m-%d").to_string(),
        delta,
        at: now,
    };
    effects::write(txn, Effect::Leaderboard(delta)).await
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
    db: &DatabaseConnection,
    metric: LeaderboardMetric,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<u64>,
) -> Result<Vec<Standing>, AppError> {
    queue::apply_queued(db).await?;
    if from.is_none() && to.is_none() {
        return all_time(db, metric, limit).await;
    }
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

/// All-time standings, from the totals in index order.
async fn all_time(
    db: &impl ConnectionTrait,
    metric: LeaderboardMetric,
    limit: Option<u64>,
) -> Result<Vec<Standing>, AppError> {
    let mut query = total::Entity::find()
        .filter(total::Column::Metric.eq(metric))
        .filter(total::Column::Value.gt(0))
        .order_by_desc(total::Column::Value)
        .order_by_asc(total::Column::ReachedAt)
        .order_by_asc(total::Column::CustomerId);
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    let rows = query
        .all(db)
        .await
        .context("ranking the all-time leaderboard")?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| Standing {
            rank: i as i64 + 1,
            customer_id: row.customer_id,
            value: row.value,
        })
        .collect())
}

/// One customer's all-time standing: 1 + those ahead of them, counted through the index.
/// `None` without a positive value.
pub async fn position(
    db: &DatabaseConnection,
    metric: LeaderboardMetric,
    customer_id: Uuid,
) -> Result<Option<Standing>, AppError> {
    use sea_orm::{Condition, PaginatorTrait};
    queue::apply_queued(db).await?;
    let Some(mine) = total::Entity::find()
        .filter(total::Column::Metric.eq(metric))
        .filter(total::Column::CustomerId.eq(customer_id))
        .one(db)
        .await
        .context("loading a leaderboard total")?
        .filter(|row| row.value > 0)
    else {
        return Ok(None);
    };
    let ahead = total::Entity::find()
        .filter(total::Column::Metric.eq(metric))
        .filter(
            Condition::any()
                .add(total::Column::Value.gt(mine.value))
                .add(
                    Condition::all()
                        .add(total::Column::Value.eq(mine.value))
                        .add(
                            Condition::any()
                                .add(total::Column::ReachedAt.lt(mine.reached_at))
                                .add(
                                    Condition::all()
                                        .add(total::Column::ReachedAt.eq(mine.reached_at))
                                        .add(total::Column::CustomerId.lt(customer_id)),
                                ),
                        ),
                ),
        )
        .count(db)
        .await
        .context("ranking a customer")?;
    Ok(Some(Standing {
        rank: ahead as i64 + 1,
        customer_id,
        value: mine.value,
    }))
}
