//! Reading referrals, and the admin's review of flagged ones.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::campaigns::service as campaigns;
use crate::clock::Clock;
use crate::customers::locks;
use crate::db::{begin_write, keyset_page};
use crate::entities::enums::{DecisionOutcome, LeaderboardMetric, ReferralStatus, RejectionReason};
use crate::entities::referral;
use crate::error::{AppError, DbContext};
use crate::events::{Reactions, ReferralRewarded};
use crate::live;
use crate::referrals::decisions::{self, Decision, rule};
use crate::referrals::qualification;
use crate::rollups;

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<referral::Model>, AppError> {
    referral::Entity::find_by_id(id)
        .one(db)
        .await
        .context("loading a referral")
}

/// The referral that brought `referee_id`, if any.
/// The referral an order qualified, whatever its status since.
pub async fn qualified_by(
    db: &impl ConnectionTrait,
    order_id: Uuid,
) -> Result<Option<referral::Model>, AppError> {
    referral::Entity::find()
        .filter(referral::Column::QualifyingOrderId.eq(order_id))
        .one(db)
        .await
        .context("loading the referral an order qualified")
}

pub async fn of_referee(
    db: &impl ConnectionTrait,
    referee_id: Uuid,
) -> Result<Option<referral::Model>, AppError> {
    referral::Entity::find()
        .filter(referral::Column::RefereeId.eq(referee_id))
        .one(db)
        .await
        .context("loading a customer's referral")
}

/// The referrals `referrer_id` made, oldest first.
pub async fn by_referrer(
    db: &impl ConnectionTrait,
    referrer_id: Uuid,
) -> Result<Vec<referral::Model>, AppError> {
    referral::Entity::find()
        .filter(referral::Column::ReferrerId.eq(referrer_id))
        .order_by_asc(referral::Column::Id)
        .all(db)
        .await
        .context("listing a referrer's referrals")
}

/// A page of referrals for admins, oldest first, filtered by status and flag.
pub async fn list(
    db: &DatabaseConnection,
    status: Option<ReferralStatus>,
    flagged: Option<bool>,
    limit: u64,
    after: Option<Uuid>,
) -> Result<(Vec<referral::Model>, bool), AppError> {
    let mut query = referral::Entity::find();
    if let Some(status) = status {
        query = query.filter(referral::Column::Status.eq(status));
    }
    if let Some(flagged) = flagged {
        query = query.filter(referral::Column::Flagged.eq(flagged));
    }
    keyset_page(db, query, referral::Column::Id, limit, after)
        .await
        .context("listing referrals")
}

/// An admin's decision on a flagged referral. Approval lets it go on (and pays it, if it already
/// qualified); refusal rejects it. A referral that is not waiting for review is a CONFLICT.
pub async fn review(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
    id: Uuid,
    approve: bool,
    note: Option<String>,
) -> Result<referral::Model, AppError> {
    let now = clock.now();
    let txn = begin_write(db).await.context("starting a review")?;
    let found = find(&txn, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no referral has id {id}")))?;
    // Both sides before the referral's row, as the friend's order and refunds take them.
    let held = locks::both_sides(&txn, found.referee_id, found.referrer_id).await?;
    let waiting = found.flagged
        && found.reviewed_at.is_none()
        && matches!(
            found.status,
            ReferralStatus::Pending | ReferralStatus::Qualified
        );
    if !waiting {
        return Err(AppError::Conflict(format!(
            "referral {id} is not waiting for a review (status {:?}, flagged {})",
            found.status, found.flagged
        )));
    }
    let mut update = referral::Entity::update_many()
        .col_expr(referral::Column::ReviewedAt, Expr::value(now))
        .col_expr(referral::Column::ReviewNote, Expr::value(note.clone()))
        .col_expr(referral::Column::UpdatedAt, Expr::value(now))
        .filter(referral::Column::Id.eq(id))
        .filter(referral::Column::Status.eq(found.status))
        .filter(referral::Column::ReviewedAt.is_null());
    update = if approve {
        update.col_expr(referral::Column::Flagged, Expr::value(false))
    } else {
        update
            .col_expr(
                referral::Column::Status,
                Expr::value(ReferralStatus::Rejected),
            )
            .col_expr(
                referral::Column::RejectionReason,
                Expr::value(RejectionReason::ReviewRejected),
            )
    };
    let changed = update
        .exec(&txn)
        .await
        .context("recording a review")?
        .rows_affected;
    if changed == 0 {
        return Err(AppError::Conflict(format!(
            "referral {id} was reviewed or changed by another request"
        )));
    }
    if !approve {
        rollups::referral_changed(&txn, found.referee_id).await?;
    }
    if !approve && found.status == ReferralStatus::Qualified {
        // Its qualifying order counted it a success; refused, it is not one. Taken back on the
        // day it was counted, as a reversal does.
        crate::loyalty::leaderboard::add(
            &txn,
            LeaderboardMetric::SuccessfulReferrals,
            found.referrer_id,
            found.qualified_at.unwrap_or(now),
            -1,
            now,
        )
        .await?;
    }
    let verdict = if approve { "approved" } else { "refused" };
    let detail = match &note {
        Some(note) => format!("{verdict} by an admin: {note}"),
        None => format!("{verdict} by an admin"),
    };
    let outcome = if approve {
        DecisionOutcome::Passed
    } else {
        DecisionOutcome::Rejected
    };
    decisions::record(&txn, id, Decision::new(rule::REVIEW, outcome, detail), now).await?;
    let status = if approve {
        found.status
    } else {
        ReferralStatus::Rejected
    };
    live::referral_changed(&txn, id, status, now).await?;
    let reviewed = find(&txn, id)
        .await?
        .ok_or_else(|| AppError::internal("reviewing a referral", "it vanished"))?;
    let campaign = match reviewed.campaign_id {
        Some(campaign_id) => campaigns::find(&txn, campaign_id).await?,
        None => None,
    };
    if approve
        && reviewed.status == ReferralStatus::Qualified
        && let Some(campaign) = campaign
    {
        let rewards = qualification::pay(&txn, &held, now, &reviewed, &campaign, false).await?;
        reactions
            .referral_rewarded(
                &txn,
                ReferralRewarded {
                    rewards: &rewards,
                    held: &held,
                    now,
                },
            )
            .await?;
    }
    let result = find(&txn, id)
        .await?
        .ok_or_else(|| AppError::internal("reviewing a referral", "it vanished"))?;
    txn.commit().await.context("committing a review")?;
    Ok(result)
}
