use sea_orm::entity::prelude::*;

use super::enums::RewardKind;

/// A reward in the catalog, bought with points.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reward_options")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub points_cost: i64,
    pub kind: RewardKind,
    pub amount: i64,
    pub min_tier_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
