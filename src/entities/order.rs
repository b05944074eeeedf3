use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub external_id: String,
    pub customer_id: Uuid,
    pub amount: i64,
    pub refunded_amount: i64,
    pub currency: String,
    /// `[{"productId", "name", "unitPrice", "quantity"}, …]`
    pub items: Json,
    pub cart_external_id: Option<String>,
    /// A hash of the order as first recorded; a replay must match it.
    pub fingerprint: String,
    pub placed_at: DateTimeUtc,
    /// When the same customer's previous order (by `placed_at`, then `id`) was placed; the
    /// customers who ordered in a range are its orders whose previous one lies before it.
    pub previous_placed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
