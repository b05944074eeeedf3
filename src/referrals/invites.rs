//! Invitations a customer sends to friends: the referral_invite email, with the referrer's name,
//! the friend's offer and the referral link. At most 20 addresses a call and 50 a day per
//! customer; addresses that cannot or should not be invited are skipped with a reason.

use std::collections::HashSet;

use chrono::Duration;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use crate::campaigns::service as campaigns;
use crate::clock::Clock;
use crate::customers::EmailAddress;
use crate::customers::service as customers;
use crate::db::begin_write;
use crate::display::describe;
use crate::email::outbox::{self, OutgoingEmail};
use crate::email::suppression;
use crate::entities::{customer, email_outbox};
use crate::error::{AppError, DbContext};

pub const MAX_PER_CALL: usize = 20;
pub const MAX_PER_DAY: u64 = 50;

/// Why an address was not invited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// It is not an email address.
    Malformed,
    /// It belongs to a customer already.
    AlreadyCustomer,
    /// It unsubscribed or bounced.
    Suppressed,
    /// It is the inviting customer's own address.
    OwnAddress,
    /// It appears twice in the request, or was invited by this customer before.
    AlreadyInvited,
    /// It cannot be invited. What a customer's own token is told instead of ALREADY_CUSTOMER or
    /// SUPPRESSED, so invitations cannot be used to learn who shops here; service and admin
    /// tokens see the reason.
    NotInvitable,
}

impl SkipReason {
    /// The reason as a customer may see it.
    pub fn for_customer(self) -> Self {
        match self {
            Self::AlreadyCustomer | Self::Suppressed => Self::NotInvitable,
            other => other,
        }
    }
}

/// The outcome of one invitation call.
#[derive(Debug, Clone, Default)]
pub struct InviteOutcome {
    pub sent: Vec<String>,
    pub skipped: Vec<(String, SkipReason)>,
}

/// What a referrer sends.
pub struct Invitation<'a> {
    pub referrer: &'a customer::Model,
    pub emails: Vec<String>,
    pub message: Option<String>,
    pub public_url: &'a str,
    pub currency: &'a str,
}

pub async fn invite(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    invitation: Invitation<'_>,
) -> Result<InviteOutcome, AppError> {
    let referrer = invitation.referrer;
    if invitation.emails.is_empty() {
        return Err(AppError::bad_input("emails", "give at least one address"));
    }
    if invitation.emails.len() > MAX_PER_CALL {
        return Err(AppError::bad_input(
            "emails",
            format!("at most {MAX_PER_CALL} addresses per call"),
        ));
    }
    let now = clock.now();
    let txn = begin_write(db).await.context("starting invitations")?;
    // The inviting customer's row serialises their invitation calls, so the day's count cannot
    // be read by two calls at once.
    customers::lock(&txn, referrer.id).await?;
    let subject = outbox::invite_subject(referrer.id);
    let sent_today = email_outbox::Entity::find()
        .filter(email_outbox::Column::SubjectKey.eq(subject.as_str()))
        .filter(email_outbox::Column::CreatedAt.gt(now - Duration::hours(24)))
        .count(&txn)
        .await
        .context("counting today's invitations")?;

    let mut outcome = InviteOutcome::default();
    let mut accepted = Vec::new();
    let mut seen = HashSet::new();
    for raw in invitation.emails {
        let Ok(address) = EmailAddress::parse(&raw) else {
            outcome.skipped.push((raw, SkipReason::Malformed));
            continue;
        };
        let normalized = address.normalized().to_owned();
        let reason = if !seen.insert(normalized.clone()) {
            Some(SkipReason::AlreadyInvited)
        } else if normalized == referrer.email_normalized {
            Some(SkipReason::OwnAddress)
        } else if customer::Entity::find()
            .filter(customer::Column::EmailNormalized.eq(normalized.as_str()))
            .count(&txn)
            .await
            .context("checking an invitee")?
            > 0
        {
            Some(SkipReason::AlreadyCustomer)
        } else if suppression::blocks(&txn, &normalized, true)
            .await?
            .is_some()
        {
            Some(SkipReason::Suppressed)
        } else {
            None
        };
        match reason {
            Some(reason) => outcome.skipped.push((raw, reason)),
            None => accepted.push((address, normalized)),
        }
    }
    if sent_today + accepted.len() as u64 > MAX_PER_DAY {
        return Err(AppError::bad_input(
            "emails",
            format!(
                "at most {MAX_PER_DAY} invitations a day; {} left today",
                MAX_PER_DAY.saturating_sub(sent_today)
            ),
        ));
    }
    let offer = campaigns::active(&txn, now)
        .await?
        .map(|c| {
            describe(
                c.referee_reward_kind,
                c.referee_reward_amount,
                invitation.currency,
            )
        })
        .unwrap_or_else(|| "a welcome reward".into());
    // Only the first name reaches the subject, cleaned of what could spoof it.
    let referrer_name =
        crate::customers::first_name(referrer.name.as_deref()).unwrap_or_else(|| "A friend".into());
    for (address, normalized) in accepted {
        let data = serde_json::json!({
            "referrer_name": referrer_name,
            "offer": offer,
            "message": invitation.message,
            "referral_link": format!("{}/r/{}", invitation.public_url, referrer.referral_code),
            "name": "there",
        });
        let written = outbox::enqueue(
            &txn,
            now,
            OutgoingEmail {
                template: "referral_invite",
                recipient: address.as_str().to_owned(),
                customer_id: None,
                data,
                dedupe_key: format!("{subject}:{normalized}"),
                subject_key: Some(subject.clone()),
                marketing: true,
            },
        )
        .await?;
        if written {
            outcome.sent.push(address.as_str().to_owned());
        } else {
            outcome
                .skipped
                .push((address.as_str().to_owned(), SkipReason::AlreadyInvited));
        }
    }
    txn.commit().await.context("committing invitations")?;
    Ok(outcome)
}
