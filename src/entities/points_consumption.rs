use sea_orm::entity::prelude::*;

/// How much of a lot (a credit) a debit took; a debit larger than the lots left is a debt that later credits pay, with rows of their own.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "points_consumptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub debit_id: Uuid,
    pub lot_id: Uuid,
    pub amount: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
