use sea_orm::entity::prelude::*;

use super::enums::LeaderboardMetric;

/// A change of a customer's leaderboard metric waiting to be added to the days and totals.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leaderboard_queue")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub metric: LeaderboardMetric,
    pub customer_id: Uuid,
    /// `YYYY-MM-DD`, UTC: the day the change counts on.
    pub day: String,
    pub delta: i64,
    /// When the change happened: a rise makes it when the value was reached.
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
