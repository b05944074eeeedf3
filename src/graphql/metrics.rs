//! GraphQL types and resolvers for program metrics (admin tokens). Definitions with worked
//! examples: docs/metrics.md.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::entities::marketing_spend;
use crate::error::AppError;
use crate::graphql::context::require;
use crate::graphql::scalars::Long;
use crate::metrics::referrals::{self, ReferralFigures};
use crate::metrics::spend::{self, NewSpend};
use crate::metrics::{Interval, Range, acquisition, liability, retention, value};

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
    /// A point of a series: it has no series of its own, so one request cannot multiply the
    /// intervals it asks for.
    point: bool,
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
        Long::from(self.figures.new_customers)
    }
    /// New customers whose referral is not REJECTED.
    async fn referred_customers(&self) -> Long {
        Long::from(self.figures.referred_customers)
    }
    /// referredCustomers / newCustomers; 0 without new customers.
    async fn referral_rate(&self) -> f64 {
        self.figures.referral_rate()
    }
    /// Share-link clicks recorded in the range.
    async fn clicks(&self) -> Long {
        Long::from(self.figures.clicks)
    }
    /// Friends who signed up with a referral code in the range, whatever became of the referral.
    async fn referred_signups(&self) -> Long {
        Long::from(self.figures.referred_signups)
    }
    /// Of those signups, the referrals that have qualified (QUALIFIED or REWARDED; not reversed).
    async fn qualified_referrals(&self) -> Long {
        Long::from(self.figures.qualified_referrals)
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
        Long::from(self.figures.ordering_customers)
    }
    /// Money value, in minor units, of referral rewards (both sides and milestones) issued in the
    /// range and not reversed: points × pointValue, fixed coupons and store credit at face value,
    /// percent coupons 0 (counted in unpricedRewards).
    async fn reward_cost(&self) -> Long {
        Long::from(self.figures.reward_cost)
    }
    /// Percent-coupon rewards counted in rewardCost at 0: the discount they gave is not known.
    async fn unpriced_rewards(&self) -> Long {
        Long::from(self.figures.unpriced_rewards)
    }
    /// The same figures per interval (clipped to the range), oldest first, empty intervals
    /// included; the intervals' counts add up to the range's. A point of a series has no series
    /// of its own (BAD_USER_INPUT).
    async fn series(
        &self,
        ctx: &Context<'_>,
        interval: MetricsInterval,
    ) -> Result<Vec<ReferralMetrics>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        if self.point {
            return Err(AppError::bad_input(
                "series",
                "a point of a series has no series of its own; ask for the range you need",
            )
            .into());
        }
        Ok(referrals::series(&state.db, self.range, interval.into())
            .await?
            .into_iter()
            .map(|(range, figures)| ReferralMetrics {
                range,
                figures,
                point: true,
            })
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
        Long::from(self.0.amount)
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

/// One segment of a signup cohort: its orders and what a customer is worth.
#[derive(SimpleObject)]
pub struct CustomerValue {
    /// Customers in the segment.
    pub customers: Long,
    /// Order amounts / orders, in minor units (refunds not taken off); 0 without orders.
    pub average_order_value: f64,
    /// Orders / customers.
    pub orders_per_customer: f64,
    /// (order amounts − refunds) / customers, in minor units: orders to date, or placed within
    /// horizonDays of each customer's signup.
    pub average_net_revenue: f64,
    /// averageNetRevenue × grossMargin, in minor units.
    pub clv: f64,
}

impl CustomerValue {
    fn of(segment: value::Segment, gross_margin: f64) -> Self {
        Self {
            customers: Long::from(segment.customers),
            average_order_value: segment.average_order_value(),
            orders_per_customer: segment.orders_per_customer(),
            average_net_revenue: segment.average_net_revenue(),
            clv: segment.clv(gross_margin),
        }
    }
}

/// CLV and CAC of one acquisition channel.
#[derive(SimpleObject)]
pub struct ChannelValue {
    /// The channel (`referral` for customers with a referral that was not rejected).
    pub channel: String,
    /// The channel's CLV, in minor units.
    pub clv: f64,
    /// The channel's CAC over the same range (see acquisitionCost); null without new customers.
    pub cac: Option<f64>,
    /// clv / cac; null when cac is null or 0.
    pub clv_to_cac: Option<f64>,
}

/// The value of the customers who signed up in a range, referred against the rest.
#[derive(SimpleObject)]
pub struct LifetimeValue {
    /// Customers with a referral that was not rejected.
    pub referred: CustomerValue,
    /// Everyone else.
    pub non_referred: CustomerValue,
    /// referred.clv / nonReferred.clv; null when nonReferred.clv is 0.
    pub lift: Option<f64>,
    /// Per acquisition channel, with its CAC.
    pub by_channel: Vec<ChannelValue>,
}

/// A signup-month cohort's retention.
#[derive(SimpleObject)]
pub struct RetentionCohort {
    /// The signup month, `YYYY-MM` (UTC).
    pub month: String,
    /// Whether these are the referred customers of the month (or the others).
    pub referred: bool,
    /// Customers in the cohort.
    pub customers: Long,
    /// For months 1 to 12 after the signup month (calendar months), the share of the cohort that
    /// ordered in that month.
    pub months: Vec<f64>,
    /// The share of the cohort with an order 12 or more calendar months after the signup month.
    pub twelve_month_retention: f64,
}

/// The program's return on its reward spend, for customers who signed up in a range.
#[derive(SimpleObject)]
pub struct ProgramEconomics {
    /// Money value of the rewards of referrals whose friend signed up in the range (issued, not
    /// reversed), in minor units.
    pub reward_cost: Long,
    /// Referred customers who signed up in the range.
    pub referred_customers: Long,
    /// Their orders less refunds to date, in minor units.
    pub referred_revenue: Long,
    /// referredCustomers × the non-referred customers' average net revenue (same signup range):
    /// what they would have brought as ordinary customers.
    pub baseline_revenue: f64,
    /// referredRevenue − baselineRevenue.
    pub incremental_revenue: f64,
    /// The gross margin the ROI counts revenue at.
    pub gross_margin: f64,
    /// (incrementalRevenue × grossMargin − rewardCost) / rewardCost; null without reward cost.
    pub roi: Option<f64>,
}

/// What the program owes in points, and what expired unspent.
#[derive(SimpleObject)]
pub struct PointsLiability {
    /// Points customers hold now, pending ones included (a customer below zero counts as 0).
    pub outstanding_points: Long,
    /// outstandingPoints × pointValue, in minor units.
    pub outstanding_value: Long,
    /// Points that expired in the range (breakage).
    pub breakage: Long,
    /// breakage × pointValue, in minor units.
    pub breakage_value: Long,
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
        let figures = state
            .referral_totals
            .get(range, || referrals::totals(&state.db, range))
            .await?;
        Ok(ReferralMetrics {
            figures,
            range,
            point: false,
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
                spend: Long::from(row.spend),
                new_customers: Long::from(row.new_customers),
                cac: row.cac,
            })
            .collect())
    }

    /// The value of customers who signed up in `[from, to)`, referred against the rest and per
    /// channel (admin tokens).
    async fn customer_lifetime_value(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(
            desc = "Count only orders placed within this many days of each signup: 1 to 3,650; all orders to date when absent."
        )]
        horizon_days: Option<i32>,
    ) -> Result<LifetimeValue> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let range = range(from, to)?;
        if let Some(days) = horizon_days {
            crate::input::int_in("horizonDays", i64::from(days), 1..=3650)?;
        }
        let margin = crate::loyalty::settings::load(&state.db)
            .await?
            .gross_margin;
        let value::CohortValue {
            referred,
            other,
            by_channel,
        } = value::cohort(&state.db, range, horizon_days).await?;
        let customers = by_channel
            .iter()
            .map(|(channel, segment)| (channel.clone(), segment.customers))
            .collect();
        let costs = acquisition::costs(&state.db, range, customers).await?;
        let by_channel = by_channel
            .into_iter()
            .map(|(channel, segment)| {
                let clv = segment.clv(margin);
                let cac = costs
                    .iter()
                    .find(|c| c.channel == channel)
                    .and_then(|c| c.cac);
                ChannelValue {
                    clv_to_cac: cac.filter(|c| *c > 0.0).map(|c| clv / c),
                    cac,
                    clv,
                    channel,
                }
            })
            .collect();
        let (referred, non_referred) = (
            CustomerValue::of(referred, margin),
            CustomerValue::of(other, margin),
        );
        Ok(LifetimeValue {
            lift: (non_referred.clv > 0.0).then(|| referred.clv / non_referred.clv),
            referred,
            non_referred,
            by_channel,
        })
    }

    /// Retention of the customers who signed up in `[from, to)`, per signup month and referred
    /// or not (admin tokens).
    async fn retention(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RetentionCohort>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(retention::cohorts(&state.db, range(from, to)?)
            .await?
            .into_iter()
            .map(|cohort| RetentionCohort {
                months: cohort.shares(),
                twelve_month_retention: cohort.twelve_month_retention(),
                month: cohort.month,
                referred: cohort.referred,
                customers: Long::from(cohort.customers),
            })
            .collect())
    }

    /// Reward cost against the extra revenue of referred customers who signed up in `[from, to)`
    /// (admin tokens). Assumptions: docs/metrics.md.
    async fn program_economics(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ProgramEconomics> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let economics = value::economics(&state.db, range(from, to)?).await?;
        Ok(ProgramEconomics {
            reward_cost: Long::from(economics.reward_cost),
            referred_customers: Long::from(economics.referred_customers),
            referred_revenue: Long::from(economics.referred_revenue),
            baseline_revenue: economics.baseline_revenue,
            incremental_revenue: economics.incremental_revenue(),
            gross_margin: economics.gross_margin,
            roi: economics.roi(),
        })
    }

    /// Points held now and their value; breakage over `[from, to)` (admin tokens).
    async fn points_liability(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PointsLiability> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let figures = liability::liability(&state.db, range(from, to)?).await?;
        let value = |points: i64| Long::from(i128::from(points) * i128::from(figures.point_value));
        Ok(PointsLiability {
            outstanding_points: Long::from(figures.outstanding_points),
            outstanding_value: value(figures.outstanding_points),
            breakage: Long::from(figures.breakage_points),
            breakage_value: value(figures.breakage_points),
        })
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
