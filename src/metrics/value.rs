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

impl std::ops::AddAssign for Segment {
    fn add_assign(&mut self, other: Self) {
        self.customers += other.customers;
        self.orders += other.orders;
        self.gross += other.gross;
        self.net += other.net;
    }
}

/// A signup cohort, referred against the rest and per acquisition channel (`referral` for the
/// referred).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CohortValue {
    pub referred: Segment,
    pub other: Segment,
    pub by_channel: BTreeMap<String, Segment>,
}

/// Customers who signed up in the range, with their orders to date (kept in their rollup) or
/// within `horizon_days` of signup (read from their orders). One grouping by (referred, channel)
/// answers both splits, so the orders are read once.
pub async fn cohort(
    db: &impl ConnectionTrait,
    range: Range,
    horizon_days: Option<i32>,
) -> Result<CohortValue, AppError> {
    let backend = db.get_database_backend();
    let what = "summing a cohort's orders";
    let cohort = "f.signed_up_at >= ? AND f.signed_up_at < ?";
    let span = || vec![Value::from(range.from), Value::from(range.to)];
    let referred = "CASE WHEN f.referred THEN 1 ELSE 0 END";
    let rows = db
        .query_all_raw(statement(
            backend,
            &format!(
                "SELECT {referred}, f.channel, COUNT(*), \
                   CAST(COALESCE(SUM(f.orders), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(f.gross), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(f.net), 0) AS BIGINT) \
                 FROM customer_rollups f WHERE {cohort} GROUP BY 1, 2"
            ),
            span(),
        ))
        .await
        .context(what)?;
    let mut groups: BTreeMap<(i32, String), Segment> = BTreeMap::new();
    for row in rows {
        let key = (
            row.try_get_by_index(0).context(what)?,
            row.try_get_by_index(1).context(what)?,
        );
        groups.insert(
            key,
            Segment {
                customers: row.try_get_by_index(2).context(what)?,
                orders: row.try_get_by_index(3).context(what)?,
                gross: row.try_get_by_index(4).context(what)?,
                net: row.try_get_by_index(5).context(what)?,
            },
        );
    }
    if let Some(days) = horizon_days {
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
                    "SELECT {referred}, f.channel, COUNT(*), \
                       CAST(COALESCE(SUM(o.amount), 0) AS BIGINT), \
                       CAST(COALESCE(SUM(o.amount - o.refunded_amount), 0) AS BIGINT) \
                     FROM customer_rollups f JOIN orders o ON o.customer_id = f.customer_id \
                       AND {horizon} \
                     WHERE {cohort} GROUP BY 1, 2"
                ),
                values,
            ))
            .await
            .context(what)?;
        for segment in groups.values_mut() {
            *segment = Segment {
                customers: segment.customers,
                ..Segment::default()
            };
        }
        for row in rows {
            let key: (i32, String) = (
                row.try_get_by_index(0).context(what)?,
                row.try_get_by_index(1).context(what)?,
            );
            if let Some(segment) = groups.get_mut(&key) {
                segment.orders = row.try_get_by_index(2).context(what)?;
                segment.gross = row.try_get_by_index(3).context(what)?;
                segment.net = row.try_get_by_index(4).context(what)?;
            }
        }
    }
    let mut value = CohortValue::default();
    for ((referred, channel), segment) in groups {
        let channel = if referred == 1 {
            value.referred += segment;
            acquisition::REFERRAL_CHANNEL.to_owned()
        } else {
            value.other += segment;
            channel
        };
        *value.by_channel.entry(channel).or_default() += segment;
    }
    Ok(value)
}

/// The program's return on its reward spend for the customers who signed up in a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Economics {
    pub gross_margin: f64,
    pub reward_cost: i128,
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
    let CohortValue {
        referred, other, ..
    } = cohort(db, range, None).await?;
    Ok(Economics {
        gross_margin: settings::load(db).await?.gross_margin,
        reward_cost: acquisition::cohort_reward_cost(db, range).await?,
        referred_customers: referred.customers,
        referred_revenue: referred.net,
        baseline_revenue: referred.customers as f64 * other.average_net_revenue(),
    })
}
