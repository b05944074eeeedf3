//! Reading referrals (the admin's review of flagged ones is `review`).

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::db::keyset_page;
use crate::entities::enums::ReferralStatus;
use crate::entities::referral;
use crate::error::{AppError, DbContext};

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<referral::Model>, AppError> {
    referral::Entity::find_by_id(id)
        .one(db)
        .await
        .context("loading a referral")
}

/// The referral that brought `referee_id`, if any.
/// The referral an order qualified, whatever its status since.
pub async fn qualified_by(
    db: &impl ConnectionTrait,
    order_id: Uuid,
) -> Result<Option<referral::Model>, AppError> {
    referral::Entity::find()
        .filter(referral::Column::QualifyingOrderId.eq(order_id))
        .one(db)
        .await
        .context("loading the referral an order qualified")
}

pub async fn of_referee(
    db: &impl ConnectionTrait,
    referee_id: Uuid,
) -> Result<Option<referral::Model>, AppError> {
    referral::Entity::find()
        .filter(referral::Column::RefereeId.eq(referee_id))
        .one(db)
        .await
        .context("loading a customer's referral")
}

/// The referrals `referrer_id` made, oldest first.
pub async fn by_referrer(
    db: &impl ConnectionTrait,
    referrer_id: Uuid,
) -> Result<Vec<referral::Model>, AppError> {
    referral::Entity::find()
        .filter(referral::Column::ReferrerId.eq(referrer_id))
        .order_by_asc(referral::Column::Id)
        .all(db)
        .await
        .context("listing a referrer's referrals")
}

/// A page of referrals for admins, oldest first, filtered by status and flag.
pub async fn list(
    db: &DatabaseConnection,
    status: Option<ReferralStatus>,
    flagged: Option<bool>,
    limit: u64,
    after: Option<Uuid>,
) -> Result<(Vec<referral::Model>, bool), AppError> {
    let mut query = referral::Entity::find();
    if let Some(status) = status {
        query = query.filter(referral::Column::Status.eq(status));
    }
    if let Some(flagged) = flagged {
        query = query.filter(referral::Column::Flagged.eq(flagged));
    }
    keyset_page(db, query, referral::Column::Id, limit, after)
        .await
        .context("listing referrals")
}
