//! What a customer holds, read from the kept values: the rollup's points held and lifetime
//! points, and the open lots that time has made pending or expired. Each read touches a key or
//! the customer's open lots through a partial index, never their history.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, QueryFilter,
    QueryOrder, QueryResult, QuerySelect, Value,
};
use uuid::Uuid;

use crate::db::statement;
use crate::entities::customer;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::loyalty::audit::Account;
use crate::loyalty::ledger::OPEN_LOT;
use crate::loyalty::program::VERSION_COLUMN;

/// A customer's points at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Points {
    /// Every lot's remainder less what is owed: the sum of all deltas.
    pub held: i64,
    /// Earned less taken back; spending and expiry do not lower it.
    pub lifetime: i64,
    /// In lots not yet spendable (and not expired).
    pub pending: i64,
    /// In lots past their expiry that the scheduler has not taken yet.
    pub expired: i64,
}

impl Points {
    /// What can be spent now; negative while a debt is larger.
    pub fn balance(&self) -> i64 {
        self.held - self.pending - self.expired
    }
}

/// The points columns of the customer whose rollup is `r` (held, lifetime, pending, expired;
/// NULL when they have no rollup row), for a statement that binds [`POINTS_BINDS`] values of
/// `now` where they appear.
static POINTS_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "r.points_balance, r.points_lifetime, \
           CAST(COALESCE((SELECT SUM(points_ledger.remaining) FROM points_ledger \
             WHERE points_ledger.customer_id = r.customer_id AND {OPEN_LOT} \
             AND points_ledger.available_at > ? \
             AND (points_ledger.expires_at IS NULL OR points_ledger.expires_at > ?)), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(points_ledger.remaining) FROM points_ledger \
             WHERE points_ledger.customer_id = r.customer_id AND {OPEN_LOT} \
             AND points_ledger.expires_at <= ?), 0) AS BIGINT)"
    )
});

/// How many times [`POINTS_COLUMNS`] binds `now`.
const POINTS_BINDS: usize = 3;

/// The points read by [`POINTS_COLUMNS`] from the row's columns `first..first + 4`; `None` when
/// the customer has no rollup row.
fn points_at(row: &QueryResult, first: usize) -> Result<Option<Points>, AppError> {
    let held: Option<i64> = row
        .try_get_by_index(first)
        .context("reading customers' points")?;
    let Some(held) = held else {
        return Ok(None);
    };
    let column = |n: usize| -> Result<i64, AppError> {
        let value: Option<i64> = row
            .try_get_by_index(first + n)
            .context("reading customers' points")?;
        Ok(value.unwrap_or_default())
    };
    Ok(Some(Points {
        held,
        lifetime: column(1)?,
        pending: column(2)?,
        expired: column(3)?,
    }))
}

/// The points of each customer in `customer_ids`, in one statement whatever their number and
/// history.
pub async fn of_customers(
    db: &impl ConnectionTrait,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Points>, AppError> {
    if customer_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = format!(
        "SELECT r.customer_id, {} FROM customer_rollups r WHERE r.customer_id IN (",
        &*POINTS_COLUMNS
    );
    let mut values: Vec<Value> = vec![now.into(); POINTS_BINDS];
    for (i, id) in customer_ids.iter().enumerate() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
        values.push((*id).into());
    }
    sql.push(')');
    let rows = db
        .query_all_raw(statement(db.get_database_backend(), &sql, values))
        .await
        .context("loading customers' points")?;
    let mut points = HashMap::with_capacity(customer_ids.len());
    for row in rows {
        let id: Uuid = row
            .try_get_by_index(0)
            .context("reading customers' points")?;
        if let Some(read) = points_at(&row, 1)? {
            points.insert(id, read);
        }
    }
    let missing: Vec<Uuid> = customer_ids
        .iter()
        .copied()
        .filter(|id| !points.contains_key(id))
        .collect();
    if !missing.is_empty() {
        // Only data loaded around the API lacks rollup rows (until `tandem rebuild-rollups`):
        // their points come from the whole ledger rather than reading as zero.
        for (id, account) in Account::load_many(db, &missing).await? {
            points.insert(id, recomputed(&account, now));
        }
    }
    Ok(points)
}

/// A customer, their points and the configuration's version, as one app screen needs them.
#[derive(Debug, Clone)]
pub struct CustomerPoints {
    pub customer: customer::Model,
    pub points: Points,
    /// `program_settings.version`, for [`crate::loyalty::program::ProgramCache::at`].
    pub program_version: i64,
}

/// The statement of [`customer_with_points`], and how many of the customer's own columns come
/// first (read by name; the points and the version follow them).
static CUSTOMER_WITH_POINTS: LazyLock<(String, usize)> = LazyLock::new(|| {
    let own: Vec<String> = customer::Column::iter()
        .map(|column| format!("c.{}", column.as_str()))
        .collect();
    let sql = format!(
        "SELECT {}, {}, {VERSION_COLUMN} FROM customers c \
         LEFT JOIN customer_rollups r ON r.customer_id = c.id WHERE c.external_id = ?",
        own.join(", "),
        &*POINTS_COLUMNS
    );
    (sql, own.len())
});

/// The customer with `external_id`, their points and the configuration's version in one
/// statement: what a customer's own screen reads (their tier is then the kept configuration's).
pub async fn customer_with_points(
    db: &impl ConnectionTrait,
    external_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CustomerPoints>, AppError> {
    let (sql, columns) = &*CUSTOMER_WITH_POINTS;
    let mut values: Vec<Value> = vec![now.into(); POINTS_BINDS];
    values.push(external_id.into());
    let Some(row) = db
        .query_one_raw(statement(db.get_database_backend(), sql, values))
        .await
        .context("loading a customer and their points")?
    else {
        return Ok(None);
    };
    let customer =
        customer::Model::from_query_result(&row, "").context("reading a customer's row")?;
    let program_version: i64 = row
        .try_get_by_index(*columns + 4)
        .context("reading the program's version")?;
    let points = match points_at(&row, *columns)? {
        Some(points) => points,
        None => of_customer(db, customer.id, now).await?,
    };
    Ok(Some(CustomerPoints {
        customer,
        points,
        program_version,
    }))
}

/// One customer's points.
pub async fn of_customer(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Points, AppError> {
    Ok(of_customers(db, &[customer_id], now)
        .await?
        .remove(&customer_id)
        .unwrap_or_default())
}

/// The points an account recomputed from the whole ledger holds.
pub fn recomputed(account: &Account, now: DateTime<Utc>) -> Points {
    let held = account.total();
    let pending = account.pending(now);
    Points {
        held,
        lifetime: account.lifetime(None),
        pending,
        expired: held - pending - account.balance(now),
    }
}

/// Each customer's points that expire within `days` of `now`: one row per expiry date, with
/// the earliest moment on that date, in one statement whatever their number.
pub async fn expiring_soon(
    db: &impl ConnectionTrait,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
    days: i64,
) -> Result<HashMap<Uuid, Vec<(DateTime<Utc>, i64)>>, AppError> {
    let until = now + Duration::days(days);
    let lots: Vec<(Uuid, Option<DateTime<Utc>>, i64)> = entry::Entity::find()
        .select_only()
        .column(entry::Column::CustomerId)
        .column(entry::Column::ExpiresAt)
        .column(entry::Column::Remaining)
        .filter(entry::Column::CustomerId.is_in(customer_ids.iter().copied()))
        .filter(Expr::cust(OPEN_LOT))
        .filter(entry::Column::ExpiresAt.gt(now))
        .filter(entry::Column::ExpiresAt.lte(until))
        .order_by_asc(entry::Column::ExpiresAt)
        .into_tuple()
        .all(db)
        .await
        .context("loading points about to expire")?;
    let mut by_customer: HashMap<Uuid, BTreeMap<NaiveDate, (DateTime<Utc>, i64)>> = HashMap::new();
    for (customer_id, at, remaining) in lots {
        let Some(at) = at else { continue };
        let row = by_customer
            .entry(customer_id)
            .or_default()
            .entry(at.date_naive())
            .or_insert((at, 0));
        row.0 = row.0.min(at);
        row.1 += remaining;
    }
    Ok(customer_ids
        .iter()
        .map(|id| {
            let dates = by_customer.remove(id).unwrap_or_default();
            (*id, dates.into_values().collect())
        })
        .collect())
}

/// Points earned less taken back since `since` (each entry on its own date), or ever.
pub async fn lifetime_since(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<i64, AppError> {
    let (sql, values): (&str, Vec<Value>) = match since {
        None => (
            "SELECT points_lifetime FROM customer_rollups WHERE customer_id = ?",
            vec![customer_id.into()],
        ),
        Some(since) => (
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_ledger \
             WHERE customer_id = ? AND earned_at >= ? AND reason NOT IN ('REDEMPTION', 'EXPIRY')",
            vec![customer_id.into(), since.into()],
        ),
    };
    let row = db
        .query_one_raw(statement(db.get_database_backend(), sql, values))
        .await
        .context("summing a customer's lifetime points")?;
    match row {
        Some(row) => row
            .try_get_by_index(0)
            .context("reading a customer's lifetime points"),
        // No rollup row (data loaded around the API): the whole ledger says.
        None => Ok(Account::load(db, customer_id).await?.lifetime(None)),
    }
}
