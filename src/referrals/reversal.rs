//! Reversal: when the qualifying order is refunded below the campaign minimum, the referral's
//! rewards are taken back (held ones simply never issue; issued points are debited) and the
//! referral becomes REVERSED. Coupons already redeemed stay redeemed: the shop honoured them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::campaigns::service as campaigns;
use crate::customers::locks::Held;
use crate::entities::enums::{DecisionOutcome, LeaderboardMetric, ReferralStatus, RewardStatus};
use crate::entities::{order, referral, reward};
use crate::error::{AppError, DbContext};
use crate::live;
use crate::loyalty::leaderboard;
use crate::referrals::decisions::{self, Decision, rule};
use crate::rewards::service as rewards;

/// Applies a refund of `order` (already updated) to the referral it qualified, if any.
pub async fn on_refund(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    order: &order::Model,
) -> Result<(), AppError> {
    if held.has_referrer(order.customer_id) == Some(false) {
        // Nobody referred the buyer: their order qualified no referral.
        return Ok(());
    }
    let Some(referral) = referral::Entity::find()
        .filter(referral::Column::QualifyingOrderId.eq(order.id))
        .filter(
            referral::Column::Status.is_in([ReferralStatus::Qualified, ReferralStatus::Rewarded]),
        )
        .one(txn)
        .await
        .context("loading the referral an order qualified")?
    else {
        return Ok(());
    };
    let minimum = match referral.campaign_id {
        Some(id) => campaigns::find(txn, id)
            .await?
            .map_or(0, |c| c.min_order_amount),
        None => 0,
    };
    let net = order.amount - order.refunded_amount;
    if net > 0 && net >= minimum {
        let detail = format!(
            "order {} was refunded to {net}, still at or above the minimum of {minimum}: rewards kept",
            order.external_id
        );
        let decision = Decision::new(rule::REFUND, DecisionOutcome::Passed, detail);
        return decisions::record(txn, referral.id, decision, now).await;
    }

    // Lock the rewards before the referral: the hold release takes them in that order too, so
    // the two cannot deadlock.
    let held_rewards = reward::Entity::find()
        .filter(reward::Column::ReferralId.eq(referral.id))
        .order_by_asc(reward::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await
        .context("locking a referral's rewards")?;
    let changed = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Reversed),
        )
        .col_expr(referral::Column::UpdatedAt, Expr::value(now))
        .filter(referral::Column::Id.eq(referral.id))
        .filter(referral::Column::Status.eq(referral.status))
        .exec(txn)
        .await
        .context("reversing a referral")?
        .rows_affected;
    if changed == 0 {
        return Ok(());
    }
    live::referral_changed(txn, referral.id, ReferralStatus::Reversed, now).await?;
    // The success is taken back on the day it was counted.
    leaderboard::add(
        txn,
        LeaderboardMetric::SuccessfulReferrals,
        referral.referrer_id,
        referral.qualified_at.unwrap_or(now),
        -1,
        now,
    )
    .await?;
    let mut notes = vec![Decision::new(
        rule::REFUND,
        DecisionOutcome::Recorded,
        format!(
            "order {} was refunded to {net}, below the minimum of {minimum}: the referral is reversed",
            order.external_id
        ),
    )];
    for reward in held_rewards {
        match reward.status {
            RewardStatus::Pending | RewardStatus::Issued => {
                rewards::reverse(txn, held, now, &reward).await?;
            }
            RewardStatus::Redeemed => notes.push(Decision::new(
                rule::REFUND,
                DecisionOutcome::Skipped,
                format!(
                    "the {:?} reward's coupon was already redeemed, so it stays redeemed",
                    reward.side
                )
                .to_lowercase(),
            )),
            RewardStatus::Reversed => {}
        }
    }
    decisions::record_all(txn, referral.id, notes, now).await
}
