//! The closed sets of values stored as strings, shared by the tables and the GraphQL schema.

use async_graphql::Enum;
use sea_orm::entity::prelude::*;

/// What a reward gives.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RewardKind {
    /// Loyalty points credited to the customer's balance.
    #[sea_orm(string_value = "POINTS")]
    Points,
    /// A coupon for a percentage off (the amount is the percent, 1 to 100).
    #[sea_orm(string_value = "PERCENT_COUPON")]
    PercentCoupon,
    /// A coupon for a fixed amount off, in minor units of the program currency.
    #[sea_orm(string_value = "FIXED_COUPON")]
    FixedCoupon,
    /// Store credit, in minor units of the program currency, applied with its code.
    #[sea_orm(string_value = "STORE_CREDIT")]
    StoreCredit,
}

/// Who a reward is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RewardSide {
    /// The customer who shared the code.
    #[sea_orm(string_value = "REFERRER")]
    Referrer,
    /// The friend who signed up with it.
    #[sea_orm(string_value = "REFEREE")]
    Referee,
    /// A referrer's bonus for reaching a number of successful referrals.
    #[sea_orm(string_value = "MILESTONE")]
    Milestone,
    /// A discount sent to win back an abandoned cart.
    #[sea_orm(string_value = "CART")]
    Cart,
    /// A catalog reward the customer bought with points.
    #[sea_orm(string_value = "REDEMPTION")]
    Redemption,
}

/// Where a reward stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RewardStatus {
    /// Earned, but held until the campaign's hold period passes.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Given to the customer: points credited, coupon usable.
    #[sea_orm(string_value = "ISSUED")]
    Issued,
    /// The coupon was used at checkout.
    #[sea_orm(string_value = "REDEEMED")]
    Redeemed,
    /// Taken back, because the qualifying purchase was refunded.
    #[sea_orm(string_value = "REVERSED")]
    Reversed,
}

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ReferralStatus {
    /// The friend signed up; waiting for a qualifying first order.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The friend's order qualified; rewards are held or waiting for a review.
    #[sea_orm(string_value = "QUALIFIED")]
    Qualified,
    /// Rewards were issued to both sides.
    #[sea_orm(string_value = "REWARDED")]
    Rewarded,
    /// A rule refused the referral; see `rejectionReason` and `decisions`.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// The qualifying order was refunded and the rewards taken back.
    #[sea_orm(string_value = "REVERSED")]
    Reversed,
}

/// Why a referral was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RejectionReason {
    /// The friend is the referrer: same customer, an email the referrer has used, or the same device.
    #[sea_orm(string_value = "SELF_REFERRAL")]
    SelfReferral,
    /// The friend had already ordered before the referral.
    #[sea_orm(string_value = "EXISTING_CUSTOMER")]
    ExistingCustomer,
    /// The referrer made more referrals in 24 hours than the daily limit allows.
    #[sea_orm(string_value = "VELOCITY_LIMIT")]
    VelocityLimit,
    /// No campaign was running when the friend signed up.
    #[sea_orm(string_value = "CAMPAIGN_INACTIVE")]
    CampaignInactive,
    /// The friend's first qualifying order came after the campaign's qualification window.
    #[sea_orm(string_value = "WINDOW_EXPIRED")]
    WindowExpired,
    /// An admin reviewed the flagged referral and refused it.
    #[sea_orm(string_value = "REVIEW_REJECTED")]
    ReviewRejected,
}

/// What one rule concluded about a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum DecisionOutcome {
    /// The rule found nothing against the referral.
    #[sea_orm(string_value = "PASSED")]
    Passed,
    /// The rule refused the referral.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// The rule found something suspicious; the referral waits for a review.
    #[sea_orm(string_value = "FLAGGED")]
    Flagged,
    /// The rule left a part out (for example the referrer's reward past the cap).
    #[sea_orm(string_value = "SKIPPED")]
    Skipped,
    /// Something happened to the referral (qualified, rewarded, reversed, reviewed).
    #[sea_orm(string_value = "RECORDED")]
    Recorded,
}

/// Where an email stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EmailStatus {
    /// Waiting to be sent (or to be tried again after a temporary failure).
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Claimed by a worker that is sending it now.
    #[sea_orm(string_value = "SENDING")]
    Sending,
    /// Accepted by the mail server (or written to a file).
    #[sea_orm(string_value = "SENT")]
    Sent,
    /// Given up: a permanent failure, or the last try failed.
    #[sea_orm(string_value = "DEAD")]
    Dead,
    /// Not sent because it no longer applies (the cart was bought, the address unsubscribed).
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

/// Where a cart stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum CartStatus {
    /// The shopper has items in it and has not bought them.
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// The shopper bought: the sequence stopped.
    #[sea_orm(string_value = "CONVERTED")]
    Converted,
    /// The shopper emptied it: the sequence stopped.
    #[sea_orm(string_value = "EMPTIED")]
    Emptied,
}

/// Why an address gets no email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SuppressionReason {
    /// The person unsubscribed: no marketing email.
    #[sea_orm(string_value = "UNSUBSCRIBED")]
    Unsubscribed,
    /// The mail server refused the address permanently: no email at all.
    #[sea_orm(string_value = "BOUNCED")]
    Bounced,
}

impl SuppressionReason {
    /// Whether an address suppressed for this reason may not get an email of this kind: a
    /// bounce stops every email, an unsubscribe only marketing.
    pub fn blocks(self, marketing: bool) -> bool {
        marketing || self == Self::Bounced
    }
}

/// Why a points ledger entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum PointsReason {
    /// Points earned by an order.
    #[sea_orm(string_value = "ORDER")]
    Order,
    /// A referral reward paid in points.
    #[sea_orm(string_value = "REFERRAL_REWARD")]
    ReferralReward,
    /// A referral milestone bonus paid in points.
    #[sea_orm(string_value = "MILESTONE")]
    Milestone,
    /// Points spent on a catalog reward.
    #[sea_orm(string_value = "REDEMPTION")]
    Redemption,
    /// Points that reached their expiry date unspent.
    #[sea_orm(string_value = "EXPIRY")]
    Expiry,
    /// A correction by an operator.
    #[sea_orm(string_value = "ADJUSTMENT")]
    Adjustment,
    /// A referral reward taken back.
    #[sea_orm(string_value = "REVERSAL")]
    Reversal,
    /// Points of an order taken back by its refund.
    #[sea_orm(string_value = "REFUND")]
    Refund,
}

/// What a customer's tier is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TierMetric {
    /// Points earned, less reversals and refunds; spending and expiry do not lower it.
    #[sea_orm(string_value = "LIFETIME_POINTS")]
    LifetimePoints,
    /// Friends referred whose first order qualified (and was not reversed).
    #[sea_orm(string_value = "SUCCESSFUL_REFERRALS")]
    SuccessfulReferrals,
    /// Order amounts less refunds, in minor units.
    #[sea_orm(string_value = "SPEND")]
    Spend,
}

/// Which stretch of time the tier metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TierPeriod {
    /// Everything, ever.
    #[sea_orm(string_value = "LIFETIME")]
    Lifetime,
    /// The last 365 days, sliding.
    #[sea_orm(string_value = "ROLLING_12_MONTHS")]
    Rolling12Months,
    /// Since 1 January of the current year (UTC).
    #[sea_orm(string_value = "CALENDAR_YEAR")]
    CalendarYear,
}

/// What happens when a customer's metric falls below their tier's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TierDowngrade {
    /// Tiers are never lost.
    #[sea_orm(string_value = "NEVER")]
    Never,
    /// After the grace days, down one tier (and again after another grace period).
    #[sea_orm(string_value = "DROP_ONE")]
    DropOne,
    /// After the grace days, straight to the tier the metric supports.
    #[sea_orm(string_value = "RECALCULATE")]
    Recalculate,
}

/// What a badge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum BadgeRule {
    /// Friends referred whose first order qualified.
    #[sea_orm(string_value = "SUCCESSFUL_REFERRALS")]
    SuccessfulReferrals,
    /// Orders placed (fully refunded ones do not count).
    #[sea_orm(string_value = "ORDERS")]
    Orders,
    /// Order amounts less refunds, in minor units.
    #[sea_orm(string_value = "LIFETIME_SPEND")]
    LifetimeSpend,
    /// Lifetime points.
    #[sea_orm(string_value = "LIFETIME_POINTS")]
    LifetimePoints,
    /// The longest run of consecutive calendar months with at least one order.
    #[sea_orm(string_value = "ORDER_STREAK_MONTHS")]
    OrderStreakMonths,
}

/// What a leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum LeaderboardMetric {
    /// Friends referred whose first order qualified in the range (reversed ones, and flagged ones
    /// refused at review, do not count).
    #[sea_orm(string_value = "SUCCESSFUL_REFERRALS")]
    SuccessfulReferrals,
    /// Points earned in the range, less reversals and refunds.
    #[sea_orm(string_value = "POINTS_EARNED")]
    PointsEarned,
}
