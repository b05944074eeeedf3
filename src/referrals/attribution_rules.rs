//! The fraud rules of attribution, decided from what `attribution` loaded, with no I/O: every
//! rule's conclusion as a decision, the first refusal's reason, and the rules that flag the
//! referral for review. A refusal makes a REJECTED referral (a signup never fails because of
//! one); a flag makes a PENDING referral that waits for an admin.

use crate::entities::enums::{DecisionOutcome, ReferralStatus, RejectionReason};
use crate::referrals::attribution::FraudLimits;
use crate::referrals::decisions::{Decision, rule};

/// What the rules look at, as loaded under the referrer's lock and the friend's IP's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Why the friend is the referrer in disguise, if they are.
    pub self_referral: Option<String>,
    /// The name of the campaign running, if one is.
    pub campaign: Option<String>,
    /// The friend's orders placed before the referral.
    pub earlier_orders: u64,
    /// The referrer's referrals in the last 24 hours.
    pub recent_referrals: u64,
    /// The friend's signup IP, if given: whether the referrer signed up from it, and how many
    /// signups came from it in the last hour.
    pub ip: Option<IpFacts>,
}

/// What the rules know of the friend's signup IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFacts {
    pub same_as_referrer: bool,
    pub signups_last_hour: u64,
}

/// The referral the rules make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub status: ReferralStatus,
    pub rejection: Option<RejectionReason>,
    /// The rules that flagged it, comma-separated, when it waits for a review.
    pub flag_reason: Option<String>,
    /// Every rule's conclusion, in the order they were checked.
    pub checks: Vec<Decision>,
}

/// The rules in order: self-referral, an active campaign, an existing customer, the referrer's
/// daily velocity (refusals); the same IP as the referrer and a burst of signups from one IP
/// (flags, which a refusal makes moot).
pub fn decide(facts: &Facts, limits: FraudLimits) -> Attribution {
    let mut checks = Vec::new();
    let mut rejection: Option<RejectionReason> = None;
    let mut check = |refused: Option<RejectionReason>, decision: Decision| {
        if let Some(reason) = refused {
            rejection.get_or_insert(reason);
        }
        checks.push(decision);
    };
    check(
        facts
            .self_referral
            .as_ref()
            .map(|_| RejectionReason::SelfReferral),
        match &facts.self_referral {
            Some(why) => Decision::new(rule::SELF_REFERRAL, DecisionOutcome::Rejected, why.clone()),
            None => Decision::new(
                rule::SELF_REFERRAL,
                DecisionOutcome::Passed,
                "the friend is a different person from the referrer (customer, emails, device)",
            ),
        },
    );
    check(
        facts
            .campaign
            .is_none()
            .then_some(RejectionReason::CampaignInactive),
        match &facts.campaign {
            Some(name) => Decision::new(
                rule::CAMPAIGN_ACTIVE,
                DecisionOutcome::Passed,
                format!("campaign '{name}' is running"),
            ),
            None => Decision::new(
                rule::CAMPAIGN_ACTIVE,
                DecisionOutcome::Rejected,
                "no campaign was running when the friend signed up",
            ),
        },
    );
    let earlier = facts.earlier_orders;
    check(
        (earlier > 0).then_some(RejectionReason::ExistingCustomer),
        if earlier > 0 {
            Decision::new(
                rule::EXISTING_CUSTOMER,
                DecisionOutcome::Rejected,
                format!("the friend already had {earlier} order(s) before the referral"),
            )
        } else {
            Decision::new(
                rule::EXISTING_CUSTOMER,
                DecisionOutcome::Passed,
                "the friend had no order before the referral",
            )
        },
    );
    let (recent, limit) = (facts.recent_referrals, u64::from(limits.referrals_per_day));
    check(
        (recent >= limit).then_some(RejectionReason::VelocityLimit),
        if recent >= limit {
            Decision::new(
                rule::VELOCITY_LIMIT,
                DecisionOutcome::Rejected,
                format!(
                    "the referrer already made {recent} referrals in 24 hours; the limit is {limit}"
                ),
            )
        } else {
            Decision::new(
                rule::VELOCITY_LIMIT,
                DecisionOutcome::Passed,
                format!("{recent} earlier referrals in 24 hours; the limit is {limit}"),
            )
        },
    );
    checks.extend(suspicions(facts.ip, limits));
    let flag_reason = checks
        .iter()
        .filter(|d| d.outcome == DecisionOutcome::Flagged)
        .map(|d| d.rule)
        .collect::<Vec<_>>()
        .join(", ");
    let flagged = rejection.is_none() && !flag_reason.is_empty();
    Attribution {
        status: if rejection.is_some() {
            ReferralStatus::Rejected
        } else {
            ReferralStatus::Pending
        },
        rejection,
        flag_reason: flagged.then_some(flag_reason),
        checks,
    }
}

/// Suspicious but not certain: the friend shares the referrer's signup IP, or many signups came
/// from the friend's IP within an hour.
fn suspicions(ip: Option<IpFacts>, limits: FraudLimits) -> Vec<Decision> {
    let Some(ip) = ip else {
        return vec![Decision::new(
            rule::SAME_IP,
            DecisionOutcome::Passed,
            "no signup IP was given for the friend",
        )];
    };
    let same_ip = if ip.same_as_referrer {
        Decision::new(
            rule::SAME_IP,
            DecisionOutcome::Flagged,
            "the friend signed up from the IP address the referrer signed up from",
        )
    } else {
        Decision::new(
            rule::SAME_IP,
            DecisionOutcome::Passed,
            "the friend's IP address differs from the referrer's",
        )
    };
    let (signups, limit) = (ip.signups_last_hour, u64::from(limits.signups_per_ip_hour));
    let burst = if signups > limit {
        Decision::new(
            rule::IP_BURST,
            DecisionOutcome::Flagged,
            format!(
                "{signups} signups came from the friend's IP address in the last hour (more than {limit})"
            ),
        )
    } else {
        Decision::new(
            rule::IP_BURST,
            DecisionOutcome::Passed,
            format!("{signups} signups from the friend's IP address in the last hour"),
        )
    };
    vec![same_ip, burst]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FraudLimits = FraudLimits {
        referrals_per_day: 2,
        signups_per_ip_hour: 3,
    };

    fn clean() -> Facts {
        Facts {
            self_referral: None,
            campaign: Some("Spring".into()),
            earlier_orders: 0,
            recent_referrals: 0,
            ip: None,
        }
    }

    fn outcomes(attribution: &Attribution) -> Vec<(&'static str, DecisionOutcome)> {
        attribution
            .checks
            .iter()
            .map(|d| (d.rule, d.outcome))
            .collect()
    }

    #[test]
    fn a_clean_signup_passes_every_rule_and_is_pending() {
        let made = decide(&clean(), LIMITS);
        assert_eq!(made.status, ReferralStatus::Pending);
        assert_eq!((made.rejection, made.flag_reason.as_deref()), (None, None));
        assert!(
            made.checks
                .iter()
                .all(|d| d.outcome == DecisionOutcome::Passed)
        );
        assert_eq!(made.checks.len(), 5);
    }

    #[test]
    fn the_first_refusal_gives_the_reason_and_every_rule_is_still_recorded() {
        let facts = Facts {
            self_referral: Some("the same device".into()),
            campaign: None,
            recent_referrals: 2,
            ..clean()
        };
        let made = decide(&facts, LIMITS);
        assert_eq!(made.status, ReferralStatus::Rejected);
        assert_eq!(made.rejection, Some(RejectionReason::SelfReferral));
        assert_eq!(
            outcomes(&made)[..4],
            [
                (rule::SELF_REFERRAL, DecisionOutcome::Rejected),
                (rule::CAMPAIGN_ACTIVE, DecisionOutcome::Rejected),
                (rule::EXISTING_CUSTOMER, DecisionOutcome::Passed),
                (rule::VELOCITY_LIMIT, DecisionOutcome::Rejected),
            ]
        );
    }

    #[test]
    fn a_shared_ip_or_a_burst_flags_a_referral_unless_it_is_refused() {
        let facts = Facts {
            ip: Some(IpFacts {
                same_as_referrer: true,
                signups_last_hour: 4,
            }),
            ..clean()
        };
        let made = decide(&facts, LIMITS);
        assert_eq!(made.status, ReferralStatus::Pending);
        assert_eq!(made.flag_reason.as_deref(), Some("SAME_IP, IP_BURST"));
        let refused = decide(
            &Facts {
                earlier_orders: 1,
                ..facts
            },
            LIMITS,
        );
        assert_eq!(refused.rejection, Some(RejectionReason::ExistingCustomer));
        assert_eq!(refused.flag_reason, None, "a refusal is not flagged");
    }
}
