//! Expiry: each lot expires on its own date (counted from when it was earned), taking exactly what
//! remains of it, once (the lot's id is the debit's source, and the customer's row is locked):
//! the pass is `expiry_pass`. Before that, a `points_expiring` email tells the customer, once per
//! customer and expiry date.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::customers::service as customers;
use crate::email::outbox::{self, OutgoingEmail};
use crate::entities::email_outbox;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::loyalty::balance;
use crate::loyalty::ledger;
use crate::loyalty::settings;

/// How many lots one pass looks at.
pub const BATCH: u64 = 500;

/// Lots with something left whose date matches `when`, oldest expiry first.
pub(super) fn open_lots_where(when: sea_orm::Condition) -> sea_orm::Select<entry::Entity> {
    entry::Entity::find()
        .filter(entry::Column::Delta.gt(0))
        .filter(when)
        .filter(Expr::cust(ledger::OPEN_LOT))
        .order_by_asc(entry::Column::ExpiresAt)
        .order_by_asc(entry::Column::Id)
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
