//! Writing outbox emails: each row unless its `dedupe_key` exists or its address is
//! suppressed, with one read of the suppression list for all of them.

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
/// exists (or came earlier in `rows`) is skipped. Returns how many were written.
pub async fn write_all(txn: &impl ConnectionTrait, rows: Vec<OutboxRow>) -> Result<u64, AppError> {
    let mut written = 0;
    for chunk in rows.chunks(PER_STATEMENT) {
        written += write(txn, chunk).await?;
    }
    Ok(written)
}

async fn write(txn: &impl ConnectionTrait, rows: &[OutboxRow]) -> Result<u64, AppError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let addresses: HashSet<&str> = rows.iter().map(|r| r.email_normalized.as_str()).collect();
    let suppressed: HashMap<String, SuppressionReason> = suppression::Entity::find()
        .filter(suppression::Column::EmailNormalized.is_in(addresses))
        .all(txn)
        .await
        .context("checking the suppression list")?
        .into_iter()
        .map(|s| (s.email_normalized, s.reason))
        .collect();
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
