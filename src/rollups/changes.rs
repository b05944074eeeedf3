//! The rollups of the customers a transaction holds, as that transaction changes them: read once
//! (one statement for every held customer, after their locks are taken, so nobody else writes
//! them until the commit), changed in memory by each rule, and written back in one upsert per
//! transaction whatever the number of customers and changes.
//!
//! The writes are deltas (`orders = orders + excluded.orders`), except the runs of ordering
//! months, which are text and are written whole; both are safe because the customers' locks are
//! held from the read to the commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use super::months::{MonthRuns, month_of};
use super::{Kept, activity_bits};
use crate::db::statement;
use crate::error::{AppError, DbContext};

/// One change a rule makes to a customer's rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// An order of `amount` placed at `placed_at`.
    OrderRecorded {
        amount: i64,
        placed_at: DateTime<Utc>,
    },
    /// `amount` of an order placed at `placed_at` was refunded; `wholly` when that left nothing of
    /// it, `month_emptied` when no other kept order is left in its month.
    OrderRefunded {
        amount: i64,
        placed_at: DateTime<Utc>,
        wholly: bool,
        month_emptied: bool,
    },
    /// A points ledger entry of `delta`, `lifetime` of it counting toward what the customer has
    /// earned and `owed` of it left owing (a debit the lots did not cover).
    PointsWritten {
        delta: i64,
        lifetime: i64,
        owed: i64,
    },
    /// A credit paid `paid` of what the customer's debits owed.
    DebtsPaid { paid: i64 },
}

/// What a transaction adds to a rollup's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Delta {
    orders: i64,
    kept_orders: i64,
    gross: i64,
    net: i64,
    /// Bits to set, not to add.
    active_months: i64,
    points_balance: i64,
    points_lifetime: i64,
    points_owed: i64,
}

/// A customer's rollup as read, and what this transaction has changed of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    signed_up_at: DateTime<Utc>,
    channel: String,
    kept: Kept,
    runs: MonthRuns,
    unwritten: Delta,
    months_changed: bool,
    /// The keys of the badges the customer holds: as read, and as this transaction awards more.
    badges: Vec<String>,
}

impl Rollup {
    /// What tiers and badges measure, as the changes so far leave it.
    pub fn kept(&self) -> Kept {
        self.kept
    }

    /// The keys of the badges the customer holds.
    pub fn badges(&self) -> &[String] {
        &self.badges
    }

    /// Notes that this transaction awarded the badge `key`.
    pub fn badge_awarded(&mut self, key: &str) {
        if !self.badges.iter().any(|held| held == key) {
            self.badges.push(key.to_owned());
        }
    }

    /// Applies `change` and returns the kept measures it leaves.
    pub fn apply(&mut self, change: Change) -> Kept {
        let (kept, delta) = (&mut self.kept, &mut self.unwritten);
        match change {
            Change::OrderRecorded { amount, placed_at } => {
                delta.orders += 1;
                delta.kept_orders += 1;
                delta.gross += amount;
                delta.net += amount;
                delta.active_months |= activity_bits(self.signed_up_at, placed_at);
                kept.kept_orders += 1;
                kept.net += amount;
                // The months change only with the first order of a month.
                if self.runs.insert(month_of(placed_at)) {
                    self.months_changed = true;
                }
            }
            Change::OrderRefunded {
                amount,
                placed_at,
                wholly,
                month_emptied,
            } => {
                delta.net -= amount;
                kept.net -= amount;
                if wholly {
                    delta.kept_orders -= 1;
                    kept.kept_orders -= 1;
                    if month_emptied && self.runs.remove(month_of(placed_at)) {
                        self.months_changed = true;
                    }
                }
            }
            Change::PointsWritten {
                delta: points,
                lifetime,
                owed,
            } => {
                delta.points_balance += points;
                delta.points_lifetime += lifetime;
                delta.points_owed += owed;
                kept.points_lifetime += lifetime;
                kept.points_owed += owed;
            }
            Change::DebtsPaid { paid } => {
                delta.points_owed -= paid;
                kept.points_owed -= paid;
            }
        }
        kept.streak_months = self.runs.longest();
        *kept
    }

    fn is_unwritten(&self) -> bool {
        self.months_changed || self.unwritten != Delta::default()
    }
}

/// The columns [`load`] reads, in [`rollup_of`]'s order: the rollup, and the keys of the badges
/// the customer holds joined by [`KEY_SEPARATOR`] (which no key contains: keys are identifiers,
/// free of control characters), so that the badges to measure are known without another read.
const COLUMNS: &str = "r.customer_id, r.signed_up_at, r.channel, r.points_lifetime, r.net, \
    r.kept_orders, r.order_months, r.points_owed, \
    (SELECT string_agg(b.key, '\x1f') FROM customer_badges cb JOIN badges b ON b.id = cb.badge_id \
     WHERE cb.customer_id = r.customer_id)";

const KEY_SEPARATOR: char = '\x1f';

/// The rollups of `customer_ids`, in one statement; a customer without a rollup row (data
/// loaded around the API, until `tandem rebuild-rollups`) is missing from the map.
pub async fn load(
    db: &impl ConnectionTrait,
    customer_ids: &[Uuid],
) -> Result<HashMap<Uuid, Rollup>, AppError> {
    Ok(load_with(db, customer_ids, &[], None).await?.0)
}

/// What a workflow reads with the rollups besides its scalar columns: a join on the rollup
/// row (`r`), the columns it adds and the values of its `?`. A join may give a customer more
/// than one row.
#[derive(Debug, Clone, Default)]
pub struct Join {
    pub sql: String,
    pub columns: &'static str,
    pub values: Vec<sea_orm::Value>,
}

/// [`load`], with `extra` columns on each customer's row: scalar expressions of the caller's
/// (which may name the row's customer as `r.customer_id`), and a `join`, so that what a
/// workflow needs to know besides the rollups comes in the same statement. Returns each
/// customer's rows too (one, unless the join gives more), whose extra columns start at index
/// [`EXTRA_FROM`] (the join's columns follow them).
pub async fn load_with(
    db: &impl ConnectionTrait,
    customer_ids: &[Uuid],
    extra: &[&str],
    join: Option<Join>,
) -> Result<
    (
        HashMap<Uuid, Rollup>,
        HashMap<Uuid, Vec<sea_orm::QueryResult>>,
    ),
    AppError,
> {
    let what = "reading customers' rollups";
    if customer_ids.is_empty() {
        return Ok(Default::default());
    }
    let join = join.unwrap_or_default();
    let marks = vec!["?"; customer_ids.len()].join(", ");
    let mut values = join.values;
    values.extend(customer_ids.iter().map(|id| sea_orm::Value::from(*id)));
    let columns = std::iter::once(COLUMNS)
        .chain(extra.iter().copied())
        .chain((!join.columns.is_empty()).then_some(join.columns))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = db
        .query_all_raw(statement(
            db.get_database_backend(),
            &format!(
                "SELECT {columns} FROM customer_rollups r {} WHERE r.customer_id IN ({marks})",
                join.sql
            ),
            values,
        ))
        .await
        .context(what)?;
    let mut rollups = HashMap::with_capacity(rows.len());
    let mut by_customer: HashMap<Uuid, Vec<sea_orm::QueryResult>> =
        HashMap::with_capacity(rows.len());
    for row in rows {
        let (id, rollup) = rollup_of(&row, what)?;
        rollups.insert(id, rollup);
        by_customer.entry(id).or_default().push(row);
    }
    Ok((rollups, by_customer))
}

/// Where the `extra` columns of [`load_with`] start in a row.
pub const EXTRA_FROM: usize = 9;

fn rollup_of(row: &sea_orm::QueryResult, what: &'static str) -> Result<(Uuid, Rollup), AppError> {
    let months: String = row.try_get_by_index(6).context(what)?;
    let runs = MonthRuns::parse(&months).map_err(|e| AppError::internal(what, e))?;
    let kept = Kept {
        points_lifetime: row.try_get_by_index(3).context(what)?,
        net: row.try_get_by_index(4).context(what)?,
        kept_orders: row.try_get_by_index(5).context(what)?,
        streak_months: runs.longest(),
        points_owed: row.try_get_by_index(7).context(what)?,
    };
    let badges: Option<String> = row.try_get_by_index(8).context(what)?;
    let rollup = Rollup {
        signed_up_at: row.try_get_by_index(1).context(what)?,
        channel: row.try_get_by_index(2).context(what)?,
        kept,
        runs,
        unwritten: Delta::default(),
        months_changed: false,
        badges: badges.map_or_else(Vec::new, |keys| {
            keys.split(KEY_SEPARATOR).map(str::to_owned).collect()
        }),
    };
    Ok((row.try_get_by_index(0).context(what)?, rollup))
}

/// Writes what `rollups` changed, in one upsert for all of them (each key once, as PostgreSQL
/// requires), and marks them written. Every row is known to exist (it was read), so the insert
/// part never applies; it carries the row's own signup and channel all the same.
pub async fn write(
    txn: &impl ConnectionTrait,
    rollups: &mut HashMap<Uuid, Rollup>,
) -> Result<(), AppError> {
    let mut values: Vec<Value> = Vec::new();
    let mut rows = Vec::new();
    let mut unwritten: Vec<_> = rollups
        .iter_mut()
        .filter(|(_, rollup)| rollup.is_unwritten())
        .collect();
    if unwritten.is_empty() {
        return Ok(());
    }
    // One order of keys, so that two writers of the same rollups take their row locks alike.
    unwritten.sort_unstable_by_key(|(id, _)| **id);
    for (id, rollup) in unwritten {
        let delta = rollup.unwritten;
        rows.push("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        values.extend([
            (*id).into(),
            rollup.signed_up_at.into(),
            rollup.channel.clone().into(),
            false.into(),
            delta.orders.into(),
            delta.kept_orders.into(),
            delta.gross.into(),
            delta.net.into(),
            delta.active_months.into(),
            delta.points_balance.into(),
            delta.points_lifetime.into(),
            delta.points_owed.into(),
            rollup.runs.to_string().into(),
        ]);
        rollup.unwritten = Delta::default();
        rollup.months_changed = false;
    }
    let sql = format!(
        "INSERT INTO customer_rollups (customer_id, signed_up_at, channel, referred, orders, \
           kept_orders, gross, net, active_months, points_balance, points_lifetime, points_owed, \
           order_months) VALUES {} \
         ON CONFLICT (customer_id) DO UPDATE SET \
           orders = customer_rollups.orders + excluded.orders, \
           kept_orders = customer_rollups.kept_orders + excluded.kept_orders, \
           gross = customer_rollups.gross + excluded.gross, \
           net = customer_rollups.net + excluded.net, \
           active_months = customer_rollups.active_months | excluded.active_months, \
           points_balance = customer_rollups.points_balance + excluded.points_balance, \
           points_lifetime = customer_rollups.points_lifetime + excluded.points_lifetime, \
           points_owed = customer_rollups.points_owed + excluded.points_owed, \
           order_months = excluded.order_months",
        rows.join(", ")
    );
    txn.execute_raw(statement(txn.get_database_backend(), &sql, values))
        .await
        .context("writing customers' rollups")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn fresh() -> Rollup {
        Rollup {
            signed_up_at: at(2026, 1, 1),
            channel: "direct".into(),
            kept: Kept {
                points_lifetime: 0,
                net: 0,
                kept_orders: 0,
                streak_months: 0,
                points_owed: 0,
            },
            runs: MonthRuns::default(),
            unwritten: Delta::default(),
            months_changed: false,
            badges: Vec::new(),
        }
    }

    #[test]
    fn orders_in_consecutive_months_make_a_streak_and_a_whole_refund_breaks_it() {
        let mut rollup = fresh();
        for month in 2..=4 {
            rollup.apply(Change::OrderRecorded {
                amount: 100,
                placed_at: at(2026, month, 3),
            });
        }
        assert_eq!(rollup.kept().streak_months, 3);
        assert_eq!(rollup.kept().kept_orders, 3);
        let kept = rollup.apply(Change::OrderRefunded {
            amount: 100,
            placed_at: at(2026, 3, 3),
            wholly: true,
            month_emptied: true,
        });
        assert_eq!(
            (kept.streak_months, kept.kept_orders, kept.net),
            (1, 2, 200)
        );
        assert_eq!(rollup.unwritten.orders, 3, "a refund keeps the order count");
        assert_eq!(
            rollup.unwritten.active_months, 0b111,
            "months 1 to 3 after signup"
        );
    }

    #[test]
    fn a_partial_refund_takes_spend_but_keeps_the_order_and_its_month() {
        let mut rollup = fresh();
        rollup.apply(Change::OrderRecorded {
            amount: 100,
            placed_at: at(2026, 2, 3),
        });
        let kept = rollup.apply(Change::OrderRefunded {
            amount: 40,
            placed_at: at(2026, 2, 3),
            wholly: false,
            month_emptied: true,
        });
        assert_eq!((kept.streak_months, kept.kept_orders, kept.net), (1, 1, 60));
    }

    #[test]
    fn points_and_debts_sum_into_one_write() {
        let mut rollup = fresh();
        rollup.apply(Change::PointsWritten {
            delta: -50,
            lifetime: 0,
            owed: 50,
        });
        rollup.apply(Change::PointsWritten {
            delta: 80,
            lifetime: 80,
            owed: 0,
        });
        let kept = rollup.apply(Change::DebtsPaid { paid: 50 });
        assert_eq!((kept.points_lifetime, kept.points_owed), (80, 0));
        assert_eq!(rollup.unwritten.points_balance, 30);
        assert_eq!(rollup.unwritten.points_owed, 0);
        assert!(rollup.is_unwritten());
    }
}
