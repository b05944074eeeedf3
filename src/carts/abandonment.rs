//! The abandonment scan, run by the scheduler: each cart whose next stage is due (found through
//! the `(status, next_stage_at)` index) gets that stage's email, written to the outbox in the same
//! transaction that records the stage, so each stage goes out at most once per cart. Safe with
//! several processes: a cart is claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::campaigns::RewardRule;
use crate::carts::recommendations::recommend;
use crate::carts::service::{items_of, stage_delay};
use crate::config::CartSettings;
use crate::db::begin_write;
use crate::display::money;
use crate::email::outbox::{self, OutgoingEmail};
use crate::email::suppression;
use crate::entities::enums::{CartStatus, RewardKind, RewardSide};
use crate::entities::{cart, customer, order, reward};
use crate::error::{AppError, DbContext};
use crate::rewards::service::{self as rewards, Grant};

const BATCH: u64 = 100;

const TEMPLATES: [&str; 3] = ["cart_reminder", "cart_discount", "cart_last_call"];

/// What the scan works with: the database, the time, and the program's settings.
pub struct Scan<'a> {
    pub db: &'a DatabaseConnection,
    pub now: DateTime<Utc>,
    pub carts: &'a CartSettings,
    /// The program currency, for prices in the emails.
    pub currency: &'a str,
    /// Where the checkout link points when a cart has none.
    pub public_url: &'a str,
    /// `TANDEM_CLOCK_SKEW`.
    pub clock_skew: Duration,
}

/// How long a cart whose stage failed waits before the scan tries it again.
const RETRY_AFTER_FAILURE: Duration = Duration::hours(1);

/// Advances every due cart by one stage; returns how many stage emails were written. A cart that
/// fails is logged with its id, marked with the error and tried again an hour later; the rest of
/// the batch goes on.
pub async fn scan(job: &Scan<'_>) -> Result<usize, AppError> {
    let now = job.now;
    let due: Vec<uuid::Uuid> = cart::Entity::find()
        .select_only()
        .column(cart::Column::Id)
        .filter(cart::Column::Status.eq(CartStatus::Active))
        .filter(cart::Column::NextStageAt.lte(now))
        .order_by_asc(cart::Column::NextStageAt)
        .limit(BATCH)
        .into_tuple()
        .all(job.db)
        .await
        .context("finding carts that are due")?;
    let mut written = 0;
    // One aggregate over all order lines per pass, not one per email.
    let mut best_sellers = None;
    for id in due {
        match advance(job, now, id, &mut best_sellers).await {
            Ok(true) => written += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(cart = %id, %error, "a cart's abandonment stage failed; it is skipped");
                if let Err(mark) = mark_failed(job, now, id, &error).await {
                    tracing::error!(cart = %id, error = %mark, "recording a cart's failure");
                }
            }
        }
    }
    Ok(written)
}

async fn mark_failed(
    job: &Scan<'_>,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    error: &AppError,
) -> Result<(), AppError> {
    cart::Entity::update_many()
        .col_expr(cart::Column::LastError, Expr::value(error.to_string()))
        .col_expr(
            cart::Column::NextStageAt,
            Expr::value(now + RETRY_AFTER_FAILURE),
        )
        .col_expr(cart::Column::UpdatedAt, Expr::value(now))
        .filter(cart::Column::Id.eq(id))
        .filter(cart::Column::Status.eq(CartStatus::Active))
        .exec(job.db)
        .await
        .context("marking a failed cart")?;
    Ok(())
}

async fn advance(
    job: &Scan<'_>,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    best_sellers: &mut Option<Vec<String>>,
) -> Result<bool, AppError> {
    // Recommendations are read before the write transaction, so its lock is held only for the
    // writes; the cart is claimed and checked again inside.
    let Some(peek) = cart::Entity::find_by_id(id)
        .one(job.db)
        .await
        .context("loading a due cart")?
    else {
        return Ok(false);
    };
    let in_cart: Vec<String> = items_of(&peek)
        .iter()
        .map(|i| i.product_id.clone())
        .collect();
    if best_sellers.is_none() {
        // Best sellers are a nicety: when they cannot be counted (an overflowing sum of rows
        // stored before quantities were bounded, say), emails go out without them.
        let best = crate::carts::recommendations::best_sellers(job.db)
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "counting best sellers; cart emails go without them");
                Vec::new()
            });
        *best_sellers = Some(best);
    }
    let recommendations = recommend(
        job.db,
        peek.customer_id,
        &in_cart,
        best_sellers.as_deref().unwrap_or_default(),
    )
    .await?;

    let txn = begin_write(job.db).await.context("starting a cart stage")?;
    let Some(cart) = cart::Entity::find_by_id(id)
        .filter(cart::Column::Status.eq(CartStatus::Active))
        .filter(cart::Column::NextStageAt.lte(now))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(&txn)
        .await
        .context("claiming a due cart")?
    else {
        return Ok(false);
    };
    let customer = customer::Entity::find_by_id(cart.customer_id)
        .one(&txn)
        .await
        .context("loading a cart's customer")?
        .ok_or_else(|| AppError::internal("advancing a cart", "its customer is missing"))?;

    let no_consent = !customer.marketing_consent
        || suppression::blocks(&txn, &customer.email_normalized, true)
            .await?
            .is_some();
    if no_consent || in_cooldown(&txn, job, now, &cart).await? {
        stop(&txn, cart.id, None).await?;
        txn.commit().await.context("stopping a cart sequence")?;
        return Ok(false);
    }
    let bought = order::Entity::find()
        .filter(order::Column::CustomerId.eq(cart.customer_id))
        .filter(order::Column::PlacedAt.gte(cart.last_changed_at - job.clock_skew))
        .count(&txn)
        .await
        .context("checking a cart for a purchase")?;
    if bought > 0 {
        stop(&txn, cart.id, Some((CartStatus::Converted, now))).await?;
        txn.commit().await.context("converting a cart")?;
        return Ok(false);
    }

    let stage = cart.stage + 1;
    let Some(template) = usize::try_from(stage - 1)
        .ok()
        .and_then(|index| TEMPLATES.get(index))
    else {
        // A stage past the last one (a stale next_stage_at): the sequence is over.
        stop(&txn, cart.id, None).await?;
        txn.commit().await.context("ending a cart sequence")?;
        return Ok(false);
    };
    let settings = job.carts;
    let coupon_code = match stage {
        2 => discount_coupon(&txn, now, &cart, settings.discount_percent).await?,
        3 => existing_coupon(&txn, &cart).await?,
        _ => None,
    };
    let items = items_of(&cart);
    let currency = job.currency;
    let data = json!({
        "cart_id": cart.id,
        "items": items.iter().map(|i| json!({
            "name": i.name.clone().unwrap_or_else(|| i.product_id.clone()),
            "quantity": i.quantity,
            "price": money(i.unit_price, currency),
            "image_url": link(i.image_url.as_deref()),
            "url": link(i.url.as_deref()),
        })).collect::<Vec<_>>(),
        "total": crate::carts::service::total(&items).map(|t| money(t, currency)),
        "checkout_url": link(cart.checkout_url.as_deref()).unwrap_or_else(|| job.public_url.to_owned()),
        "recommendations": recommendations.iter().map(|p| json!({
            "product_id": p.product_id,
            "name": p.name,
            "price": p.unit_price.map(|price| money(price, currency)),
            "url": link(p.url.as_deref()),
            "image_url": link(p.image_url.as_deref()),
        })).collect::<Vec<_>>(),
        "coupon_code": coupon_code,
        "discount_percent": settings.discount_percent,
    });
    let written = outbox::enqueue(
        &txn,
        now,
        OutgoingEmail {
            subject_key: Some(outbox::cart_subject(cart.id)),
            ..OutgoingEmail::to_customer(
                template,
                &customer,
                data,
                format!("cart:{}:stage:{stage}", cart.id),
                true,
            )
        },
    )
    .await?;
    cart::Entity::update_many()
        .col_expr(cart::Column::Stage, Expr::value(stage))
        .col_expr(cart::Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(
            cart::Column::NextStageAt,
            Expr::value(stage_delay(settings, stage + 1).map(|d| cart.last_changed_at + d)),
        )
        .col_expr(
            cart::Column::SequenceStartedAt,
            Expr::value(cart.sequence_started_at.unwrap_or(now)),
        )
        .col_expr(cart::Column::UpdatedAt, Expr::value(now))
        .filter(cart::Column::Id.eq(cart.id))
        .exec(&txn)
        .await
        .context("recording a cart stage")?;
    txn.commit().await.context("committing a cart stage")?;
    Ok(written)
}

/// A customer gets at most one sequence per cooldown: a cart whose sequence has not started does
/// not start one while another of the customer's carts started one within the cooldown.
async fn in_cooldown(
    txn: &impl ConnectionTrait,
    job: &Scan<'_>,
    now: DateTime<Utc>,
    cart: &cart::Model,
) -> Result<bool, AppError> {
    if cart.sequence_started_at.is_some() {
        return Ok(false);
    }
    let cooldown = Duration::from_std(job.carts.cooldown).unwrap_or(Duration::days(7));
    let recent = cart::Entity::find()
        .filter(cart::Column::CustomerId.eq(cart.customer_id))
        .filter(cart::Column::Id.ne(cart.id))
        .filter(cart::Column::SequenceStartedAt.gt(now - cooldown))
        .count(txn)
        .await
        .context("checking the cart cooldown")?;
    Ok(recent > 0)
}

async fn stop(
    txn: &impl ConnectionTrait,
    id: uuid::Uuid,
    close: Option<(CartStatus, DateTime<Utc>)>,
) -> Result<(), AppError> {
    let mut update = cart::Entity::update_many()
        .col_expr(
            cart::Column::NextStageAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(cart::Column::Id.eq(id));
    if let Some((status, at)) = close {
        update = update
            .col_expr(cart::Column::Status, Expr::value(status))
            .col_expr(cart::Column::ClosedAt, Expr::value(at));
    }
    update.exec(txn).await.context("stopping a cart sequence")?;
    Ok(())
}

fn discount_key(cart: &cart::Model) -> String {
    format!("cart:{}:discount", cart.id)
}

/// The cart's single-use discount coupon, created once.
async fn discount_coupon(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    cart: &cart::Model,
    percent: u32,
) -> Result<Option<String>, AppError> {
    rewards::grant(
        txn,
        now,
        Grant {
            customer_id: cart.customer_id,
            referral_id: None,
            side: RewardSide::Cart,
            rule: RewardRule {
                kind: RewardKind::PercentCoupon,
                amount: i64::from(percent),
            },
            dedupe_key: discount_key(cart),
            milestone: None,
            release_at: None,
            customer: None,
        },
    )
    .await?;
    existing_coupon(txn, cart).await
}

async fn existing_coupon(
    txn: &impl ConnectionTrait,
    cart: &cart::Model,
) -> Result<Option<String>, AppError> {
    Ok(reward::Entity::find()
        .filter(reward::Column::DedupeKey.eq(discount_key(cart)))
        .one(txn)
        .await
        .context("loading a cart's coupon")?
        .and_then(|r| r.coupon_code))
}

/// A stored URL fit for an email's `href`: rows written before URLs were checked at input may
/// hold any scheme, and an email must never link to `javascript:` or `data:`.
fn link(url: Option<&str>) -> Option<String> {
    url.and_then(|url| crate::input::http_url("url", url).ok())
}
