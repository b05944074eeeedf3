//! The metrics rollups, computed from scratch: what migration 9 fills them with, and what
//! `tandem rebuild-rollups` writes after data was loaded around the API (a bulk import). The
//! application keeps them current in each writing transaction; a rebuild over the same data
//! gives the same rows, and a test holds the two to that.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

/// The bit of `customer_rollups.active_months` set for "ordered 12 or more calendar months after
/// the signup month". Bit `k - 1` stands for "ordered in month `k`", for `k` in 1..=12.
pub const LATE_ACTIVITY_BIT: i64 = 1 << 12;

/// `year * 12 + month` of a UTC timestamp column.
pub fn month_number(backend: DbBackend, column: &str) -> String {
    if backend == DbBackend::Postgres {
        format!(
            "CAST(EXTRACT(YEAR FROM {column} AT TIME ZONE 'UTC') * 12 \
             + EXTRACT(MONTH FROM {column} AT TIME ZONE 'UTC') AS INTEGER)"
        )
    } else {
        // SQLite keeps timestamps as UTC text that starts with the date.
        format!(
            "(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER))"
        )
    }
}

/// Recomputes every customer's rollup row, every order's `previous_placed_at` and every ledger
/// entry's `remaining`.
pub async fn rebuild(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    rebuild_where(db, "SELECT id FROM customers", Vec::new()).await
}

/// Recomputes the rollup rows of the customers `customers` selects (a subquery of their ids,
/// with placeholders in the backend's own style bound to `values`), their orders'
/// `previous_placed_at` and what is still open of each of their ledger entries.
pub async fn rebuild_where(
    db: &impl ConnectionTrait,
    customers: &str,
    values: Vec<Value>,
) -> Result<(), DbErr> {
    run(db, customers, values, true).await
}

/// The rebuild as migration 9 knew it, before migration 11 added the kept points and migration
/// 13 the kept orders (which fill them themselves).
pub(crate) async fn rebuild_before_kept_points(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    run(db, "SELECT id FROM customers", Vec::new(), false).await
}

/// The statements that set `kept_orders` (orders not wholly refunded), `order_months` (the runs
/// of consecutive UTC calendar months with one of them, `first-last` month numbers in ascending
/// order, as `tandem::rollups::months` writes them) and `points_owed` (what debits still owe,
/// from each entry's `remaining`) of the customers `customers` selects, whose rows exist with
/// the first two at their defaults (0 and '').
pub fn kept_counters_statements(backend: DbBackend, customers: &str) -> Vec<String> {
    let month = month_number(backend, "o.placed_at");
    // Consecutive months less their rank are equal within a run (gaps and islands).
    let aggregate = if backend == DbBackend::Postgres {
        "string_agg"
    } else {
        "group_concat"
    };
    vec![
        format!(
            "UPDATE customer_rollups SET kept_orders = s.n \
             FROM (SELECT customer_id, COUNT(*) AS n FROM orders \
                   WHERE refunded_amount < amount AND customer_id IN ({customers}) \
                   GROUP BY customer_id) s \
             WHERE s.customer_id = customer_rollups.customer_id"
        ),
        format!(
            "UPDATE customer_rollups SET order_months = s.runs \
             FROM (SELECT customer_id, \
                     {aggregate}(CAST(first AS TEXT) || '-' || CAST(last AS TEXT), ',' ORDER BY first) \
                       AS runs \
                   FROM (SELECT customer_id, MIN(m) AS first, MAX(m) AS last \
                         FROM (SELECT customer_id, m, \
                                 m - ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY m) AS run \
                               FROM (SELECT DISTINCT o.customer_id, {month} AS m FROM orders o \
                                     WHERE o.refunded_amount < o.amount \
                                       AND o.customer_id IN ({customers})) months) numbered \
                         GROUP BY customer_id, run) runs \
                   GROUP BY customer_id) s \
             WHERE s.customer_id = customer_rollups.customer_id"
        ),
        format!(
            "UPDATE customer_rollups SET points_owed = COALESCE((SELECT SUM(l.remaining) \
               FROM points_ledger l WHERE l.customer_id = customer_rollups.customer_id \
               AND l.remaining > 0 AND l.delta < 0), 0) \
             WHERE customer_id IN ({customers})"
        ),
    ]
}

async fn run(
    db: &impl ConnectionTrait,
    customers: &str,
    values: Vec<Value>,
    kept_points: bool,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let offset = format!(
        "({} - {})",
        month_number(backend, "o.placed_at"),
        month_number(backend, "c.created_at")
    );
    let statements = [
        format!("DELETE FROM customer_rollups WHERE customer_id IN ({customers})"),
        format!(
            "INSERT INTO customer_rollups (customer_id, signed_up_at, channel, referred, orders, \
               gross, net, active_months, points_balance) \
             SELECT c.id, c.created_at, c.acquisition_channel, \
               EXISTS (SELECT 1 FROM referrals r WHERE r.referee_id = c.id AND r.status <> 'REJECTED'), \
               0, 0, 0, 0, 0 \
             FROM customers c WHERE c.id IN ({customers})"
        ),
        format!(
            "UPDATE customer_rollups SET orders = s.n, gross = s.gross, net = s.net \
             FROM (SELECT customer_id, COUNT(*) AS n, SUM(amount) AS gross, \
                     SUM(amount - refunded_amount) AS net \
                   FROM orders WHERE customer_id IN ({customers}) GROUP BY customer_id) s \
             WHERE s.customer_id = customer_rollups.customer_id"
        ),
        // Distinct powers of two add up to their OR (SQLite has no bit_or aggregate).
        format!(
            "UPDATE customer_rollups SET active_months = s.bits \
             FROM (SELECT o.customer_id, \
                     SUM(DISTINCT CASE WHEN {offset} BETWEEN 1 AND 12 \
                       THEN 1 << ({offset} - 1) ELSE 0 END) \
                     + CASE WHEN MAX({offset}) >= 12 THEN {LATE_ACTIVITY_BIT} ELSE 0 END AS bits \
                   FROM orders o JOIN customers c ON c.id = o.customer_id \
                   WHERE o.customer_id IN ({customers}) \
                   GROUP BY o.customer_id) s \
             WHERE s.customer_id = customer_rollups.customer_id"
        ),
        // The same order as the application's: by time, then id.
        format!(
            "UPDATE orders SET previous_placed_at = s.previous \
             FROM (SELECT id, LAG(placed_at) OVER (PARTITION BY customer_id ORDER BY placed_at, id) \
                     AS previous \
                   FROM orders WHERE customer_id IN ({customers})) s \
             WHERE s.id = orders.id"
        ),
    ];
    let points = if kept_points {
        vec![
            format!(
                "UPDATE customer_rollups SET points_balance = s.held, points_lifetime = s.lifetime \
                 FROM (SELECT customer_id, SUM(delta) AS held, \
                         SUM(CASE WHEN reason IN ('REDEMPTION', 'EXPIRY') THEN 0 ELSE delta END) \
                           AS lifetime \
                       FROM points_ledger \
                       WHERE customer_id IN ({customers}) GROUP BY customer_id) s \
                 WHERE s.customer_id = customer_rollups.customer_id"
            ),
            crate::m20261202_000011_kept_points::remaining_from_consumptions(customers),
        ]
        .into_iter()
        .chain(kept_counters_statements(backend, customers))
        .collect()
    } else {
        vec![format!(
            "UPDATE customer_rollups SET points_balance = s.held \
             FROM (SELECT customer_id, SUM(delta) AS held FROM points_ledger \
                   WHERE customer_id IN ({customers}) GROUP BY customer_id) s \
             WHERE s.customer_id = customer_rollups.customer_id"
        )]
    };
    for sql in statements.into_iter().chain(points) {
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values.clone()))
            .await?;
    }
    Ok(())
}
