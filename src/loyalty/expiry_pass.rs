//! The expiry pass as a workflow: **load** the lots that reached their expiry date with their
//! customers locked (one statement each, for up to [`PER_TRANSACTION`] lots), **decide** in
//! plain Rust what each expiry takes ([`decide`], no I/O: exactly what remains of the lot, once),
//! **apply** the debits set-based (`ledger_batch`) and the customers' rollups in one statement.
//! A transaction that fails is retried a lot at a time, so one bad lot is logged and left for
//! the next pass while the others expire.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::customers::locks;
use crate::db::begin_write;
use crate::entities::enums::PointsReason;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::loyalty::debit_plan::{self, Lots};
use crate::loyalty::expiry::{BATCH, open_lots_where};
use crate::loyalty::ledger;
use crate::loyalty::ledger_batch::{self, DecidedDebit};

/// The most lots one transaction expires.
const PER_TRANSACTION: usize = 100;

/// A lot past its expiry date, as read under its customer's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueLot {
    pub id: Uuid,
    pub customer_id: Uuid,
    /// The points the lot was credited with.
    pub delta: i64,
    /// What is left of it.
    pub remaining: i64,
    /// When its points were earned: the expiry counts on that date, as the lot does.
    pub earned_at: DateTime<Utc>,
}

/// Writes an EXPIRY debit for each expired lot's remainder. Returns how many lots expired.
pub async fn expire_due(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize, AppError> {
    let due: Vec<(Uuid, Uuid)> =
        open_lots_where(sea_orm::Condition::all().add(entry::Column::ExpiresAt.lte(now)))
            .select_only()
            .column(entry::Column::Id)
            .column(entry::Column::CustomerId)
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await
            .context("finding expired points")?;
    let mut expired = 0;
    for chunk in due.chunks(PER_TRANSACTION) {
        match expire(db, now, chunk).await {
            Ok(n) => expired += n,
            Err(error) if chunk.len() > 1 => {
                tracing::warn!(%error, lots = chunk.len(), "expiring points: each lot on its own");
                for lot in chunk {
                    match expire(db, now, std::slice::from_ref(lot)).await {
                        Ok(n) => expired += n,
                        Err(error) => tracing::error!(%error, lot = %lot.0, "expiring points"),
                    }
                }
            }
            Err(error) => tracing::error!(%error, lot = %chunk[0].0, "expiring points"),
        }
    }
    Ok(expired)
}

/// One transaction of the pass over `lots` (`(lot, customer)`). Returns how many expired.
async fn expire(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lots: &[(Uuid, Uuid)],
) -> Result<usize, AppError> {
    let txn = begin_write(db).await.context("starting an expiry")?;
    let mut customers: Vec<Uuid> = lots.iter().map(|(_, customer)| *customer).collect();
    customers.sort_unstable();
    customers.dedup();
    let held = locks::all_of(&txn, &customers).await?;
    let due = load(&txn, lots, now).await?;
    let debits = decide(&due, now);
    held.defer_rollup_writes().await;
    ledger_batch::write_debits(&txn, &held, now, &debits).await?;
    held.write_rollups(&txn).await?;
    txn.commit().await.context("committing an expiry")?;
    Ok(debits.len())
}

/// The lots of `lots` still open and due, read after their customers were locked: a debit
/// committed meanwhile (a redemption, another pass) is seen.
async fn load(
    txn: &impl sea_orm::ConnectionTrait,
    lots: &[(Uuid, Uuid)],
    now: DateTime<Utc>,
) -> Result<Vec<DueLot>, AppError> {
    let rows = entry::Entity::find()
        .filter(entry::Column::Id.is_in(lots.iter().map(|(lot, _)| *lot)))
        .filter(entry::Column::Delta.gt(0))
        .filter(entry::Column::ExpiresAt.lte(now))
        .filter(Expr::cust(ledger::OPEN_LOT))
        .all(txn)
        .await
        .context("loading expired points")?;
    Ok(rows
        .into_iter()
        .map(|lot| DueLot {
            id: lot.id,
            customer_id: lot.customer_id,
            delta: lot.delta,
            remaining: lot.remaining,
            earned_at: lot.earned_at.unwrap_or(lot.created_at),
        })
        .collect())
}

/// The EXPIRY debits of `due`: each takes what remains of its lot and nothing else, with the
/// lot's id as its source (so a lot expires once); a lot used up writes nothing.
pub fn decide(due: &[DueLot], now: DateTime<Utc>) -> Vec<DecidedDebit> {
    due.iter()
        .filter_map(|lot| {
            let plan = debit_plan::plan(
                lot.delta,
                Lots::LotOnly {
                    lot: lot.id,
                    open: lot.remaining,
                },
            )
            .ok()
            .flatten()?;
            Some(DecidedDebit {
                entry: entry::Model {
                    id: Uuid::now_v7(),
                    customer_id: lot.customer_id,
                    delta: -plan.total,
                    reason: PointsReason::Expiry,
                    description: format!(
                        "{} points expired (earned {})",
                        plan.total,
                        lot.earned_at.format("%-d %B %Y")
                    ),
                    source_kind: "expiry".to_owned(),
                    source_id: lot.id.to_string(),
                    earned_at: Some(lot.earned_at),
                    available_at: None,
                    expires_at: None,
                    actor: None,
                    created_at: now,
                    remaining: plan.unpaid,
                },
                taken: plan.taken,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn lot(n: u128, delta: i64, remaining: i64) -> DueLot {
        DueLot {
            id: Uuid::from_u128(n),
            customer_id: Uuid::from_u128(100 + n % 2),
            delta,
            remaining,
            earned_at: Utc.with_ymd_and_hms(2025, 3, 4, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn an_expiry_takes_what_remains_of_its_lot_on_the_date_it_was_earned() {
        let now = Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
        let due = [lot(1, 100, 35), lot(2, 50, 50)];
        let debits = decide(&due, now);
        assert_eq!(debits.len(), 2);
        let first = &debits[0];
        assert_eq!(first.entry.delta, -35);
        assert_eq!(first.entry.remaining, 0, "an expiry owes nothing");
        assert_eq!(first.entry.reason, PointsReason::Expiry);
        assert_eq!(
            first.entry.description,
            "35 points expired (earned 4 March 2025)"
        );
        assert_eq!(first.entry.source_id, due[0].id.to_string());
        assert_eq!(first.entry.earned_at, Some(due[0].earned_at));
        assert_eq!(first.entry.customer_id, due[0].customer_id);
        assert_eq!(first.taken, vec![(due[0].id, 35)]);
        assert_eq!(debits[1].entry.delta, -50);
        assert_eq!(debits[1].taken, vec![(due[1].id, 50)]);
    }

    #[test]
    fn a_lot_spent_before_its_date_expires_nothing() {
        let now = Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
        assert!(decide(&[lot(1, 100, 0)], now).is_empty());
    }
}
