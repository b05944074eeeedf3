use sea_orm::entity::prelude::*;

use super::enums::BadgeRule;

/// A badge and the rule that earns it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "badges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub rule: BadgeRule,
    pub threshold: i64,
    /// How far the job awarding it to existing customers got (the last customer id done).
    pub backfill_cursor: Option<Uuid>,
    /// When that job finished.
    pub backfilled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
