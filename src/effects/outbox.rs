//! Writing outbox emails: each row unless its `dedupe_key` exists or its address is
//! suppressed, with one read of the suppression list for all of them (none when the workflow
//! knows already whether their addresses are suppressed).

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};

use crate::entities::email_outbox as outbox;
use crate::entities::enums::SuppressionReason;
use crate::entities::suppression;
use crate::error::{AppError, DbContext};

/// An outbox row ready to write, and the normalized address its suppression is looked up by.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub row: outbox::Model,
    pub email_normalized: String,
}

/// The most rows one statement writes.
const PER_STATEMENT: usize = 200;

/// Writes the rows whose address is not suppressed for their kind of email; a row whose key
/// exists (or came earlier in `rows`) is skipped. `known` are addresses whose suppression the
/// caller has read (the reason when suppressed); the others are read. Returns how many were
/// written.
pub async fn write_all(
    txn: &impl ConnectionTrait,
    rows: Vec<OutboxRow>,
    known: &HashMap<String, Option<SuppressionReason>>,
) -> Result<u64, AppError> {
    let mut written = 0;
    for chunk in rows.chunks(PER_STATEMENT) {
        written += write(txn, chunk, known).await?;
    }
    Ok(written)
}

async fn write(
    txn: &impl ConnectionTrait,
    rows: &[OutboxRow],
    known: &HashMap<String, Option<SuppressionReason>>,
) -> Result<u64, AppError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let unknown: HashSet<&str> = rows
        .iter()
        .map(|r| r.email_normalized.as_str())
        .filter(|address| !known.contains_key(*address))
        .collect();
    let mut suppressed: HashMap<String, SuppressionReason> = known
        .iter()
        .filter_map(|(address, reason)| reason.map(|reason| (address.clone(), reason)))
        .collect();
    if !unknown.is_empty() {
        let read = suppression::Entity::find()
            .filter(suppression::Column::EmailNormalized.is_in(unknown))
            .all(txn)
            .await
            .context("checking the suppression list")?;
        suppressed.extend(read.into_iter().map(|s| (s.email_normalized, s.reason)));
    }
    let mut keys = HashSet::new();
    let allowed: Vec<outbox::ActiveModel> = rows
        .iter()
        .filter(|r| {
            !suppressed
                .get(&r.email_normalized)
                .is_some_and(|reason| reason.blocks(r.row.marketing))
        })
        .filter(|r| keys.insert(r.row.dedupe_key.as_str()))
        .map(|r| r.row.clone().into_active_model())
        .collect();
    if allowed.is_empty() {
        return Ok(0);
    }
    let written = outbox::Entity::insert_many(allowed)
        .on_conflict(
            OnConflict::column(outbox::Column::DedupeKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
        .context("writing emails to the outbox")?;
    Ok(written)
}
