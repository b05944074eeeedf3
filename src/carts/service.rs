//! The rules for carts: upserts restart the sequence's clock without re-sending a stage, an empty
//! cart stops it, and an order converts the customer's carts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::CartSettings;
use crate::customers::service as customers;
use crate::db::begin_write;
use crate::email::outbox;
use crate::entities::enums::CartStatus;
use crate::entities::{cart, order, product_view};
use crate::error::{AppError, DbContext};
use crate::input;
use crate::orders::service::check_line;

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartItem {
    pub product_id: String,
    pub name: Option<String>,
    pub unit_price: i64,
    pub quantity: i64,
    pub image_url: Option<String>,
    pub url: Option<String>,
}

/// A cart as the shop reports it.
#[derive(Debug, Clone)]
pub struct CartUpdate {
    pub external_id: String,
    pub customer_external_id: String,
    pub items: Vec<CartItem>,
    pub checkout_url: Option<String>,
}

impl CartUpdate {
    /// Checks ids, lines and URLs; URLs are written into emails, so only http(s) ones pass.
    pub fn check(self) -> Result<Self, AppError> {
        let external_id = input::identifier("externalId", &self.external_id)?;
        let customer_external_id =
            input::identifier("customerExternalId", &self.customer_external_id)?;
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
                Ok(CartItem {
                    product_id,
                    name,
                    image_url: input::optional_http_url(
                        "items.imageUrl",
                        item.image_url.as_deref(),
                    )?,
                    url: input::optional_http_url("items.url", item.url.as_deref())?,
                    ..item
                })
            })
            .collect::<Result<_, AppError>>()?;
        Ok(Self {
            external_id,
            customer_external_id,
            items,
            checkout_url: input::optional_http_url("checkoutUrl", self.checkout_url.as_deref())?,
        })
    }
}

/// The delay after the cart's last change at which `stage` (1, 2, 3) is due.
pub fn stage_delay(settings: &CartSettings, stage: i32) -> Option<chrono::Duration> {
    let delay = match stage {
        1 => settings.reminder_after,
        2 => settings.discount_after,
        3 => settings.last_call_after,
        _ => return None,
    };
    chrono::Duration::from_std(delay).ok()
}

pub fn items_of(cart: &cart::Model) -> Vec<CartItem> {
    serde_json::from_value(cart.items.clone()).unwrap_or_default()
}

/// The sum of price × quantity over the lines, or `None` if it does not fit an `i64` (input
/// bounds keep checked carts far inside; rows stored before the bounds may not be).
pub fn total(items: &[CartItem]) -> Option<i64> {
    items.iter().try_fold(0i64, |sum, item| {
        item.unit_price
            .checked_mul(item.quantity)
            .and_then(|line| sum.checked_add(line))
    })
}

/// The lock that serialises the writers of one cart id: its upserts and the orders that name
/// it, so an order and its cart arriving at once cannot leave the cart ACTIVE.
async fn lock_cart_id(txn: &impl ConnectionTrait, external_id: &str) -> Result<(), AppError> {
    crate::db::lock_subject(txn, &format!("cart:{external_id}"))
        .await
        .context("locking a cart id")
}

/// Creates or updates a cart. A change of items restarts the clock for the next stage; a stage
/// already sent is never sent again; no items stops the sequence. A converted cart is final: an
/// update of it changes nothing and answers the cart as it is. A cart that arrives after an
/// order named it is stored converted.
pub async fn upsert(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    settings: &CartSettings,
    update: CartUpdate,
) -> Result<cart::Model, AppError> {
    let now = clock.now();
    let txn = begin_write(db).await.context("starting a cart update")?;
    lock_cart_id(&txn, &update.external_id).await?;
    let customer = customers::get_by_external_id(&txn, &update.customer_external_id).await?;
    let items = serde_json::to_value(&update.items)
        .map_err(|e| AppError::internal("encoding cart items", e))?;
    let existing = cart::Entity::find()
        .filter(cart::Column::ExternalId.eq(update.external_id.as_str()))
        .one(&txn)
        .await
        .context("loading a cart")?;
    let saved = match existing {
        None => {
            let bought = order::Entity::find()
                .filter(order::Column::CartExternalId.eq(update.external_id.as_str()))
                .filter(order::Column::CustomerId.eq(customer.id))
                .one(&txn)
                .await
                .context("looking for the order that named a cart")?;
            let status = if bought.is_some() {
                CartStatus::Converted
            } else if update.items.is_empty() {
                CartStatus::Emptied
            } else {
                CartStatus::Active
            };
            cart::ActiveModel {
                id: Set(Uuid::now_v7()),
                external_id: Set(update.external_id.clone()),
                customer_id: Set(customer.id),
                items: Set(items),
                checkout_url: Set(update.checkout_url.clone()),
                status: Set(status),
                stage: Set(0),
                last_changed_at: Set(now),
                next_stage_at: Set((status == CartStatus::Active)
                    .then(|| stage_delay(settings, 1).map(|d| now + d))
                    .flatten()),
                sequence_started_at: Set(None),
                closed_at: Set((status != CartStatus::Active).then_some(now)),
                last_error: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await
            .context("creating a cart")?
        }
        Some(found) if found.customer_id != customer.id => {
            return Err(AppError::Conflict(format!(
                "cart '{}' belongs to another customer",
                update.external_id
            )));
        }
        Some(found) if found.status == CartStatus::Converted => found,
        Some(found) => {
            let changed = found.items != items || found.checkout_url != update.checkout_url;
            if !changed {
                found
            } else {
                let mut model = found.clone().into_active_model();
                model.items = Set(items);
                model.checkout_url = Set(update.checkout_url.clone());
                model.updated_at = Set(now);
                model.last_changed_at = Set(now);
                if update.items.is_empty() {
                    model.status = Set(CartStatus::Emptied);
                    model.next_stage_at = Set(None);
                    model.closed_at = Set(Some(now));
                } else {
                    model.status = Set(CartStatus::Active);
                    model.closed_at = Set(None);
                    model.next_stage_at =
                        Set(stage_delay(settings, found.stage + 1).map(|d| now + d));
                }
                let saved = model.update(&txn).await.context("updating a cart")?;
                if saved.status == CartStatus::Emptied {
                    let subject = outbox::cart_subject(saved.id);
                    outbox::cancel_pending(&txn, now, &subject, "the cart was emptied").await?;
                }
                saved
            }
        }
    };
    txn.commit().await.context("committing a cart update")?;
    Ok(saved)
}

/// Converts the customer's carts when they order: the one named by `cartExternalId` (or, when
/// it has not arrived yet, [`upsert`] stores it converted), and every active cart whose last
/// change came before the order, give or take `clock_skew`. Their unsent stages are cancelled.
/// `has_active` is whether the customer has any active cart, when the caller read it already:
/// a customer with none reads no carts.
pub async fn convert_on_order(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    clock_skew: chrono::Duration,
    order: &order::Model,
    has_active: Option<bool>,
) -> Result<(), AppError> {
    if let Some(named) = &order.cart_external_id {
        lock_cart_id(txn, named).await?;
    }
    let mut carts = if has_active == Some(false) {
        Vec::new()
    } else {
        cart::Entity::find()
            .filter(cart::Column::CustomerId.eq(order.customer_id))
            .filter(cart::Column::Status.eq(CartStatus::Active))
            .filter(cart::Column::LastChangedAt.lte(order.placed_at + clock_skew))
            .all(txn)
            .await
            .context("finding carts an order converts")?
    };
    if let Some(named) = &order.cart_external_id
        && let Some(cart) = cart::Entity::find()
            .filter(cart::Column::ExternalId.eq(named.as_str()))
            .filter(cart::Column::CustomerId.eq(order.customer_id))
            .filter(cart::Column::Status.ne(CartStatus::Converted))
            .one(txn)
            .await
            .context("finding an order's cart")?
        && !carts.iter().any(|c| c.id == cart.id)
    {
        carts.push(cart);
    }
    for cart in carts {
        cart::Entity::update_many()
            .col_expr(cart::Column::Status, Expr::value(CartStatus::Converted))
            .col_expr(
                cart::Column::NextStageAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(cart::Column::ClosedAt, Expr::value(now))
            .col_expr(cart::Column::UpdatedAt, Expr::value(now))
            .filter(cart::Column::Id.eq(cart.id))
            .exec(txn)
            .await
            .context("converting a cart")?;
        let subject = outbox::cart_subject(cart.id);
        outbox::cancel_pending(txn, now, &subject, "the cart was bought").await?;
    }
    Ok(())
}

/// A product page the customer looked at, for recommendations.
#[derive(Debug, Clone)]
pub struct ProductView {
    pub customer_external_id: String,
    pub product_id: String,
    pub name: Option<String>,
    pub unit_price: Option<i64>,
    pub url: Option<String>,
    pub image_url: Option<String>,
}

pub async fn track_view(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    view: ProductView,
) -> Result<(), AppError> {
    let customer_external_id = input::identifier("customerExternalId", &view.customer_external_id)?;
    let product_id = input::identifier("productId", &view.product_id)?;
    let name = input::optional_name("name", view.name.as_deref())?;
    if let Some(price) = view.unit_price {
        input::int_in("unitPrice", price, 0..=input::MAX_AMOUNT)?;
    }
    let url = input::optional_http_url("url", view.url.as_deref())?;
    let image_url = input::optional_http_url("imageUrl", view.image_url.as_deref())?;
    let customer = customers::get_by_external_id(db, &customer_external_id).await?;
    product_view::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(customer.id),
        product_id: Set(product_id),
        name: Set(name),
        unit_price: Set(view.unit_price),
        url: Set(url),
        image_url: Set(image_url),
        viewed_at: Set(clock.now()),
    }
    .insert(db)
    .await
    .context("recording a product view")?;
    Ok(())
}
