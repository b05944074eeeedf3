//! The suppression list: addresses that unsubscribed (no marketing email) or bounced (no email).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use crate::entities::enums::SuppressionReason;
use crate::entities::suppression;
use crate::error::{AppError, DbContext};

/// Why `email_normalized` may not get an email of this kind, if it may not.
pub async fn blocks(
    db: &impl ConnectionTrait,
    email_normalized: &str,
    marketing: bool,
) -> Result<Option<SuppressionReason>, AppError> {
    let found = suppression::Entity::find_by_id(email_normalized.to_owned())
        .one(db)
        .await
        .context("checking the suppression list")?;
    Ok(found
        .map(|s| s.reason)
        .filter(|reason| reason.blocks(marketing)))
}

/// Adds an address; a bounce outranks an unsubscribe.
pub async fn suppress(
    db: &impl ConnectionTrait,
    email_normalized: &str,
    reason: SuppressionReason,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let mut on_conflict = OnConflict::column(suppression::Column::EmailNormalized);
    if reason == SuppressionReason::Bounced {
        on_conflict.update_columns([suppression::Column::Reason, suppression::Column::Detail]);
    } else {
        on_conflict.do_nothing();
    }
    suppression::Entity::insert(suppression::ActiveModel {
        email_normalized: Set(email_normalized.to_owned()),
        reason: Set(reason),
        detail: Set(detail),
        created_at: Set(now),
    })
    .on_conflict(on_conflict.to_owned())
    .exec_without_returning(db)
    .await
    .context("adding to the suppression list")?;
    Ok(())
}

/// A page of the list in address order after `after`, and whether more follow.
pub async fn list(
    db: &impl ConnectionTrait,
    limit: u64,
    after: Option<&str>,
) -> Result<(Vec<suppression::Model>, bool), AppError> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = suppression::Entity::find().order_by_asc(suppression::Column::EmailNormalized);
    if let Some(after) = after {
        query = query.filter(suppression::Column::EmailNormalized.gt(after));
    }
    let mut rows = query
        .limit(limit + 1)
        .all(db)
        .await
        .context("listing suppressions")?;
    let has_next = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_next))
}

/// Lifts the suppression of an address, so it gets email again; the removed entry, or
/// `NOT_FOUND` when the address was not suppressed.
pub async fn remove(
    db: &impl ConnectionTrait,
    email_normalized: &str,
) -> Result<suppression::Model, AppError> {
    let found = suppression::Entity::find_by_id(email_normalized.to_owned())
        .one(db)
        .await
        .context("loading a suppression")?
        .ok_or_else(|| {
            AppError::NotFound(format!("{email_normalized} is not on the suppression list"))
        })?;
    suppression::Entity::delete_by_id(email_normalized.to_owned())
        .exec(db)
        .await
        .context("lifting a suppression")?;
    Ok(found)
}
