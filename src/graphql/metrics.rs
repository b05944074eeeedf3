//! GraphQL types and resolvers for program metrics (admin tokens). Definitions with worked
//! examples: docs/metrics.md.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::entities::marketing_spend;
use crate::graphql::context::require;
use crate::graphql::scalars::Long;
use crate::metrics::referrals::{self, ReferralFigures};
use crate::metrics::spend::{self, NewSpend};
use crate::metrics::{Interval, Range, acquisition};

/// How a series cuts its range (UTC).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MetricsInterval {
    /// Calendar days.
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    /// Calendar months.
    Month,
}

impl From<MetricsInterval> for Interval {
    fn from(value: MetricsInterval) -> Self {
        match value {
            MetricsInterval::Day => Interval::Day,
            MetricsInterval::Week => Interval::Week,
            MetricsInterval::Month => Interval::Month,
        }
    }
}

/// Referral metrics of a range.
pub struct ReferralMetrics {
    range: Range,
    figures: ReferralFigures,
}

/// Referral metrics of a half-open range `[from, to)`: new and referred customers, the referral
/// funnel, participation and reward cost, and the same figures per interval.
#[Object]
impl ReferralMetrics {
    /// The range's start.
    async fn from(&self) -> DateTime<Utc> {
        self.range.from
    }
    /// The range's end (excluded).
    async fn to(&self) -> DateTime<Utc> {
        self.range.to
    }
    /// Customers registered in the range.
    async fn new_customers(&self) -> Long {
        Long(self.figures.new_customers)
    }
    /// New customers whose referral is not REJECTED.
    async fn referred_customers(&self) -> Long {
        Long(self.figures.referred_customers)
    }
    /// referredCustomers / newCustomers; 0 without new customers.
    async fn referral_rate(&self) -> f64 {
        self.figures.referral_rate()
    }
    /// Share-link clicks recorded in the range.
    async fn clicks(&self) -> Long {
        Long(self.figures.clicks)
    }
    /// Friends who signed up with a referral code in the range, whatever became of the referral.
    async fn referred_signups(&self) -> Long {
        Long(self.figures.referred_signups)
    }
    /// Of those signups, the referrals that have qualified (QUALIFIED or REWARDED; not reversed).
    async fn qualified_referrals(&self) -> Long {
        Long(self.figures.qualified_referrals)
    }
    /// min(1, referredSignups / clicks); 0 without clicks. Codes typed at signup have no click.
    async fn click_to_signup_rate(&self) -> f64 {
        self.figures.click_to_signup_rate()
    }
    /// qualifiedReferrals / referredSignups; 0 without signups.
    async fn signup_to_qualified_rate(&self) -> f64 {
        self.figures.signup_to_qualified_rate()
    }
    /// Customers with an order in the range who also had a referral qualify in it, over
    /// orderingCustomers; 0 without orders.
    async fn participation_rate(&self) -> f64 {
        self.figures.participation_rate()
    }
    /// Customers with an order placed in the range.
    async fn ordering_customers(&self) -> Long {
        Long(self.figures.ordering_customers)
    }
    /// Money value, in minor units, of referral rewards (both sides and milestones) issued in the
    /// range and not reversed: points × pointValue, fixed coupons and store credit at face value,
    /// percent coupons 0 (counted in unpricedRewards).
    async fn reward_cost(&self) -> Long {
        Long(self.figures.reward_cost)
    }
    /// Percent-coupon rewards counted in rewardCost at 0: the discount they gave is not known.
    async fn unpriced_rewards(&self) -> Long {
        Long(self.figures.unpriced_rewards)
    }
    /// The same figures per interval (clipped to the range), oldest first, empty intervals
    /// included; the intervals' counts add up to the range's.
    async fn series(
        &self,
        ctx: &Context<'_>,
        interval: MetricsInterval,
    ) -> Result<Vec<ReferralMetrics>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(referrals::series(&state.db, self.range, interval.into())
            .await?
            .into_iter()
            .map(|(range, figures)| ReferralMetrics { range, figures })
            .collect())
    }
}

pub struct MarketingSpend(marketing_spend::Model);

/// Money spent on an acquisition channel over a period.
#[Object]
impl MarketingSpend {
    /// The channel, lower-cased.
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    /// Minor units of the program currency.
    async fn amount(&self) -> Long {
        Long(self.0.amount)
    }
    /// When the period starts.
    async fn period_start(&self) -> DateTime<Utc> {
        self.0.period_start
    }
    /// When the period ends (excluded).
    async fn period_end(&self) -> DateTime<Utc> {
        self.0.period_end
    }
    /// The admin who recorded it.
    async fn recorded_by(&self) -> &str {
        &self.0.recorded_by
    }
}

/// Spend to record.
#[derive(InputObject)]
pub struct MarketingSpendInput {
    /// The acquisition channel, as customers' acquisitionChannel names it: at most 200
    /// characters, compared lower-cased.
    pub channel: String,
    /// Minor units of the program currency: 0 to 1,000,000,000.
    pub amount: i32,
    /// When the period starts.
    pub period_start: DateTime<Utc>,
    /// When it ends (excluded); after periodStart, at most 5 years later.
    pub period_end: DateTime<Utc>,
}

/// What one channel cost per new customer in a range.
#[derive(SimpleObject)]
pub struct ChannelAcquisition {
    /// The channel (`referral` for customers with a referral that was not rejected).
    pub channel: String,
    /// Spend in the range, in minor units: each record prorated by how much of its period falls
    /// in the range; for `referral`, plus the cost of the rewards of referrals whose friend
    /// signed up in the range.
    pub spend: Long,
    /// Customers acquired through the channel in the range.
    pub new_customers: Long,
    /// spend / newCustomers, in minor units; null without new customers.
    pub cac: Option<f64>,
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Range> {
    Ok(Range::new(from, to)?)
}

#[derive(Default)]
pub struct MetricsQuery;

#[Object]
impl MetricsQuery {
    /// New and referred customers, the referral funnel, participation and reward cost over
    /// `[from, to)` (admin tokens; at most 5 years).
    async fn referral_metrics(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ReferralMetrics> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let range = range(from, to)?;
        Ok(ReferralMetrics {
            figures: referrals::totals(&state.db, range).await?,
            range,
        })
    }

    /// Spend records whose period overlaps `[from, to)` (admin tokens).
    async fn marketing_spend(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MarketingSpend>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(spend::overlapping(&state.db, range(from, to)?)
            .await?
            .into_iter()
            .map(MarketingSpend)
            .collect())
    }

    /// Customer acquisition cost per channel over `[from, to)` (admin tokens).
    async fn acquisition_cost(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ChannelAcquisition>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(acquisition::by_channel(&state.db, range(from, to)?)
            .await?
            .into_iter()
            .map(|row| ChannelAcquisition {
                channel: row.channel,
                spend: Long(row.spend),
                new_customers: Long(row.new_customers),
                cac: row.cac,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct MetricsMutation;

#[Object]
impl MetricsMutation {
    /// Records money spent on an acquisition channel over a period (admin tokens).
    async fn record_marketing_spend(
        &self,
        ctx: &Context<'_>,
        input: MarketingSpendInput,
    ) -> Result<MarketingSpend> {
        let (state, principal) = require(ctx, &[Role::Admin])?;
        let new = NewSpend {
            channel: input.channel,
            amount: i64::from(input.amount),
            period_start: input.period_start,
            period_end: input.period_end,
        };
        Ok(MarketingSpend(
            spend::record(&state.db, state.clock.now(), &principal.subject, new).await?,
        ))
    }
}
