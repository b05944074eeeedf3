//! Qualification: the friend's first order that meets the campaign's minimum, inside the window,
//! moves the referral PENDING → QUALIFIED (a conditional update, so exactly one order wins) and
//! pays both sides.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryResult, QuerySelect};

use crate::campaigns::service as campaigns;
use crate::customers::locks::Held;
use crate::db::count_up_to;
use crate::effects;
use crate::entities::enums::{
    DecisionOutcome, LeaderboardMetric, ReferralStatus, RejectionReason, RewardSide, RewardStatus,
};
use crate::entities::{campaign, order, referral, reward};
use crate::error::{AppError, DbContext};
use crate::live;
use crate::loyalty::leaderboard;
use crate::referrals::decisions::{self, Decision, rule};
use crate::referrals::pending::{self, Pending};
use crate::referrals::qualification_rules::{self, Gate};
use crate::rewards::service::{self as rewards, Grant};
use crate::rollups;
use sea_orm::QueryTrait;
use uuid::Uuid;

/// What an order did to the buyer's referral.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The referrer, when this order qualified their referral.
    pub qualified_for: Option<Uuid>,
    /// The rewards issued at once, for the caller to announce as ReferralRewarded.
    pub rewards: Vec<reward::Model>,
}

/// Applies a newly recorded order to the buyer's referral, if they have a pending one. `held`
/// holds the buyer and their referrer.
///
/// `snapshot`: the buyer's rows of the order's snapshot, when it was read with
/// [`pending::join`]; the referral is read otherwise.
pub async fn on_order(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    clock_skew: Duration,
    order: &order::Model,
    snapshot: Option<&[QueryResult]>,
) -> Result<Outcome, AppError> {
    if held.has_referrer(order.customer_id) == Some(false) {
        // Nobody referred the buyer: no referral to read.
        return Ok(Outcome::default());
    }
    let pending = match snapshot {
        Some(rows) => pending::from_rows(rows)?,
        None => pending::read(txn, order.customer_id).await?,
    };
    let Some(Pending {
        referral,
        campaign,
        shared_email,
        decisions: taken,
    }) = pending
    else {
        return Ok(Outcome::default());
    };
    // The referral's events carry its decisions: those taken before this order came with it.
    effects::decisions_known(referral.id, taken);
    if referral.campaign_id.is_none() {
        return Ok(Outcome::default());
    }
    let campaign = campaign
        .ok_or_else(|| AppError::internal("qualifying a referral", "its campaign is missing"))?;
    let (referrer, referee) = (
        held.customer(referral.referrer_id)?,
        held.customer(referral.referee_id)?,
    );

    let gate = qualification_rules::decide(
        &referral,
        &campaign,
        (referrer, referee),
        shared_email.as_deref(),
        order,
        clock_skew,
    );
    // Paid in full now (no review, no hold): the referral goes PENDING → REWARDED in one
    // write, through QUALIFIED as its events and decisions tell.
    let paid_now = match gate {
        Gate::Reject { reason, decision } => {
            reject(txn, now, &referral, reason, decision).await?;
            return Ok(Outcome::default());
        }
        Gate::Skip { decision } => {
            decisions::record(txn, referral.id, decision, now).await?;
            return Ok(Outcome::default());
        }
        Gate::Qualify { paid_now } => paid_now,
    };
    let mut qualify = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(if paid_now {
                ReferralStatus::Rewarded
            } else {
                ReferralStatus::Qualified
            }),
        )
        .col_expr(referral::Column::QualifyingOrderId, Expr::value(order.id))
        .col_expr(referral::Column::QualifiedAt, Expr::value(now))
        .col_expr(referral::Column::UpdatedAt, Expr::value(now));
    if paid_now {
        qualify = qualify.col_expr(referral::Column::RewardedAt, Expr::value(now));
    }
    let won = qualify
        .filter(referral::Column::Id.eq(referral.id))
        .filter(referral::Column::Status.eq(ReferralStatus::Pending))
        .exec(txn)
        .await
        .context("qualifying a referral")?
        .rows_affected
        == 1;
    if !won {
        // Another order qualified it first.
        return Ok(Outcome::default());
    }
    let qualified_for = Some(referral.referrer_id);
    live::referral_changed(txn, referral.id, ReferralStatus::Qualified, now).await?;
    leaderboard::add(
        txn,
        LeaderboardMetric::SuccessfulReferrals,
        referral.referrer_id,
        now,
        1,
        now,
    )
    .await?;
    decisions::record(
        txn,
        referral.id,
        Decision::new(
            rule::QUALIFICATION,
            DecisionOutcome::Passed,
            format!(
                "order {} of {} qualified the referral",
                order.external_id, order.amount
            ),
        ),
        now,
    )
    .await?;
    if referral.flagged {
        let detail = format!(
            "flagged ({}): rewards wait for an admin's review",
            referral.flag_reason.as_deref().unwrap_or("suspicious")
        );
        let decision = Decision::new(rule::REVIEW, DecisionOutcome::Flagged, detail);
        decisions::record(txn, referral.id, decision, now).await?;
        return Ok(Outcome {
            qualified_for,
            rewards: Vec::new(),
        });
    }
    Ok(Outcome {
        qualified_for,
        rewards: pay(txn, held, now, &referral, &campaign, paid_now).await?,
    })
}

async fn reject(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    referral: &referral::Model,
    reason: RejectionReason,
    decision: Decision,
) -> Result<(), AppError> {
    let changed = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Rejected),
        )
        .col_expr(referral::Column::RejectionReason, Expr::value(reason))
        .col_expr(referral::Column::UpdatedAt, Expr::value(now))
        .filter(referral::Column::Id.eq(referral.id))
        .filter(referral::Column::Status.eq(ReferralStatus::Pending))
        .exec(txn)
        .await
        .context("rejecting a referral")?
        .rows_affected;
    if changed == 1 {
        rollups::referral_changed(txn, referral.referee_id).await?;
        decisions::record(txn, referral.id, decision, now).await?;
        live::referral_changed(txn, referral.id, ReferralStatus::Rejected, now).await?;
    }
    Ok(())
}

/// Creates both sides' rewards (and a milestone bonus when one is reached) for a QUALIFIED
/// referral, issued at once or held for the campaign's hold days. Each reward's natural key makes
/// this safe to call twice. Returns the rewards issued now, for the caller to announce as
/// ReferralRewarded. `marked_rewarded`: the caller already moved the referral to REWARDED in
/// the write that qualified it (rewards issued at once), so only its event is left to publish.
pub async fn pay(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    referral: &referral::Model,
    campaign: &campaign::Model,
    marked_rewarded: bool,
) -> Result<Vec<reward::Model>, AppError> {
    // The referrer's row is the lock that serializes the cap and milestone counts of one
    // referrer's referrals qualifying at the same time.
    held.customer(referral.referrer_id)?;
    let release_at =
        (campaign.hold_days > 0).then(|| now + Duration::days(i64::from(campaign.hold_days)));
    let mut notes = Vec::new();
    // Every reward this payment makes goes in one insert, in this order: the friend's, the
    // referrer's (unless capped), the milestone bonuses reached.
    let mut grants = vec![Grant {
        customer_id: referral.referee_id,
        referral_id: Some(referral.id),
        side: RewardSide::Referee,
        rule: campaigns::referee_reward(campaign),
        dedupe_key: format!("referral:{}:REFEREE", referral.id),
        milestone: None,
        release_at,
        customer: Some(held.customer(referral.referee_id)?.clone()),
    }];

    // Caps and milestones count within this campaign: a new campaign starts every referrer at 0.
    // Each count is read only when the campaign has what it is for, and no further than the
    // threshold it is compared with, so it does not grow with the referrer's history.
    let cap = campaign
        .max_rewards_per_referrer
        .map(|cap| u64::try_from(cap).unwrap_or_default());
    let earned = match cap {
        Some(cap) => Some(referrer_rewards_in(txn, referral.referrer_id, campaign.id, cap).await?),
        None => None,
    };
    match (cap, earned) {
        (Some(cap), Some(earned)) if earned >= cap => {
            notes.push(Decision::new(
                rule::REFERRER_CAP,
                DecisionOutcome::Skipped,
                format!("the referrer already earned the {cap} referral rewards the campaign caps them at, so only the friend is rewarded"),
            ));
        }
        _ => grants.push(Grant {
            customer_id: referral.referrer_id,
            referral_id: Some(referral.id),
            side: RewardSide::Referrer,
            rule: campaigns::referrer_reward(campaign),
            dedupe_key: format!("referral:{}:REFERRER", referral.id),
            milestone: None,
            release_at,
            customer: Some(held.customer(referral.referrer_id)?.clone()),
        }),
    }

    let milestones = campaigns::milestones(campaign);
    let highest = milestones
        .iter()
        .filter_map(|milestone| u64::try_from(milestone.referrals).ok())
        .max();
    let successful = match highest {
        None => 0,
        Some(highest) => successful_in(txn, referral.referrer_id, campaign.id, highest).await?,
    };
    for milestone in milestones {
        // Reached at `>=`, so a count that passed N while another referral was reversed still
        // pays it; the reward's unique key pays it once.
        if u64::try_from(milestone.referrals).is_ok_and(|n| n > successful) {
            continue;
        }
        grants.push(Grant {
            customer_id: referral.referrer_id,
            referral_id: Some(referral.id),
            side: RewardSide::Milestone,
            rule: milestone.reward,
            dedupe_key: format!(
                "milestone:{}:{}:{}",
                referral.referrer_id, campaign.id, milestone.referrals
            ),
            milestone: Some(milestone.referrals),
            release_at,
            customer: Some(held.customer(referral.referrer_id)?.clone()),
        });
    }
    let mut granted_now: Vec<reward::Model> = rewards::grant_all(txn, now, grants)
        .await?
        .into_iter()
        .flatten()
        .collect();
    for bonus in granted_now
        .iter()
        .filter(|r| r.side == RewardSide::Milestone)
    {
        notes.push(Decision::new(
            rule::MILESTONE,
            DecisionOutcome::Recorded,
            format!(
                "the referrer reached {} successful referrals: milestone bonus",
                bonus.milestone.unwrap_or_default()
            ),
        ));
    }

    match release_at {
        None => {
            if marked_rewarded {
                live::referral_changed(txn, referral.id, ReferralStatus::Rewarded, now).await?;
            } else {
                mark_rewarded(txn, now, referral.id).await?;
            }
            notes.push(Decision::new(
                rule::REWARDS,
                DecisionOutcome::Recorded,
                "rewards issued",
            ));
        }
        Some(at) => notes.push(Decision::new(
            rule::REWARDS,
            DecisionOutcome::Recorded,
            format!(
                "rewards held until {} ({} hold days)",
                at.to_rfc3339(),
                campaign.hold_days
            ),
        )),
    }
    decisions::record_all(txn, referral.id, notes, now).await?;
    granted_now.retain(|r| r.status == RewardStatus::Issued);
    Ok(granted_now)
}

/// The referrer's rewards for referrals of the campaign that were not reversed, counted up to
/// `up_to`.
async fn referrer_rewards_in(
    txn: &impl ConnectionTrait,
    referrer_id: Uuid,
    campaign_id: Uuid,
    up_to: u64,
) -> Result<u64, AppError> {
    let campaign_referrals = referral::Entity::find()
        .select_only()
        .column(referral::Column::Id)
        .filter(referral::Column::ReferrerId.eq(referrer_id))
        .filter(referral::Column::CampaignId.eq(campaign_id))
        .into_query();
    let rewards = reward::Entity::find()
        .filter(reward::Column::ReferralId.in_subquery(campaign_referrals))
        .filter(reward::Column::Side.eq(RewardSide::Referrer))
        .filter(reward::Column::Status.ne(RewardStatus::Reversed));
    count_up_to(txn, rewards, up_to)
        .await
        .context("counting a referrer's rewards")
}

/// The referrer's unflagged referrals of the campaign that qualified and were not reversed,
/// counted up to `up_to`.
async fn successful_in(
    txn: &impl ConnectionTrait,
    referrer_id: Uuid,
    campaign_id: Uuid,
    up_to: u64,
) -> Result<u64, AppError> {
    let successful = referral::Entity::find()
        .filter(referral::Column::ReferrerId.eq(referrer_id))
        .filter(referral::Column::CampaignId.eq(campaign_id))
        .filter(
            referral::Column::Status.is_in([ReferralStatus::Qualified, ReferralStatus::Rewarded]),
        )
        .filter(referral::Column::Flagged.eq(false));
    count_up_to(txn, successful, up_to)
        .await
        .context("counting a referrer's successful referrals")
}

/// QUALIFIED → REWARDED, once.
pub async fn mark_rewarded(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    referral_id: uuid::Uuid,
) -> Result<bool, AppError> {
    let changed = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Rewarded),
        )
        .col_expr(referral::Column::RewardedAt, Expr::value(now))
        .col_expr(referral::Column::UpdatedAt, Expr::value(now))
        .filter(referral::Column::Id.eq(referral_id))
        .filter(referral::Column::Status.eq(ReferralStatus::Qualified))
        .exec(txn)
        .await
        .context("marking a referral rewarded")?
        .rows_affected;
    if changed == 1 {
        live::referral_changed(txn, referral_id, ReferralStatus::Rewarded, now).await?;
    }
    Ok(changed == 1)
}
