use sea_orm::entity::prelude::*;

/// Money spent on one acquisition channel over a period: the input of CAC.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "marketing_spend")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub channel: String,
    /// Minor units of the program currency.
    pub amount: i64,
    pub period_start: DateTimeUtc,
    pub period_end: DateTimeUtc,
    /// The admin (token `sub`) who recorded it.
    pub recorded_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
