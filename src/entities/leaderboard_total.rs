use sea_orm::entity::prelude::*;

use super::enums::LeaderboardMetric;

/// One customer's all-time value of a leaderboard metric: the rollup all-time rankings read.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leaderboard_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub metric: LeaderboardMetric,
    pub customer_id: Uuid,
    pub value: i64,
    /// When the value last went up: ties go to whoever got there first.
    pub reached_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
