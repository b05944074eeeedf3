//! `referralMetrics`: how many new customers came through referrals, the referral funnel, how many
//! ordering customers refer, and what the rewards cost. One aggregate query per figure, grouped by
//! interval for a series.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Value};

use crate::error::AppError;
use crate::loyalty::settings;
use crate::metrics::{Interval, Range, bucket, by_bucket, rate};

/// The counts behind the referral metrics of one range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReferralFigures {
    pub new_customers: i64,
    pub referred_customers: i64,
    pub clicks: i64,
    pub referred_signups: i64,
    pub qualified_referrals: i64,
    pub ordering_customers: i64,
    pub participants: i64,
    pub reward_cost: i64,
    pub unpriced_rewards: i64,
}

impl ReferralFigures {
    pub fn referral_rate(&self) -> f64 {
        rate(self.referred_customers, self.new_customers)
    }

    /// Capped at 1: a code typed at signup has no tracked click.
    pub fn click_to_signup_rate(&self) -> f64 {
        rate(self.referred_signups, self.clicks).min(1.0)
    }

    pub fn signup_to_qualified_rate(&self) -> f64 {
        rate(self.qualified_referrals, self.referred_signups)
    }

    pub fn participation_rate(&self) -> f64 {
        rate(self.participants, self.ordering_customers)
    }
}

/// The statuses of a referral whose friend's first order qualified and was not reversed.
const QUALIFIED: &str = "('QUALIFIED', 'REWARDED')";

/// Every figure, per bucket (`""` for the whole range when `interval` is `None`).
async fn figures(
    db: &impl ConnectionTrait,
    range: Range,
    interval: Option<Interval>,
) -> Result<BTreeMap<String, ReferralFigures>, AppError> {
    let backend = db.get_database_backend();
    let b = |column: &str| match interval {
        None => "CAST('' AS TEXT)".to_owned(),
        Some(_) => bucket(backend, interval, column),
    };
    let group = if interval.is_some() {
        " GROUP BY 1"
    } else {
        ""
    };
    let span = || vec![Value::from(range.from), Value::from(range.to)];
    let point_value = settings::load(db).await?.point_value;

    let new_customers = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(*) FROM customers WHERE created_at >= ? AND created_at < ?{group}",
            b("created_at")
        ),
        span(),
        "counting new customers",
    )
    .await?;
    let referred_customers = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(*) FROM customers c JOIN referrals r ON r.referee_id = c.id \
             WHERE c.created_at >= ? AND c.created_at < ? AND r.status <> 'REJECTED'{group}",
            b("c.created_at")
        ),
        span(),
        "counting referred customers",
    )
    .await?;
    let clicks = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(*) FROM referral_clicks \
             WHERE clicked_at >= ? AND clicked_at < ?{group}",
            b("clicked_at")
        ),
        span(),
        "counting clicks",
    )
    .await?;
    let referred_signups = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(*) FROM referrals WHERE created_at >= ? AND created_at < ?{group}",
            b("created_at")
        ),
        span(),
        "counting referred signups",
    )
    .await?;
    let qualified_referrals = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(*) FROM referrals WHERE created_at >= ? AND created_at < ? \
             AND status IN {QUALIFIED}{group}",
            b("created_at")
        ),
        span(),
        "counting qualified referrals",
    )
    .await?;
    let ordering_customers = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(DISTINCT customer_id) FROM orders \
             WHERE placed_at >= ? AND placed_at < ?{group}",
            b("placed_at")
        ),
        span(),
        "counting ordering customers",
    )
    .await?;
    let mut values = span();
    values.extend(span());
    let participants = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(DISTINCT o.customer_id) FROM orders o \
             WHERE o.placed_at >= ? AND o.placed_at < ? AND EXISTS (\
               SELECT 1 FROM referrals r WHERE r.referrer_id = o.customer_id \
               AND r.status IN {QUALIFIED} AND r.qualified_at >= ? AND r.qualified_at < ? \
               AND {} = {}){group}",
            b("o.placed_at"),
            b("r.qualified_at"),
            b("o.placed_at")
        ),
        values,
        "counting participating customers",
    )
    .await?;
    let rewards_where = "issued_at >= ? AND issued_at < ? AND status IN ('ISSUED', 'REDEEMED') \
                         AND side IN ('REFERRER', 'REFEREE', 'MILESTONE')";
    let mut values = vec![Value::from(point_value)];
    values.extend(span());
    let reward_cost = by_bucket(
        db,
        &format!(
            "SELECT {}, CAST(COALESCE(SUM(CASE \
               WHEN kind = 'POINTS' THEN amount * ? \
               WHEN kind IN ('FIXED_COUPON', 'STORE_CREDIT') THEN amount \
               ELSE 0 END), 0) AS BIGINT) \
             FROM rewards WHERE {rewards_where}{group}",
            b("issued_at")
        ),
        values,
        "summing reward cost",
    )
    .await?;
    let unpriced_rewards = by_bucket(
        db,
        &format!(
            "SELECT {}, COUNT(*) FROM rewards WHERE {rewards_where} \
             AND kind = 'PERCENT_COUPON'{group}",
            b("issued_at")
        ),
        span(),
        "counting unpriced rewards",
    )
    .await?;

    let mut out: BTreeMap<String, ReferralFigures> = BTreeMap::new();
    let mut fill = |map: BTreeMap<String, i64>, set: fn(&mut ReferralFigures, i64)| {
        for (key, value) in map {
            set(out.entry(key).or_default(), value);
        }
    };
    fill(new_customers, |f, v| f.new_customers = v);
    fill(referred_customers, |f, v| f.referred_customers = v);
    fill(clicks, |f, v| f.clicks = v);
    fill(referred_signups, |f, v| f.referred_signups = v);
    fill(qualified_referrals, |f, v| f.qualified_referrals = v);
    fill(ordering_customers, |f, v| f.ordering_customers = v);
    fill(participants, |f, v| f.participants = v);
    fill(reward_cost, |f, v| f.reward_cost = v);
    fill(unpriced_rewards, |f, v| f.unpriced_rewards = v);
    Ok(out)
}

/// The figures of the whole range.
pub async fn totals(db: &impl ConnectionTrait, range: Range) -> Result<ReferralFigures, AppError> {
    Ok(figures(db, range, None)
        .await?
        .remove("")
        .unwrap_or_default())
}

/// The figures of each interval of the range, empty intervals included, oldest first.
pub async fn series(
    db: &impl ConnectionTrait,
    range: Range,
    interval: Interval,
) -> Result<Vec<(Range, ReferralFigures)>, AppError> {
    let mut by_key = figures(db, range, Some(interval)).await?;
    Ok(interval
        .cut(range)
        .into_iter()
        .map(|(start, cut): (NaiveDate, Range)| {
            let key = start.format("%Y-%m-%d").to_string();
            (cut, by_key.remove(&key).unwrap_or_default())
        })
        .collect())
}
