use sea_orm::entity::prelude::*;

use super::enums::RewardKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub referrer_reward_kind: RewardKind,
    pub referrer_reward_amount: i64,
    pub referee_reward_kind: RewardKind,
    pub referee_reward_amount: i64,
    pub min_order_amount: i64,
    pub qualify_within_days: i32,
    pub hold_days: i32,
    pub max_rewards_per_referrer: Option<i32>,
    /// `[{"referrals": N, "kind": "POINTS", "amount": 500}, …]`
    pub milestones: Json,
    pub landing_url: Option<String>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
