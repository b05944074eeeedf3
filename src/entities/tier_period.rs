use sea_orm::entity::prelude::*;

/// A stretch of time a customer spent in a tier; the current one has no end.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tier_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub tier_id: Option<Uuid>,
    /// The tier's name then, so history survives a rename or a deletion.
    pub tier_name: String,
    pub reason: String,
    pub started_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
