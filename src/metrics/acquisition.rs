//! `acquisitionCost`: per channel, the spend that falls in the range and the customers it
//! brought. A customer with a referral that was not rejected counts under `referral`, whatever
//! channel their registration named; the `referral` channel's spend is the cost of the rewards
//! of referrals whose friend signed up in the range, plus any spend recorded on `referral`.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, Value};

use crate::error::AppError;
use crate::loyalty::settings;
use crate::metrics::{Range, by_bucket, by_bucket_columns, spend};

/// The channel referred customers are counted under.
pub const REFERRAL_CHANNEL: &str = "referral";

/// One channel's acquisition cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelCost {
    pub channel: String,
    /// Minor units, rounded to the nearest; 128 bits, since it holds priced points.
    pub spend: i128,
    pub new_customers: i64,
    /// Spend per new customer, in minor units; `None` without new customers.
    pub cac: Option<f64>,
}

pub async fn by_channel(
    db: &impl ConnectionTrait,
    range: Range,
) -> Result<Vec<ChannelCost>, AppError> {
    let span = || vec![Value::from(range.from), Value::from(range.to)];
    let customers = by_bucket(
        db,
        "SELECT CASE WHEN referred THEN 'referral' ELSE channel END, COUNT(*) \
         FROM customer_rollups WHERE signed_up_at >= ? AND signed_up_at < ? GROUP BY 1",
        span(),
        "counting new customers by channel",
    )
    .await?;
    costs(db, range, customers).await
}

/// Each channel's cost, given how many customers each brought in the range (`acquisitionCost`
/// counts them; CLV has them already).
pub async fn costs(
    db: &impl ConnectionTrait,
    range: Range,
    customers: BTreeMap<String, i64>,
) -> Result<Vec<ChannelCost>, AppError> {
    let reward_cost = cohort_reward_cost(db, range).await?;

    let mut spend_by: BTreeMap<String, f64> = BTreeMap::new();
    // Spend records are few (one a channel and period), so they are prorated here.
    for record in spend::overlapping(db, range).await? {
        *spend_by.entry(record.channel.clone()).or_default() += spend::prorated(&record, range);
    }
    if reward_cost != 0 {
        spend_by.entry(REFERRAL_CHANNEL.to_owned()).or_default();
    }
    let mut channels: Vec<String> = customers.keys().chain(spend_by.keys()).cloned().collect();
    channels.sort();
    channels.dedup();
    Ok(channels
        .into_iter()
        .map(|channel| {
            // Prorated spend is a fraction of records of at most MAX_AMOUNT each, exact in an
            // f64; the reward cost is added exactly.
            let prorated = spend_by.get(&channel).copied().unwrap_or(0.0).round() as i128;
            let rewards = if channel == REFERRAL_CHANNEL {
                reward_cost
            } else {
                0
            };
            let spend = prorated + rewards;
            let new_customers = customers.get(&channel).copied().unwrap_or(0);
            ChannelCost {
                cac: (new_customers > 0).then(|| spend as f64 / new_customers as f64),
                channel,
                spend,
                new_customers,
            }
        })
        .collect())
}

/// The money value, in minor units, of the rewards (both sides and milestones, issued and not
/// reversed, whenever issued) of referrals whose friend signed up in the range.
pub async fn cohort_reward_cost(db: &impl ConnectionTrait, range: Range) -> Result<i128, AppError> {
    let point_value = settings::load(db).await?.point_value;
    let values = vec![Value::from(range.from), Value::from(range.to)];
    let sums = by_bucket_columns(
        db,
        None,
        "SELECT CAST('' AS TEXT) AS k, \
           CAST(COALESCE(SUM(CASE WHEN w.kind = 'POINTS' THEN w.amount ELSE 0 END), 0) AS BIGINT) AS v1, \
           CAST(COALESCE(SUM(CASE WHEN w.kind IN ('FIXED_COUPON', 'STORE_CREDIT') \
             THEN w.amount ELSE 0 END), 0) AS BIGINT) AS v2 \
         FROM rewards w JOIN referrals r ON w.referral_id = r.id \
         WHERE r.created_at >= ? AND r.created_at < ? \
           AND w.status IN ('ISSUED', 'REDEEMED') \
           AND w.side IN ('REFERRER', 'REFEREE', 'MILESTONE')",
        2,
        values,
        "summing the reward cost of a signup cohort",
    )
    .await?;
    // Points are priced here, in 128 bits: each sum fits 64, their product may not.
    Ok(sums
        .values()
        .map(|v| i128::from(v[0]) * i128::from(point_value) + i128::from(v[1]))
        .sum())
}
