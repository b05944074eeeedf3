//! The record of every rule checked on a referral and what it concluded, so support can answer
//! "why did I not get my reward".

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::effects::{self, Effect};
use crate::entities::enums::DecisionOutcome;
use crate::entities::referral_decision as decision;
use crate::error::{AppError, DbContext};

/// The rules and events a decision can name.
pub mod rule {
    pub const SELF_REFERRAL: &str = "SELF_REFERRAL";
    pub const CAMPAIGN_ACTIVE: &str = "CAMPAIGN_ACTIVE";
    pub const EXISTING_CUSTOMER: &str = "EXISTING_CUSTOMER";
    pub const VELOCITY_LIMIT: &str = "VELOCITY_LIMIT";
    pub const SAME_IP: &str = "SAME_IP";
    pub const IP_BURST: &str = "IP_BURST";
    pub const MIN_ORDER_AMOUNT: &str = "MIN_ORDER_AMOUNT";
    pub const QUALIFY_WINDOW: &str = "QUALIFY_WINDOW";
    pub const QUALIFICATION: &str = "QUALIFICATION";
    pub const REFERRER_CAP: &str = "REFERRER_CAP";
    pub const MILESTONE: &str = "MILESTONE";
    pub const REWARDS: &str = "REWARDS";
    pub const REFUND: &str = "REFUND";
    pub const REVIEW: &str = "REVIEW";
}

/// One conclusion, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: &'static str,
    pub outcome: DecisionOutcome,
    pub detail: String,
}

impl Decision {
    pub fn new(rule: &'static str, outcome: DecisionOutcome, detail: impl Into<String>) -> Self {
        Self {
            rule,
            outcome,
            detail: detail.into(),
        }
    }
}

/// Records `decision` with the transaction's other effects (`crate::effects`).
pub async fn record(
    db: &impl ConnectionTrait,
    referral_id: Uuid,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let model = decision::Model {
        id: Uuid::now_v7(),
        referral_id,
        rule: decision.rule.to_owned(),
        outcome: decision.outcome,
        detail: decision.detail,
        decided_at: now,
    };
    effects::write(db, Effect::Decision(model)).await
}

pub async fn record_all(
    db: &impl ConnectionTrait,
    referral_id: Uuid,
    decisions: Vec<Decision>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    for decision in decisions {
        record(db, referral_id, decision, now).await?;
    }
    Ok(())
}

/// A referral's decisions in the order they were taken.
pub async fn list(
    db: &impl ConnectionTrait,
    referral_id: Uuid,
) -> Result<Vec<decision::Model>, AppError> {
    decision::Entity::find()
        .filter(decision::Column::ReferralId.eq(referral_id))
        .order_by_asc(decision::Column::Id)
        .all(db)
        .await
        .context("listing referral decisions")
}
