//! The rewards catalog: options bought with points. A redemption debits the points (oldest lots
//! first) and issues the reward with its own coupon code in one transaction, under the
//! customer's row lock, so parallel redemptions can never overdraw the balance.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::campaigns::RewardRule;
use crate::clock::Clock;
use crate::customers::locks;
use crate::customers::service as customers;
use crate::db::begin_write;
use crate::entities::enums::{PointsReason, RewardKind, RewardSide};
use crate::entities::{reward, reward_option};
use crate::error::{AppError, DbContext};
use crate::input;
use crate::loyalty::ledger::{self, Consume, Debit};
use crate::loyalty::tiers;
use crate::rewards::service::{self as rewards, Grant};

/// The values of an option.
#[derive(Debug, Clone)]
pub struct OptionInput {
    pub name: String,
    pub points_cost: i64,
    pub kind: RewardKind,
    pub amount: i64,
    pub min_tier_id: Option<Uuid>,
    pub active: bool,
}

async fn checked(db: &impl ConnectionTrait, input: OptionInput) -> Result<OptionInput, AppError> {
    let name = input::name("name", &input.name)?;
    input::int_in("pointsCost", input.points_cost, 1..=input::MAX_AMOUNT)?;
    if input.kind == RewardKind::Points {
        return Err(AppError::bad_input(
            "kind",
            "a catalog reward cannot be POINTS: points are what pays for it",
        ));
    }
    let max = if input.kind == RewardKind::PercentCoupon {
        100
    } else {
        input::MAX_AMOUNT
    };
    input::int_in("amount", input.amount, 1..=max)?;
    if let Some(tier) = input.min_tier_id {
        tiers::get(db, tier).await?;
    }
    Ok(OptionInput { name, ..input })
}

pub async fn create(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    input: OptionInput,
) -> Result<reward_option::Model, AppError> {
    let input = checked(db, input).await?;
    reward_option::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(input.name),
        points_cost: Set(input.points_cost),
        kind: Set(input.kind),
        amount: Set(input.amount),
        min_tier_id: Set(input.min_tier_id),
        active: Set(input.active),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .context("creating a reward option")
}

pub async fn update(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    id: Uuid,
    input: OptionInput,
) -> Result<reward_option::Model, AppError> {
    let input = checked(db, input).await?;
    let mut row = get(db, id).await?.into_active_model();
    row.name = Set(input.name);
    row.points_cost = Set(input.points_cost);
    row.kind = Set(input.kind);
    row.amount = Set(input.amount);
    row.min_tier_id = Set(input.min_tier_id);
    row.active = Set(input.active);
    row.updated_at = Set(now);
    row.update(db).await.context("updating a reward option")
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<reward_option::Model, AppError> {
    reward_option::Entity::find_by_id(id)
        .one(db)
        .await
        .context("loading a reward option")?
        .ok_or_else(|| AppError::NotFound(format!("no reward option has id '{id}'")))
}

/// [`get`], holding the row (`FOR SHARE` on PostgreSQL; SQLite's writers hold the whole
/// database) until the transaction ends.
async fn get_held(txn: &impl ConnectionTrait, id: Uuid) -> Result<reward_option::Model, AppError> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::LockType;
    reward_option::Entity::find_by_id(id)
        .lock(LockType::Share)
        .one(txn)
        .await
        .context("loading a reward option")?
        .ok_or_else(|| AppError::NotFound(format!("no reward option has id '{id}'")))
}

/// Options, cheapest first; inactive ones only when asked for.
pub async fn list(
    db: &impl ConnectionTrait,
    include_inactive: bool,
) -> Result<Vec<reward_option::Model>, AppError> {
    let mut query = reward_option::Entity::find()
        .order_by_asc(reward_option::Column::PointsCost)
        .order_by_asc(reward_option::Column::Id);
    if !include_inactive {
        query = query.filter(reward_option::Column::Active.eq(true));
    }
    query.all(db).await.context("loading reward options")
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
    let customer = held.customer(customer.id)?;
    // Read under the customer's lock, and held: a price change waits for the redemptions that
    // read the old price, and the ones after it read the new one.
    let option = get_held(&txn, option_id).await?;
    if !option.active {
        return Err(AppError::NotFound(format!(
            "the reward option '{}' is no longer offered",
            option.name
        )));
    }
    if let Some(min_tier_id) = option.min_tier_id {
        let needed = tiers::get(&txn, min_tier_id).await?;
        let held = tiers::of_customer(&txn, customer).await?;
        if held.as_ref().is_none_or(|t| t.threshold < needed.threshold) {
            return Err(AppError::Forbidden(format!(
                "'{}' needs the {} tier or higher",
                option.name, needed.name
            )));
        }
    }
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
            customer: Some(customer.clone()),
        },
    )
    .await?
    .ok_or_else(|| AppError::internal("redeeming points", "the reward key was taken"))?;
    txn.commit().await.context("committing a redemption")?;
    Ok(reward)
}
