//! Releasing held rewards when their hold passes, as a workflow a referral at a time. Run by the
//! scheduler; safe with any number of processes.
//!
//! **Load**: the due rewards (one read), grouped by their referral; then, for each group, in one
//! transaction: the referral's two sides (or the holder) locked in the one lock order
//! (`customers::locks`), the group's rewards still PENDING claimed with `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL (SQLite's write lock serialises), the referral's row locked and the rewards it
//! still holds read. **Decide** ([`decide`], no I/O): which claimed rewards are issued, and
//! whether the referral becomes REWARDED (none of its rewards is left held). **Apply**: each
//! reward issued by a conditional update, the referral's move and its decision, the points and
//! the tier and badge evaluations of the holders, the emails and live events in one batch.
//! A group that fails is retried a reward at a time: one that fails alone is logged and left
//! for the next pass while the others are released.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::clock::Clock;
use crate::customers::locks;
use crate::db::begin_write;
use crate::effects;
use crate::entities::enums::{DecisionOutcome, RewardStatus};
use crate::entities::{referral, reward};
use crate::error::{AppError, DbContext};
use crate::events::{Reactions, ReferralRewarded};
use crate::referrals::decisions::{self, Decision, rule};
use crate::referrals::qualification::mark_rewarded;
use crate::rewards::service as rewards;

/// How many rewards one pass releases at most; the next pass takes the rest.
const BATCH: u64 = 200;

/// Due rewards of one referral (or one reward without a referral), released together.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    referral_id: Option<Uuid>,
    holder: Uuid,
    rewards: Vec<Uuid>,
}

/// What one group's release does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The rewards to issue, in the order claimed.
    pub issue: Vec<Uuid>,
    /// Whether the referral moves to REWARDED.
    pub referral_rewarded: bool,
}

/// Issues every held reward whose hold has passed; returns how many this call issued.
pub async fn release_due(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
) -> Result<usize, AppError> {
    let now = clock.now();
    let due: Vec<(Uuid, Option<Uuid>, Uuid)> = reward::Entity::find()
        .select_only()
        .column(reward::Column::Id)
        .column(reward::Column::ReferralId)
        .column(reward::Column::CustomerId)
        .filter(reward::Column::Status.eq(RewardStatus::Pending))
        .filter(reward::Column::ReleaseAt.lte(now))
        .order_by_asc(reward::Column::ReleaseAt)
        .limit(BATCH)
        .into_tuple()
        .all(db)
        .await
        .context("finding held rewards that are due")?;
    let mut issued = 0;
    for group in groups(due) {
        match effects::batched(release(db, now, &group, reactions)).await {
            Ok(n) => issued += n,
            Err(error) if group.rewards.len() > 1 => {
                tracing::warn!(%error, "releasing a referral's held rewards; each on its own");
                for id in &group.rewards {
                    let alone = Group {
                        rewards: vec![*id],
                        ..group.clone()
                    };
                    match effects::batched(release(db, now, &alone, reactions)).await {
                        Ok(n) => issued += n,
                        Err(error) => tracing::error!(reward = %id, %error,
                            "releasing a held reward failed; it is skipped"),
                    }
                }
            }
            Err(error) => tracing::error!(reward = %group.rewards[0], %error,
                "releasing a held reward failed; it is skipped"),
        }
    }
    Ok(issued)
}

/// The due rewards `(reward, referral, holder)` grouped by referral, in the order their first
/// reward came; a reward without a referral is a group of its own.
fn groups(due: Vec<(Uuid, Option<Uuid>, Uuid)>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut of_referral: HashMap<Uuid, usize> = HashMap::new();
    for (id, referral_id, holder) in due {
        if let Some(referral) = referral_id
            && let Some(&at) = of_referral.get(&referral)
        {
            groups[at].rewards.push(id);
            continue;
        }
        if let Some(referral) = referral_id {
            of_referral.insert(referral, groups.len());
        }
        groups.push(Group {
            referral_id,
            holder,
            rewards: vec![id],
        });
    }
    groups
}

/// Which of the `claimed` rewards of one referral are issued (all of them: they are PENDING and
/// due, and the claim holds them), and whether the referral becomes REWARDED: when, once they
/// are issued, none of its rewards is still held (`held_after`).
pub fn decide(claimed: &[reward::Model], held_after: usize) -> Release {
    Release {
        issue: claimed.iter().map(|r| r.id).collect(),
        referral_rewarded: !claimed.is_empty() && held_after == 0,
    }
}

/// One group's release in its own transaction. Returns how many rewards it issued.
async fn release(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    group: &Group,
    reactions: &impl Reactions,
) -> Result<usize, AppError> {
    let txn = begin_write(db).await.context("starting a hold release")?;
    // The customers the rewards' referral names (or their holder) before the rewards' rows, in
    // the one lock order (customers::locks).
    let sides = match group.referral_id {
        Some(referral_id) => referral::Entity::find_by_id(referral_id)
            .one(&txn)
            .await
            .context("loading a held reward's referral")?
            .map(|r| vec![r.referee_id, r.referrer_id]),
        None => None,
    };
    let sides = locks::all_of(&txn, &sides.unwrap_or_else(|| vec![group.holder])).await?;
    let claimed = reward::Entity::find()
        .filter(reward::Column::Id.is_in(group.rewards.iter().copied()))
        .filter(reward::Column::Status.eq(RewardStatus::Pending))
        .order_by_asc(reward::Column::Id)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(&txn)
        .await
        .context("claiming held rewards")?;
    if claimed.is_empty() {
        // Another process has them, or they were reversed meanwhile.
        return Ok(0);
    }
    let held_after = match group.referral_id {
        Some(referral_id) => {
            // The referral's row serialises the processes releasing its rewards: without it,
            // two schedulers each see the other's reward still held and neither marks it
            // REWARDED.
            referral::Entity::find_by_id(referral_id)
                .lock_exclusive()
                .one(&txn)
                .await
                .context("locking a referral")?;
            reward::Entity::find()
                .select_only()
                .column(reward::Column::Id)
                .filter(reward::Column::ReferralId.eq(referral_id))
                .filter(reward::Column::Status.eq(RewardStatus::Pending))
                .filter(reward::Column::Id.is_not_in(claimed.iter().map(|r| r.id)))
                .into_tuple::<Uuid>()
                .all(&txn)
                .await
                .context("checking a referral's other held rewards")?
                .len()
        }
        None => 0,
    };
    let release = decide(&claimed, held_after);
    let to_issue: Vec<reward::Model> = claimed
        .into_iter()
        .filter(|r| release.issue.contains(&r.id))
        .collect();
    let issued = rewards::issue_all(&txn, &sides, now, to_issue).await?;
    if let Some(referral_id) = group.referral_id
        && release.referral_rewarded
        && mark_rewarded(&txn, now, referral_id).await?
    {
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
    // Last, after the referral's row: a reversal locks the referral before the customers, and
    // the points credited here lock the customer.
    reactions
        .referral_rewarded(
            &txn,
            ReferralRewarded {
                rewards: &issued,
                held: &sides,
                now,
            },
        )
        .await?;
    effects::flush(&txn).await?;
    txn.commit().await.context("committing a hold release")?;
    Ok(issued.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reward(n: u128, referral: Option<u128>) -> reward::Model {
        use chrono::TimeZone;
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        reward::Model {
            id: Uuid::from_u128(n),
            referral_id: referral.map(Uuid::from_u128),
            customer_id: Uuid::from_u128(100 + n),
            side: crate::entities::enums::RewardSide::Referrer,
            kind: crate::entities::enums::RewardKind::Points,
            amount: 500,
            status: RewardStatus::Pending,
            coupon_code: None,
            dedupe_key: format!("k{n}"),
            milestone: None,
            release_at: Some(at),
            issued_at: None,
            redeemed_at: None,
            reversed_at: None,
            created_at: at,
        }
    }

    #[test]
    fn a_referral_is_rewarded_when_its_last_held_reward_is_issued() {
        let both = [reward(1, Some(9)), reward(2, Some(9))];
        let release = decide(&both, 0);
        assert_eq!(release.issue, vec![Uuid::from_u128(1), Uuid::from_u128(2)]);
        assert!(release.referral_rewarded);
        assert!(
            !decide(&both[..1], 1).referral_rewarded,
            "the other side's reward is still held"
        );
        assert_eq!(
            decide(&[], 0),
            Release {
                issue: vec![],
                referral_rewarded: false
            }
        );
    }

    #[test]
    fn due_rewards_are_released_a_referral_at_a_time() {
        let (a, b, c, d) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let (r1, r2, holder) = (
            Uuid::from_u128(10),
            Uuid::from_u128(11),
            Uuid::from_u128(20),
        );
        let grouped = groups(vec![
            (a, Some(r1), holder),
            (b, None, holder),
            (c, Some(r2), holder),
            (d, Some(r1), holder),
        ]);
        let rewards: Vec<Vec<Uuid>> = grouped.iter().map(|g| g.rewards.clone()).collect();
        assert_eq!(rewards, vec![vec![a, d], vec![b], vec![c]]);
    }
}
