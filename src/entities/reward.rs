use sea_orm::entity::prelude::*;

use super::enums::{RewardKind, RewardSide, RewardStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rewards")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub referral_id: Option<Uuid>,
    pub side: RewardSide,
    pub kind: RewardKind,
    pub amount: i64,
    #[sea_orm(unique)]
    pub coupon_code: Option<String>,
    pub status: RewardStatus,
    /// The natural key that makes the reward exactly-once.
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub milestone: Option<i32>,
    pub release_at: Option<DateTimeUtc>,
    pub issued_at: Option<DateTimeUtc>,
    pub redeemed_at: Option<DateTimeUtc>,
    pub reversed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
