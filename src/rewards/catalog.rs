//! The rewards catalog: options bought with points (buying one is `redemption`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entities::enums::RewardKind;
use crate::entities::reward_option;
use crate::error::{AppError, DbContext};
use crate::input;
use crate::loyalty::tiers;

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
