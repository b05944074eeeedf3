//! Refunds of recorded orders: never above what is left of the order, and with a `refundId`
//! a repeat of the same refund is a no-op.
//!
//! A workflow: **load** the order's customer and their referrer locked (the one lock order,
//! `customers::locks`), then the order locked, and the earlier refund of the same `refundId`;
//! **decide** ([`decide`], no I/O) whether this is a replay, a conflict, too much, or a refund
//! and whether it empties the order; **apply** the refund's row, the order's refunded amount
//! (conditional on the amount read), the rollups in one statement, and the reactions (the
//! referral's reversal, the points taken back) with their effects in the workflow's batch.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use crate::clock::Clock;
use crate::customers::locks;
use crate::db::begin_write;
use crate::effects;
use crate::entities::{order, refund};
use crate::error::{AppError, DbContext};
use crate::events::{OrderRefunded, Reactions};
use crate::input;
use crate::rollups;

/// Refunds `amount` of an order. With `refund_id`, a repeat of the same refund is a no-op.
#[tracing::instrument(skip(db, clock, reactions))]
pub async fn refund(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
    external_id: &str,
    amount: i64,
    refund_id: Option<String>,
) -> Result<order::Model, AppError> {
    let external_id = input::identifier("externalId", external_id)?;
    let external_id = external_id.as_str();
    input::int_in("amount", amount, 1..=input::MAX_AMOUNT)?;
    let refund_id = input::optional_identifier("refundId", refund_id.as_deref())?;
    let now = clock.now();
    effects::batched(refund_once(
        db,
        reactions,
        external_id,
        amount,
        refund_id,
        now,
    ))
    .await
}

/// What a refund of `amount` does to `order`, given the `earlier` refund of the same `refundId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// The same refund again: nothing is written, the order is answered as it is.
    Replay,
    /// A new refund; `wholly` when it refunds what was left of the order.
    Write { wholly: bool },
}

/// The decision on a refund: a replay of the same `refundId` and amount, a CONFLICT for the
/// same id with another amount, BAD_USER_INPUT above what is left to refund, else a refund.
pub fn decide(
    order: &order::Model,
    earlier: Option<&refund::Model>,
    amount: i64,
) -> Result<Refund, AppError> {
    if let Some(earlier) = earlier {
        return if earlier.amount == amount {
            Ok(Refund::Replay)
        } else {
            Err(AppError::Conflict(format!(
                "refund '{}' of order '{}' was already recorded for {}",
                earlier.refund_key, order.external_id, earlier.amount
            )))
        };
    }
    let remaining = order.amount - order.refunded_amount;
    if amount > remaining {
        return Err(AppError::bad_input(
            "amount",
            format!(
                "only {remaining} of order '{}' is left to refund",
                order.external_id
            ),
        ));
    }
    Ok(Refund::Write {
        wholly: order.refunded_amount < order.amount
            && order.refunded_amount + amount >= order.amount,
    })
}

/// The refund's transaction, once its input is checked.
async fn refund_once(
    db: &DatabaseConnection,
    reactions: &impl Reactions,
    external_id: &str,
    amount: i64,
    refund_id: Option<String>,
    now: DateTime<Utc>,
) -> Result<order::Model, AppError> {
    let txn = begin_write(db).await.context("starting a refund")?;
    let customer_id: Uuid = order::Entity::find()
        .select_only()
        .column(order::Column::CustomerId)
        .filter(order::Column::ExternalId.eq(external_id))
        .into_tuple()
        .one(&txn)
        .await
        .context("loading an order to refund")?
        .ok_or_else(|| AppError::NotFound(format!("no order has externalId '{external_id}'")))?;
    // The customers first (the buyer, and their referrer, whose reward a refund may take
    // back), as every writer of points and rollups does; then the order, which serializes
    // concurrent refunds of it on PostgreSQL.
    let held = locks::customer_and_referrer(&txn, customer_id).await?;
    let order = order::Entity::find()
        .filter(order::Column::ExternalId.eq(external_id))
        .lock_exclusive()
        .one(&txn)
        .await
        .context("loading an order to refund")?
        .ok_or_else(|| AppError::NotFound(format!("no order has externalId '{external_id}'")))?;
    let earlier = match &refund_id {
        Some(key) => refund::Entity::find()
            .filter(refund::Column::OrderId.eq(order.id))
            .filter(refund::Column::RefundKey.eq(key.as_str()))
            .one(&txn)
            .await
            .context("loading an earlier refund")?,
        None => None,
    };
    let wholly = match decide(&order, earlier.as_ref(), amount)? {
        Refund::Replay => return Ok(order),
        Refund::Write { wholly } => wholly,
    };
    let refund_row_id = Uuid::now_v7();
    refund::ActiveModel {
        id: Set(refund_row_id),
        order_id: Set(order.id),
        refund_key: Set(refund_id.unwrap_or_else(|| Uuid::now_v7().to_string())),
        amount: Set(amount),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .context("recording a refund")?;
    let changed = order::Entity::update_many()
        .col_expr(
            order::Column::RefundedAmount,
            Expr::col(order::Column::RefundedAmount).add(amount),
        )
        .filter(order::Column::Id.eq(order.id))
        .filter(order::Column::RefundedAmount.eq(order.refunded_amount))
        .exec(&txn)
        .await
        .context("updating an order's refunded amount")?
        .rows_affected;
    if changed == 0 {
        return Err(AppError::Conflict(format!(
            "order '{external_id}' was refunded by another request at the same time; try again"
        )));
    }
    let month_emptied = wholly && rollups::month_emptied_by(&txn, &order).await?;
    held.defer_rollup_writes().await;
    held.change_rollup(
        &txn,
        order.customer_id,
        rollups::Change::OrderRefunded {
            amount,
            placed_at: order.placed_at,
            wholly,
            month_emptied,
        },
    )
    .await?;
    let refunded = order::Model {
        refunded_amount: order.refunded_amount + amount,
        ..order
    };
    reactions
        .order_refunded(
            &txn,
            OrderRefunded {
                order: &refunded,
                amount,
                refund_id: refund_row_id,
                held: &held,
                now,
            },
        )
        .await?;
    held.write_rollups(&txn).await?;
    effects::flush(&txn).await?;
    txn.commit().await.context("committing a refund")?;
    Ok(refunded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn order(amount: i64, refunded_amount: i64) -> order::Model {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        order::Model {
            id: Uuid::from_u128(1),
            external_id: "o-1".into(),
            customer_id: Uuid::from_u128(2),
            amount,
            refunded_amount,
            currency: "USD".into(),
            items: serde_json::json!([]),
            cart_external_id: None,
            fingerprint: String::new(),
            placed_at: at,
            previous_placed_at: None,
            created_at: at,
        }
    }

    fn earlier(amount: i64) -> refund::Model {
        refund::Model {
            id: Uuid::from_u128(3),
            order_id: Uuid::from_u128(1),
            refund_key: "r-1".into(),
            amount,
            created_at: Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_refund_of_what_is_left_empties_the_order_and_a_part_does_not() {
        assert_eq!(
            decide(&order(5_000, 1_000), None, 4_000).unwrap(),
            Refund::Write { wholly: true }
        );
        assert_eq!(
            decide(&order(5_000, 0), None, 1_000).unwrap(),
            Refund::Write { wholly: false }
        );
    }

    #[test]
    fn more_than_is_left_is_refused_and_a_repeated_refund_id_is_a_replay_or_a_conflict() {
        assert!(matches!(
            decide(&order(5_000, 4_500), None, 600),
            Err(AppError::BadUserInput { .. })
        ));
        let done = order(5_000, 1_000);
        assert_eq!(
            decide(&done, Some(&earlier(1_000)), 1_000).unwrap(),
            Refund::Replay
        );
        assert!(matches!(
            decide(&done, Some(&earlier(1_000)), 2_000),
            Err(AppError::Conflict(_))
        ));
    }
}
