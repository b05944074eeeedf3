use sea_orm::entity::prelude::*;

use super::enums::{ReferralStatus, RejectionReason};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "referrals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub referrer_id: Uuid,
    #[sea_orm(unique)]
    pub referee_id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub code: String,
    pub status: ReferralStatus,
    pub rejection_reason: Option<RejectionReason>,
    pub flagged: bool,
    pub flag_reason: Option<String>,
    pub review_note: Option<String>,
    pub reviewed_at: Option<DateTimeUtc>,
    pub qualifying_order_id: Option<Uuid>,
    pub qualified_at: Option<DateTimeUtc>,
    pub rewarded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
