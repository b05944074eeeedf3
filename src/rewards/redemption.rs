//! Buying a catalog option with points, as load → decide → apply: one transaction loads the
//! customer (locked), the option (held, so a price change waits for the redemptions that read
//! the old price) and the tiers it compares; [`decide`] says whether the customer may buy it,
//! with no I/O; the apply debits the points (oldest lots first) and issues the reward with its
//! own coupon code. Under the customer's row lock parallel redemptions never overdraw.

use sea_orm::sea_query::LockType;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::campaigns::RewardRule;
use crate::clock::Clock;
use crate::customers::locks;
use crate::customers::service as customers;
use crate::db::begin_write;
use crate::entities::enums::{PointsReason, RewardSide};
use crate::entities::{customer, reward, reward_option, tier};
use crate::error::{AppError, DbContext};
use crate::loyalty::ledger::{self, Consume, Debit};
use crate::rewards::service::{self as rewards, Grant};

/// What a redemption decides on, besides the locked customer.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub option: reward_option::Model,
    /// The tier the option needs, when it needs one.
    pub needed: Option<tier::Model>,
    /// The customer's tier, when they hold one.
    pub held: Option<tier::Model>,
}

/// Whether the customer may buy the option: it must still be offered, and their tier must be
/// at least the one it needs. What it costs is the ledger's to check (the balance, less what
/// is owed, must cover it).
pub fn decide(snapshot: &Snapshot) -> Result<(), AppError> {
    let option = &snapshot.option;
    if !option.active {
        return Err(AppError::NotFound(format!(
            "the reward option '{}' is no longer offered",
            option.name
        )));
    }
    if let Some(needed) = &snapshot.needed
        && snapshot
            .held
            .as_ref()
            .is_none_or(|held| held.threshold < needed.threshold)
    {
        return Err(AppError::Forbidden(format!(
            "'{}' needs the {} tier or higher",
            option.name, needed.name
        )));
    }
    Ok(())
}

/// Buys an option with the customer's points.
pub async fn redeem(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    customer_external_id: &str,
    option_id: Uuid,
) -> Result<reward::Model, AppError> {
    let now = clock.now();
    let txn = begin_write(db).await.context("starting a redemption")?;
    let customer = customers::get_by_external_id(&txn, customer_external_id).await?;
    let held = locks::one(&txn, customer.id).await?;
    let customer = held.customer(customer.id)?.clone();
    let snapshot = load(&txn, &customer, option_id).await?;
    decide(&snapshot)?;
    let option = snapshot.option;
    let reward_id = Uuid::now_v7();
    ledger::debit(
        &txn,
        &held,
        now,
        Debit {
            customer_id: customer.id,
            amount: option.points_cost,
            reason: PointsReason::Redemption,
            description: format!("{} points spent on {}", option.points_cost, option.name),
            source_kind: "redemption",
            source_id: reward_id.to_string(),
            earned_at: now,
            actor: None,
            consume: Consume::Fifo { debt: false },
        },
    )
    .await?;
    let reward = rewards::grant(
        &txn,
        now,
        Grant {
            customer_id: customer.id,
            referral_id: None,
            side: RewardSide::Redemption,
            rule: RewardRule {
                kind: option.kind,
                amount: option.amount,
            },
            dedupe_key: format!("redemption:{reward_id}"),
            milestone: None,
            release_at: None,
            customer: Some(customer),
        },
    )
    .await?
    .ok_or_else(|| AppError::internal("redeeming points", "the reward key was taken"))?;
    txn.commit().await.context("committing a redemption")?;
    Ok(reward)
}

/// The option, held (`FOR SHARE` on PostgreSQL; SQLite's writers hold the whole database) until
/// the transaction ends, and the tiers the decision compares, in one read.
async fn load(
    txn: &impl ConnectionTrait,
    customer: &customer::Model,
    option_id: Uuid,
) -> Result<Snapshot, AppError> {
    let option = reward_option::Entity::find_by_id(option_id)
        .lock(LockType::Share)
        .one(txn)
        .await
        .context("loading a reward option")?
        .ok_or_else(|| AppError::NotFound(format!("no reward option has id '{option_id}'")))?;
    let wanted: Vec<Uuid> = option
        .min_tier_id
        .into_iter()
        .chain(customer.tier_id)
        .collect();
    let tiers = if wanted.is_empty() {
        Vec::new()
    } else {
        tier::Entity::find()
            .filter(tier::Column::Id.is_in(wanted))
            .all(txn)
            .await
            .context("loading the tiers a redemption compares")?
    };
    let find = |id: Option<Uuid>| id.and_then(|id| tiers.iter().find(|t| t.id == id).cloned());
    let needed = match option.min_tier_id {
        // A tier deleted since the option named it cannot be reached.
        Some(id) => Some(
            find(Some(id)).ok_or_else(|| AppError::NotFound(format!("no tier has id '{id}'")))?,
        ),
        None => None,
    };
    let held = find(customer.tier_id);
    Ok(Snapshot {
        option,
        needed,
        held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::enums::RewardKind;
    use chrono::Utc;

    fn tier(name: &str, threshold: i64) -> tier::Model {
        tier::Model {
            id: Uuid::now_v7(),
            name: name.into(),
            threshold,
            multiplier_milli: 1000,
            perks: serde_json::json!([]),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn snapshot(active: bool, needed: Option<tier::Model>, held: Option<tier::Model>) -> Snapshot {
        let now = Utc::now();
        Snapshot {
            option: reward_option::Model {
                id: Uuid::now_v7(),
                name: "Free coffee".into(),
                points_cost: 100,
                kind: RewardKind::FixedCoupon,
                amount: 350,
                min_tier_id: needed.as_ref().map(|t| t.id),
                active,
                created_at: now,
                updated_at: now,
            },
            needed,
            held,
        }
    }

    #[test]
    fn an_offered_option_with_no_tier_can_be_bought_by_anyone() {
        assert!(decide(&snapshot(true, None, None)).is_ok());
    }

    #[test]
    fn an_option_no_longer_offered_is_not_found() {
        let refused = decide(&snapshot(false, None, None)).unwrap_err();
        assert!(matches!(refused, AppError::NotFound(_)), "{refused:?}");
    }

    #[test]
    fn a_tiered_option_needs_that_tier_or_a_higher_one() {
        let gold = tier("Gold", 1_000);
        let silver = tier("Silver", 100);
        let platinum = tier("Platinum", 5_000);
        let refused = decide(&snapshot(true, Some(gold.clone()), Some(silver))).unwrap_err();
        assert!(
            matches!(&refused, AppError::Forbidden(m) if m.contains("Gold")),
            "{refused:?}"
        );
        assert!(decide(&snapshot(true, Some(gold.clone()), None)).is_err());
        assert!(decide(&snapshot(true, Some(gold.clone()), Some(gold.clone()))).is_ok());
        assert!(decide(&snapshot(true, Some(gold), Some(platinum))).is_ok());
    }
}
