//! The rules for rewards: created once per natural key, issued or held, reversed, redeemed.
//! Every status change is a conditional update (`WHERE status = …`), so of two racing requests
//! exactly one changes the row and the other sees that it lost.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use crate::campaigns::RewardRule;
use crate::clock::Clock;
use crate::customers::locks::Held;
use crate::db::begin_write;
use crate::email::outbox::{self, OutgoingEmail};
use crate::entities::enums::PointsReason;
use crate::entities::enums::{RewardKind, RewardSide, RewardStatus};
use crate::entities::{customer, reward};
use crate::error::{AppError, DbContext};
use crate::live;
use crate::loyalty::ledger::{self, Consume, Debit};
use crate::rewards::coupon;

/// A reward to create.
#[derive(Debug, Clone)]
pub struct Grant {
    pub customer_id: Uuid,
    pub referral_id: Option<Uuid>,
    pub side: RewardSide,
    pub rule: RewardRule,
    /// The natural key: a second grant with the same key creates nothing.
    pub dedupe_key: String,
    pub milestone: Option<i32>,
    /// `Some` holds the reward (PENDING) until then; `None` issues it at once.
    pub release_at: Option<DateTime<Utc>>,
    /// The customer's row when the caller holds it locked, so that the reward's email need not
    /// read it again.
    pub customer: Option<customer::Model>,
}

/// Creates the reward unless its key exists. Crediting POINTS is the ReferralRewarded event's
/// effect, dispatched by whoever issues a referral reward.
/// Returns the reward created, or `None` when the key already had one.
pub async fn grant(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    grant: Grant,
) -> Result<Option<reward::Model>, AppError> {
    Ok(grant_all(txn, now, vec![grant]).await?.pop().flatten())
}

/// [`grant`] for several rewards, inserted in one statement; each entry of the answer is the
/// reward created for the grant at the same place, or `None` when its key already had one.
pub async fn grant_all(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    grants: Vec<Grant>,
) -> Result<Vec<Option<reward::Model>>, AppError> {
    if grants.is_empty() {
        return Ok(Vec::new());
    }
    let mut models = Vec::with_capacity(grants.len());
    for grant in &grants {
        let coupon_code = match grant.rule.kind {
            RewardKind::Points => None,
            _ => Some(
                coupon::generate().map_err(|e| AppError::internal("making a coupon code", e))?,
            ),
        };
        let status = match grant.release_at {
            Some(_) => RewardStatus::Pending,
            None => RewardStatus::Issued,
        };
        models.push(reward::Model {
            id: Uuid::now_v7(),
            customer_id: grant.customer_id,
            referral_id: grant.referral_id,
            side: grant.side,
            kind: grant.rule.kind,
            amount: grant.rule.amount,
            coupon_code,
            status,
            dedupe_key: grant.dedupe_key.clone(),
            milestone: grant.milestone,
            release_at: grant.release_at,
            issued_at: (status == RewardStatus::Issued).then_some(now),
            redeemed_at: None,
            reversed_at: None,
            created_at: now,
        });
    }
    // Only the rows written come back: a key that had a reward already returns nothing.
    let written: Vec<Uuid> = match reward::Entity::insert_many(
        models.iter().map(|model| model.clone().into_active_model()),
    )
    .on_conflict(
        OnConflict::column(reward::Column::DedupeKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_with_returning_keys(txn)
    .await
    {
        Ok(keys) => keys,
        // Every key had its reward already.
        Err(sea_orm::DbErr::RecordNotInserted) => Vec::new(),
        Err(error) => return Err(AppError::internal("creating rewards", error)),
    };
    let mut created = Vec::with_capacity(models.len());
    for (model, grant) in models.into_iter().zip(grants) {
        if !written.contains(&model.id) {
            created.push(None);
            continue;
        }
        if model.status == RewardStatus::Issued {
            notify(txn, now, &model, grant.customer.as_ref(), "reward_earned").await?;
            announce(txn, now, &model, RewardStatus::Issued).await?;
        }
        created.push(Some(model));
    }
    Ok(created)
}

/// Tells the customer about an issued or reversed reward. These are transactional: they go out
/// without marketing consent (but never to a bounced address). Cart discounts are announced by
/// the cart email itself. `known` is the customer's row, when the caller has it.
async fn notify(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    reward: &reward::Model,
    known: Option<&customer::Model>,
    template: &'static str,
) -> Result<(), AppError> {
    if reward.side == RewardSide::Cart {
        return Ok(());
    }
    let read;
    let customer = match known.filter(|c| c.id == reward.customer_id) {
        Some(customer) => customer,
        None => {
            let Some(found) = customer::Entity::find_by_id(reward.customer_id)
                .one(txn)
                .await
                .context("loading a reward's customer")?
            else {
                return Ok(());
            };
            read = found;
            &read
        }
    };
    let why = match reward.side {
        RewardSide::Referrer => "Your friend placed their first order.".to_owned(),
        RewardSide::Referee => "Thanks for joining through a friend's link.".to_owned(),
        RewardSide::Milestone => format!(
            "You reached {} successful referrals.",
            reward.milestone.unwrap_or_default()
        ),
        RewardSide::Cart | RewardSide::Redemption => String::new(),
    };
    let data = serde_json::json!({
        "reward_kind": reward.kind,
        "reward_amount": reward.amount,
        "coupon_code": reward.coupon_code,
        "why": why,
    });
    outbox::queue(
        txn,
        now,
        OutgoingEmail::to_customer(
            template,
            customer,
            data,
            format!("reward:{}:{template}", reward.id),
            false,
        ),
    )
    .await?;
    Ok(())
}

/// Tells live subscribers (the customer's `myRewards`) that the reward is now `status`.
async fn announce(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    reward: &reward::Model,
    status: RewardStatus,
) -> Result<(), AppError> {
    live::publish(
        txn,
        &live::LiveEvent::Reward {
            customer_id: reward.customer_id,
            reward_id: reward.id,
            status: sea_orm::ActiveEnum::to_value(&status),
            at: now,
        },
    )
    .await
}

pub fn reason(side: RewardSide) -> &'static str {
    match side {
        RewardSide::Referrer => "referral reward (you referred a friend)",
        RewardSide::Referee => "referral reward (you were referred)",
        RewardSide::Milestone => "referral milestone bonus",
        RewardSide::Cart => "cart discount",
        RewardSide::Redemption => "reward bought with points",
    }
}

/// Issues held rewards whose hold has passed, in one conditional update (PENDING to ISSUED),
/// then tells their holders (`held`, the customers the caller locked) and the live feed.
/// Returns the rewards as issued. The caller claimed them (their rows locked while PENDING): one
/// that is not PENDING any more is an internal error, which rolls the transaction back.
pub async fn issue_all(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    rewards: Vec<reward::Model>,
) -> Result<Vec<reward::Model>, AppError> {
    if rewards.is_empty() {
        return Ok(rewards);
    }
    let changed = reward::Entity::update_many()
        .col_expr(reward::Column::Status, Expr::value(RewardStatus::Issued))
        .col_expr(reward::Column::IssuedAt, Expr::value(now))
        .filter(reward::Column::Id.is_in(rewards.iter().map(|r| r.id)))
        .filter(reward::Column::Status.eq(RewardStatus::Pending))
        .exec(txn)
        .await
        .context("issuing held rewards")?
        .rows_affected;
    if changed != rewards.len() as u64 {
        // The caller claimed them (locked, PENDING): another writer cannot have moved them.
        return Err(AppError::internal(
            "issuing held rewards",
            format!(
                "{changed} of {} claimed rewards were still held",
                rewards.len()
            ),
        ));
    }
    let mut issued = Vec::with_capacity(rewards.len());
    for reward in rewards {
        let reward = reward::Model {
            status: RewardStatus::Issued,
            issued_at: Some(now),
            ..reward
        };
        notify(
            txn,
            now,
            &reward,
            held.customer(reward.customer_id).ok(),
            "reward_earned",
        )
        .await?;
        announce(txn, now, &reward, RewardStatus::Issued).await?;
        issued.push(reward);
    }
    Ok(issued)
}

/// Takes a PENDING or ISSUED reward back; issued points are debited (the balance may go below
/// zero if they were spent). `false` when it was already redeemed or reversed. The caller
/// re-evaluates the holder's tier and badges once it has written everything (a refund's
/// reactions do, for both sides), so each customer is evaluated once per transaction, from the
/// row it locked.
pub async fn reverse(
    txn: &impl ConnectionTrait,
    held: &Held,
    now: DateTime<Utc>,
    reward: &reward::Model,
) -> Result<bool, AppError> {
    let changed = reward::Entity::update_many()
        .col_expr(reward::Column::Status, Expr::value(RewardStatus::Reversed))
        .col_expr(reward::Column::ReversedAt, Expr::value(now))
        .filter(reward::Column::Id.eq(reward.id))
        .filter(reward::Column::Status.eq(reward.status))
        .filter(reward::Column::Status.is_in([RewardStatus::Pending, RewardStatus::Issued]))
        .exec(txn)
        .await
        .context("reversing a reward")?
        .rows_affected;
    if changed == 1 && reward.status == RewardStatus::Issued && reward.kind == RewardKind::Points {
        let lot = ledger::by_source(txn, "reward", &reward.id.to_string()).await?;
        ledger::debit(
            txn,
            held,
            now,
            Debit {
                customer_id: reward.customer_id,
                amount: reward.amount,
                reason: PointsReason::Reversal,
                description: format!(
                    "{} points taken back: {} reversed (the purchase was refunded)",
                    reward.amount,
                    reason(reward.side)
                ),
                source_kind: "reward_reversal",
                source_id: reward.id.to_string(),
                earned_at: lot.as_ref().and_then(|l| l.earned_at).unwrap_or(now),
                actor: None,
                consume: match lot {
                    Some(lot) => Consume::LotFirst(lot.id),
                    None => Consume::Fifo { debt: true },
                },
            },
        )
        .await?;
    }
    if changed == 1 && reward.side != RewardSide::Cart {
        // Held rewards are listed to the customer too, so their loss is told as well; the
        // reward's key makes the notice once.
        notify(txn, now, reward, None, "reward_reversed").await?;
    }
    if changed == 1 {
        announce(txn, now, reward, RewardStatus::Reversed).await?;
    }
    Ok(changed == 1)
}

/// Marks the coupon with `code` REDEEMED, once.
pub async fn redeem(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    code: &str,
) -> Result<reward::Model, AppError> {
    let not_found = || AppError::NotFound(format!("no coupon has the code '{code}'"));
    let canonical = coupon::parse(code).ok_or_else(not_found)?;
    let now = clock.now();
    let txn = begin_write(db).await.context("starting a redemption")?;
    let found = reward::Entity::find()
        .filter(reward::Column::CouponCode.eq(canonical.as_str()))
        .one(&txn)
        .await
        .context("loading a coupon")?
        .ok_or_else(not_found)?;
    let changed = reward::Entity::update_many()
        .col_expr(reward::Column::Status, Expr::value(RewardStatus::Redeemed))
        .col_expr(reward::Column::RedeemedAt, Expr::value(now))
        .filter(reward::Column::Id.eq(found.id))
        .filter(reward::Column::Status.eq(RewardStatus::Issued))
        .exec(&txn)
        .await
        .context("redeeming a coupon")?
        .rows_affected;
    if changed == 0 {
        return Err(match found.status {
            RewardStatus::Redeemed => AppError::Conflict(format!(
                "coupon {canonical} was already redeemed{}",
                found
                    .redeemed_at
                    .map(|at| format!(" at {}", at.to_rfc3339()))
                    .unwrap_or_default()
            )),
            RewardStatus::Pending => AppError::Conflict(format!(
                "coupon {canonical} is on hold{} and cannot be used yet",
                found
                    .release_at
                    .map(|at| format!(" until {}", at.to_rfc3339()))
                    .unwrap_or_default()
            )),
            RewardStatus::Reversed => AppError::Conflict(format!(
                "coupon {canonical} was cancelled because the purchase that earned it was refunded"
            )),
            RewardStatus::Issued => AppError::Conflict(format!(
                "coupon {canonical} was redeemed by another request"
            )),
        });
    }
    txn.commit().await.context("committing a redemption")?;
    Ok(reward::Model {
        status: RewardStatus::Redeemed,
        redeemed_at: Some(now),
        ..found
    })
}

pub async fn for_customer(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
) -> Result<Vec<reward::Model>, AppError> {
    reward::Entity::find()
        .filter(reward::Column::CustomerId.eq(customer_id))
        .order_by_asc(reward::Column::Id)
        .all(db)
        .await
        .context("listing a customer's rewards")
}

pub async fn for_referral(
    db: &impl ConnectionTrait,
    referral_id: Uuid,
) -> Result<Vec<reward::Model>, AppError> {
    reward::Entity::find()
        .filter(reward::Column::ReferralId.eq(referral_id))
        .order_by_asc(reward::Column::Id)
        .all(db)
        .await
        .context("listing a referral's rewards")
}
