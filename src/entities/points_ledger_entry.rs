use sea_orm::entity::prelude::*;

use super::enums::PointsReason;

/// One line of the append-only points ledger. A credit (positive delta) is a lot: it is earned at
/// `earned_at`, spendable from `available_at` and expires at `expires_at`; debits consume lots,
/// as `points_consumptions` records, and each entry keeps what is still open of it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "points_ledger")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub delta: i64,
    pub reason: PointsReason,
    /// A sentence the shopper can read.
    pub description: String,
    pub source_kind: String,
    pub source_id: String,
    /// When the points were earned (an order's placedAt); for a debit that takes back a lot,
    /// that lot's date, so periods count both on the same day.
    pub earned_at: Option<DateTimeUtc>,
    /// Before this, a credit is pending: counted nowhere as spendable.
    pub available_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    /// The operator (token `sub`) behind an adjustment.
    pub actor: Option<String>,
    pub created_at: DateTimeUtc,
    /// What is still open: of a lot, the points left in it; of a debit, what it still owes.
    /// Kept by every ledger write, so reads of what a customer holds touch only open entries.
    pub remaining: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
