//! Expiry: each lot expires on its own date (counted from when it was earned), taking exactly what
//! remains of it, once (the lot's id is the debit's source, and the customer's row is locked).
//! Before that, a `points_expiring` email tells the customer, once per customer and expiry date.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::customers::locks;
use crate::customers::service as customers;
use crate::db::begin_write;
use crate::email::outbox::{self, OutgoingEmail};
use crate::entities::email_outbox;
use crate::entities::enums::PointsReason;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::loyalty::balance;
use crate::loyalty::ledger::{self, Consume, Debit};
use crate::loyalty::settings;

/// How many lots one pass looks at.
pub const BATCH: u64 = 500;

/// Lots with something left whose date matches `when`, oldest expiry first.
fn open_lots_where(when: sea_orm::Condition) -> sea_orm::Select<entry::Entity> {
    entry::Entity::find()
        .filter(entry::Column::Delta.gt(0))
        .filter(when)
        .filter(Expr::cust(ledger::OPEN_LOT))
        .order_by_asc(entry::Column::ExpiresAt)
        .order_by_asc(entry::Column::Id)
}

/// Writes an EXPIRY debit for each expired lot's remainder. A lot that fails is logged and left
/// for the next pass; the others go on. Returns how many lots expired.
pub async fn expire_due(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize, AppError> {
    let due = open_lots_where(sea_orm::Condition::all().add(entry::Column::ExpiresAt.lte(now)))
        .limit(BATCH)
        .all(db)
        .await
        .context("finding expired points")?;
    let mut expired = 0;
    for lot in due {
        match expire(db, now, &lot).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(error) => tracing::error!(%error, lot = %lot.id, "expiring points"),
        }
    }
    Ok(expired)
}

async fn expire(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lot: &entry::Model,
) -> Result<bool, AppError> {
    let txn = begin_write(db).await.context("starting an expiry")?;
    let earned = lot.earned_at.unwrap_or(lot.created_at);
    let held = locks::one(&txn, lot.customer_id).await?;
    let written = ledger::debit(
        &txn,
        &held,
        now,
        Debit {
            customer_id: lot.customer_id,
            amount: lot.delta,
            reason: PointsReason::Expiry,
            description: String::new(),
            source_kind: "expiry",
            source_id: lot.id.to_string(),
            earned_at: earned,
            actor: None,
            consume: Consume::LotOnly(lot.id),
        },
    )
    .await?;
    if let Some(entry) = &written {
        // The amount is known only once the remainder is: the sentence is written after.
        entry::Entity::update_many()
            .col_expr(
                entry::Column::Description,
                Expr::value(format!(
                    "{} points expired (earned {})",
                    -entry.delta,
                    earned.format("%-d %B %Y")
                )),
            )
            .filter(entry::Column::Id.eq(entry.id))
            .exec(&txn)
            .await
            .context("describing an expiry")?;
    }
    txn.commit().await.context("committing an expiry")?;
    Ok(written.is_some())
}

fn notice_key(customer_id: Uuid, date: NaiveDate) -> String {
    format!("points_expiring:{customer_id}:{date}")
}

/// Writes a `points_expiring` email for each customer and date with points expiring within the
/// notice period. Marketing: consent and the suppression list apply. Returns emails written.
pub async fn notify_expiring(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let settings = settings::load(db).await?;
    if settings.points_expire_after_days.is_none() {
        return Ok(0);
    }
    let until = now + Duration::days(i64::from(settings.expiry_notice_days));
    let lots = open_lots_where(
        sea_orm::Condition::all()
            .add(entry::Column::ExpiresAt.gt(now))
            .add(entry::Column::ExpiresAt.lte(until)),
    )
    .all(db)
    .await
    .context("finding points about to expire")?;
    let mut dates: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for lot in lots {
        if let Some(at) = lot.expires_at {
            dates
                .entry(lot.customer_id)
                .or_default()
                .push(notice_key(lot.customer_id, at.date_naive()));
        }
    }
    let mut written = 0;
    for (customer_id, keys) in dates {
        // Most passes find every notice written already: one indexed look-up, not a ledger read.
        let sent = email_outbox::Entity::find()
            .filter(email_outbox::Column::DedupeKey.is_in(keys.clone()))
            .count(db)
            .await
            .context("checking expiry notices already written")?;
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        if sent as usize >= distinct.len() {
            continue;
        }
        let Some(customer) = customers::find_by_id(db, customer_id).await? else {
            continue;
        };
        let days = i64::from(settings.expiry_notice_days);
        let soon = balance::expiring_soon(db, &[customer_id], now, days)
            .await?
            .remove(&customer_id)
            .unwrap_or_default();
        for (at, amount) in soon {
            let date = at.date_naive();
            let data = serde_json::json!({
                "amount": amount,
                "expires_on": at.format("%-d %B %Y").to_string(),
            });
            let email = OutgoingEmail::to_customer(
                "points_expiring",
                &customer,
                data,
                notice_key(customer_id, date),
                true,
            );
            if outbox::enqueue(db, now, email).await? {
                written += 1;
            }
        }
    }
    Ok(written)
}
