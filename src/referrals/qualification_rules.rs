//! Whether an order qualifies the buyer's pending referral, decided with no I/O from the
//! referral, its campaign, both sides and the order: the rules `qualification::on_order`
//! applies, and what a dry run of a changed campaign over past orders would call.

use chrono::{DateTime, Duration, Utc};

use crate::entities::enums::{DecisionOutcome, RejectionReason};
use crate::entities::{campaign, customer, order, referral};
use crate::referrals::attribution::disguise;
use crate::referrals::decisions::{Decision, rule};

/// What an order does to a PENDING referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The referral is refused for good: the friend is the referrer in disguise, was a customer
    /// before it, or ordered after the window closed.
    Reject {
        reason: RejectionReason,
        decision: Decision,
    },
    /// This order does not qualify it, and a later one may (below the minimum).
    Skip { decision: Decision },
    /// The order qualifies it. `paid_now`: no review and no hold, so both sides are paid in
    /// this transaction and the referral goes on to REWARDED.
    Qualify { paid_now: bool },
}

/// The rules in order: self-referral (checked again, with an email the two sides share), an
/// order placed before the referral (by more than `clock_skew`), the campaign's minimum, the
/// qualifying window.
pub fn decide(
    referral: &referral::Model,
    campaign: &campaign::Model,
    (referrer, referee): (&customer::Model, &customer::Model),
    shared_email: Option<&str>,
    order: &order::Model,
    clock_skew: Duration,
) -> Gate {
    let reject = |reason, rule, detail: String| Gate::Reject {
        reason,
        decision: Decision::new(rule, DecisionOutcome::Rejected, detail),
    };
    if let Some(why) = disguise(referrer, referee, shared_email) {
        return reject(
            RejectionReason::SelfReferral,
            rule::SELF_REFERRAL,
            format!("checked again at order {}: {why}", order.external_id),
        );
    }
    // The merchant's clock may lag Tandem's: an order stamped a little before the signup is
    // still the friend's first.
    if order.placed_at + clock_skew < referral.created_at {
        return reject(
            RejectionReason::ExistingCustomer,
            rule::EXISTING_CUSTOMER,
            format!(
                "order {} was placed before the referral; the friend was already a customer",
                order.external_id
            ),
        );
    }
    if order.amount < campaign.min_order_amount {
        let detail = format!(
            "order {} of {} is below the campaign minimum of {}",
            order.external_id, order.amount, campaign.min_order_amount
        );
        return Gate::Skip {
            decision: Decision::new(rule::MIN_ORDER_AMOUNT, DecisionOutcome::Skipped, detail),
        };
    }
    let deadline: DateTime<Utc> =
        referral.created_at + Duration::days(i64::from(campaign.qualify_within_days));
    if order.placed_at > deadline {
        return reject(
            RejectionReason::WindowExpired,
            rule::QUALIFY_WINDOW,
            format!(
                "the first qualifying order {} came {} days after signup; the window is {} days",
                order.external_id,
                (order.placed_at - referral.created_at).num_days(),
                campaign.qualify_within_days
            ),
        );
    }
    Gate::Qualify {
        paid_now: !referral.flagged && campaign.hold_days == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
    }

    fn person(n: u128, email: &str) -> customer::Model {
        customer::Model {
            id: Uuid::from_u128(n),
            external_id: format!("c{n}"),
            email: email.into(),
            email_normalized: email.into(),
            name: None,
            referral_code: format!("CODE{n}"),
            acquisition_channel: "referral".into(),
            marketing_consent: false,
            signup_referral_code: None,
            signup_ip_hash: None,
            device_id: None,
            created_at: at(1),
            updated_at: at(1),
            tier_id: None,
            tier_below_since: None,
            tier_checked_at: None,
        }
    }

    fn campaign(min_order_amount: i64, hold_days: i32) -> campaign::Model {
        campaign::Model {
            id: Uuid::from_u128(9),
            name: "Spring".into(),
            referrer_reward_kind: crate::entities::enums::RewardKind::Points,
            referrer_reward_amount: 500,
            referee_reward_kind: crate::entities::enums::RewardKind::PercentCoupon,
            referee_reward_amount: 10,
            min_order_amount,
            qualify_within_days: 30,
            hold_days,
            max_rewards_per_referrer: None,
            milestones: serde_json::json!([]),
            landing_url: None,
            starts_at: None,
            ends_at: None,
            created_at: at(1),
            updated_at: at(1),
        }
    }

    fn referral(flagged: bool) -> referral::Model {
        referral::Model {
            id: Uuid::from_u128(7),
            referrer_id: Uuid::from_u128(1),
            referee_id: Uuid::from_u128(2),
            campaign_id: Some(Uuid::from_u128(9)),
            code: "CODE1".into(),
            status: crate::entities::enums::ReferralStatus::Pending,
            rejection_reason: None,
            flagged,
            flag_reason: None,
            review_note: None,
            reviewed_at: None,
            qualifying_order_id: None,
            qualified_at: None,
            rewarded_at: None,
            created_at: at(2),
            updated_at: at(2),
        }
    }

    fn order(amount: i64, placed_at: DateTime<Utc>) -> order::Model {
        order::Model {
            id: Uuid::from_u128(5),
            external_id: "o-1".into(),
            customer_id: Uuid::from_u128(2),
            amount,
            refunded_amount: 0,
            currency: "USD".into(),
            items: serde_json::json!([]),
            cart_external_id: None,
            fingerprint: String::new(),
            placed_at,
            previous_placed_at: None,
            created_at: placed_at,
        }
    }

    fn gate(referral: &referral::Model, campaign: &campaign::Model, order: &order::Model) -> Gate {
        let (ann, bob) = (person(1, "ann@example.com"), person(2, "bob@example.com"));
        decide(
            referral,
            campaign,
            (&ann, &bob),
            None,
            order,
            Duration::minutes(5),
        )
    }

    #[test]
    fn a_first_order_over_the_minimum_in_the_window_qualifies_and_pays_unless_held_or_flagged() {
        let order = order(5_000, at(3));
        assert_eq!(
            gate(&referral(false), &campaign(2_000, 0), &order),
            Gate::Qualify { paid_now: true }
        );
        assert_eq!(
            gate(&referral(false), &campaign(2_000, 7), &order),
            Gate::Qualify { paid_now: false }
        );
        assert_eq!(
            gate(&referral(true), &campaign(2_000, 0), &order),
            Gate::Qualify { paid_now: false }
        );
    }

    #[test]
    fn an_order_below_the_minimum_waits_and_one_after_the_window_rejects() {
        let small = gate(&referral(false), &campaign(2_000, 0), &order(1_000, at(3)));
        assert!(
            matches!(small, Gate::Skip { decision } if decision.rule == rule::MIN_ORDER_AMOUNT)
        );
        let late = gate(
            &referral(false),
            &campaign(2_000, 0),
            &order(5_000, at(2) + Duration::days(31)),
        );
        assert!(matches!(
            late,
            Gate::Reject {
                reason: RejectionReason::WindowExpired,
                ..
            }
        ));
    }

    #[test]
    fn an_order_from_before_the_referral_or_from_the_referrer_in_disguise_rejects() {
        let early = gate(&referral(false), &campaign(0, 0), &order(5_000, at(1)));
        assert!(matches!(
            early,
            Gate::Reject {
                reason: RejectionReason::ExistingCustomer,
                ..
            }
        ));
        let skewed = gate(
            &referral(false),
            &campaign(0, 0),
            &order(5_000, at(2) - Duration::minutes(3)),
        );
        assert_eq!(
            skewed,
            Gate::Qualify { paid_now: true },
            "within the clock skew"
        );
        let ann = person(1, "ann@example.com");
        let disguised = person(2, "bob@example.com");
        let shared = decide(
            &referral(false),
            &campaign(0, 0),
            (&ann, &disguised),
            Some("ann+old@example.com"),
            &order(5_000, at(3)),
            Duration::minutes(5),
        );
        assert!(matches!(
            shared,
            Gate::Reject {
                reason: RejectionReason::SelfReferral,
                ..
            }
        ));
    }
}
