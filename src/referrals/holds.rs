//! Releasing held rewards when their hold passes. Run by the scheduler; safe with any number of
//! processes: each reward is claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's write
//! lock serializes), and issuing is a conditional update.

use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::clock::Clock;
use crate::customers::locks;
use crate::db::begin_write;
use crate::entities::enums::{DecisionOutcome, RewardStatus};
use crate::entities::{referral, reward};
use crate::error::{AppError, DbContext};
use crate::events::{Reactions, ReferralRewarded};
use crate::referrals::decisions::{self, Decision, rule};
use crate::referrals::qualification::mark_rewarded;
use crate::rewards::service as rewards;

/// How many rewards one pass releases at most; the next pass takes the rest.
const BATCH: u64 = 200;

/// Issues every held reward whose hold has passed; returns how many this call issued.
pub async fn release_due(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
) -> Result<usize, AppError> {
    let now = clock.now();
    let due: Vec<uuid::Uuid> = reward::Entity::find()
        .select_only()
        .column(reward::Column::Id)
        .filter(reward::Column::Status.eq(RewardStatus::Pending))
        .filter(reward::Column::ReleaseAt.lte(now))
        .order_by_asc(reward::Column::ReleaseAt)
        .limit(BATCH)
        .into_tuple()
        .all(db)
        .await
        .context("finding held rewards that are due")?;
    let mut issued = 0;
    for id in due {
        // One reward that fails is logged and left for the next pass; the rest go on.
        match release(db, now, id, reactions).await {
            Ok(true) => issued += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(reward = %id, %error, "releasing a held reward failed; it is skipped");
            }
        }
    }
    Ok(issued)
}

async fn release(
    db: &DatabaseConnection,
    now: chrono::DateTime<chrono::Utc>,
    id: uuid::Uuid,
    reactions: &impl Reactions,
) -> Result<bool, AppError> {
    let txn = begin_write(db).await.context("starting a hold release")?;
    // The customers the reward's referral names (or its holder) before the reward's row, in the
    // one lock order (customers::locks).
    let Some(due) = reward::Entity::find_by_id(id)
        .one(&txn)
        .await
        .context("loading a held reward")?
    else {
        return Ok(false);
    };
    let sides = match due.referral_id {
        Some(referral_id) => referral::Entity::find_by_id(referral_id)
            .one(&txn)
            .await
            .context("loading a held reward's referral")?
            .map(|r| vec![r.referee_id, r.referrer_id]),
        None => None,
    };
    let sides = locks::all_of(&txn, &sides.unwrap_or_else(|| vec![due.customer_id])).await?;
    let claimed = reward::Entity::find_by_id(id)
        .filter(reward::Column::Status.eq(RewardStatus::Pending))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(&txn)
        .await
        .context("claiming a held reward")?;
    let Some(held) = claimed else {
        // Another process has it, or it was reversed meanwhile.
        return Ok(false);
    };
    if !rewards::issue(&txn, now, &held).await? {
        return Ok(false);
    }
    if let Some(referral_id) = held.referral_id {
        // The referral's row serialises the processes releasing its rewards: without it, two
        // schedulers each see the other's reward still held and neither marks it REWARDED.
        referral::Entity::find_by_id(referral_id)
            .lock_exclusive()
            .one(&txn)
            .await
            .context("locking a referral")?;
        let still_held = reward::Entity::find()
            .filter(reward::Column::ReferralId.eq(referral_id))
            .filter(reward::Column::Status.eq(RewardStatus::Pending))
            .one(&txn)
            .await
            .context("checking a referral's other held rewards")?
            .is_some();
        if !still_held && mark_rewarded(&txn, now, referral_id).await? {
            decisions::record(
                &txn,
                referral_id,
                Decision::new(
                    rule::REWARDS,
                    DecisionOutcome::Recorded,
                    "hold passed: rewards issued",
                ),
                now,
            )
            .await?;
        }
    }
    // Last, after the referral's row: a reversal locks the referral before the customers, and
    // the points credited here lock the customer.
    let issued = reward::Model {
        status: RewardStatus::Issued,
        issued_at: Some(now),
        ..held
    };
    reactions
        .referral_rewarded(
            &txn,
            ReferralRewarded {
                reward: &issued,
                held: &sides,
                now,
            },
        )
        .await?;
    txn.commit().await.context("committing a hold release")?;
    Ok(true)
}
