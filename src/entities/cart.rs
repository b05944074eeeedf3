use sea_orm::entity::prelude::*;

use super::enums::CartStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "carts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub external_id: String,
    pub customer_id: Uuid,
    /// `[{"productId", "name", "unitPrice", "quantity", "imageUrl", "url"}, …]`
    pub items: Json,
    pub checkout_url: Option<String>,
    pub status: CartStatus,
    /// The last abandonment stage sent: 0 none, 1 reminder, 2 discount, 3 last call.
    pub stage: i32,
    pub last_changed_at: DateTimeUtc,
    /// When the next stage is due; null when none is.
    pub next_stage_at: Option<DateTimeUtc>,
    pub sequence_started_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    /// Why the abandonment scan last failed on this cart; it then skips the cart.
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
