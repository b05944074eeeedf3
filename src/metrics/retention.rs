//! Retention: customers who signed up in a range, by signup month (UTC) and referred or not, and
//! the share of each cohort that ordered in each of the 12 calendar months after the signup
//! month.

use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::error::{AppError, DbContext};
use crate::metrics::{Range, statement};
use crate::rollups::LATE_ACTIVITY_BIT;

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

fn month_key(backend: DbBackend, column: &str) -> String {
    if backend == DbBackend::Postgres {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')")
    } else {
        format!("substr({column}, 1, 7)")
    }
}

/// The cohorts of the customers who signed up in the range, read from their rollups: each holds
/// the months after signup in which the customer ordered, one bit each.
pub async fn cohorts(db: &impl ConnectionTrait, range: Range) -> Result<Vec<Cohort>, AppError> {
    let backend = db.get_database_backend();
    let key = month_key(backend, "signed_up_at");
    let mut counts: Vec<String> = (0..12)
        .map(|bit| {
            format!(
                "SUM(CASE WHEN (active_months & {}) <> 0 THEN 1 ELSE 0 END)",
                1i64 << bit
            )
        })
        .collect();
    counts.push(format!(
        "SUM(CASE WHEN (active_months & {LATE_ACTIVITY_BIT}) <> 0 THEN 1 ELSE 0 END)"
    ));
    let counts: Vec<String> = counts
        .into_iter()
        .map(|sum| format!("CAST(COALESCE({sum}, 0) AS BIGINT)"))
        .collect();
    let what = "measuring retention";
    let rows = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {key}, CASE WHEN referred THEN 1 ELSE 0 END, COUNT(*), {} \
                 FROM customer_rollups WHERE signed_up_at >= ? AND signed_up_at < ? \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                counts.join(", ")
            ),
            vec![Value::from(range.from), Value::from(range.to)],
        ))
        .await
        .context(what)?;
    let mut cohorts = Vec::with_capacity(rows.len());
    for row in rows {
        let referred: i32 = row.try_get_by_index(1).context(what)?;
        let mut active = [0; 12];
        for (month, count) in active.iter_mut().enumerate() {
            *count = row.try_get_by_index(3 + month).context(what)?;
        }
        cohorts.push(Cohort {
            month: row.try_get_by_index(0).context(what)?,
            referred: referred == 1,
            customers: row.try_get_by_index(2).context(what)?,
            active,
            active_after_twelve: row.try_get_by_index(15).context(what)?,
        });
    }
    Ok(cohorts)
}
