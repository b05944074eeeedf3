//! The append-only points ledger. Each entry names its source, and a source writes at most one
//! entry (a unique index), so a replayed or concurrent event cannot credit twice. A balance is
//! the sum of a customer's entries.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};

/// What caused a ledger entry; with the source id it is the entry's natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A POINTS reward being issued.
    Reward,
    /// A POINTS reward being taken back.
    RewardReversal,
}

impl Source {
    fn kind(self) -> &'static str {
        match self {
            Source::Reward => "reward",
            Source::RewardReversal => "reward_reversal",
        }
    }
}

/// Writes one entry unless the source already wrote one. Returns whether it was written.
pub async fn record(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    delta: i64,
    reason: &str,
    source: Source,
    source_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let written = entry::Entity::insert(entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(customer_id),
        delta: Set(delta),
        reason: Set(reason.to_owned()),
        source_kind: Set(source.kind().to_owned()),
        source_id: Set(source_id.to_string()),
        expires_at: Set(None),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([entry::Column::SourceKind, entry::Column::SourceId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .context("writing a points ledger entry")?;
    Ok(written > 0)
}

/// The customer's points balance. It can be negative when points were spent before the reward
/// that paid them was reversed.
pub async fn balance(db: &impl ConnectionTrait, customer_id: Uuid) -> Result<i64, AppError> {
    let sum: Option<i64> = entry::Entity::find()
        .select_only()
        // SUM of a BIGINT is NUMERIC on PostgreSQL; the cast keeps one type on both databases.
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(delta), 0) AS BIGINT)"),
            "balance",
        )
        .filter(entry::Column::CustomerId.eq(customer_id))
        .into_tuple()
        .one(db)
        .await
        .context("summing a points balance")?;
    Ok(sum.unwrap_or(0))
}
