//! Refunds of recorded orders: never above what is left of the order, and with a `refundId`
//! a repeat of the same refund is a no-op.

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
    if let Some(key) = &refund_id {
        let earlier = refund::Entity::find()
            .filter(refund::Column::OrderId.eq(order.id))
            .filter(refund::Column::RefundKey.eq(key.as_str()))
            .one(&txn)
            .await
            .context("loading an earlier refund")?;
        if let Some(earlier) = earlier {
            return if earlier.amount == amount {
                Ok(order)
            } else {
                Err(AppError::Conflict(format!(
                    "refund '{key}' of order '{external_id}' was already recorded for {}",
                    earlier.amount
                )))
            };
        }
    }
    let remaining = order.amount - order.refunded_amount;
    if amount > remaining {
        return Err(AppError::bad_input(
            "amount",
            format!("only {remaining} of order '{external_id}' is left to refund"),
        ));
    }
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
    let wholly =
        order.refunded_amount < order.amount && order.refunded_amount + amount >= order.amount;
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
