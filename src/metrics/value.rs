//! What customers are worth: CLV of the customers who signed up in a range, referred against the
//! rest and per channel, and the program's return on its reward spend.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::error::{AppError, DbContext};
use crate::loyalty::settings;
use crate::metrics::{Range, acquisition, statement};

/// The orders and revenue of one segment of a signup cohort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub customers: i64,
    pub orders: i64,
    /// Order amounts, in minor units.
    pub gross: i64,
    /// Order amounts less refunds, in minor units.
    pub net: i64,
}

impl Segment {
    pub fn average_order_value(&self) -> f64 {
        ratio(self.gross, self.orders)
    }

    pub fn orders_per_customer(&self) -> f64 {
        ratio(self.orders, self.customers)
    }

    pub fn average_net_revenue(&self) -> f64 {
        ratio(self.net, self.customers)
    }

    pub fn clv(&self, gross_margin: f64) -> f64 {
        self.average_net_revenue() * gross_margin
    }
}

fn ratio(numerator: i64, denominator: i64) -> f64 {
    if denominator <= 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Customers who signed up in the range, grouped by `segment` (an SQL expression over their
/// rollup `f`), with their orders to date (kept in the rollup) or within `horizon_days` of signup
/// (read from their orders).
async fn segments(
    db: &impl ConnectionTrait,
    range: Range,
    horizon_days: Option<i32>,
    segment: &str,
) -> Result<BTreeMap<String, Segment>, AppError> {
    let backend = db.get_database_backend();
    let what = "summing a cohort's orders";
    let cohort = "f.signed_up_at >= ? AND f.signed_up_at < ?";
    let span = || vec![Value::from(range.from), Value::from(range.to)];
    let rows = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {segment}, COUNT(*), CAST(COALESCE(SUM(f.orders), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(f.gross), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(f.net), 0) AS BIGINT) \
                 FROM customer_rollups f WHERE {cohort} GROUP BY 1"
            ),
            span(),
        ))
        .await
        .context(what)?;
    let mut out = BTreeMap::new();
    for row in rows {
        let key: String = row.try_get_by_index(0).context(what)?;
        out.insert(
            key,
            Segment {
                customers: row.try_get_by_index(1).context(what)?,
                orders: row.try_get_by_index(2).context(what)?,
                gross: row.try_get_by_index(3).context(what)?,
                net: row.try_get_by_index(4).context(what)?,
            },
        );
    }
    let Some(days) = horizon_days else {
        return Ok(out);
    };
    let horizon = if backend == DbBackend::Postgres {
        "o.placed_at < f.signed_up_at + CAST(? AS INTEGER) * INTERVAL '1 day'"
    } else {
        "julianday(o.placed_at) < julianday(f.signed_up_at) + ?"
    };
    let mut values = vec![Value::from(days)];
    values.extend(span());
    let rows = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {segment}, COUNT(*), CAST(COALESCE(SUM(o.amount), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(o.amount - o.refunded_amount), 0) AS BIGINT) \
                 FROM customer_rollups f JOIN orders o ON o.customer_id = f.customer_id \
                   AND {horizon} \
                 WHERE {cohort} GROUP BY 1"
            ),
            values,
        ))
        .await
        .context(what)?;
    for segment in out.values_mut() {
        *segment = Segment {
            customers: segment.customers,
            ..Segment::default()
        };
    }
    for row in rows {
        let key: String = row.try_get_by_index(0).context(what)?;
        if let Some(segment) = out.get_mut(&key) {
            segment.orders = row.try_get_by_index(1).context(what)?;
            segment.gross = row.try_get_by_index(2).context(what)?;
            segment.net = row.try_get_by_index(3).context(what)?;
        }
    }
    Ok(out)
}

/// Referred and non-referred customers of a signup cohort.
pub async fn referred_split(
    db: &impl ConnectionTrait,
    range: Range,
    horizon_days: Option<i32>,
) -> Result<(Segment, Segment), AppError> {
    let mut split = segments(
        db,
        range,
        horizon_days,
        "CASE WHEN f.referred THEN 'referred' ELSE 'other' END",
    )
    .await?;
    Ok((
        split.remove("referred").unwrap_or_default(),
        split.remove("other").unwrap_or_default(),
    ))
}

/// A signup cohort per acquisition channel (`referral` for referred customers).
pub async fn by_channel(
    db: &impl ConnectionTrait,
    range: Range,
    horizon_days: Option<i32>,
) -> Result<BTreeMap<String, Segment>, AppError> {
    segments(
        db,
        range,
        horizon_days,
        &format!(
            "CASE WHEN f.referred THEN '{}' ELSE f.channel END",
            acquisition::REFERRAL_CHANNEL
        ),
    )
    .await
}

/// The program's return on its reward spend for the customers who signed up in a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Economics {
    pub gross_margin: f64,
    pub reward_cost: i64,
    pub referred_customers: i64,
    /// Net revenue of the referred customers, to date.
    pub referred_revenue: i64,
    /// What the same number of customers bring at the non-referred average net revenue.
    pub baseline_revenue: f64,
}

impl Economics {
    pub fn incremental_revenue(&self) -> f64 {
        self.referred_revenue as f64 - self.baseline_revenue
    }

    /// (incremental revenue × gross margin − reward cost) / reward cost; `None` without cost.
    pub fn roi(&self) -> Option<f64> {
        (self.reward_cost > 0).then(|| {
            (self.incremental_revenue() * self.gross_margin - self.reward_cost as f64)
                / self.reward_cost as f64
        })
    }
}

pub async fn economics(db: &impl ConnectionTrait, range: Range) -> Result<Economics, AppError> {
    let (referred, other) = referred_split(db, range, None).await?;
    Ok(Economics {
        gross_margin: settings::load(db).await?.gross_margin,
        reward_cost: acquisition::cohort_reward_cost(db, range).await?,
        referred_customers: referred.customers,
        referred_revenue: referred.net,
        baseline_revenue: referred.customers as f64 * other.average_net_revenue(),
    })
}
