//! Awarding a badge created after the fact, as a workflow a batch of customers at a time:
//! **load** the oldest badge not yet backfilled (its row locked, which keeps two schedulers off
//! the same batch), the next customers after its cursor, their rollups (the kept measures and
//! the badges held) in one statement and, for a referrals badge, their successful referrals in
//! one more; **decide** in plain Rust who is awarded and where the cursor goes ([`decide`], no
//! I/O); **apply** the awards in one insert and move the cursor. A batch costs the same few
//! statements whatever its customers' histories.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::db::begin_write;
use crate::entities::enums::BadgeRule;
use crate::entities::{badge, customer};
use crate::error::{AppError, DbContext};
use crate::loyalty::{badges, facts};
use crate::rollups;

/// How many customers one backfill step reads.
pub const BACKFILL_BATCH: u64 = 200;

/// A customer of the batch, as loaded: where they stand on the badge's rule and whether they
/// hold it already (`false` when unknown: the award's unique key then decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub customer_id: Uuid,
    pub value: i64,
    pub holds: bool,
}

/// What one step writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The customers awarded the badge, ascending by id.
    pub awards: Vec<Uuid>,
    /// The cursor after this batch, or `None` when the batch was the last one.
    pub cursor: Option<Uuid>,
}

/// Who of `batch` (ascending id, at most [`BACKFILL_BATCH`]) gets `threshold`'s badge, and where
/// the next step starts: a full batch may be followed by more customers, a short one ends it.
pub fn decide(threshold: i64, batch: &[Candidate]) -> Step {
    Step {
        awards: batch
            .iter()
            .filter(|c| !c.holds && c.value >= threshold)
            .map(|c| c.customer_id)
            .collect(),
        cursor: batch
            .last()
            .filter(|_| batch.len() as u64 == BACKFILL_BATCH)
            .map(|c| c.customer_id),
    }
}

/// One step of the backfill. Returns the number of awards written, or `None` when no badge
/// needs it.
pub async fn backfill_step(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Option<u64>, AppError> {
    let txn = begin_write(db).await.context("starting a badge backfill")?;
    let Some(badge) = badge::Entity::find()
        .filter(badge::Column::BackfilledAt.is_null())
        .order_by_asc(badge::Column::Id)
        .lock_exclusive()
        .one(&txn)
        .await
        .context("loading a badge to backfill")?
    else {
        return Ok(None);
    };
    let batch = load(&txn, &badge).await?;
    let step = decide(badge.threshold, &batch);
    let awarded = badges::award_all(&txn, now, &badge, &step.awards).await?;
    let update = badge::Entity::update_many().filter(badge::Column::Id.eq(badge.id));
    let update = match step.cursor {
        Some(after) => update.col_expr(badge::Column::BackfillCursor, Expr::value(after)),
        None => update.col_expr(badge::Column::BackfilledAt, Expr::value(now)),
    };
    update
        .exec(&txn)
        .await
        .context("moving a badge backfill on")?;
    txn.commit().await.context("committing a badge backfill")?;
    Ok(Some(awarded))
}

/// The next batch of customers after the badge's cursor, measured on its rule.
async fn load(
    txn: &impl sea_orm::ConnectionTrait,
    badge: &badge::Model,
) -> Result<Vec<Candidate>, AppError> {
    let mut query = customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .order_by_asc(customer::Column::Id)
        .limit(BACKFILL_BATCH);
    if let Some(after) = badge.backfill_cursor {
        query = query.filter(customer::Column::Id.gt(after));
    }
    let ids: Vec<Uuid> = query
        .into_tuple()
        .all(txn)
        .await
        .context("loading customers to backfill")?;
    let kept = rollups::changes::load(txn, &ids).await?;
    let referrals = if badge.rule == BadgeRule::SuccessfulReferrals {
        facts::successful_referrals_of(txn, &ids).await?
    } else {
        Default::default()
    };
    let mut batch = Vec::with_capacity(ids.len());
    for id in ids {
        let rollup = kept.get(&id);
        let value = match (badge.rule, rollup) {
            (BadgeRule::SuccessfulReferrals, _) => referrals.get(&id).copied().unwrap_or(0),
            (rule, Some(rollup)) => facts::of_kept(rule, rollup.kept()),
            // Without a rollup row (data loaded around the API), from the tables: rare.
            (rule, None) => facts::badge_value(txn, id, rule).await?,
        };
        let holds = rollup.is_some_and(|r| r.badges().contains(&badge.key));
        batch.push(Candidate {
            customer_id: id,
            value,
            holds,
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(n: u128, value: i64, holds: bool) -> Candidate {
        Candidate {
            customer_id: Uuid::from_u128(n),
            value,
            holds,
        }
    }

    #[test]
    fn those_who_meet_the_threshold_and_do_not_hold_it_are_awarded() {
        let batch = [
            candidate(1, 5, false),
            candidate(2, 2, false),
            candidate(3, 9, true),
            candidate(4, 3, false),
        ];
        let step = decide(3, &batch);
        assert_eq!(step.awards, vec![Uuid::from_u128(1), Uuid::from_u128(4)]);
        assert_eq!(step.cursor, None, "a short batch is the last one");
    }

    #[test]
    fn a_full_batch_moves_the_cursor_to_its_last_customer() {
        let batch: Vec<Candidate> = (1..=u128::from(BACKFILL_BATCH as u32))
            .map(|n| candidate(n, 0, false))
            .collect();
        let step = decide(1, &batch);
        assert!(step.awards.is_empty());
        assert_eq!(
            step.cursor,
            Some(Uuid::from_u128(u128::from(BACKFILL_BATCH as u32)))
        );
        assert_eq!(decide(1, &[]).cursor, None);
    }
}
