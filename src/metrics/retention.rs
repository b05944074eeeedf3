//! Retention: customers who signed up in a range, by signup month (UTC) and referred or not, and
//! the share of each cohort that ordered in each of the 12 calendar months after the signup
//! month.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::error::{AppError, DbContext};
use crate::metrics::{Range, statement};

const REFERRED: &str = "CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.referee_id = c.id \
                        AND r.status <> 'REJECTED') THEN 1 ELSE 0 END";

/// One cohort's retention.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    /// `YYYY-MM`.
    pub month: String,
    pub referred: bool,
    pub customers: i64,
    /// For months 1 to 12 after the signup month, how many ordered in it.
    pub active: [i64; 12],
    /// How many ordered in month 12 or later.
    pub active_after_twelve: i64,
}

impl Cohort {
    pub fn shares(&self) -> Vec<f64> {
        self.active
            .iter()
            .map(|n| crate::metrics::rate(*n, self.customers))
            .collect()
    }

    pub fn twelve_month_retention(&self) -> f64 {
        crate::metrics::rate(self.active_after_twelve, self.customers)
    }
}

fn month_number(backend: DbBackend, column: &str) -> String {
    if backend == DbBackend::Postgres {
        format!(
            "CAST(EXTRACT(YEAR FROM {column} AT TIME ZONE 'UTC') * 12 \
             + EXTRACT(MONTH FROM {column} AT TIME ZONE 'UTC') AS INTEGER)"
        )
    } else {
        format!(
            "(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER))"
        )
    }
}

fn month_key(backend: DbBackend, column: &str) -> String {
    if backend == DbBackend::Postgres {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')")
    } else {
        format!("substr({column}, 1, 7)")
    }
}

pub async fn cohorts(db: &impl ConnectionTrait, range: Range) -> Result<Vec<Cohort>, AppError> {
    let backend = db.get_database_backend();
    let span = || vec![Value::from(range.from), Value::from(range.to)];
    let key = month_key(backend, "c.created_at");
    let offset = format!(
        "({} - {})",
        month_number(backend, "o.placed_at"),
        month_number(backend, "c.created_at")
    );
    let what = "measuring retention";
    let mut cohorts: BTreeMap<(String, i32), Cohort> = BTreeMap::new();

    let sizes = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {key}, {REFERRED}, COUNT(*) FROM customers c \
                 WHERE c.created_at >= ? AND c.created_at < ? GROUP BY 1, 2"
            ),
            span(),
        ))
        .await
        .context(what)?;
    for row in sizes {
        let month: String = row.try_get_by_index(0).context(what)?;
        let referred: i32 = row.try_get_by_index(1).context(what)?;
        cohorts.insert(
            (month.clone(), referred),
            Cohort {
                month,
                referred: referred == 1,
                customers: row.try_get_by_index(2).context(what)?,
                active: [0; 12],
                active_after_twelve: 0,
            },
        );
    }
    // One row per cohort and month offset, offsets above 12 folded into 13.
    let active = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {key}, {REFERRED}, CASE WHEN {offset} > 12 THEN 13 ELSE {offset} END, \
                   COUNT(DISTINCT c.id) \
                 FROM customers c JOIN orders o ON o.customer_id = c.id \
                 WHERE c.created_at >= ? AND c.created_at < ? AND {offset} >= 1 \
                 GROUP BY 1, 2, 3"
            ),
            span(),
        ))
        .await
        .context(what)?;
    for row in active {
        let month: String = row.try_get_by_index(0).context(what)?;
        let referred: i32 = row.try_get_by_index(1).context(what)?;
        let offset: i32 = row.try_get_by_index(2).context(what)?;
        let count: i64 = row.try_get_by_index(3).context(what)?;
        if let Some(cohort) = cohorts.get_mut(&(month, referred))
            && (1..=12).contains(&offset)
        {
            cohort.active[(offset - 1) as usize] = count;
        }
    }
    // "12 or more months after signup": its own count, since a customer can order in several.
    let late = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {key}, {REFERRED}, COUNT(DISTINCT c.id) \
                 FROM customers c JOIN orders o ON o.customer_id = c.id \
                 WHERE c.created_at >= ? AND c.created_at < ? AND {offset} >= 12 \
                 GROUP BY 1, 2"
            ),
            span(),
        ))
        .await
        .context(what)?;
    for row in late {
        let month: String = row.try_get_by_index(0).context(what)?;
        let referred: i32 = row.try_get_by_index(1).context(what)?;
        if let Some(cohort) = cohorts.get_mut(&(month, referred)) {
            cohort.active_after_twelve = row.try_get_by_index(2).context(what)?;
        }
    }
    Ok(cohorts.into_values().collect())
}
