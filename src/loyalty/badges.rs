//! Badges: awarded once per customer (a unique index) in the transaction of the event that
//! meets the rule. A badge created later reaches those who already meet it through a job that
//! walks customers in batches, outside the admin's request (`badge_backfill`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use crate::db::begin_write;
use crate::entities::enums::BadgeRule;
use crate::entities::{badge, customer_badge};
use crate::error::{AppError, DbContext};
use crate::input;
use crate::loyalty::facts::Measures;

/// A badge to create.
#[derive(Debug, Clone)]
pub struct NewBadge {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub rule: BadgeRule,
    pub threshold: i64,
}

/// Creates a badge and raises the program's version, in one transaction.
pub async fn create(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    new: NewBadge,
) -> Result<badge::Model, AppError> {
    let key = input::identifier("key", &new.key)?;
    let name = input::name("name", &new.name)?;
    let description = input::optional_message("description", new.description.as_deref())?;
    let threshold = input::int_in("threshold", new.threshold, 1..=input::MAX_AMOUNT)?;
    let txn = begin_write(db).await.context("starting a badge change")?;
    let created = badge::ActiveModel {
        id: Set(Uuid::now_v7()),
        key: Set(key.clone()),
        name: Set(name),
        description: Set(description),
        rule: Set(new.rule),
        threshold: Set(threshold),
        backfill_cursor: Set(None),
        backfilled_at: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            AppError::Conflict(format!("a badge with the key '{key}' exists already"))
        } else {
            AppError::internal("creating a badge", e)
        }
    })?;
    crate::loyalty::program::changed(&txn).await?;
    txn.commit().await.context("committing a badge change")?;
    Ok(created)
}

/// Every badge, oldest first.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<badge::Model>, AppError> {
    badge::Entity::find()
        .order_by_asc(badge::Column::Id)
        .all(db)
        .await
        .context("loading badges")
}

/// The badges each of these customers holds, oldest award first, in one statement.
pub async fn awards_of_customers(
    db: &impl ConnectionTrait,
    customer_ids: &[Uuid],
) -> Result<Vec<customer_badge::Model>, AppError> {
    customer_badge::Entity::find()
        .filter(customer_badge::Column::CustomerId.is_in(customer_ids.iter().copied()))
        .order_by_asc(customer_badge::Column::AwardedAt)
        .order_by_asc(customer_badge::Column::Id)
        .all(db)
        .await
        .context("loading customers' badges")
}

/// The ids of the badges each of `customer_ids` holds, in one statement; none is read when the
/// program has no badge. (A held customer's badges come with their rollup: this is for those
/// without a rollup row.)
pub async fn held_by(
    txn: &impl ConnectionTrait,
    badges: &[badge::Model],
    customer_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>, AppError> {
    let mut held: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if badges.is_empty() || customer_ids.is_empty() {
        return Ok(held);
    }
    let rows: Vec<(Uuid, Uuid)> = customer_badge::Entity::find()
        .select_only()
        .column(customer_badge::Column::CustomerId)
        .column(customer_badge::Column::BadgeId)
        .filter(customer_badge::Column::CustomerId.is_in(customer_ids.iter().copied()))
        .into_tuple()
        .all(txn)
        .await
        .context("loading the badges customers hold")?;
    for (customer_id, badge_id) in rows {
        held.entry(customer_id).or_default().push(badge_id);
    }
    Ok(held)
}

/// Awards every badge whose rule the customer now meets, once each; `held` are the ids of the
/// badges they hold. Returns the badges it awarded.
pub async fn evaluate<'b, C: ConnectionTrait>(
    txn: &C,
    badges: &'b [badge::Model],
    now: DateTime<Utc>,
    measures: &Measures<'_, C>,
    customer_id: Uuid,
    held: &[Uuid],
) -> Result<Vec<&'b badge::Model>, AppError> {
    let mut awarded = Vec::new();
    // A badge once held is never re-measured.
    for badge in badges.iter().filter(|b| !held.contains(&b.id)) {
        if measures.badge_value(badge.rule).await? >= badge.threshold
            && award(txn, now, customer_id, badge).await?
        {
            awarded.push(badge);
        }
    }
    Ok(awarded)
}

/// Awards `badge` to the customer, once. Returns whether an award was written.
async fn award(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    customer_id: Uuid,
    badge: &badge::Model,
) -> Result<bool, AppError> {
    Ok(award_all(txn, now, badge, &[customer_id]).await? > 0)
}

/// Awards `badge` to `customers` in one insert, once each (the unique key skips a holder).
/// Returns how many awards were written.
pub async fn award_all(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    badge: &badge::Model,
    customers: &[Uuid],
) -> Result<u64, AppError> {
    if customers.is_empty() {
        return Ok(0);
    }
    customer_badge::Entity::insert_many(customers.iter().map(|id| customer_badge::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(*id),
        badge_id: Set(badge.id),
        awarded_at: Set(now),
    }))
    .on_conflict(
        OnConflict::columns([
            customer_badge::Column::CustomerId,
            customer_badge::Column::BadgeId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .context("awarding a badge")
}
