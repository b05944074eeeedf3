//! Attribution: a friend signs up with a code, and a referral is created under the active
//! campaign, with every fraud rule checked and its conclusion recorded. A signup never fails
//! because of a referral: a rule that refuses it makes a REJECTED referral.
//!
//! A workflow: **load** what the rules look at ([`load`]: the referrer, the campaign, the
//! friend's earlier orders, the referrer's recent referrals under their lock, the friend's IP's
//! signups under its lock), **decide** (`attribution_rules::decide`, no I/O), **apply** the
//! referral, the friend's rollup, the decisions, the live event and the referrer's email.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use uuid::Uuid;

use crate::campaigns::service as campaigns;
use crate::customers::ReferralCode;
use crate::customers::first_name;
use crate::customers::service as customers;
use crate::email::outbox::{self, OutgoingEmail};
use crate::entities::enums::ReferralStatus;
use crate::entities::{campaign, customer, customer_email, order, referral};
use crate::error::{AppError, DbContext};
use crate::live;
use crate::referrals::attribution_rules::{self, Facts, IpFacts};
use crate::referrals::decisions;
use crate::rollups;

/// The limits the fraud rules apply.
#[derive(Debug, Clone, Copy)]
pub struct FraudLimits {
    /// Referrals one referrer may make in 24 hours.
    pub referrals_per_day: u32,
    /// Signups from one IP in an hour above which a referral is flagged.
    pub signups_per_ip_hour: u32,
}

/// The referrer whose code this is, if any.
pub async fn find_referrer(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<customer::Model>, AppError> {
    let Some(code) = ReferralCode::parse(code) else {
        return Ok(None);
    };
    customer::Entity::find()
        .filter(customer::Column::ReferralCode.eq(code.as_str()))
        .one(db)
        .await
        .context("looking up a referral code")
}

/// Creates the referral of `referee` by the owner of `code`, inside the caller's transaction.
/// `None` when the code belongs to nobody.
pub async fn attribute(
    txn: &impl ConnectionTrait,
    limits: FraudLimits,
    now: DateTime<Utc>,
    referee: &customer::Model,
    code: &str,
) -> Result<Option<referral::Model>, AppError> {
    let Some(referrer) = find_referrer(txn, code).await? else {
        return Ok(None);
    };
    let (facts, campaign) = load(txn, now, &referrer, referee).await?;
    let made = attribution_rules::decide(&facts, limits);
    let created = referral::ActiveModel {
        id: Set(Uuid::now_v7()),
        referrer_id: Set(referrer.id),
        referee_id: Set(referee.id),
        campaign_id: Set(campaign.as_ref().map(|c| c.id)),
        code: Set(referrer.referral_code.clone()),
        status: Set(made.status),
        rejection_reason: Set(made.rejection),
        flagged: Set(made.flag_reason.is_some()),
        flag_reason: Set(made.flag_reason),
        review_note: Set(None),
        reviewed_at: Set(None),
        qualifying_order_id: Set(None),
        qualified_at: Set(None),
        rewarded_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await
    .context("creating a referral")?;
    rollups::referral_changed(txn, referee.id).await?;
    decisions::record_all(txn, created.id, made.checks, now).await?;
    live::referral_changed(txn, created.id, created.status, now).await?;
    if made.status == ReferralStatus::Pending {
        let data = serde_json::json!({
            "friend_name": first_name(referee.name.as_deref()).unwrap_or_else(|| "A friend".into()),
            "reward_kind": campaign.as_ref().map(|c| c.referrer_reward_kind),
            "reward_amount": campaign.as_ref().map(|c| c.referrer_reward_amount),
        });
        outbox::queue(
            txn,
            now,
            OutgoingEmail::to_customer(
                "friend_joined",
                &referrer,
                data,
                format!("referral:{}:friend_joined", created.id),
                true,
            ),
        )
        .await?;
    }
    Ok(Some(created))
}

/// What the rules look at, and the campaign running. The referrer's row is locked before their
/// recent referrals are counted, and the friend's IP before its signups are: one writer at a
/// time counts each, so parallel signups cannot all pass a limit.
async fn load(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    referrer: &customer::Model,
    referee: &customer::Model,
) -> Result<(Facts, Option<campaign::Model>), AppError> {
    let self_referral = self_referral(txn, referrer, referee).await?;
    let campaign = campaigns::active(txn, now).await?;
    let earlier_orders = order::Entity::find()
        .filter(order::Column::CustomerId.eq(referee.id))
        .filter(order::Column::PlacedAt.lte(now))
        .count(txn)
        .await
        .context("counting a friend's earlier orders")?;
    customers::lock(txn, referrer.id).await?;
    let recent_referrals = referral::Entity::find()
        .filter(referral::Column::ReferrerId.eq(referrer.id))
        .filter(referral::Column::CreatedAt.gt(now - Duration::hours(24)))
        .count(txn)
        .await
        .context("counting a referrer's recent referrals")?;
    let ip = match &referee.signup_ip_hash {
        None => None,
        Some(ip) => {
            // Signups from one IP have no row to lock: an advisory lock on the IP's hash
            // serialises the counts, so each of N parallel signups sees the ones committed
            // before it.
            crate::db::lock_subject(txn, &format!("signup-ip:{ip}"))
                .await
                .context("locking an IP's signups")?;
            let signups_last_hour = customer::Entity::find()
                .filter(customer::Column::SignupIpHash.eq(ip.as_str()))
                .filter(customer::Column::CreatedAt.gt(now - Duration::hours(1)))
                .count(txn)
                .await
                .context("counting signups from one IP")?;
            Some(IpFacts {
                same_as_referrer: referrer.signup_ip_hash.as_ref() == Some(ip),
                signups_last_hour,
            })
        }
    };
    let facts = Facts {
        self_referral,
        campaign: campaign.as_ref().map(|c| c.name.clone()),
        earlier_orders,
        recent_referrals,
        ip,
    };
    Ok((facts, campaign))
}

/// Why `referee` is the referrer in disguise, if they are: the same customer, an email either has
/// ever used, or the same device. Checked at signup and again when an order qualifies, so
/// changing an email after signup does not get around it.
pub async fn self_referral(
    db: &impl ConnectionTrait,
    referrer: &customer::Model,
    referee: &customer::Model,
) -> Result<Option<String>, AppError> {
    if referrer.id == referee.id {
        return Ok(disguise(referrer, referee, None));
    }
    let history = customer_email::Entity::find()
        .filter(customer_email::Column::CustomerId.is_in([referrer.id, referee.id]))
        .all(db)
        .await
        .context("loading email history")?;
    let emails_of = |customer: &customer::Model| -> HashSet<String> {
        history
            .iter()
            .filter(|h| h.customer_id == customer.id)
            .map(|h| h.email_normalized.clone())
            .chain([customer.email_normalized.clone()])
            .collect()
    };
    let referrer_emails = emails_of(referrer);
    let shared = emails_of(referee)
        .intersection(&referrer_emails)
        .min()
        .cloned();
    Ok(disguise(referrer, referee, shared.as_deref()))
}

/// An email a referral's friend (`referrals.referee_id`) and referrer (`referrals.referrer_id`)
/// have both used, now or before, as a column of a query on `referrals`: what
/// [`self_referral`] reads, in the statement that reads the referral. Only the two current
/// emails are left out: the held customers' rows have them ([`disguise`] compares them). The
/// `IN` on both customers is what lets PostgreSQL look them up by index: with only the `OR`
/// (and an `ORDER BY … LIMIT 1`) it walked every row of `customer_emails`, 13.5 ms at 15,600.
pub const SHARED_EMAIL_COLUMN: &str = "(SELECT MIN(e.email_normalized) FROM customer_emails e \
    WHERE e.customer_id IN (referrals.referee_id, referrals.referrer_id) \
    AND ((e.customer_id = referrals.referee_id AND (e.email_normalized IN \
       (SELECT h.email_normalized FROM customer_emails h WHERE h.customer_id = referrals.referrer_id) \
     OR e.email_normalized = (SELECT c.email_normalized FROM customers c WHERE c.id = referrals.referrer_id))) \
    OR (e.customer_id = referrals.referrer_id AND e.email_normalized = \
       (SELECT c.email_normalized FROM customers c WHERE c.id = referrals.referee_id))))";

/// Why `referee` is the referrer in disguise, given `shared_email`, an email both have used
/// (besides their current ones, compared here), if any.
pub fn disguise(
    referrer: &customer::Model,
    referee: &customer::Model,
    shared_email: Option<&str>,
) -> Option<String> {
    if referrer.id == referee.id {
        return Some("the code belongs to the customer who used it".into());
    }
    let current = (referee.email_normalized == referrer.email_normalized)
        .then_some(referee.email_normalized.as_str());
    if let Some(shared) = current.or(shared_email) {
        return Some(format!(
            "the friend's email {shared} is one the referrer has used"
        ));
    }
    if let (Some(a), Some(b)) = (&referrer.device_id, &referee.device_id)
        && a == b
    {
        return Some("the friend signed up on the referrer's device".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: u128, email: &str, device: Option<&str>) -> customer::Model {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        customer::Model {
            id: Uuid::from_u128(id),
            external_id: format!("c-{id}"),
            email: email.into(),
            email_normalized: email.into(),
            name: None,
            referral_code: format!("CODE{id}"),
            acquisition_channel: "organic".into(),
            marketing_consent: false,
            signup_referral_code: None,
            signup_ip_hash: None,
            device_id: device.map(str::to_owned),
            created_at: at,
            updated_at: at,
            tier_id: None,
            tier_below_since: None,
            tier_checked_at: None,
        }
    }

    #[test]
    fn a_friend_is_the_referrer_in_disguise_by_id_shared_email_or_device() {
        let ann = customer(1, "ann@example.com", Some("phone-1"));
        let bob = customer(2, "bob@example.com", Some("phone-2"));
        assert!(disguise(&ann, &ann, None).unwrap().contains("belongs to"));
        assert_eq!(disguise(&ann, &bob, None), None);
        assert!(
            disguise(&ann, &bob, Some("ann.old@example.com"))
                .unwrap()
                .contains("ann.old@example.com")
        );
        let same_phone = customer(3, "cy@example.com", Some("phone-1"));
        assert!(
            disguise(&ann, &same_phone, None)
                .unwrap()
                .contains("device")
        );
    }
}
