//! Debits decided in full before anything is written (a workflow's decide step), written
//! set-based: one insert of their entries, one of what they consume, one update of the lots they
//! close, whatever their number. `ledger::debit` is the one-at-a-time form that loads and
//! decides itself.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::customers::locks::Held;
use crate::entities::points_ledger_entry as entry;
use crate::error::AppError;
use crate::loyalty::ledger::{consume, insert_all_new, points_written, rank};

/// A debit as decided: its entry (a negative delta, `remaining` what it still owes) and what it
/// takes from which lots.
#[derive(Debug, Clone, PartialEq)]
pub struct DecidedDebit {
    pub entry: entry::Model,
    pub taken: Vec<(Uuid, i64)>,
}

/// Writes `debits`, with their rollup changes through `held` (written at once, or when the
/// caller writes the rollups if it deferred them) and their leaderboard changes. Every debit
/// must be new by its source and its customer held: one that meets an entry of the same source
/// is an internal error, which rolls the caller's transaction back.
pub async fn write_debits(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    debits: &[DecidedDebit],
) -> Result<(), AppError> {
    if debits.is_empty() {
        return Ok(());
    }
    for debit in debits {
        held.customer(debit.entry.customer_id)?;
    }
    let entries = debits.iter().map(|debit| debit.entry.clone()).collect();
    insert_all_new(txn, entries, "debits").await?;
    for debit in debits {
        held.change_rollup(txn, debit.entry.customer_id, points_written(&debit.entry))
            .await?;
        rank(txn, &debit.entry, now).await?;
    }
    let consumptions: Vec<(Uuid, Uuid, Uuid, i64)> = debits
        .iter()
        .flat_map(|debit| {
            let entry = &debit.entry;
            debit
                .taken
                .iter()
                .map(move |(lot, amount)| (entry.customer_id, entry.id, *lot, *amount))
        })
        .collect();
    // One CASE arm a lot: two debits taking from one lot close it by their sum.
    let mut closed: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (lot, amount) in debits.iter().flat_map(|debit| debit.taken.iter()) {
        *closed.entry(*lot).or_default() += amount;
    }
    let closed: Vec<(Uuid, i64)> = closed.into_iter().collect();
    consume(txn, now, &consumptions, &closed).await
}
