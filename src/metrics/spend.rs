//! Marketing spend: money spent on a channel over a period, recorded by an admin.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use crate::entities::marketing_spend;
use crate::error::{AppError, DbContext};
use crate::input;
use crate::metrics::{MAX_RANGE_DAYS, Range};

/// A spend to record.
#[derive(Debug, Clone)]
pub struct NewSpend {
    pub channel: String,
    pub amount: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

/// A channel's name as customers and spend share it: trimmed and lower-cased.
pub fn channel_name(field: &str, value: &str) -> Result<String, AppError> {
    Ok(input::name(field, value)?.to_lowercase())
}

pub async fn record(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    actor: &str,
    new: NewSpend,
) -> Result<marketing_spend::Model, AppError> {
    let channel = channel_name("channel", &new.channel)?;
    input::int_in("amount", new.amount, 0..=input::MAX_AMOUNT)?;
    input::moment("periodStart", new.period_start)?;
    input::moment("periodEnd", new.period_end)?;
    if new.period_end <= new.period_start {
        return Err(AppError::bad_input(
            "periodEnd",
            "periodEnd must be after periodStart",
        ));
    }
    if new.period_end - new.period_start > Duration::days(MAX_RANGE_DAYS) {
        return Err(AppError::bad_input(
            "periodEnd",
            "a spend period may span at most 5 years",
        ));
    }
    marketing_spend::ActiveModel {
        id: Set(Uuid::now_v7()),
        channel: Set(channel),
        amount: Set(new.amount),
        period_start: Set(new.period_start),
        period_end: Set(new.period_end),
        recorded_by: Set(actor.to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .context("recording marketing spend")
}

/// Spend records whose period overlaps the range, oldest period first.
pub async fn overlapping(
    db: &impl ConnectionTrait,
    range: Range,
) -> Result<Vec<marketing_spend::Model>, AppError> {
    marketing_spend::Entity::find()
        .filter(marketing_spend::Column::PeriodStart.lt(range.to))
        .filter(marketing_spend::Column::PeriodEnd.gt(range.from))
        .order_by_asc(marketing_spend::Column::PeriodStart)
        .order_by_asc(marketing_spend::Column::Id)
        .all(db)
        .await
        .context("loading marketing spend")
}

/// The share of a record's amount that falls in the range, by time overlap, in minor units
/// (not rounded).
pub fn prorated(record: &marketing_spend::Model, range: Range) -> f64 {
    let start = record.period_start.max(range.from);
    let end = record.period_end.min(range.to);
    if end <= start {
        return 0.0;
    }
    let overlap = (end - start).num_milliseconds() as f64;
    let period = (record.period_end - record.period_start).num_milliseconds() as f64;
    record.amount as f64 * overlap / period
}
