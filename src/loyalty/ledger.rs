//! The append-only points ledger, kept as lots.
//!
//! Every credit is a lot with the day it was earned, the day it becomes spendable and the day it
//! expires. Every debit consumes lots, oldest first, and says so in `points_consumptions`; what a
//! debit could not cover is a debt, which the next credits pay before anything else. So the sum
//! of all deltas always equals the lots' remainders less the debts, each lot's remainder is
//! known, and expiry takes exactly a lot's remainder, never more.
//!
//! Each entry names its source and a source writes at most one entry (a unique index), so a
//! replayed or concurrent event cannot write twice. Writers lock the customer's row first, so two
//! debits never consume the same remainder.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::customers::service as customers;
use crate::entities::enums::{LeaderboardMetric, PointsReason};
use crate::entities::points_consumption as consumption;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::live;
use crate::loyalty::leaderboard;
use crate::rollups;

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
    /// Exactly what remains of this lot (expiry).
    LotOnly(Uuid),
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

/// A lot and what is left of it.
#[derive(Debug, Clone)]
pub struct Lot {
    pub entry: entry::Model,
    pub remaining: i64,
}

impl Lot {
    pub fn earned_at(&self) -> DateTime<Utc> {
        self.entry.earned_at.unwrap_or(self.entry.created_at)
    }

    pub fn is_pending(&self, now: DateTime<Utc>) -> bool {
        self.entry.available_at.is_some_and(|at| at > now)
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.entry.expires_at.is_some_and(|at| at <= now)
    }

    pub fn is_spendable(&self, now: DateTime<Utc>) -> bool {
        !self.is_pending(now) && !self.is_expired(now)
    }
}

/// Everything a customer's ledger holds, read at once.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub entries: Vec<entry::Model>,
    consumed_of_lot: HashMap<Uuid, i64>,
    covered_of_debit: HashMap<Uuid, i64>,
}

impl Account {
    pub async fn load(db: &impl ConnectionTrait, customer_id: Uuid) -> Result<Self, AppError> {
        let mut accounts = Self::load_many(db, &[customer_id]).await?;
        Ok(accounts.remove(&customer_id).unwrap_or_default())
    }

    /// The accounts of several customers, in two reads whatever their number; a customer with
    /// no ledger gets an empty account.
    pub async fn load_many(
        db: &impl ConnectionTrait,
        customer_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Self>, AppError> {
        let entries = entry::Entity::find()
            .filter(entry::Column::CustomerId.is_in(customer_ids.iter().copied()))
            .order_by_asc(entry::Column::Id)
            .all(db)
            .await
            .context("loading a points ledger")?;
        let consumptions = consumption::Entity::find()
            .filter(consumption::Column::CustomerId.is_in(customer_ids.iter().copied()))
            .all(db)
            .await
            .context("loading what consumed a customer's points")?;
        let mut accounts: HashMap<Uuid, Self> = customer_ids
            .iter()
            .map(|id| (*id, Self::default()))
            .collect();
        for entry in entries {
            accounts
                .entry(entry.customer_id)
                .or_default()
                .entries
                .push(entry);
        }
        for row in consumptions {
            let account = accounts.entry(row.customer_id).or_default();
            *account.consumed_of_lot.entry(row.lot_id).or_default() += row.amount;
            *account.covered_of_debit.entry(row.debit_id).or_default() += row.amount;
        }
        Ok(accounts)
    }

    /// The sum of every delta.
    pub fn total(&self) -> i64 {
        self.entries.iter().map(|e| e.delta).sum()
    }

    /// Every lot with something left, oldest earned first.
    pub fn open_lots(&self) -> Vec<Lot> {
        let mut lots: Vec<Lot> = self
            .entries
            .iter()
            .filter(|e| e.delta > 0)
            .map(|e| Lot {
                entry: e.clone(),
                remaining: e.delta - self.consumed_of_lot.get(&e.id).copied().unwrap_or(0),
            })
            .filter(|lot| lot.remaining > 0)
            .collect();
        lots.sort_by_key(|lot| (lot.earned_at(), lot.entry.id));
        lots
    }

    /// What is left of one lot.
    pub fn remaining_of(&self, lot_id: Uuid) -> i64 {
        self.entries
            .iter()
            .find(|e| e.id == lot_id && e.delta > 0)
            .map_or(0, |e| {
                e.delta - self.consumed_of_lot.get(&lot_id).copied().unwrap_or(0)
            })
    }

    /// Debits not yet covered by lots, oldest first, with what each still owes.
    pub fn debts(&self) -> Vec<(Uuid, i64)> {
        self.entries
            .iter()
            .filter(|e| e.delta < 0)
            .map(|e| {
                (
                    e.id,
                    -e.delta - self.covered_of_debit.get(&e.id).copied().unwrap_or(0),
                )
            })
            .filter(|(_, owed)| *owed > 0)
            .collect()
    }

    /// Points that can be spent now: spendable lots less debts. Negative while a debt is larger.
    pub fn balance(&self, now: DateTime<Utc>) -> i64 {
        let spendable: i64 = self
            .open_lots()
            .iter()
            .filter(|lot| lot.is_spendable(now))
            .map(|lot| lot.remaining)
            .sum();
        let owed: i64 = self.debts().iter().map(|(_, owed)| owed).sum();
        spendable - owed
    }

    /// Points earned but not yet spendable.
    pub fn pending(&self, now: DateTime<Utc>) -> i64 {
        self.open_lots()
            .iter()
            .filter(|lot| lot.is_pending(now) && !lot.is_expired(now))
            .map(|lot| lot.remaining)
            .sum()
    }

    /// Points earned less those taken back, with each entry on its own date; spending and expiry
    /// do not lower it. `since` limits it to a period.
    pub fn lifetime(&self, since: Option<DateTime<Utc>>) -> i64 {
        self.entries
            .iter()
            .filter(|e| counts_toward_lifetime(e.reason))
            .filter(|e| since.is_none_or(|since| e.earned_at.unwrap_or(e.created_at) >= since))
            .map(|e| e.delta)
            .sum()
    }
}

/// Whether entries for this reason change what a customer has earned (as opposed to what they
/// hold): spending and expiry do not.
pub fn counts_toward_lifetime(reason: PointsReason) -> bool {
    !matches!(reason, PointsReason::Redemption | PointsReason::Expiry)
}

/// Writes a credit unless its source already wrote one, then lets it pay any debt. Returns the
/// entry written, or `None` for a replay.
pub async fn credit(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    credit: Credit,
) -> Result<Option<entry::Model>, AppError> {
    if credit.amount <= 0 {
        return Ok(None);
    }
    customers::lock(txn, credit.customer_id).await?;
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
    };
    if !insert(txn, &model).await? {
        return Ok(None);
    }
    rank(txn, &model, now).await?;
    let account = Account::load(txn, credit.customer_id).await?;
    let mut left = credit.amount;
    for (debit_id, owed) in account.debts() {
        if left == 0 {
            break;
        }
        let paid = owed.min(left);
        consume(txn, now, credit.customer_id, debit_id, model.id, paid).await?;
        left -= paid;
    }
    Ok(Some(model))
}

/// Writes a debit unless its source already wrote one, consuming lots as `debit.consume` says.
/// Returns the entry written, or `None` for a replay or when nothing was left to take.
/// `Consume::Fifo { debt: false }` refuses with `INSUFFICIENT_POINTS` and writes nothing when
/// the spendable balance is short.
pub async fn debit(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    debit: Debit,
) -> Result<Option<entry::Model>, AppError> {
    customers::lock(txn, debit.customer_id).await?;
    let account = Account::load(txn, debit.customer_id).await?;
    let mut plan: Vec<(Uuid, i64)> = Vec::new();
    let mut wanted = debit.amount;
    let take = |lot_id: Uuid, available: i64, wanted: &mut i64, plan: &mut Vec<(Uuid, i64)>| {
        let taken = available.min(*wanted);
        if taken > 0 {
            plan.push((lot_id, taken));
            *wanted -= taken;
        }
    };
    match debit.consume {
        Consume::LotOnly(lot_id) => {
            wanted = wanted.min(account.remaining_of(lot_id));
            if wanted <= 0 {
                return Ok(None);
            }
            plan.push((lot_id, wanted));
            wanted = 0;
        }
        Consume::LotFirst(lot_id) => {
            take(lot_id, account.remaining_of(lot_id), &mut wanted, &mut plan);
            for lot in account.open_lots() {
                if lot.entry.id != lot_id && lot.is_spendable(now) {
                    take(lot.entry.id, lot.remaining, &mut wanted, &mut plan);
                }
            }
        }
        Consume::Fifo { debt } => {
            if !debt && account.balance(now) < debit.amount {
                return Err(AppError::InsufficientPoints(format!(
                    "this needs {} points and {} can be spent now",
                    debit.amount,
                    account.balance(now).max(0)
                )));
            }
            for lot in account.open_lots() {
                if lot.is_spendable(now) {
                    take(lot.entry.id, lot.remaining, &mut wanted, &mut plan);
                }
            }
        }
    }
    let total = match debit.consume {
        Consume::LotOnly(_) => plan.iter().map(|(_, amount)| amount).sum(),
        _ => debit.amount,
    };
    debug_assert!(wanted == 0 || !matches!(debit.consume, Consume::LotOnly(_)));
    let model = entry::Model {
        id: Uuid::now_v7(),
        customer_id: debit.customer_id,
        delta: -total,
        reason: debit.reason,
        description: debit.description,
        source_kind: debit.source_kind.to_owned(),
        source_id: debit.source_id,
        earned_at: Some(debit.earned_at),
        available_at: None,
        expires_at: None,
        actor: debit.actor,
        created_at: now,
    };
    if !insert(txn, &model).await? {
        return Ok(None);
    }
    rank(txn, &model, now).await?;
    for (lot_id, amount) in plan {
        consume(txn, now, debit.customer_id, model.id, lot_id, amount).await?;
    }
    Ok(Some(model))
}

/// Points earned (or taken back) move the POINTS_EARNED leaderboard on the entry's own date.
async fn rank(
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

async fn insert(txn: &impl ConnectionTrait, model: &entry::Model) -> Result<bool, AppError> {
    let written = entry::Entity::insert(model.clone().into_active_model())
        .on_conflict(
            OnConflict::columns([entry::Column::SourceKind, entry::Column::SourceId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await
        .context("writing a points ledger entry")?;
    if written > 0 {
        rollups::points_written(txn, model.customer_id, model.delta).await?;
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
    }
    Ok(written > 0)
}

async fn consume(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    customer_id: Uuid,
    debit_id: Uuid,
    lot_id: Uuid,
    amount: i64,
) -> Result<(), AppError> {
    consumption::Entity::insert(consumption::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(customer_id),
        debit_id: Set(debit_id),
        lot_id: Set(lot_id),
        amount: Set(amount),
        created_at: Set(now),
    })
    .exec_without_returning(txn)
    .await
    .context("recording what a debit consumed")?;
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
