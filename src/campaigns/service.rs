//! The rules of campaigns: what is valid, and which campaign is active.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::begin_write;
use crate::entities::campaign;
use crate::entities::enums::RewardKind;
use crate::error::{AppError, DbContext};
use crate::input::{self, MAX_AMOUNT};

/// Most milestones one campaign may have.
const MAX_MILESTONES: usize = 20;
/// Largest referral count a cap or a milestone may name.
const MAX_REFERRAL_COUNT: i64 = 100_000;

/// A reward: what kind, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardRule {
    pub kind: RewardKind,
    /// Points, a percent (1–100), or minor units of the program currency.
    pub amount: i64,
}

impl RewardRule {
    /// Checks the amount against the kind; `field` names the input for the error.
    pub fn parse(field: &str, kind: RewardKind, amount: i64) -> Result<Self, AppError> {
        let field = format!("{field}.amount");
        if amount <= 0 {
            return Err(AppError::bad_input(
                &field,
                format!("{field} must be greater than 0"),
            ));
        }
        if kind == RewardKind::PercentCoupon && amount > 100 {
            return Err(AppError::bad_input(
                &field,
                format!("{field} is a percent for PERCENT_COUPON and cannot be over 100"),
            ));
        }
        if amount > MAX_AMOUNT {
            return Err(AppError::bad_input(
                &field,
                format!("{field} must be at most {MAX_AMOUNT}"),
            ));
        }
        Ok(Self { kind, amount })
    }
}

/// A bonus for the referrer at their N-th successful referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub referrals: i32,
    #[serde(flatten)]
    pub reward: RewardRule,
}

/// A campaign's rules, checked.
#[derive(Debug, Clone)]
pub struct CampaignRules {
    pub name: String,
    pub referrer_reward: RewardRule,
    pub referee_reward: RewardRule,
    pub min_order_amount: i64,
    pub qualify_within_days: i32,
    pub hold_days: i32,
    pub max_rewards_per_referrer: Option<i32>,
    pub milestones: Vec<Milestone>,
    pub landing_url: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

pub const DEFAULT_QUALIFY_WITHIN_DAYS: i32 = 30;

impl CampaignRules {
    /// Checks the values that do not depend on one another's kind: ranges, order of dates, URL.
    pub fn check(self) -> Result<Self, AppError> {
        let name = input::name("name", &self.name)?;
        input::int_in("minOrderAmount", self.min_order_amount, 0..=MAX_AMOUNT)?;
        input::optional_moment("startsAt", self.starts_at)?;
        input::optional_moment("endsAt", self.ends_at)?;
        if !(1..=3650).contains(&self.qualify_within_days) {
            return Err(AppError::bad_input(
                "qualifyWithinDays",
                "qualifyWithinDays must be between 1 and 3650",
            ));
        }
        if !(0..=365).contains(&self.hold_days) {
            return Err(AppError::bad_input(
                "holdDays",
                "holdDays must be between 0 and 365",
            ));
        }
        if let Some(cap) = self.max_rewards_per_referrer {
            input::int_in(
                "maxRewardsPerReferrer",
                i64::from(cap),
                1..=MAX_REFERRAL_COUNT,
            )?;
        }
        input::list_len("milestones", self.milestones.len(), MAX_MILESTONES)?;
        let mut seen = std::collections::HashSet::new();
        for milestone in &self.milestones {
            input::int_in(
                "milestones.referrals",
                i64::from(milestone.referrals),
                1..=MAX_REFERRAL_COUNT,
            )?;
            if !seen.insert(milestone.referrals) {
                return Err(AppError::bad_input(
                    "milestones.referrals",
                    format!(
                        "two milestones are set at {} referrals",
                        milestone.referrals
                    ),
                ));
            }
        }
        let landing_url = input::optional_http_url("landingUrl", self.landing_url.as_deref())?;
        if let (Some(starts), Some(ends)) = (self.starts_at, self.ends_at)
            && ends <= starts
        {
            return Err(AppError::bad_input(
                "endsAt",
                "endsAt must be after startsAt",
            ));
        }
        Ok(Self {
            name,
            landing_url,
            ..self
        })
    }

    fn apply(&self, model: &mut campaign::ActiveModel) -> Result<(), AppError> {
        model.name = Set(self.name.clone());
        model.referrer_reward_kind = Set(self.referrer_reward.kind);
        model.referrer_reward_amount = Set(self.referrer_reward.amount);
        model.referee_reward_kind = Set(self.referee_reward.kind);
        model.referee_reward_amount = Set(self.referee_reward.amount);
        model.min_order_amount = Set(self.min_order_amount);
        model.qualify_within_days = Set(self.qualify_within_days);
        model.hold_days = Set(self.hold_days);
        model.max_rewards_per_referrer = Set(self.max_rewards_per_referrer);
        model.milestones = Set(serde_json::to_value(&self.milestones)
            .map_err(|e| AppError::internal("encoding milestones", e))?);
        model.landing_url = Set(self.landing_url.clone());
        model.starts_at = Set(self.starts_at);
        model.ends_at = Set(self.ends_at);
        Ok(())
    }
}

pub fn referrer_reward(campaign: &campaign::Model) -> RewardRule {
    RewardRule {
        kind: campaign.referrer_reward_kind,
        amount: campaign.referrer_reward_amount,
    }
}

pub fn referee_reward(campaign: &campaign::Model) -> RewardRule {
    RewardRule {
        kind: campaign.referee_reward_kind,
        amount: campaign.referee_reward_amount,
    }
}

pub fn milestones(campaign: &campaign::Model) -> Vec<Milestone> {
    serde_json::from_value(campaign.milestones.clone()).unwrap_or_default()
}

/// Whether the campaign's window contains `now`.
pub fn is_running(campaign: &campaign::Model, now: DateTime<Utc>) -> bool {
    campaign.starts_at.is_none_or(|s| s <= now) && campaign.ends_at.is_none_or(|e| now < e)
}

pub async fn create(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    rules: CampaignRules,
) -> Result<campaign::Model, AppError> {
    let now = clock.now();
    let mut model = campaign::ActiveModel {
        id: Set(Uuid::now_v7()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    rules.apply(&mut model)?;
    model.insert(db).await.context("creating a campaign")
}

pub async fn update(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    id: Uuid,
    rules: CampaignRules,
) -> Result<campaign::Model, AppError> {
    let txn = begin_write(db)
        .await
        .context("starting a campaign update")?;
    let existing = campaign::Entity::find_by_id(id)
        .one(&txn)
        .await
        .context("loading a campaign")?
        .ok_or_else(|| AppError::NotFound(format!("no campaign has id {id}")))?;
    let mut model = existing.into_active_model();
    rules.apply(&mut model)?;
    model.updated_at = Set(clock.now());
    let updated = model.update(&txn).await.context("updating a campaign")?;
    txn.commit().await.context("committing a campaign update")?;
    Ok(updated)
}

/// All campaigns, newest first.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<campaign::Model>, AppError> {
    campaign::Entity::find()
        .order_by_desc(campaign::Column::CreatedAt)
        .order_by_desc(campaign::Column::Id)
        .all(db)
        .await
        .context("listing campaigns")
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<campaign::Model>, AppError> {
    campaign::Entity::find_by_id(id)
        .one(db)
        .await
        .context("loading a campaign")
}

/// The newest campaign whose window contains `now`.
pub async fn active(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Option<campaign::Model>, AppError> {
    campaign::Entity::find()
        .filter(
            Condition::any()
                .add(campaign::Column::StartsAt.is_null())
                .add(campaign::Column::StartsAt.lte(now)),
        )
        .filter(
            Condition::any()
                .add(campaign::Column::EndsAt.is_null())
                .add(campaign::Column::EndsAt.gt(now)),
        )
        .order_by_desc(campaign::Column::CreatedAt)
        .order_by_desc(campaign::Column::Id)
        .one(db)
        .await
        .context("finding the active campaign")
}
