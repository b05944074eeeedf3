//! GraphQL types and resolvers for customers. Resolvers check the role, parse input and call one
//! service function.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::customers::ReferralCode;
use crate::customers::first_name;
use crate::customers::service::{self, CustomerChanges, NewCustomer};
use crate::entities::customer;
use crate::entities::enums::LeaderboardMetric;
use crate::error::AppError;
use crate::graphql::context::{require, state};
use crate::graphql::pagination::{
    PageInfo, PageRequest, encode_cursor, page_complexity, page_info,
};
use crate::graphql::referrals::Referral;
use crate::graphql::rewards::Reward;
use crate::graphql::scalars::Long;
use crate::graphql::{loaders, loyalty};
use crate::input;
use crate::loyalty::balance;
use crate::referrals::service as referrals;
use crate::rewards::service as rewards;

/// Channel recorded when a registration names none.
pub const DEFAULT_ACQUISITION_CHANNEL: &str = "organic";

pub struct Customer(pub customer::Model);

/// A shopper known to the program.
#[Object]
impl Customer {
    /// Tandem's id for the customer.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The merchant's id for the customer; also the `sub` of the customer's tokens.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// The email address as given.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// The customer's name, when known.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The code this customer shares with friends.
    async fn referral_code(&self) -> &str {
        &self.0.referral_code
    }

    /// The link this customer shares: the public URL, `/r/`, and the code.
    async fn referral_link(&self, ctx: &Context<'_>) -> Result<String> {
        let state = state(ctx)?;
        Ok(format!(
            "{}/r/{}",
            state.settings.public_url, self.0.referral_code
        ))
    }

    /// Where the customer came from (`organic` unless the registration said otherwise).
    async fn acquisition_channel(&self) -> &str {
        &self.0.acquisition_channel
    }

    /// Whether the customer agreed to marketing email.
    async fn marketing_consent(&self) -> bool {
        self.0.marketing_consent
    }

    /// When the customer was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Points the customer can spend now: unexpired, past any pending period, less any debt
    /// (points taken back after they were spent). Negative while such a debt is larger.
    async fn points_balance(&self, ctx: &Context<'_>) -> Result<Long> {
        loyalty::points_balance(ctx, &self.0).await
    }

    /// Points earned by orders that are not spendable yet (the program's pending days).
    async fn pending_points(&self, ctx: &Context<'_>) -> Result<Long> {
        loyalty::pending_points(ctx, &self.0).await
    }

    /// Every point ever earned, less those taken back by reversals, refunds and negative
    /// adjustments; spending and expiry do not lower it.
    async fn lifetime_points(&self, ctx: &Context<'_>) -> Result<Long> {
        loyalty::lifetime_points(ctx, &self.0).await
    }

    /// Points that expire in the next `days`, one row per expiry date.
    async fn points_expiring_soon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many days ahead to look: 1 to 3,650.", default = 30)] days: i32,
    ) -> Result<Vec<loyalty::ExpiringPoints>> {
        loyalty::points_expiring_soon(ctx, &self.0, days).await
    }

    /// Every change to the customer's points, newest first, each with a sentence saying why.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn points_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries: 1 to 100; 20 when absent.")] first: Option<i32>,
        #[graphql(desc = "The endCursor of the previous page, at most 512 characters.")]
        after: Option<String>,
    ) -> Result<loyalty::PointsEntryConnection> {
        loyalty::points_history(ctx, &self.0, first, after).await
    }

    /// The customer's loyalty tier, if they reached one.
    async fn tier(&self, ctx: &Context<'_>) -> Result<Option<loyalty::Tier>> {
        loyalty::tier(ctx, &self.0).await
    }

    /// The tier above the customer's and how far it is; null at the top.
    async fn next_tier(&self, ctx: &Context<'_>) -> Result<Option<loyalty::NextTier>> {
        loyalty::next_tier(ctx, &self.0).await
    }

    /// The tiers the customer has been in, newest first.
    async fn tier_history(&self, ctx: &Context<'_>) -> Result<Vec<loyalty::TierStint>> {
        loyalty::tier_history(ctx, &self.0).await
    }

    /// The badges the customer holds, oldest first.
    async fn badges(&self, ctx: &Context<'_>) -> Result<Vec<loyalty::AwardedBadge>> {
        loyalty::badges_of(ctx, &self.0).await
    }

    /// Every badge, with where the customer stands on it.
    async fn badge_progress(&self, ctx: &Context<'_>) -> Result<Vec<loyalty::BadgeProgress>> {
        loyalty::badge_progress(ctx, &self.0).await
    }

    /// The customer's own place on a leaderboard over all time; null without a positive value.
    async fn leaderboard_position(
        &self,
        ctx: &Context<'_>,
        metric: LeaderboardMetric,
    ) -> Result<Option<loyalty::LeaderboardEntry>> {
        loyalty::leaderboard_position(ctx, &self.0, metric).await
    }

    /// The friends this customer referred, oldest first.
    async fn referrals(&self, ctx: &Context<'_>) -> Result<Vec<Referral>> {
        let referrals = referrals::by_referrer(&state(ctx)?.db, self.0.id).await?;
        Ok(referrals.into_iter().map(Referral).collect())
    }

    /// Everything this customer earned, oldest first.
    async fn rewards(&self, ctx: &Context<'_>) -> Result<Vec<Reward>> {
        let rewards = rewards::for_customer(&state(ctx)?.db, self.0.id).await?;
        Ok(rewards.into_iter().map(Reward).collect())
    }

    /// Who referred this customer (first name only), if anyone did.
    async fn referred_by(&self, ctx: &Context<'_>) -> Result<Option<ReferredBy>> {
        let db = &state(ctx)?.db;
        let Some(referral) = referrals::of_referee(db, self.0.id).await? else {
            return Ok(None);
        };
        let referrer = service::find_by_id(db, referral.referrer_id).await?;
        Ok(Some(ReferredBy {
            first_name: referrer.and_then(|r| first_name(r.name.as_deref())),
        }))
    }
}

/// The customer who referred someone, as that someone sees them.
#[derive(SimpleObject)]
pub struct ReferredBy {
    /// The referrer's first name, if known.
    pub first_name: Option<String>,
}

/// A registration sent by the merchant's backend.
#[derive(InputObject)]
pub struct RegisterCustomerInput {
    /// The merchant's id for the customer, at most 128 characters; registering it again
    /// returns the same customer.
    pub external_id: String,
    /// The customer's email address, at most 254 characters.
    pub email: String,
    /// The customer's name, at most 200 characters.
    pub name: Option<String>,
    /// Where the customer came from, at most 200 characters; `organic` when absent.
    pub acquisition_channel: Option<String>,
    /// Whether the customer agreed to marketing email; false when absent.
    pub marketing_consent: Option<bool>,
    /// The IP address the customer signed up from, at most 128 characters; only a keyed hash
    /// is stored.
    pub ip: Option<String>,
    /// An id of the customer's device, for fraud rules; at most 128 characters.
    pub device_id: Option<String>,
    /// The referral code the customer signed up with, at most 128 characters.
    pub referral_code: Option<String>,
}

/// What a registration produced.
#[derive(SimpleObject)]
pub struct RegisterCustomerPayload {
    /// The registered customer (the existing one, for a repeated registration).
    pub customer: Customer,
    /// The referral the signup's code created (REJECTED with a reason when a fraud rule refused
    /// it); null when no code was given or the code belongs to nobody.
    pub referral: Option<Referral>,
}

/// Changes to a customer; fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    /// A new name, at most 200 characters; null clears it.
    pub name: MaybeUndefined<String>,
    /// A new email address (at most 254 characters), checked like one given at registration.
    pub email: Option<String>,
    /// Whether the customer agrees to marketing email.
    pub marketing_consent: Option<bool>,
}

/// One customer in a page.
#[derive(SimpleObject)]
pub struct CustomerEdge {
    /// Pass as `after` to continue after this customer.
    pub cursor: String,
    /// The customer.
    pub node: Customer,
}

/// A page of customers, in registration order.
#[derive(SimpleObject)]
pub struct CustomerConnection {
    /// The customers of this page with their cursors.
    pub edges: Vec<CustomerEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

/// The fields of `Customer` that read the customer's points.
const POINTS_FIELDS: &[&str] = &[
    "pointsBalance",
    "pendingPoints",
    "lifetimePoints",
    "nextTier",
];

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// The customer the token belongs to (customer tokens only).
    async fn me(&self, ctx: &Context<'_>) -> Result<Customer> {
        let (state, principal) = require(ctx, &[Role::Customer])?;
        let external_id = input::identifier("token sub", &principal.subject)?;
        // An app screen that shows points reads the customer, their points and the
        // configuration's version in one statement, and its fields then read nothing.
        let look = ctx.look_ahead();
        if loaders::keeps_reads(ctx) && POINTS_FIELDS.iter().any(|f| look.field(f).exists()) {
            let read = balance::customer_with_points(&state.db, &external_id, state.clock.now())
                .await?
                .ok_or_else(|| service::not_found(&external_id))?;
            loaders::prime(ctx, read.customer.id, read.points, read.program_version)?;
            return Ok(Customer(read.customer));
        }
        let model = service::get_by_external_id(&state.db, &external_id).await?;
        Ok(Customer(model))
    }

    /// One customer by the merchant's id (service and admin tokens).
    async fn customer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The merchant's id for the customer; at most 128 characters.")]
        external_id: String,
    ) -> Result<Option<Customer>> {
        let (state, _) = require(ctx, &[Role::Service, Role::Admin])?;
        let external_id = input::identifier("externalId", &external_id)?;
        let model = service::find_by_external_id(&state.db, &external_id).await?;
        Ok(model.map(Customer))
    }

    /// Customers in registration order, a page at a time (service and admin tokens).
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; 20 when absent.")] first: Option<i32>,
        #[graphql(desc = "The endCursor of the previous page, at most 128 characters.")]
        after: Option<String>,
    ) -> Result<CustomerConnection> {
        let (state, _) = require(ctx, &[Role::Service, Role::Admin])?;
        let request = PageRequest::parse(first, after.as_deref())?;
        let (rows, has_next) = service::list(&state.db, request.limit, request.after).await?;
        let ids: Vec<_> = rows.iter().map(|c| c.id).collect();
        Ok(CustomerConnection {
            page_info: page_info(&ids, request, has_next),
            edges: rows
                .into_iter()
                .map(|model| CustomerEdge {
                    cursor: encode_cursor(model.id),
                    node: Customer(model),
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct CustomerMutation;

#[Object]
impl CustomerMutation {
    /// Registers a customer (service tokens). Repeating it with the same externalId and email
    /// returns the same customer; another email for that externalId, or an email that belongs to
    /// another customer, is a CONFLICT.
    async fn register_customer(
        &self,
        ctx: &Context<'_>,
        input: RegisterCustomerInput,
    ) -> Result<RegisterCustomerPayload> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let new = NewCustomer {
            external_id: input::identifier("externalId", &input.external_id)?,
            email: service::parse_email("email", &input.email)?,
            name: input::optional_name("name", input.name.as_deref())?,
            acquisition_channel: input::optional_name(
                "acquisitionChannel",
                input.acquisition_channel.as_deref(),
            )?
            .map(|c| c.to_lowercase())
            .unwrap_or_else(|| DEFAULT_ACQUISITION_CHANNEL.to_owned()),
            marketing_consent: input.marketing_consent.unwrap_or(false),
            signup_referral_code: input::optional_identifier(
                "referralCode",
                input.referral_code.as_deref(),
            )?
            .map(|typed| {
                ReferralCode::parse(&typed).map_or_else(|| typed.to_uppercase(), |c| c.to_string())
            }),
            signup_ip_hash: input::optional_identifier("ip", input.ip.as_deref())?
                .map(|ip| state.ip_hasher.hash(&ip)),
            device_id: input::optional_identifier("deviceId", input.device_id.as_deref())?,
        };
        let customer =
            service::register(&state.db, state.clock.as_ref(), &state.reactions(), new).await?;
        let referral = referrals::of_referee(&state.db, customer.id).await?;
        Ok(RegisterCustomerPayload {
            customer: Customer(customer),
            referral: referral.map(Referral),
        })
    }

    /// Changes a customer's name, email or consent (service tokens).
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The merchant's id for the customer; at most 128 characters.")]
        external_id: String,
        input: UpdateCustomerInput,
    ) -> Result<Customer> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let external_id = input::identifier("externalId", &external_id)?;
        let name = match input.name {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(name) => Some(Some(
                input::optional_name("name", Some(&name))?.ok_or_else(|| {
                    AppError::bad_input("name", "name must not be blank; send null to clear it")
                })?,
            )),
        };
        let changes = CustomerChanges {
            name,
            email: input
                .email
                .map(|email| service::parse_email("email", &email))
                .transpose()?,
            marketing_consent: input.marketing_consent,
        };
        let model = service::update(&state.db, state.clock.as_ref(), &external_id, changes).await?;
        Ok(Customer(model))
    }
}
