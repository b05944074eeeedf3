//! GraphQL types and resolvers for email: deliveries, retries, invitations, unsubscribing.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::customers::service as customers;
use crate::email::{outbox, suppression, unsubscribe};
use crate::entities::enums::{EmailStatus, SuppressionReason};
use crate::entities::{email_outbox, suppression as suppression_entity};
use crate::graphql::context::{limit_account, limit_public, parse_id, require, state};
use crate::graphql::pagination::{PageInfo, PageRequest, encode_cursor, page_info};
use crate::input;
use crate::referrals::invites::{self, Invitation};

pub struct EmailDelivery(pub email_outbox::Model);

/// One email in the outbox and what became of it.
#[Object]
impl EmailDelivery {
    /// The delivery's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Who it is to.
    async fn recipient(&self) -> &str {
        &self.0.recipient
    }
    /// Which template it renders.
    async fn template(&self) -> &str {
        &self.0.template
    }
    /// The natural key that makes it exactly-once, e.g. `cart:{id}:stage:1`.
    async fn dedupe_key(&self) -> &str {
        &self.0.dedupe_key
    }
    /// Whether it is marketing (needs consent, carries unsubscribe headers).
    async fn marketing(&self) -> bool {
        self.0.marketing
    }
    /// Where it stands.
    async fn status(&self) -> EmailStatus {
        self.0.status
    }
    /// How many times sending was tried.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// The last failure, or why it was cancelled.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The Message-ID it is sent with (the same on every try).
    async fn message_id(&self) -> Option<&str> {
        Some(self.0.message_id.as_str()).filter(|id| !id.is_empty())
    }
    /// When the next try is due.
    async fn next_attempt_at(&self) -> DateTime<Utc> {
        self.0.next_attempt_at
    }
    /// When the mail server accepted it.
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One delivery in a page.
#[derive(SimpleObject)]
pub struct EmailDeliveryEdge {
    /// Pass as `after` to continue after this delivery.
    pub cursor: String,
    /// The delivery.
    pub node: EmailDelivery,
}

/// A page of deliveries, oldest first.
#[derive(SimpleObject)]
pub struct EmailDeliveryConnection {
    /// The deliveries of this page with their cursors.
    pub edges: Vec<EmailDeliveryEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

/// Why an address was not invited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::referrals::invites::SkipReason")]
pub enum SkipReason {
    /// It is not an email address.
    Malformed,
    /// It belongs to a customer already (told to service and admin tokens only).
    AlreadyCustomer,
    /// It unsubscribed or bounced (told to service and admin tokens only).
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

/// An address that was not invited, and why.
#[derive(SimpleObject)]
pub struct SkippedInvite {
    /// The address as given.
    pub email: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// What an invitation call did.
#[derive(SimpleObject)]
pub struct InviteResult {
    /// The addresses an invitation was queued for.
    pub sent: Vec<String>,
    /// The addresses skipped, with the reason.
    pub skipped: Vec<SkippedInvite>,
}

/// The result of unsubscribing.
#[derive(SimpleObject)]
pub struct UnsubscribeResult {
    /// The address that will get no more marketing email.
    pub email: String,
}

pub struct Suppression(pub suppression_entity::Model);

/// An address that gets no email (bounced) or no marketing email (unsubscribed).
#[Object]
impl Suppression {
    /// The address, normalized.
    async fn email(&self) -> &str {
        &self.0.email_normalized
    }
    /// Why it is suppressed.
    async fn reason(&self) -> SuppressionReason {
        self.0.reason
    }
    /// The mail server's reply for a bounce.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// When it was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One suppression in a page.
#[derive(SimpleObject)]
pub struct SuppressionEdge {
    /// Pass as `after` to continue after this entry.
    pub cursor: String,
    /// The entry.
    pub node: Suppression,
}

/// A page of the suppression list, in address order.
#[derive(SimpleObject)]
pub struct SuppressionConnection {
    /// The entries of this page with their cursors.
    pub edges: Vec<SuppressionEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

/// Suppression cursors carry the address: the list has no other order key.
fn suppression_cursor(email: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("s1:{email}"))
}

fn parse_suppression_cursor(cursor: &str) -> Result<String, crate::error::AppError> {
    use base64::Engine;
    let cursor = input::text("after", cursor, MAX_TOKEN_CHARS)?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("s1:").map(str::to_owned))
        .ok_or_else(|| {
            crate::error::AppError::bad_input(
                "after",
                "after is not a cursor from this list; pass pageInfo.endCursor",
            )
        })
}

#[derive(Default)]
pub struct EmailQuery;

#[Object]
impl EmailQuery {
    /// The outbox, oldest first, optionally of one status (admin tokens).
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, child_complexity)")]
    async fn email_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only deliveries in this status.")] status: Option<EmailStatus>,
        #[graphql(desc = "Page size, 1 to 100; 20 when absent.")] first: Option<i32>,
        #[graphql(desc = "The endCursor of the previous page, at most 128 characters.")]
        after: Option<String>,
    ) -> Result<EmailDeliveryConnection> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let request = PageRequest::parse(first, after.as_deref())?;
        let (rows, has_next) =
            outbox::list(&state.db, status, request.limit, request.after).await?;
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        Ok(EmailDeliveryConnection {
            page_info: page_info(&ids, request, has_next),
            edges: rows
                .into_iter()
                .map(|row| EmailDeliveryEdge {
                    cursor: encode_cursor(row.id),
                    node: EmailDelivery(row),
                })
                .collect(),
        })
    }

    /// The suppression list in address order (admin tokens).
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, child_complexity)")]
    async fn suppressions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; 20 when absent.")] first: Option<i32>,
        #[graphql(desc = "The endCursor of the previous page, at most 512 characters.")]
        after: Option<String>,
    ) -> Result<SuppressionConnection> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let request = PageRequest::parse(first, None)?;
        let after = after.as_deref().map(parse_suppression_cursor).transpose()?;
        let (rows, has_next_page) =
            suppression::list(&state.db, request.limit, after.as_deref()).await?;
        Ok(SuppressionConnection {
            page_info: PageInfo {
                has_next_page,
                has_previous_page: after.is_some(),
                start_cursor: rows
                    .first()
                    .map(|r| suppression_cursor(&r.email_normalized)),
                end_cursor: rows.last().map(|r| suppression_cursor(&r.email_normalized)),
            },
            edges: rows
                .into_iter()
                .map(|row| SuppressionEdge {
                    cursor: suppression_cursor(&row.email_normalized),
                    node: Suppression(row),
                })
                .collect(),
        })
    }
}

/// Longest unsubscribe token accepted: a 254-character address and a MAC, base64-encoded.
const MAX_TOKEN_CHARS: usize = 512;

#[derive(Default)]
pub struct EmailMutation;

#[Object]
impl EmailMutation {
    /// Queues a DEAD or CANCELLED email again with its tries reset (admin tokens).
    async fn retry_email(&self, ctx: &Context<'_>, id: ID) -> Result<EmailDelivery> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let id = parse_id("id", &id)?;
        Ok(EmailDelivery(
            outbox::retry(&state.db, state.clock.now(), id).await?,
        ))
    }

    /// Lifts the suppression of an address, so it gets email again (admin tokens); answers the
    /// entry removed, or NOT_FOUND when the address was not suppressed.
    async fn remove_suppression(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The address, at most 254 characters.")] email: String,
    ) -> Result<Suppression> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let address = customers::parse_email("email", &email)?;
        Ok(Suppression(
            suppression::remove(&state.db, address.normalized()).await?,
        ))
    }

    /// Invites friends by email with the customer's referral link: at most 20 addresses a call
    /// and 50 a day. A customer token invites for its customer and is told NOT_INVITABLE where
    /// service and admin tokens, which name the customer, see ALREADY_CUSTOMER or SUPPRESSED.
    async fn invite_friends(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The inviting customer's externalId, at most 128 characters: required with service and admin tokens, refused with a customer token."
        )]
        customer_external_id: Option<String>,
        #[graphql(desc = "The friends' addresses: at most 20, each at most 254 characters.")]
        emails: Vec<String>,
        #[graphql(desc = "A personal note shown in the invitation, at most 2,000 characters.")]
        message: Option<String>,
    ) -> Result<InviteResult> {
        let (state, principal) = require(ctx, &[Role::Customer, Role::Service, Role::Admin])?;
        let as_customer = principal.role == Role::Customer;
        let subject = match (as_customer, customer_external_id) {
            (true, None) => input::identifier("token sub", &principal.subject)?,
            (true, Some(_)) => {
                return Err(crate::error::AppError::bad_input(
                    "customerExternalId",
                    "a customer token invites for its own customer; leave customerExternalId out",
                )
                .into());
            }
            (false, Some(id)) => input::identifier("customerExternalId", &id)?,
            (false, None) => {
                return Err(crate::error::AppError::bad_input(
                    "customerExternalId",
                    "give customerExternalId, the customer who invites",
                )
                .into());
            }
        };
        limit_account(state, principal, (!as_customer).then_some(subject.as_str()))?;
        let referrer = customers::get_by_external_id(&state.db, &subject).await?;
        let message = input::optional_message("message", message.as_deref())?;
        let outcome = invites::invite(
            &state.db,
            state.clock.as_ref(),
            Invitation {
                referrer: &referrer,
                emails,
                message,
                public_url: &state.settings.public_url,
                currency: &state.settings.currency,
            },
        )
        .await?;
        Ok(InviteResult {
            sent: outcome.sent,
            skipped: outcome
                .skipped
                .into_iter()
                .map(|(email, reason)| SkippedInvite {
                    email,
                    reason: if as_customer {
                        reason.for_customer()
                    } else {
                        reason
                    }
                    .into(),
                })
                .collect(),
        })
    }

    /// Stops marketing email to the address an unsubscribe link names (anyone with the link).
    async fn unsubscribe(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token from the email's unsubscribe link, at most 512 characters.")]
        token: String,
    ) -> Result<UnsubscribeResult> {
        let state = state(ctx)?;
        limit_public(ctx)?;
        let token = input::text("token", &token, MAX_TOKEN_CHARS)?;
        let email =
            unsubscribe::unsubscribe(&state.db, state.clock.as_ref(), &state.unsubscribe, &token)
                .await?;
        Ok(UnsubscribeResult { email })
    }
}
