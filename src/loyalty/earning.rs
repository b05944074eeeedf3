//! Earning and taking back points for orders: an order earns `floor(amount / 100 × pointsPerUnit ×
//! tier multiplier)` points, once (its id is the credit's source); a refund takes back the share
//! of them that the refunded share of the amount earned, counted over all the order's refunds so
//! rounding never drifts.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;

use crate::customers::locks::Held;
use crate::display::money;
use crate::entities::enums::{PointsReason, RewardKind, RewardSide};
use crate::entities::{order, reward};
use crate::error::AppError;
use crate::loyalty::ledger::{self, Consume, Credit, Debit};
use crate::loyalty::program::Program;
use crate::loyalty::settings::{ProgramSettings, expiry_of};

/// The points an amount earns at a multiplier (in thousandths).
pub fn points_for(amount: i64, points_per_unit: i64, multiplier_milli: i64) -> i64 {
    let points =
        i128::from(amount) * i128::from(points_per_unit) * i128::from(multiplier_milli) / 100_000;
    i64::try_from(points).unwrap_or(i64::MAX)
}

/// Credits the points a newly recorded order earns.
pub async fn on_order(
    txn: &impl ConnectionTrait,
    held: &Held,
    program: &Program,
    currency: &str,
    now: DateTime<Utc>,
    order: &order::Model,
) -> Result<(), AppError> {
    let settings = &program.settings;
    let customer = held.customer(order.customer_id)?;
    let tier = program.tier(customer.tier_id);
    let multiplier = program.multiplier_milli(customer.tier_id);
    let points = points_for(order.amount, settings.points_per_unit, multiplier);
    if points <= 0 {
        return Ok(());
    }
    let at = match tier {
        Some(tier) if multiplier != 1000 => {
            format!(" at {}× for {}", multiplier as f64 / 1000.0, tier.name)
        }
        _ => String::new(),
    };
    let earned_at = order.placed_at;
    ledger::credit(
        txn,
        held,
        now,
        Credit {
            customer_id: order.customer_id,
            amount: points,
            reason: PointsReason::Order,
            description: format!(
                "{points} points for order #{} ({}{at})",
                order.external_id,
                money(order.amount, currency)
            ),
            source_kind: "order",
            source_id: order.id.to_string(),
            earned_at,
            available_at: earned_at + Duration::days(i64::from(settings.points_pending_days)),
            expires_at: expiry_of(settings, earned_at),
            actor: None,
        },
    )
    .await?;
    Ok(())
}

/// Takes back the points a refund's share of the order earned. While the order's points are
/// still pending this cancels them before they were ever spendable; once spent, the balance
/// goes below zero and later credits pay it back.
pub async fn on_refund(
    txn: &impl ConnectionTrait,
    held: &Held,
    currency: &str,
    now: DateTime<Utc>,
    order: &order::Model,
    refund_amount: i64,
    refund_id: uuid::Uuid,
) -> Result<(), AppError> {
    let Some(lot) = ledger::by_source(txn, "order", &order.id.to_string()).await? else {
        return Ok(());
    };
    let due = i64::try_from(
        i128::from(lot.delta) * i128::from(order.refunded_amount) / i128::from(order.amount),
    )
    .unwrap_or(lot.delta);
    let prefix = format!("{}:", order.id);
    let taken =
        -ledger::sum_by_source_prefix(txn, order.customer_id, "order_refund", &prefix).await?;
    let amount = due - taken;
    if amount <= 0 {
        return Ok(());
    }
    ledger::debit(
        txn,
        held,
        now,
        Debit {
            customer_id: order.customer_id,
            amount,
            reason: PointsReason::Refund,
            description: format!(
                "{amount} points taken back: order #{} was refunded {}",
                order.external_id,
                money(refund_amount, currency)
            ),
            source_kind: "order_refund",
            source_id: format!("{prefix}{refund_id}"),
            earned_at: lot.earned_at.unwrap_or(lot.created_at),
            actor: None,
            consume: Consume::LotFirst(lot.id),
        },
    )
    .await?;
    Ok(())
}

/// Credits an issued referral reward paid in points: a lot of its own, expiring like any other,
/// whose source is the reward (so it is credited once however often the event comes).
pub async fn on_reward(
    txn: &impl ConnectionTrait,
    held: &Held,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
    reward: &reward::Model,
) -> Result<(), AppError> {
    if reward.kind != RewardKind::Points {
        return Ok(());
    }
    let (reason, why) = match reward.side {
        RewardSide::Milestone => (
            PointsReason::Milestone,
            format!(
                "bonus for reaching {} successful referrals",
                reward.milestone.unwrap_or_default()
            ),
        ),
        RewardSide::Referee => (
            PointsReason::ReferralReward,
            "referral reward (you joined through a friend)".to_owned(),
        ),
        _ => (
            PointsReason::ReferralReward,
            "referral reward (a friend you referred made their first order)".to_owned(),
        ),
    };
    ledger::credit(
        txn,
        held,
        now,
        Credit {
            customer_id: reward.customer_id,
            amount: reward.amount,
            reason,
            description: format!("{} points: {why}", reward.amount),
            source_kind: "reward",
            source_id: reward.id.to_string(),
            earned_at: now,
            available_at: now,
            expires_at: expiry_of(settings, now),
            actor: None,
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::points_for;

    #[test]
    fn points_round_down_and_follow_the_multiplier() {
        assert_eq!(points_for(10_000, 1, 1000), 100);
        assert_eq!(points_for(10_000, 1, 1500), 150);
        assert_eq!(points_for(1_999, 1, 1000), 19);
        assert_eq!(points_for(99, 1, 1000), 0);
        assert_eq!(
            points_for(1_000_000_000, 10_000, 100_000),
            10_000_000_000_000
        );
    }
}
