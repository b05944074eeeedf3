//! An admin's review of a flagged referral, as a workflow: **load** the referral, lock both
//! sides (the one lock order, `customers::locks`) and, for an approval of a qualified
//! referral, its campaign; **decide** ([`decide`], no I/O) whether the referral is waiting for
//! a review and what the verdict changes; **apply** the verdict as one conditional update (a
//! review that lost a race to another is a CONFLICT), the rollup and the leaderboard for a
//! refusal, the rewards for an approval of a referral that already qualified, and the
//! decision and live event in the workflow's batch.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::campaigns::service as campaigns;
use crate::clock::Clock;
use crate::customers::locks;
use crate::db::begin_write;
use crate::effects;
use crate::entities::enums::{DecisionOutcome, LeaderboardMetric, ReferralStatus, RejectionReason};
use crate::entities::referral;
use crate::error::{AppError, DbContext};
use crate::events::{Reactions, ReferralRewarded};
use crate::live;
use crate::loyalty::leaderboard;
use crate::referrals::decisions::{self, Decision, rule};
use crate::referrals::qualification;
use crate::referrals::service::find;
use crate::rollups;

/// What a review changes.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The referral as the review leaves it (before any rewards an approval pays).
    pub reviewed: referral::Model,
    /// The decision recorded on it.
    pub decision: Decision,
    /// A refusal of a referral whose order qualified it: its success is taken back from the
    /// leaderboard on the day it was counted.
    pub success_taken_back: Option<DateTime<Utc>>,
    /// An approval of a referral that already qualified: its rewards are paid now.
    pub pays: bool,
}

/// The verdict on `found`: a CONFLICT unless it is flagged, not reviewed yet, and PENDING or
/// QUALIFIED.
pub fn decide(
    found: &referral::Model,
    approve: bool,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Verdict, AppError> {
    let waiting = found.flagged
        && found.reviewed_at.is_none()
        && matches!(
            found.status,
            ReferralStatus::Pending | ReferralStatus::Qualified
        );
    if !waiting {
        return Err(AppError::Conflict(format!(
            "referral {} is not waiting for a review (status {:?}, flagged {})",
            found.id, found.status, found.flagged
        )));
    }
    let verdict = if approve { "approved" } else { "refused" };
    let detail = match &note {
        Some(note) => format!("{verdict} by an admin: {note}"),
        None => format!("{verdict} by an admin"),
    };
    let mut reviewed = referral::Model {
        reviewed_at: Some(now),
        review_note: note,
        updated_at: now,
        ..found.clone()
    };
    if approve {
        reviewed.flagged = false;
    } else {
        reviewed.status = ReferralStatus::Rejected;
        reviewed.rejection_reason = Some(RejectionReason::ReviewRejected);
    }
    let outcome = if approve {
        DecisionOutcome::Passed
    } else {
        DecisionOutcome::Rejected
    };
    let qualified = found.status == ReferralStatus::Qualified;
    Ok(Verdict {
        reviewed,
        decision: Decision::new(rule::REVIEW, outcome, detail),
        success_taken_back: (!approve && qualified).then(|| found.qualified_at.unwrap_or(now)),
        pays: approve && qualified,
    })
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
    effects::batched(run(db, clock.now(), reactions, id, approve, note)).await
}

async fn run(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    reactions: &impl Reactions,
    id: Uuid,
    approve: bool,
    note: Option<String>,
) -> Result<referral::Model, AppError> {
    let txn = begin_write(db).await.context("starting a review")?;
    let found = find(&txn, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no referral has id {id}")))?;
    // Both sides before the referral's row, as the friend's order and refunds take them.
    let held = locks::both_sides(&txn, found.referee_id, found.referrer_id).await?;
    let verdict = decide(&found, approve, note, now)?;
    let reviewed = &verdict.reviewed;
    let changed = referral::Entity::update_many()
        .col_expr(referral::Column::ReviewedAt, Expr::value(now))
        .col_expr(
            referral::Column::ReviewNote,
            Expr::value(reviewed.review_note.clone()),
        )
        .col_expr(referral::Column::UpdatedAt, Expr::value(now))
        .col_expr(referral::Column::Flagged, Expr::value(reviewed.flagged))
        .col_expr(referral::Column::Status, Expr::value(reviewed.status))
        .col_expr(
            referral::Column::RejectionReason,
            Expr::value(reviewed.rejection_reason),
        )
        .filter(referral::Column::Id.eq(id))
        .filter(referral::Column::Status.eq(found.status))
        .filter(referral::Column::ReviewedAt.is_null())
        .exec(&txn)
        .await
        .context("recording a review")?
        .rows_affected;
    if changed == 0 {
        return Err(AppError::Conflict(format!(
            "referral {id} was reviewed or changed by another request"
        )));
    }
    if reviewed.status == ReferralStatus::Rejected {
        rollups::referral_changed(&txn, found.referee_id).await?;
    }
    if let Some(counted_on) = verdict.success_taken_back {
        // Its qualifying order counted it a success; refused, it is not one. Taken back on the
        // day it was counted, as a reversal does.
        leaderboard::add(
            &txn,
            LeaderboardMetric::SuccessfulReferrals,
            found.referrer_id,
            counted_on,
            -1,
            now,
        )
        .await?;
    }
    decisions::record(&txn, id, verdict.decision.clone(), now).await?;
    live::referral_changed(&txn, id, reviewed.status, now).await?;
    let campaign = match reviewed.campaign_id.filter(|_| verdict.pays) {
        Some(campaign_id) => campaigns::find(&txn, campaign_id).await?,
        None => None,
    };
    if let Some(campaign) = campaign {
        let rewards = qualification::pay(&txn, &held, now, reviewed, &campaign, false).await?;
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
    // As stored (paying may have moved it on to REWARDED; times as the database keeps them).
    let result = find(&txn, id)
        .await?
        .ok_or_else(|| AppError::internal("reviewing a referral", "it vanished"))?;
    effects::flush(&txn).await?;
    txn.commit().await.context("committing a review")?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn flagged(status: ReferralStatus) -> referral::Model {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        referral::Model {
            id: Uuid::from_u128(1),
            referrer_id: Uuid::from_u128(2),
            referee_id: Uuid::from_u128(3),
            campaign_id: Some(Uuid::from_u128(4)),
            code: "ANN".into(),
            status,
            rejection_reason: None,
            flagged: true,
            flag_reason: Some("SAME_IP".into()),
            review_note: None,
            reviewed_at: None,
            qualifying_order_id: None,
            qualified_at: (status == ReferralStatus::Qualified).then_some(at),
            rewarded_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap()
    }

    #[test]
    fn an_approval_of_a_qualified_referral_clears_the_flag_and_pays() {
        let found = flagged(ReferralStatus::Qualified);
        let verdict = decide(&found, true, Some("checked".into()), now()).unwrap();
        assert!(!verdict.reviewed.flagged);
        assert_eq!(verdict.reviewed.status, ReferralStatus::Qualified);
        assert_eq!(verdict.reviewed.reviewed_at, Some(now()));
        assert!(verdict.pays);
        assert_eq!(verdict.success_taken_back, None);
        assert_eq!(verdict.decision.detail, "approved by an admin: checked");
    }

    #[test]
    fn a_refusal_rejects_and_takes_a_counted_success_back_on_its_day() {
        let pending = decide(&flagged(ReferralStatus::Pending), false, None, now()).unwrap();
        assert_eq!(pending.reviewed.status, ReferralStatus::Rejected);
        assert_eq!(
            pending.reviewed.rejection_reason,
            Some(RejectionReason::ReviewRejected)
        );
        assert_eq!(pending.success_taken_back, None, "never counted");
        assert!(!pending.pays);
        let found = flagged(ReferralStatus::Qualified);
        let qualified = decide(&found, false, None, now()).unwrap();
        assert_eq!(qualified.success_taken_back, found.qualified_at);
        assert_eq!(qualified.decision.detail, "refused by an admin");
    }

    #[test]
    fn a_referral_not_waiting_for_a_review_is_a_conflict() {
        let mut reviewed = flagged(ReferralStatus::Pending);
        reviewed.reviewed_at = Some(now());
        let rewarded = flagged(ReferralStatus::Rewarded);
        let mut unflagged = flagged(ReferralStatus::Pending);
        unflagged.flagged = false;
        for found in [reviewed, rewarded, unflagged] {
            assert!(matches!(
                decide(&found, true, None, now()),
                Err(AppError::Conflict(_))
            ));
        }
    }
}
