//! Live events for subscriptions: what changed, published from the writing transaction so that
//! only committed changes are seen, and by every instance. On PostgreSQL an event is a
//! `NOTIFY` on [`CHANNEL`] (delivered at commit, in commit order, to every listening instance);
//! on SQLite, whose writers commit one at a time, it is a row in `live_events` that each
//! process polls. [`hub::Hub`] turns either into an in-process broadcast.

pub mod hub;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::statement;
use crate::entities::{referral, referral_decision as decision};
use crate::error::{AppError, DbContext};

/// The PostgreSQL channel live events are sent on.
pub const CHANNEL: &str = "tandem_live";

/// Something a subscriber may want to hear about. Small on purpose: a NOTIFY payload is limited
/// to 8,000 bytes, and subscribers load what they show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A referral was created or changed status.
    Referral {
        referral_id: Uuid,
        status: String,
        /// The decisions on it so far, oldest first: `rule: outcome (detail)`.
        reasons: Vec<String>,
        at: DateTime<Utc>,
    },
    /// A customer's reward was issued (at once, or when its hold ended) or reversed.
    Reward {
        customer_id: Uuid,
        reward_id: Uuid,
        status: String,
        at: DateTime<Utc>,
    },
    /// Points were credited to a customer.
    Points {
        customer_id: Uuid,
        entry_id: Uuid,
        delta: i64,
        at: DateTime<Utc>,
    },
}

/// At most this many decisions travel with a referral event (a referral has a handful).
const MAX_REASONS: usize = 20;
/// And each is cut to this many characters.
const MAX_REASON_CHARS: usize = 200;

/// Sends `event` with the transaction: subscribers see it if and when `txn` commits.
pub async fn publish(txn: &impl ConnectionTrait, event: &LiveEvent) -> Result<(), AppError> {
    let payload = serde_json::to_string(event)
        .map_err(|error| AppError::internal("encoding a live event", error))?;
    let backend = txn.get_database_backend();
    let (sql, values) = if backend == DbBackend::Postgres {
        (
            "SELECT pg_notify(?, ?)",
            vec![CHANNEL.into(), payload.into()],
        )
    } else {
        (
            "INSERT INTO live_events (payload, created_at) VALUES (?, ?)",
            vec![payload.into(), Utc::now().into()],
        )
    };
    txn.execute_raw(statement(backend, sql, values))
        .await
        .context("publishing a live event")?;
    Ok(())
}

/// Publishes a referral's current status and its decisions; call it after changing it.
pub async fn referral_changed(
    txn: &impl ConnectionTrait,
    referral_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let Some(found) = referral::Entity::find_by_id(referral_id)
        .one(txn)
        .await
        .context("loading a changed referral")?
    else {
        return Ok(());
    };
    let decisions = decision::Entity::find()
        .filter(decision::Column::ReferralId.eq(referral_id))
        .order_by_asc(decision::Column::Id)
        .all(txn)
        .await
        .context("loading a referral's decisions")?;
    let reasons = decisions
        .iter()
        .rev()
        .take(MAX_REASONS)
        .rev()
        .map(|d| {
            let line = format!("{}: {} ({})", d.rule, d.outcome.to_value(), d.detail);
            line.chars().take(MAX_REASON_CHARS).collect()
        })
        .collect();
    publish(
        txn,
        &LiveEvent::Referral {
            referral_id,
            status: found.status.to_value(),
            reasons,
            at: now,
        },
    )
    .await
}

/// Deletes SQLite's polled events older than `before` (PostgreSQL keeps none).
pub async fn prune(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, AppError> {
    if db.get_database_backend() == DbBackend::Postgres {
        return Ok(0);
    }
    let deleted = db
        .execute_raw(statement(
            DbBackend::Sqlite,
            "DELETE FROM live_events WHERE created_at < ?",
            vec![before.into()],
        ))
        .await
        .context("pruning live events")?
        .rows_affected();
    Ok(deleted)
}
