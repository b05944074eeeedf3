//! The one lock order between customers.
//!
//! Every writer of a customer's points, rollup, tier or badges holds that customer's row lock
//! (`service::lock`). A transaction that may write for more than one customer takes all of
//! their locks first, in one statement, in ascending id: a friend's order or refund (which may
//! pay or take back their referrer's reward), a review and a hold release (both sides of a
//! referral), a tier's removal (its members), and `tandem rebuild-rollups` (a batch of
//! customers). Any later lock of one of them in the same transaction finds it held. After the
//! customers come a referral's rewards, then the referral itself.
//!
//! Two transactions that lock sets of customers this way cannot wait for each other in a
//! cycle: each waits only for a row with a higher id than every row it holds.

use sea_orm::sea_query::{LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entities::{customer, referral};
use crate::error::{AppError, DbContext};

/// Locks these customers, ascending by id, in one statement.
pub async fn all_of(
    txn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<customer::Model>, AppError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    customer::Entity::find()
        .filter(customer::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(customer::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .all(txn)
        .await
        .context("locking customers")
}

/// Locks both sides of a referral.
pub async fn both_sides(
    txn: &impl ConnectionTrait,
    referee_id: Uuid,
    referrer_id: Uuid,
) -> Result<(), AppError> {
    all_of(txn, &[referee_id, referrer_id]).await?;
    Ok(())
}

/// Locks a customer and, when they came through a referral, the friend who referred them (whom
/// their order or refund may pay or take back from), in one statement. Returns the customer.
pub async fn customer_and_referrer(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
) -> Result<customer::Model, AppError> {
    let referrer = Query::select()
        .column(referral::Column::ReferrerId)
        .from(referral::Entity)
        .and_where(referral::Column::RefereeId.eq(customer_id))
        .to_owned();
    customer::Entity::find()
        .filter(
            Condition::any()
                .add(customer::Column::Id.eq(customer_id))
                .add(customer::Column::Id.in_subquery(referrer)),
        )
        .order_by_asc(customer::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .all(txn)
        .await
        .context("locking a customer and their referrer")?
        .into_iter()
        .find(|c| c.id == customer_id)
        .ok_or_else(|| {
            AppError::internal(
                "locking a customer",
                format!("customer {customer_id} is missing"),
            )
        })
}
