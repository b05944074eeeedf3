//! Writing referral decisions, and reading those a live event about a referral carries.

use std::collections::HashSet;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entities::referral_decision as decision;
use crate::error::{AppError, DbContext};

/// The most rows one statement writes.
const PER_STATEMENT: usize = 200;

/// Writes `decisions`, in one statement per [`PER_STATEMENT`].
pub async fn insert_all(
    txn: &impl ConnectionTrait,
    decisions: &[decision::Model],
) -> Result<(), AppError> {
    for chunk in decisions.chunks(PER_STATEMENT) {
        decision::Entity::insert_many(chunk.iter().cloned().map(|d| d.into_active_model()))
            .exec_without_returning(txn)
            .await
            .context("recording referral decisions")?;
    }
    Ok(())
}

/// The decisions written so far on these referrals, oldest first.
pub async fn of_referrals(
    txn: &impl ConnectionTrait,
    referral_ids: HashSet<Uuid>,
) -> Result<Vec<decision::Model>, AppError> {
    if referral_ids.is_empty() {
        return Ok(Vec::new());
    }
    decision::Entity::find()
        .filter(decision::Column::ReferralId.is_in(referral_ids))
        .order_by_asc(decision::Column::Id)
        .all(txn)
        .await
        .context("loading referrals' decisions")
}
