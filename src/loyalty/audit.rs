//! A customer's account recomputed from their whole ledger and every consumption: the reference
//! the kept values (`remaining` on each entry, the rollup's points held and lifetime points) must
//! equal. Requests never read it; the property tests and checks after a bulk load do, and it is
//! the stand-in for a customer whose rollup row is missing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::entities::points_consumption as consumption;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::loyalty::ledger::counts_toward_lifetime;

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

/// Everything a customer's ledger holds, read at once and recomputed.
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
