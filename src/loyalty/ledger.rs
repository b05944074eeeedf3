//! The append-only points ledger, kept as lots.
//!
//! Every credit is a lot with the day it was earned, the day it becomes spendable and the day it
//! expires. Every debit consumes lots, oldest first, and says so in `points_consumptions`; what a
//! debit could not cover is a debt, which the next credits pay before anything else. So the sum
//! of all deltas always equals the lots' remainders less the debts, each lot's remainder is
//! known, and expiry takes exactly a lot's remainder, never more.
//!
//! Each entry keeps what is still open of it (`remaining`), and the customer's rollup keeps the
//! points held and earned, all in the writing transaction: a write reads only the open lots it
//! consumes and the debts it pays, never the customer's history (`audit` recomputes the same
//! values from the history, and the property tests hold the two equal).
//!
//! A debit loads what it may consume (its lot, the spendable lots oldest first until they reach
//! what it needs, what is owed), and `debit_plan` decides what it takes, with no I/O.
//!
//! Each entry names its source and a source writes at most one entry (a unique index), so a
//! replayed or concurrent event cannot write twice. Writers hold the customer's row lock
//! (`customers::locks::Held`, asked for by every write here), so two debits never consume the
//! same remainder.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Value,
};
use uuid::Uuid;

use crate::customers::locks::Held;
use crate::db::statement;
use crate::entities::enums::{LeaderboardMetric, PointsReason};
use crate::entities::points_consumption as consumption;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::live;
use crate::loyalty::debit_plan::{self, Lots};
use crate::loyalty::leaderboard;
use crate::rollups::{self, Change};

/// A credit to write: a new lot.
#[derive(Debug, Clone)]
pub struct Credit {
    pub customer_id: Uuid,
    pub amount: i64,
    pub reason: PointsReason,
    pub description: String,
    pub source_kind: &'static str,
    pub source_id: String,
    pub earned_at: DateTime<Utc>,
    pub available_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub actor: Option<String>,
}

/// Which lots a debit may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consume {
    /// Spendable lots, oldest first; with `debt`, what they cannot cover is owed.
    Fifo { debt: bool },
    /// This lot first, even while it is pending (a refund cancels its own order's points), then
    /// spendable lots oldest first, then a debt.
    LotFirst(Uuid),
}

/// A debit to write. `amount` is positive; the entry's delta is its negative.
#[derive(Debug, Clone)]
pub struct Debit {
    pub customer_id: Uuid,
    pub amount: i64,
    pub reason: PointsReason,
    pub description: String,
    pub source_kind: &'static str,
    pub source_id: String,
    /// The date the debit counts on for periods: a take-back counts on its lot's date.
    pub earned_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub consume: Consume,
}

/// Whether entries for this reason change what a customer has earned (as opposed to what they
/// hold): spending and expiry do not.
pub fn counts_toward_lifetime(reason: PointsReason) -> bool {
    !matches!(reason, PointsReason::Redemption | PointsReason::Expiry)
}

/// The condition the partial indexes of open lots hold, written out so that both planners match
/// it (a bound parameter would not prove the index's predicate).
pub const OPEN_LOT: &str = "points_ledger.remaining > 0 AND points_ledger.delta > 0";
/// The same for debits that still owe.
pub const OPEN_DEBT: &str = "points_ledger.remaining > 0 AND points_ledger.delta < 0";

/// How many open lots a debit reads at a time; most are covered by the first page.
const LOT_PAGE: u64 = 100;

/// What a debit or a credit takes from open entries: (entry, amount) pairs.
type Plan = Vec<(Uuid, i64)>;

/// Writes a credit unless its source already wrote one, then lets it pay any debt. Returns the
/// entry written, or `None` for a replay.
pub async fn credit(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    credit: Credit,
) -> Result<Option<entry::Model>, AppError> {
    held.customer(credit.customer_id)?;
    if credit.amount <= 0 {
        return Ok(None);
    }
    let model = entry::Model {
        id: Uuid::now_v7(),
        customer_id: credit.customer_id,
        delta: credit.amount,
        reason: credit.reason,
        description: credit.description,
        source_kind: credit.source_kind.to_owned(),
        source_id: credit.source_id,
        earned_at: Some(credit.earned_at),
        available_at: Some(credit.available_at),
        expires_at: credit.expires_at,
        actor: credit.actor,
        created_at: now,
        remaining: credit.amount,
    };
    let Some(kept) = insert(txn, held, &model).await? else {
        return Ok(None);
    };
    rank(txn, &model, now).await?;
    if kept.is_some_and(|kept| kept.points_owed == 0) {
        // The rollup keeps what debits owe: nothing, so there is no debt to read or pay.
        return Ok(Some(model));
    }
    // Paying a debt consumes the credit: it is written first, with any other waiting.
    write_deferred(txn, held).await?;
    let debts: Vec<(Uuid, i64)> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Id)
        .column(entry::Column::Remaining)
        .filter(entry::Column::CustomerId.eq(credit.customer_id))
        .filter(Expr::cust(OPEN_DEBT))
        .order_by_asc(entry::Column::Id)
        .into_tuple()
        .all(txn)
        .await
        .context("loading what a customer owes")?;
    let mut left = credit.amount;
    let mut paid: Plan = Vec::new();
    for (debit_id, owed) in debts {
        if left == 0 {
            break;
        }
        let part = owed.min(left);
        paid.push((debit_id, part));
        left -= part;
    }
    if !paid.is_empty() {
        let consumptions = paid
            .iter()
            .map(|(debit_id, amount)| (credit.customer_id, *debit_id, model.id, *amount))
            .collect::<Vec<_>>();
        let mut closed = paid.clone();
        closed.push((model.id, credit.amount - left));
        consume(txn, now, &consumptions, &closed).await?;
        let paid = credit.amount - left;
        held.change_rollup(txn, credit.customer_id, Change::DebtsPaid { paid })
            .await?;
    }
    Ok(Some(model))
}

/// Writes a debit unless its source already wrote one, consuming lots as `debit.consume` says.
/// Returns the entry written, or `None` for a replay or when nothing was left to take.
/// `Consume::Fifo { debt: false }` refuses with `INSUFFICIENT_POINTS` and writes nothing when
/// the spendable balance is short.
pub async fn debit(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    debit: Debit,
) -> Result<Option<entry::Model>, AppError> {
    held.customer(debit.customer_id)?;
    // A debit reads the open lots: the credits waiting are written first.
    write_deferred(txn, held).await?;
    let customer_id = debit.customer_id;
    let amount = debit.amount;
    // Load what the debit may consume, then let the plan decide what it takes.
    let decided = match debit.consume {
        Consume::LotFirst(lot) => {
            let open = open_of_lot(txn, customer_id, lot).await?;
            let need = amount - open.max(0).min(amount);
            let spendable = spendable_lots(txn, customer_id, now, Some(lot), need).await?;
            debit_plan::plan(
                amount,
                Lots::LotFirst {
                    lot,
                    open,
                    spendable: &spendable,
                },
            )
        }
        Consume::Fifo { debt } => {
            let owed = if debt {
                0
            } else {
                owed(txn, customer_id).await?
            };
            let need = debit_plan::reach(amount, owed);
            let spendable = spendable_lots(txn, customer_id, now, None, need).await?;
            debit_plan::plan(
                amount,
                Lots::Fifo {
                    debt,
                    owed,
                    spendable: &spendable,
                },
            )
        }
    };
    let plan = match decided {
        Ok(Some(plan)) => plan,
        Ok(None) => return Ok(None),
        Err(shortfall) => {
            return Err(AppError::InsufficientPoints(format!(
                "this needs {} points and {} can be spent now",
                shortfall.needed, shortfall.spendable
            )));
        }
    };
    let model = entry::Model {
        id: Uuid::now_v7(),
        customer_id: debit.customer_id,
        delta: -plan.total,
        reason: debit.reason,
        description: debit.description,
        source_kind: debit.source_kind.to_owned(),
        source_id: debit.source_id,
        earned_at: Some(debit.earned_at),
        available_at: None,
        expires_at: None,
        actor: debit.actor,
        created_at: now,
        remaining: plan.unpaid,
    };
    if insert(txn, held, &model).await?.is_none() {
        return Ok(None);
    }
    rank(txn, &model, now).await?;
    let consumptions = plan
        .taken
        .iter()
        .map(|(lot_id, amount)| (debit.customer_id, model.id, *lot_id, *amount))
        .collect::<Vec<_>>();
    consume(txn, now, &consumptions, &plan.taken).await?;
    Ok(Some(model))
}

/// What is left of one of the customer's lots (0 for anything else).
async fn open_of_lot(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
    lot_id: Uuid,
) -> Result<i64, AppError> {
    let remaining: Option<i64> = entry::Entity::find_by_id(lot_id)
        .select_only()
        .column(entry::Column::Remaining)
        .filter(entry::Column::CustomerId.eq(customer_id))
        .filter(entry::Column::Delta.gt(0))
        .into_tuple()
        .one(txn)
        .await
        .context("loading what is left of a lot")?;
    Ok(remaining.unwrap_or(0).max(0))
}

/// What the customer's debits still owe.
async fn owed(txn: &impl ConnectionTrait, customer_id: Uuid) -> Result<i64, AppError> {
    let owed: Vec<i64> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Remaining)
        .filter(entry::Column::CustomerId.eq(customer_id))
        .filter(Expr::cust(OPEN_DEBT))
        .into_tuple()
        .all(txn)
        .await
        .context("loading what a customer owes")?;
    Ok(owed.into_iter().sum())
}

/// The customer's spendable open lots (what remains of each), oldest earned first, skipping
/// `except`: read a page at a time until their remainders reach `need` or none are left, so a
/// debit reads the lots it may take and not the customer's whole history.
async fn spendable_lots(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
    now: DateTime<Utc>,
    except: Option<Uuid>,
    need: i64,
) -> Result<Vec<(Uuid, i64)>, AppError> {
    let mut lots: Vec<(Uuid, i64)> = Vec::new();
    let mut reached = 0i64;
    let mut offset = 0;
    while reached < need {
        let mut page = entry::Entity::find()
            .select_only()
            .column(entry::Column::Id)
            .column(entry::Column::Remaining)
            .filter(entry::Column::CustomerId.eq(customer_id))
            .filter(Expr::cust(OPEN_LOT))
            .filter(
                Condition::any()
                    .add(entry::Column::AvailableAt.is_null())
                    .add(entry::Column::AvailableAt.lte(now)),
            )
            .filter(
                Condition::any()
                    .add(entry::Column::ExpiresAt.is_null())
                    .add(entry::Column::ExpiresAt.gt(now)),
            );
        if let Some(except) = except {
            page = page.filter(entry::Column::Id.ne(except));
        }
        let read: Vec<(Uuid, i64)> = page
            .order_by_asc(entry::Column::EarnedAt)
            .order_by_asc(entry::Column::Id)
            .offset(offset)
            .limit(LOT_PAGE)
            .into_tuple()
            .all(txn)
            .await
            .context("loading the lots a debit consumes")?;
        let last_page = (read.len() as u64) < LOT_PAGE;
        for lot in read {
            if reached >= need {
                break;
            }
            reached = reached.saturating_add(lot.1.max(0));
            lots.push(lot);
        }
        if last_page {
            break;
        }
        offset += LOT_PAGE;
    }
    Ok(lots)
}

/// Points earned (or taken back) move the POINTS_EARNED leaderboard on the entry's own date.
pub(super) async fn rank(
    txn: &impl ConnectionTrait,
    entry: &entry::Model,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if !counts_toward_lifetime(entry.reason) {
        return Ok(());
    }
    leaderboard::add(
        txn,
        LeaderboardMetric::PointsEarned,
        entry.customer_id,
        entry.earned_at.unwrap_or(entry.created_at),
        entry.delta,
        now,
    )
    .await
}

/// Writes the entry unless its source already wrote one (or keeps it for [`write_deferred`]),
/// and its part of the rollup. Returns `None` for a replay, else what the rollup keeps after
/// the write (`None` inside without a rollup row).
async fn insert(
    txn: &impl ConnectionTrait,
    held: &Held,
    model: &entry::Model,
) -> Result<Option<Option<rollups::Kept>>, AppError> {
    if !held.defer_credit(model).await {
        let written = entry::Entity::insert(model.clone().into_active_model())
            .on_conflict(once_per_source())
            .exec_without_returning(txn)
            .await
            .context("writing a points ledger entry")?;
        if written == 0 {
            return Ok(None);
        }
    }
    let kept = held
        .change_rollup(txn, model.customer_id, points_written(model))
        .await?;
    if model.delta > 0 {
        live::publish(
            txn,
            &live::LiveEvent::Points {
                customer_id: model.customer_id,
                entry_id: model.id,
                delta: model.delta,
                at: model.created_at,
            },
        )
        .await?;
    }
    Ok(Some(kept))
}

/// What writing `model` changes in its customer's rollup.
pub(super) fn points_written(model: &entry::Model) -> Change {
    Change::PointsWritten {
        delta: model.delta,
        lifetime: if counts_toward_lifetime(model.reason) {
            model.delta
        } else {
            0
        },
        owed: if model.delta < 0 { model.remaining } else { 0 },
    }
}

/// An entry's source writes one entry: another is skipped.
fn once_per_source() -> OnConflict {
    OnConflict::columns([entry::Column::SourceKind, entry::Column::SourceId])
        .do_nothing()
        .to_owned()
}

/// Writes the credits this transaction deferred ([`Held::defer_credits`]), in one statement.
/// They were counted in the rollups as written; one whose source had written an entry already
/// is refused as an internal error, which rolls the whole transaction back.
pub async fn write_deferred(txn: &impl ConnectionTrait, held: &Held) -> Result<(), AppError> {
    let credits = held.take_deferred_credits().await;
    if credits.is_empty() {
        return Ok(());
    }
    insert_all_new(txn, credits, "credits").await
}

/// Inserts `entries` (not empty), each new by its source, in one statement: one whose source
/// wrote an entry already is an internal error, which rolls the whole transaction back.
/// `kind` names them in the error ("credits", "debits").
pub(super) async fn insert_all_new(
    txn: &impl ConnectionTrait,
    entries: Vec<entry::Model>,
    kind: &str,
) -> Result<(), AppError> {
    let what = format!("writing points ledger {kind}");
    let count = entries.len() as u64;
    let written = entry::Entity::insert_many(entries.into_iter().map(|e| e.into_active_model()))
        .on_conflict(once_per_source())
        .exec_without_returning(txn)
        .await
        .context(&what)?;
    if written != count {
        return Err(AppError::internal(
            &what,
            format!(
                "{} of {count} {kind} met an entry of the same source",
                count - written
            ),
        ));
    }
    Ok(())
}

/// Records what debits consumed of lots (`(customer, debit, lot, amount)`) and closes that much
/// of each entry in `closed` (`(entry, amount)`), each in one statement whatever their number.
pub(super) async fn consume(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    consumptions: &[(Uuid, Uuid, Uuid, i64)],
    closed: &[(Uuid, i64)],
) -> Result<(), AppError> {
    if consumptions.is_empty() {
        return Ok(());
    }
    consumption::Entity::insert_many(consumptions.iter().map(
        |(customer_id, debit_id, lot_id, amount)| consumption::ActiveModel {
            id: Set(Uuid::now_v7()),
            customer_id: Set(*customer_id),
            debit_id: Set(*debit_id),
            lot_id: Set(*lot_id),
            amount: Set(*amount),
            created_at: Set(now),
        },
    ))
    .exec_without_returning(txn)
    .await
    .context("recording what a debit consumed")?;
    let mut sql = String::from("UPDATE points_ledger SET remaining = remaining - CASE id");
    let mut values: Vec<Value> = Vec::with_capacity(closed.len() * 3);
    for (id, amount) in closed {
        sql.push_str(" WHEN ? THEN ?");
        values.push((*id).into());
        values.push((*amount).into());
    }
    sql.push_str(" ELSE 0 END WHERE id IN (");
    for (i, (id, _)) in closed.iter().enumerate() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
        values.push((*id).into());
    }
    sql.push(')');
    txn.execute_raw(statement(txn.get_database_backend(), &sql, values))
        .await
        .context("closing what a debit consumed")?;
    Ok(())
}

/// The entry a source wrote, if any.
pub async fn by_source(
    db: &impl ConnectionTrait,
    source_kind: &str,
    source_id: &str,
) -> Result<Option<entry::Model>, AppError> {
    entry::Entity::find()
        .filter(entry::Column::SourceKind.eq(source_kind))
        .filter(entry::Column::SourceId.eq(source_id))
        .one(db)
        .await
        .context("loading a points ledger entry by its source")
}

/// The sum of the deltas of entries whose source id starts with `prefix` under `source_kind`.
pub async fn sum_by_source_prefix(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    source_kind: &str,
    prefix: &str,
) -> Result<i64, AppError> {
    let rows: Vec<i64> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Delta)
        .filter(entry::Column::CustomerId.eq(customer_id))
        .filter(entry::Column::SourceKind.eq(source_kind))
        .filter(entry::Column::SourceId.starts_with(prefix))
        .into_tuple()
        .all(db)
        .await
        .context("summing a source's points")?;
    Ok(rows.into_iter().sum())
}

/// One page of a customer's entries, newest first, before the cursor `before`.
pub async fn history(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    limit: u64,
    before: Option<Uuid>,
) -> Result<(Vec<entry::Model>, bool), AppError> {
    let mut query = entry::Entity::find()
        .filter(entry::Column::CustomerId.eq(customer_id))
        .order_by_desc(entry::Column::Id);
    if let Some(before) = before {
        query = query.filter(entry::Column::Id.lt(before));
    }
    let mut rows = query
        .limit(limit + 1)
        .all(db)
        .await
        .context("loading points history")?;
    let has_next = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_next))
}
