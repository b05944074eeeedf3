//! Program metrics: what the program is worth, computed in the database from the same tables that
//! pay the rewards. Every query takes a half-open range `[from, to)`; definitions and worked
//! examples are in docs/metrics.md.

pub mod acquisition;
pub mod liability;
pub mod referrals;
pub mod retention;
pub mod shared_reads;
pub mod spend;
pub mod value;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Value};

pub use crate::db::statement;

use crate::error::{AppError, DbContext};

/// The longest range a metrics query accepts.
pub const MAX_RANGE_DAYS: i64 = 5 * 366;

/// A half-open range `[from, to)`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Range {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, AppError> {
        crate::input::moment("from", from)?;
        crate::input::moment("to", to)?;
        if to <= from {
            return Err(AppError::bad_input("to", "to must be after from"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(AppError::bad_input(
                "to",
                "a metrics range may span at most 5 years",
            ));
        }
        Ok(Self { from, to })
    }
}

/// How a series cuts its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
}

impl Interval {
    /// The start (UTC midnight) of the interval containing `at`.
    pub fn start_of(self, at: DateTime<Utc>) -> NaiveDate {
        let day = at.date_naive();
        match self {
            Interval::Day => day,
            Interval::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Interval::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The start of the next interval; `None` past the last date chrono represents (never
    /// for a checked [`Range`], whose dates end with year 9999).
    fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Interval::Day => start.checked_add_signed(Duration::days(1)),
            Interval::Week => start.checked_add_signed(Duration::days(7)),
            Interval::Month => start.checked_add_months(Months::new(1)),
        }
    }

    /// The intervals covering `range`, each clipped to it.
    pub fn cut(self, range: Range) -> Vec<(NaiveDate, Range)> {
        let midnight =
            |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
        let mut start = self.start_of(range.from);
        let mut cuts = Vec::new();
        while midnight(start) < range.to {
            let Some(next) = self.next(start) else {
                cuts.push((
                    start,
                    Range {
                        from: midnight(start).max(range.from),
                        to: range.to,
                    },
                ));
                break;
            };
            cuts.push((
                start,
                Range {
                    from: midnight(start).max(range.from),
                    to: midnight(next).min(range.to),
                },
            ));
            start = next;
        }
        cuts
    }
}

/// The SQL that groups a timestamp column by interval: on PostgreSQL the interval's start as a
/// timestamp (cheaper to compute and group than text), on SQLite its `YYYY-MM-DD` text; a
/// constant for the whole range.
pub fn bucket_key(backend: DbBackend, interval: Option<Interval>, column: &str) -> String {
    match (backend, interval) {
        (_, None) => "CAST('' AS TEXT)".to_owned(),
        (DbBackend::Postgres, Some(interval)) => {
            let unit = match interval {
                Interval::Day => "day",
                Interval::Week => "week",
                Interval::Month => "month",
            };
            format!("date_trunc('{unit}', {column} AT TIME ZONE 'UTC')")
        }
        // SQLite keeps timestamps as UTC text that starts with the date.
        (_, Some(Interval::Day)) => format!("substr({column}, 1, 10)"),
        (_, Some(Interval::Week)) => {
            format!("date(substr({column}, 1, 10), 'weekday 0', '-6 days')")
        }
        (_, Some(Interval::Month)) => format!("substr({column}, 1, 7) || '-01'"),
    }
}

/// Runs `inner`, a query whose columns are `k` (a [`bucket_key`]) and `v1` … `v{columns}`
/// (integers), and returns each bucket's values under its `YYYY-MM-DD` label (`""` without an
/// interval).
pub async fn by_bucket_columns(
    db: &impl ConnectionTrait,
    interval: Option<Interval>,
    inner: &str,
    columns: usize,
    values: Vec<Value>,
    what: &str,
) -> Result<BTreeMap<String, Vec<i64>>, AppError> {
    let backend = db.get_database_backend();
    let label = match (backend, interval) {
        (DbBackend::Postgres, Some(_)) => "to_char(k, 'YYYY-MM-DD')",
        _ => "k",
    };
    let outputs: Vec<String> = (1..=columns)
        .map(|n| format!("CAST(COALESCE(v{n}, 0) AS BIGINT)"))
        .collect();
    let sql = format!(
        "SELECT {label}, {} FROM ({inner}) buckets",
        outputs.join(", ")
    );
    let rows = db
        .query_all_raw(statement(backend, &sql, values))
        .await
        .context(what)?;
    let mut map = BTreeMap::new();
    for row in rows {
        let key: String = row.try_get_by_index(0).context(what)?;
        let mut figures = Vec::with_capacity(columns);
        for n in 1..=columns {
            figures.push(row.try_get_by_index::<i64>(n).context(what)?);
        }
        map.insert(key, figures);
    }
    Ok(map)
}

/// Runs a query whose rows are `(bucket TEXT, value BIGINT)` and returns them as a map.
pub async fn by_bucket(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
    what: &str,
) -> Result<BTreeMap<String, i64>, AppError> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(statement(backend, sql, values))
        .await
        .context(what)?;
    let mut map = BTreeMap::new();
    for row in rows {
        let key: String = row.try_get_by_index(0).context(what)?;
        let value: Option<i64> = row.try_get_by_index(1).context(what)?;
        map.insert(key, value.unwrap_or(0));
    }
    Ok(map)
}

/// `numerator / denominator`, 0 when the denominator is 0.
pub fn rate(numerator: i64, denominator: i64) -> f64 {
    if denominator <= 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn intervals_cover_the_range_exactly() {
        let range = Range::new(at(2026, 1, 15), at(2026, 3, 10)).unwrap();
        let months = Interval::Month.cut(range);
        assert_eq!(months.len(), 3);
        assert_eq!(months[0].1.from, range.from);
        assert_eq!(months[2].1.to, range.to);
        for pair in months.windows(2) {
            assert_eq!(pair[0].1.to, pair[1].1.from);
        }
        let weeks = Interval::Week.cut(range);
        assert_eq!(
            weeks[0].0,
            NaiveDate::from_ymd_opt(2026, 1, 12).unwrap(),
            "a Monday"
        );
    }

    #[test]
    fn ranges_must_run_forward_and_stay_under_five_years() {
        assert!(Range::new(at(2026, 2, 1), at(2026, 1, 1)).is_err());
        assert!(Range::new(at(2020, 1, 1), at(2026, 1, 1)).is_err());
        assert!(Range::new(at(2021, 1, 1), at(2026, 1, 1)).is_ok());
    }
}
