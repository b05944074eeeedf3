//! `referralMetrics`: how many new customers came through referrals, the referral funnel, how many
//! ordering customers refer, and what the rewards cost. One aggregate query per figure, grouped by
//! interval for a series.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Value};

use crate::error::AppError;
use crate::loyalty::settings;
use crate::metrics::{Interval, Range, bucket_key, by_bucket_columns, rate};

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
    /// In minor units; 128 bits, since points × pointValue can pass 64.
    pub reward_cost: i128,
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
    let key = |column: &str| bucket_key(backend, interval, column);
    let group = if interval.is_some() {
        " GROUP BY 1"
    } else {
        ""
    };
    let from = || Value::from(range.from);
    let to = || Value::from(range.to);
    let point_value = settings::load(db).await?.point_value;

    let customers = by_bucket_columns(
        db,
        interval,
        &format!(
            "SELECT {} AS k, COUNT(*) AS v1, SUM(CASE WHEN referred THEN 1 ELSE 0 END) AS v2 \
             FROM customer_rollups WHERE signed_up_at >= ? AND signed_up_at < ?{group}",
            key("signed_up_at")
        ),
        2,
        vec![from(), to()],
        "counting new and referred customers",
    )
    .await?;
    let clicks = by_bucket_columns(
        db,
        interval,
        &format!(
            "SELECT {} AS k, COUNT(*) AS v1 FROM referral_clicks \
             WHERE clicked_at >= ? AND clicked_at < ?{group}",
            key("clicked_at")
        ),
        1,
        vec![from(), to()],
        "counting clicks",
    )
    .await?;
    let referrals = by_bucket_columns(
        db,
        interval,
        &format!(
            "SELECT {} AS k, COUNT(*) AS v1, \
               SUM(CASE WHEN status IN {QUALIFIED} THEN 1 ELSE 0 END) AS v2 \
             FROM referrals WHERE created_at >= ? AND created_at < ?{group}",
            key("created_at")
        ),
        2,
        vec![from(), to()],
        "counting referred signups",
    )
    .await?;
    // A customer who ordered in a bucket has exactly one order there whose previous order lies
    // before the bucket (or the range): the first.
    let new_bucket = match interval {
        None => String::new(),
        Some(_) => format!(" OR {} <> {}", key("previous_placed_at"), key("placed_at")),
    };
    let ordering = by_bucket_columns(
        db,
        interval,
        &format!(
            "SELECT {} AS k, COUNT(*) AS v1 FROM orders \
             WHERE placed_at >= ? AND placed_at < ? \
               AND (previous_placed_at IS NULL OR previous_placed_at < ?{new_bucket}){group}",
            key("placed_at")
        ),
        1,
        vec![from(), to(), from()],
        "counting ordering customers",
    )
    .await?;
    let same_bucket = match interval {
        None => String::new(),
        Some(_) => format!(" AND {} = {}", key("o.placed_at"), key("r.qualified_at")),
    };
    let participants = by_bucket_columns(
        db,
        interval,
        &format!(
            "SELECT {} AS k, COUNT(DISTINCT r.referrer_id) AS v1 FROM referrals r \
             WHERE r.status IN {QUALIFIED} AND r.qualified_at >= ? AND r.qualified_at < ? \
               AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = r.referrer_id \
                 AND o.placed_at >= ? AND o.placed_at < ?{same_bucket}){group}",
            key("r.qualified_at")
        ),
        1,
        vec![from(), to(), from(), to()],
        "counting participating customers",
    )
    .await?;
    let rewards = by_bucket_columns(
        db,
        interval,
        &format!(
            "SELECT {} AS k, \
               SUM(CASE WHEN kind = 'POINTS' THEN amount ELSE 0 END) AS v1, \
               SUM(CASE WHEN kind IN ('FIXED_COUPON', 'STORE_CREDIT') THEN amount ELSE 0 END) AS v2, \
               SUM(CASE WHEN kind = 'PERCENT_COUPON' THEN 1 ELSE 0 END) AS v3 \
             FROM rewards WHERE issued_at >= ? AND issued_at < ? \
               AND status IN ('ISSUED', 'REDEEMED') \
               AND side IN ('REFERRER', 'REFEREE', 'MILESTONE'){group}",
            key("issued_at")
        ),
        3,
        vec![from(), to()],
        "summing reward cost",
    )
    .await?;

    let mut out: BTreeMap<String, ReferralFigures> = BTreeMap::new();
    let mut fill = |map: BTreeMap<String, Vec<i64>>, set: fn(&mut ReferralFigures, &[i64])| {
        for (key, values) in map {
            set(out.entry(key).or_default(), &values);
        }
    };
    fill(customers, |f, v| {
        f.new_customers = v[0];
        f.referred_customers = v[1];
    });
    fill(clicks, |f, v| f.clicks = v[0]);
    fill(referrals, |f, v| {
        f.referred_signups = v[0];
        f.qualified_referrals = v[1];
    });
    fill(ordering, |f, v| f.ordering_customers = v[0]);
    fill(participants, |f, v| f.participants = v[0]);
    for (key, values) in rewards {
        let figures = out.entry(key).or_default();
        // Points are priced here, in 128 bits: each sum fits 64, their product may not.
        figures.reward_cost =
            i128::from(values[0]) * i128::from(point_value) + i128::from(values[1]);
        figures.unpriced_rewards = values[2];
    }
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
