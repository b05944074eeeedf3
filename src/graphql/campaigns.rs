//! GraphQL types and resolvers for campaigns.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::campaigns::service::{
    self, CampaignRules, DEFAULT_QUALIFY_WITHIN_DAYS, Milestone, RewardRule,
};
use crate::entities::campaign;
use crate::entities::enums::RewardKind;
use crate::error::AppError;
use crate::graphql::context::{require, state};
use crate::graphql::scalars::Long;

/// A reward to give: its kind and amount.
#[derive(InputObject)]
pub struct RewardRuleInput {
    /// What the reward gives.
    pub kind: RewardKind,
    /// Points, a percent (1–100) for PERCENT_COUPON, or minor units of the program currency:
    /// 1 to 1,000,000,000.
    pub amount: i32,
}

/// A bonus for the referrer at their N-th successful referral.
#[derive(InputObject)]
pub struct MilestoneInput {
    /// The number of successful referrals that earns the bonus: 1 to 100,000.
    pub referrals: i32,
    /// The bonus.
    pub reward: RewardRuleInput,
}

/// The rules of a double-sided referral campaign.
#[derive(InputObject)]
pub struct CampaignInput {
    /// A name for operators, at most 200 characters.
    pub name: String,
    /// What the customer who shared the code earns.
    pub referrer_reward: RewardRuleInput,
    /// What the friend who signed up with the code earns.
    pub referee_reward: RewardRuleInput,
    /// The smallest first order that qualifies, in minor units (0 to 1,000,000,000); 0 when
    /// absent.
    pub min_order_amount: Option<i32>,
    /// Days after signup within which the friend's first qualifying order must come (1 to
    /// 3,650); 30 when absent.
    pub qualify_within_days: Option<i32>,
    /// Days rewards are held before they are issued, and reversed if the order is refunded
    /// first (0 to 365); 0 when absent.
    pub hold_days: Option<i32>,
    /// Most referral rewards one referrer can earn (1 to 100,000); null for no cap.
    pub max_rewards_per_referrer: Option<i32>,
    /// Bonuses for the referrer at the N-th successful referral; at most 20.
    pub milestones: Option<Vec<MilestoneInput>>,
    /// Where share links land: an http(s) URL of at most 2,048 characters; the public URL
    /// when absent.
    pub landing_url: Option<String>,
    /// When the campaign starts; at once when absent.
    pub starts_at: Option<DateTime<Utc>>,
    /// When the campaign ends; never when absent.
    pub ends_at: Option<DateTime<Utc>>,
}

impl CampaignInput {
    fn into_rules(self) -> Result<CampaignRules, AppError> {
        let milestones = self
            .milestones
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                Ok(Milestone {
                    referrals: m.referrals,
                    reward: RewardRule::parse(
                        "milestones.reward",
                        m.reward.kind,
                        i64::from(m.reward.amount),
                    )?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        CampaignRules {
            name: self.name,
            referrer_reward: RewardRule::parse(
                "referrerReward",
                self.referrer_reward.kind,
                i64::from(self.referrer_reward.amount),
            )?,
            referee_reward: RewardRule::parse(
                "refereeReward",
                self.referee_reward.kind,
                i64::from(self.referee_reward.amount),
            )?,
            min_order_amount: self.min_order_amount.map_or(0, i64::from),
            qualify_within_days: self
                .qualify_within_days
                .unwrap_or(DEFAULT_QUALIFY_WITHIN_DAYS),
            hold_days: self.hold_days.unwrap_or(0),
            max_rewards_per_referrer: self.max_rewards_per_referrer,
            milestones,
            landing_url: self.landing_url,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
        }
        .check()
    }
}

/// A reward: its kind and amount.
#[derive(SimpleObject, Clone, Copy)]
#[graphql(name = "RewardRule")]
pub struct RewardRuleView {
    /// What the reward gives.
    pub kind: RewardKind,
    /// Points, a percent, or minor units of the program currency.
    pub amount: Long,
}

impl From<RewardRule> for RewardRuleView {
    fn from(rule: RewardRule) -> Self {
        Self {
            kind: rule.kind,
            amount: Long::from(rule.amount),
        }
    }
}

/// A bonus for the referrer at their N-th successful referral.
#[derive(SimpleObject)]
#[graphql(name = "Milestone")]
pub struct MilestoneView {
    /// The number of successful referrals that earns the bonus.
    pub referrals: i32,
    /// The bonus.
    pub reward: RewardRuleView,
}

pub struct Campaign(pub campaign::Model);

/// The rules referrals are paid under. The newest campaign whose window contains now is active.
#[Object]
impl Campaign {
    /// The campaign's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// A name for operators.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the customer who shared the code earns.
    async fn referrer_reward(&self) -> RewardRuleView {
        service::referrer_reward(&self.0).into()
    }
    /// What the friend who signed up with the code earns.
    async fn referee_reward(&self) -> RewardRuleView {
        service::referee_reward(&self.0).into()
    }
    /// The smallest first order that qualifies, in minor units.
    async fn min_order_amount(&self) -> Long {
        Long::from(self.0.min_order_amount)
    }
    /// Days after signup within which the first qualifying order must come.
    async fn qualify_within_days(&self) -> i32 {
        self.0.qualify_within_days
    }
    /// Days rewards are held before they are issued.
    async fn hold_days(&self) -> i32 {
        self.0.hold_days
    }
    /// Most referral rewards one referrer can earn; null for no cap.
    async fn max_rewards_per_referrer(&self) -> Option<i32> {
        self.0.max_rewards_per_referrer
    }
    /// Bonuses for the referrer at the N-th successful referral.
    async fn milestones(&self) -> Vec<MilestoneView> {
        service::milestones(&self.0)
            .into_iter()
            .map(|m| MilestoneView {
                referrals: m.referrals,
                reward: m.reward.into(),
            })
            .collect()
    }
    /// Where share links land; null means the public URL.
    async fn landing_url(&self) -> Option<&str> {
        self.0.landing_url.as_deref()
    }
    /// When the campaign starts; null means it always has.
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.starts_at
    }
    /// When the campaign ends; null means never.
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.ends_at
    }
    /// When the campaign was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Whether the campaign's window contains now (the active campaign is the newest of these).
    async fn running(&self, ctx: &Context<'_>) -> Result<bool> {
        let now = state(ctx)?.clock.now();
        Ok(service::is_running(&self.0, now))
    }
}

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    /// Every campaign, newest first (admin tokens).
    async fn campaigns(&self, ctx: &Context<'_>) -> Result<Vec<Campaign>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(service::list(&state.db)
            .await?
            .into_iter()
            .map(Campaign)
            .collect())
    }

    /// The campaign new referrals are made under, if one is running (anyone).
    async fn active_campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        let state = state(ctx)?;
        Ok(service::active(&state.db, state.clock.now())
            .await?
            .map(Campaign))
    }
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    /// Creates a campaign (admin tokens). It becomes the active one while its window contains now
    /// and no newer campaign's does.
    async fn create_campaign(&self, ctx: &Context<'_>, input: CampaignInput) -> Result<Campaign> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let rules = input.into_rules()?;
        Ok(Campaign(
            service::create(&state.db, state.clock.as_ref(), rules).await?,
        ))
    }

    /// Replaces a campaign's rules (admin tokens). Referrals already paid keep what they got.
    async fn update_campaign(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: CampaignInput,
    ) -> Result<Campaign> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let id = crate::graphql::context::parse_id("id", &id)?;
        let rules = input.into_rules()?;
        Ok(Campaign(
            service::update(&state.db, state.clock.as_ref(), id, rules).await?,
        ))
    }
}
