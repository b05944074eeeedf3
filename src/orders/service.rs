//! The rules for orders: idempotent on externalId (a replay returns the first result and has no
//! new effect; different content under the same id is a CONFLICT) and one program currency.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::Clock;
use crate::customers::locks;
use crate::db::begin_write;
use crate::effects;
use crate::entities::enums::SuppressionReason;
use crate::entities::{order, order_line};
use crate::error::{AppError, DbContext};
use crate::events::{OrderRecorded, Reactions};
use crate::input;
use crate::loyalty::{ledger, program};
use crate::rollups;

const MAX_ATTEMPTS: usize = 4;
/// How far in the future `placedAt` may be, for clocks that disagree.
const FUTURE_TOLERANCE_MINUTES: i64 = 5;

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: String,
    pub name: Option<String>,
    pub unit_price: i64,
    pub quantity: i64,
}

/// An order as reported, parsed.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub external_id: String,
    pub customer_external_id: String,
    pub amount: i64,
    pub currency: String,
    pub items: Vec<OrderItem>,
    pub placed_at: Option<DateTime<Utc>>,
    pub cart_external_id: Option<String>,
}

impl NewOrder {
    /// Checks ids, amounts, currency and items; `program_currency` is the only one accepted.
    pub fn check(self, program_currency: &str) -> Result<Self, AppError> {
        let external_id = input::identifier("externalId", &self.external_id)?;
        let customer_external_id =
            input::identifier("customerExternalId", &self.customer_external_id)?;
        input::int_in("amount", self.amount, 1..=input::MAX_AMOUNT)?;
        input::optional_moment("placedAt", self.placed_at)?;
        let currency = input::identifier("currency", &self.currency)?.to_uppercase();
        if currency != program_currency {
            return Err(AppError::bad_input(
                "currency",
                format!(
                    "currency must be {program_currency}, the program currency; got '{currency}'"
                ),
            ));
        }
        input::list_len("items", self.items.len(), input::MAX_LINES)?;
        let items = self
            .items
            .into_iter()
            .map(|item| {
                let (product_id, name) = check_line(
                    &item.product_id,
                    item.name.as_deref(),
                    item.unit_price,
                    item.quantity,
                )?;
                Ok(OrderItem {
                    product_id,
                    name,
                    ..item
                })
            })
            .collect::<Result<_, AppError>>()?;
        let cart_external_id =
            input::optional_identifier("cartExternalId", self.cart_external_id.as_deref())?;
        Ok(Self {
            external_id,
            customer_external_id,
            currency,
            items,
            cart_external_id,
            ..self
        })
    }

    /// A hash of everything the caller sent, to tell a replay from a different order.
    fn fingerprint(&self) -> String {
        let canonical = serde_json::json!({
            "customer": self.customer_external_id,
            "amount": self.amount,
            "currency": self.currency,
            "items": self.items,
            "placedAt": self.placed_at.map(|t| t.timestamp_micros()),
            "cart": self.cart_external_id,
        });
        Sha256::digest(canonical.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Checks one line of an order or a cart: its product id and name, a unit price within
/// [`input::MAX_AMOUNT`] and a quantity within [`input::MAX_QUANTITY`], so that price × quantity
/// summed over [`input::MAX_LINES`] lines stays far inside an `i64`. Returns the trimmed id and
/// name.
pub fn check_line(
    product_id: &str,
    name: Option<&str>,
    unit_price: i64,
    quantity: i64,
) -> Result<(String, Option<String>), AppError> {
    let product_id = input::identifier("items.productId", product_id)?;
    let name = input::optional_name("items.name", name)?;
    input::int_in("items.unitPrice", unit_price, 0..=input::MAX_AMOUNT)?;
    input::int_in("items.quantity", quantity, 1..=input::MAX_QUANTITY)?;
    Ok((product_id, name))
}

pub async fn find_by_external_id(
    db: &impl ConnectionTrait,
    external_id: &str,
) -> Result<Option<order::Model>, AppError> {
    order::Entity::find()
        .filter(order::Column::ExternalId.eq(external_id))
        .one(db)
        .await
        .context("loading an order")
}

/// Records an order and lets `reactions` apply it (referral, cart, points), in one transaction.
#[tracing::instrument(skip_all, fields(external_id = %input.external_id))]
pub async fn record(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
    input: NewOrder,
) -> Result<order::Model, AppError> {
    let fingerprint = input.fingerprint();
    let now = clock.now();
    if input
        .placed_at
        .is_some_and(|at| at > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES))
    {
        return Err(AppError::bad_input("placedAt", "placedAt is in the future"));
    }
    // A new order is the common case: it is tried first, and a replay is told by the unique
    // externalId refusing the insert (then the first order is read and compared).
    for _ in 0..MAX_ATTEMPTS {
        match effects::batched(attempt(db, reactions, &input, &fingerprint, now)).await {
            Ok(Some(order)) => return Ok(order),
            Ok(None) => {}
            // The customer named may not exist while the order does (a replay with other content).
            Err(AppError::NotFound(message)) => {
                return match find_by_external_id(db, &input.external_id).await? {
                    Some(existing) => replay(existing, &fingerprint),
                    None => Err(AppError::NotFound(message)),
                };
            }
            Err(error) => return Err(error),
        }
        if let Some(existing) = find_by_external_id(db, &input.external_id).await? {
            return replay(existing, &fingerprint);
        }
    }
    Err(AppError::internal(
        "recording an order",
        format!("gave up after {MAX_ATTEMPTS} attempts"),
    ))
}

/// One try at recording a new order, in its own transaction: `None` when a concurrent request
/// recorded the same externalId first (the caller then replays it).
async fn attempt(
    db: &DatabaseConnection,
    reactions: &impl Reactions,
    input: &NewOrder,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Option<order::Model>, AppError> {
    let txn = begin_write(db).await.context("starting an order")?;
    // The buyer and whoever referred them, while that referral can qualify: the order may pay
    // that referrer.
    let (held, customer_id) =
        locks::customer_and_pending_referrer_by_external_id(&txn, &input.customer_external_id)
            .await?;
    let customer = held.customer(customer_id)?;
    let items = serde_json::to_value(&input.items)
        .map_err(|e| AppError::internal("encoding order items", e))?;
    let id = Uuid::now_v7();
    let placed_at = input.placed_at.unwrap_or(now);
    // Most orders are the customer's latest: then the latest before it is its previous one
    // and no order follows it. One placed earlier than another is linked both ways.
    // What the rules read besides the locked rows comes in one statement: the rollups (with the
    // badges held), the buyer's latest order, the configuration's version, whether they have an
    // active cart, whether the held customers' addresses are suppressed, and the buyer's pending
    // referral when the lock found its referrer (joined to the buyer's rows).
    let join_read = held.has_referrer(customer.id) == Some(true);
    let join = join_read.then(|| reactions.order_snapshot_join(customer.id));
    let snapshot = held
        .read_rollups_with(
            &txn,
            &[
                LATEST_PLACED_AT,
                LATEST_ID,
                program::VERSION_COLUMN,
                HAS_ACTIVE_CART,
                SUPPRESSION,
            ],
            join,
        )
        .await?;
    // The emails the order may send go to the held customers: whether their addresses are
    // suppressed came with the read.
    let mut suppressions = Vec::with_capacity(snapshot.len());
    for held_customer in held.rows() {
        if let Some(row) = snapshot
            .get(&held_customer.id)
            .and_then(|rows| rows.first())
        {
            let what = "reading whether a customer's address is suppressed";
            let reason: Option<String> = row
                .try_get_by_index(rollups::changes::EXTRA_FROM + 4)
                .context(what)?;
            let reason = reason
                .map(|r| SuppressionReason::try_from_value(&r))
                .transpose()
                .context(what)?;
            suppressions.push((held_customer.email_normalized.clone(), reason));
        }
    }
    effects::suppressions_known(suppressions);
    let buyer_rows = snapshot.get(&customer.id).map(Vec::as_slice);
    let (latest, program_version, has_active_cart) = match buyer_rows.and_then(|rows| rows.first())
    {
        Some(row) => {
            let at = rollups::changes::EXTRA_FROM;
            let what = "reading what an order's rules need";
            let placed_at: Option<DateTime<Utc>> = row.try_get_by_index(at).context(what)?;
            let id: Option<Uuid> = row.try_get_by_index(at + 1).context(what)?;
            let version: i64 = row.try_get_by_index(at + 2).context(what)?;
            let has_active_cart: bool = row.try_get_by_index(at + 3).context(what)?;
            (placed_at.zip(id), Some(version), Some(has_active_cart))
        }
        // No rollup row (data loaded around the API): the same, one read each.
        None => (latest_order(&txn, customer.id).await?, None, None),
    };
    let (previous, relink) = match latest {
        None => (None, false),
        Some((at, latest_id)) if (at, latest_id) < (placed_at, id) => (Some(at), false),
        Some(_) => (
            previous_placed_at(&txn, customer.id, placed_at, id).await?,
            true,
        ),
    };
    let inserted = order::ActiveModel {
        id: Set(id),
        external_id: Set(input.external_id.clone()),
        customer_id: Set(customer.id),
        amount: Set(input.amount),
        refunded_amount: Set(0),
        currency: Set(input.currency.clone()),
        items: Set(items),
        cart_external_id: Set(input.cart_external_id.clone()),
        fingerprint: Set(fingerprint.to_owned()),
        placed_at: Set(placed_at),
        previous_placed_at: Set(previous),
        created_at: Set(now),
    }
    .insert(&txn)
    .await;
    let order = match inserted {
        Ok(order) => order,
        Err(error) => {
            txn.rollback().await.context("rolling back an order")?;
            if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                // A concurrent request recorded this externalId first; read it next round.
                return Ok(None);
            }
            return Err(AppError::internal("recording an order", error));
        }
    };
    if relink {
        relink_next(&txn, &order).await?;
    }
    held.defer_rollup_writes().await;
    // The order is new (its externalId's index said so): so are the credits it makes.
    held.defer_credits().await;
    held.change_rollup(
        &txn,
        customer.id,
        rollups::Change::OrderRecorded {
            amount: order.amount,
            placed_at: order.placed_at,
        },
    )
    .await?;
    if !input.items.is_empty() {
        order_line::Entity::insert_many(input.items.iter().map(|item| order_line::ActiveModel {
            id: Set(Uuid::now_v7()),
            order_id: Set(order.id),
            product_id: Set(item.product_id.clone()),
            name: Set(item.name.clone()),
            unit_price: Set(item.unit_price),
            quantity: Set(item.quantity),
        }))
        .exec_without_returning(&txn)
        .await
        .context("recording an order's lines")?;
    }
    reactions
        .order_recorded(
            &txn,
            OrderRecorded {
                order: &order,
                held: &held,
                now,
                program_version,
                has_active_cart,
                snapshot: buyer_rows.filter(|_| join_read),
            },
        )
        .await?;
    ledger::write_deferred(&txn, &held).await?;
    held.write_rollups(&txn).await?;
    effects::flush(&txn).await?;
    txn.commit().await.context("committing an order")?;
    Ok(Some(order))
}

/// Whether `order` comes before `(placed_at, id)`: by time, then id.
fn before(placed_at: DateTime<Utc>, id: Uuid) -> Condition {
    Condition::any()
        .add(order::Column::PlacedAt.lt(placed_at))
        .add(
            Condition::all()
                .add(order::Column::PlacedAt.eq(placed_at))
                .add(order::Column::Id.lt(id)),
        )
}

/// When the latest order of the rollup row's customer was placed, and its id, as columns of
/// `rollups::changes::load_with`.
const LATEST_PLACED_AT: &str = "(SELECT o.placed_at FROM orders o WHERE o.customer_id = r.customer_id \
     ORDER BY o.placed_at DESC, o.id DESC LIMIT 1)";
const LATEST_ID: &str = "(SELECT o.id FROM orders o WHERE o.customer_id = r.customer_id \
     ORDER BY o.placed_at DESC, o.id DESC LIMIT 1)";

/// Whether the rollup row's customer has an ACTIVE cart, for the carts to convert: a customer
/// with none reads no carts. A cart saved while the order is being recorded is missed either
/// way, as before (the named cart is looked up by its id all the same).
const HAS_ACTIVE_CART: &str =
    "EXISTS (SELECT 1 FROM carts c WHERE c.customer_id = r.customer_id AND c.status = 'ACTIVE')";

/// Why the rollup row's customer's address is suppressed, if it is.
const SUPPRESSION: &str = "(SELECT s.reason FROM suppressions s JOIN customers c \
     ON c.email_normalized = s.email_normalized WHERE c.id = r.customer_id)";

/// When the customer's latest order was placed, and its id.
async fn latest_order(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
) -> Result<Option<(DateTime<Utc>, Uuid)>, AppError> {
    order::Entity::find()
        .select_only()
        .column(order::Column::PlacedAt)
        .column(order::Column::Id)
        .filter(order::Column::CustomerId.eq(customer_id))
        .order_by_desc(order::Column::PlacedAt)
        .order_by_desc(order::Column::Id)
        .into_tuple()
        .one(txn)
        .await
        .context("finding a customer's latest order")
}

/// When the customer's order just before `(placed_at, id)` was placed.
async fn previous_placed_at(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
    placed_at: DateTime<Utc>,
    id: Uuid,
) -> Result<Option<DateTime<Utc>>, AppError> {
    order::Entity::find()
        .select_only()
        .column(order::Column::PlacedAt)
        .filter(order::Column::CustomerId.eq(customer_id))
        .filter(before(placed_at, id))
        .order_by_desc(order::Column::PlacedAt)
        .order_by_desc(order::Column::Id)
        .into_tuple()
        .one(txn)
        .await
        .context("finding a customer's previous order")
}

/// An order placed before the customer's latest (`placedAt` given) becomes the previous order of
/// the one that now follows it.
async fn relink_next(txn: &impl ConnectionTrait, order: &order::Model) -> Result<(), AppError> {
    let next: Option<Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::CustomerId.eq(order.customer_id))
        .filter(order::Column::Id.ne(order.id))
        .filter(before(order.placed_at, order.id).not())
        .order_by_asc(order::Column::PlacedAt)
        .order_by_asc(order::Column::Id)
        .into_tuple()
        .one(txn)
        .await
        .context("finding a customer's next order")?;
    if let Some(next) = next {
        order::Entity::update_many()
            .col_expr(
                order::Column::PreviousPlacedAt,
                Expr::value(order.placed_at),
            )
            .filter(order::Column::Id.eq(next))
            .exec(txn)
            .await
            .context("relinking a customer's next order")?;
    }
    Ok(())
}

fn replay(existing: order::Model, fingerprint: &str) -> Result<order::Model, AppError> {
    if existing.fingerprint == fingerprint {
        Ok(existing)
    } else {
        Err(AppError::Conflict(format!(
            "order '{}' was already recorded with different content; an order's externalId cannot be reused",
            existing.external_id
        )))
    }
}
