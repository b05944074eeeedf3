//! Sending live events' payloads with the transaction: on PostgreSQL one `pg_notify` each
//! (delivered at commit, in the order sent), on SQLite one `live_events` row each, which every
//! process polls.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use uuid::Uuid;

use crate::db::statement;
use crate::effects::decisions;
use crate::entities::referral_decision as decision;
use crate::error::{AppError, DbContext};

/// The PostgreSQL channel live events are sent on.
pub const CHANNEL: &str = "tandem_live";

/// A referral changed to `status`: its event carries the decisions on it up to this point,
/// which `payload` turns into the event's payload (`None` for one that cannot be sent).
#[derive(Debug, Clone)]
pub struct ReferralNote {
    pub referral_id: Uuid,
    pub status: String,
    pub at: DateTime<Utc>,
    pub payload: fn(&ReferralNote, &[decision::Model]) -> Option<String>,
}

/// A live event waiting in a batch.
#[derive(Debug, Clone)]
pub(super) enum Item {
    Ready(String),
    /// A referral's event, queued when the batch held `decisions_before` decisions.
    Referral {
        note: ReferralNote,
        decisions_before: usize,
    },
}

/// Sends `items` in order, each referral event with the decisions written before it (those
/// written already, and the first `decisions_before` of `queued`, not yet written). What is
/// written is in `known` for the referrals the workflow read it for, and is read for all the
/// others at once.
pub(super) async fn resolve_and_send(
    txn: &impl ConnectionTrait,
    items: Vec<Item>,
    queued: &[decision::Model],
    known: HashMap<Uuid, Vec<decision::Model>>,
) -> Result<(), AppError> {
    let unknown: HashSet<Uuid> = items
        .iter()
        .filter_map(|item| match item {
            Item::Referral { note, .. } if !known.contains_key(&note.referral_id) => {
                Some(note.referral_id)
            }
            _ => None,
        })
        .collect();
    let mut written = decisions::of_referrals(txn, unknown).await?;
    written.extend(known.into_values().flatten());
    let payloads = items
        .into_iter()
        .filter_map(|item| match item {
            Item::Ready(payload) => Some(payload),
            Item::Referral {
                note,
                decisions_before,
            } => {
                let so_far: Vec<decision::Model> = written
                    .iter()
                    .chain(&queued[..decisions_before.min(queued.len())])
                    .filter(|d| d.referral_id == note.referral_id)
                    .cloned()
                    .collect();
                (note.payload)(&note, &so_far)
            }
        })
        .collect();
    send_all(txn, payloads).await
}

/// The most payloads one statement sends; a larger batch takes more statements.
const PER_STATEMENT: usize = 200;

/// Sends `payloads` in order, in one statement per [`PER_STATEMENT`].
pub async fn send_all(txn: &impl ConnectionTrait, payloads: Vec<String>) -> Result<(), AppError> {
    for chunk in payloads.chunks(PER_STATEMENT) {
        send(txn, chunk).await?;
    }
    Ok(())
}

async fn send(txn: &impl ConnectionTrait, payloads: &[String]) -> Result<(), AppError> {
    let backend = txn.get_database_backend();
    let mut values: Vec<Value> = Vec::with_capacity(payloads.len() * 2);
    let sql = if backend == DbBackend::Postgres {
        // One row whose columns PostgreSQL evaluates left to right: the notifications are
        // queued, and delivered, in the order of the payloads.
        let calls = vec!["pg_notify(?, ?)"; payloads.len()].join(", ");
        for payload in payloads {
            values.push(CHANNEL.into());
            values.push(payload.as_str().into());
        }
        format!("SELECT {calls}")
    } else {
        let rows = vec!["(?, ?)"; payloads.len()].join(", ");
        let at = Utc::now();
        for payload in payloads {
            values.push(payload.as_str().into());
            values.push(at.into());
        }
        format!("INSERT INTO live_events (payload, created_at) VALUES {rows}")
    };
    txn.execute_raw(statement(backend, &sql, values))
        .await
        .context("publishing live events")?;
    Ok(())
}
