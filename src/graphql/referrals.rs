//! GraphQL types and resolvers for referrals, share links and reviews.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::{Role, Viewer};
use crate::campaigns::service as campaigns;
use crate::customers::first_name;
use crate::entities::enums::{DecisionOutcome, ReferralStatus, RejectionReason};
use crate::entities::{customer, referral, referral_decision};
use crate::error::AppError;
use crate::graphql::campaigns::{Campaign, RewardRuleView};
use crate::graphql::context::{limit_public, parse_id, require, state, viewer};
use crate::graphql::customers::Customer;
use crate::graphql::loaders;
use crate::graphql::pagination::{PageInfo, PageRequest, encode_cursor, page_info};
use crate::graphql::rewards::Reward;
use crate::input;
use crate::referrals::attribution::find_referrer;
use crate::referrals::links::{self, Channel, Visitor};
use crate::referrals::{decisions, service};
use crate::rewards::service as rewards;

async fn load_customer(ctx: &Context<'_>, id: uuid::Uuid) -> Result<customer::Model, AppError> {
    loaders::customer(ctx, id).await
}

pub struct Referral(pub referral::Model);

/// A friend brought by a referrer's code, and what became of it.
#[Object]
impl Referral {
    /// The referral's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The code the friend used.
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// Where the referral stands.
    async fn status(&self) -> ReferralStatus {
        self.0.status
    }
    /// Why the referral was refused, when it was.
    async fn rejection_reason(&self) -> Option<RejectionReason> {
        self.0.rejection_reason
    }
    /// Whether the referral looked suspicious and waits (or waited) for an admin's review.
    async fn flagged(&self) -> bool {
        self.0.flagged
    }
    /// What looked suspicious (service and admin tokens).
    async fn flag_reason(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        require(ctx, &[Role::Service, Role::Admin])?;
        Ok(self.0.flag_reason.clone())
    }
    /// The reviewing admin's note (service and admin tokens).
    async fn review_note(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        require(ctx, &[Role::Service, Role::Admin])?;
        Ok(self.0.review_note.clone())
    }
    /// The referrer's first name.
    async fn referrer_first_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let referrer = load_customer(ctx, self.0.referrer_id).await?;
        Ok(first_name(referrer.name.as_deref()))
    }
    /// The friend's first name.
    async fn friend_first_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let friend = load_customer(ctx, self.0.referee_id).await?;
        Ok(first_name(friend.name.as_deref()))
    }
    /// The customer who shared the code (service and admin tokens).
    async fn referrer(&self, ctx: &Context<'_>) -> Result<Customer> {
        require(ctx, &[Role::Service, Role::Admin])?;
        Ok(Customer(load_customer(ctx, self.0.referrer_id).await?))
    }
    /// The friend who signed up with it (service and admin tokens).
    async fn referee(&self, ctx: &Context<'_>) -> Result<Customer> {
        require(ctx, &[Role::Service, Role::Admin])?;
        Ok(Customer(load_customer(ctx, self.0.referee_id).await?))
    }
    /// The campaign it was made under; null when none was running.
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        let Some(id) = self.0.campaign_id else {
            return Ok(None);
        };
        Ok(campaigns::find(&state(ctx)?.db, id).await?.map(Campaign))
    }
    /// The rewards it paid. A customer sees only their own.
    async fn rewards(&self, ctx: &Context<'_>) -> Result<Vec<Reward>> {
        let state = state(ctx)?;
        let all = rewards::for_referral(&state.db, self.0.id).await?;
        let own_only = match viewer(ctx) {
            Viewer::Authenticated(p) if p.role == Role::Customer => {
                let me =
                    crate::customers::service::get_by_external_id(&state.db, &p.subject).await?;
                Some(me.id)
            }
            _ => None,
        };
        Ok(all
            .into_iter()
            .filter(|r| own_only.is_none_or(|me| r.customer_id == me))
            .map(Reward)
            .collect())
    }
    /// Every rule checked on the referral, what it concluded and why, in order (service and admin
    /// tokens): what support reads to answer "why did I not get my reward".
    async fn decisions(&self, ctx: &Context<'_>) -> Result<Vec<RuleDecision>> {
        let (state, _) = require(ctx, &[Role::Service, Role::Admin])?;
        Ok(decisions::list(&state.db, self.0.id)
            .await?
            .into_iter()
            .map(RuleDecision)
            .collect())
    }
    /// When the friend signed up with the code.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the friend's order qualified it.
    async fn qualified_at(&self) -> Option<DateTime<Utc>> {
        self.0.qualified_at
    }
    /// When its rewards were issued.
    async fn rewarded_at(&self) -> Option<DateTime<Utc>> {
        self.0.rewarded_at
    }
}

pub struct RuleDecision(pub referral_decision::Model);

/// One rule checked on a referral, and its conclusion.
#[Object]
impl RuleDecision {
    /// The rule or event, e.g. SELF_REFERRAL, VELOCITY_LIMIT, QUALIFICATION, REFUND.
    async fn rule(&self) -> &str {
        &self.0.rule
    }
    /// What the rule concluded.
    async fn outcome(&self) -> DecisionOutcome {
        self.0.outcome
    }
    /// Why, in words support can repeat.
    async fn detail(&self) -> &str {
        &self.0.detail
    }
    /// When it was decided.
    async fn decided_at(&self) -> DateTime<Utc> {
        self.0.decided_at
    }
}

/// What a landing page shows for a code.
#[derive(SimpleObject)]
pub struct ReferralCodeInfo {
    /// The code, in its canonical form.
    pub code: String,
    /// The referrer's first name, if known.
    pub referrer_first_name: Option<String>,
    /// What the friend gets under the active campaign; null when none is running.
    pub offer: Option<RewardRuleView>,
}

/// The result of recording a click on a share link.
#[derive(SimpleObject)]
pub struct ReferralClickResult {
    /// Whether the code was known and the click recorded.
    pub recorded: bool,
    /// Where to send the visitor (with `ref=CODE` for a known code).
    pub landing_url: String,
}

/// One referral in a page.
#[derive(SimpleObject)]
pub struct ReferralEdge {
    /// Pass as `after` to continue after this referral.
    pub cursor: String,
    /// The referral.
    pub node: Referral,
}

/// A page of referrals, oldest first.
#[derive(SimpleObject)]
pub struct ReferralConnection {
    /// The referrals of this page with their cursors.
    pub edges: Vec<ReferralEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

#[derive(Default)]
pub struct ReferralQuery;

#[Object]
impl ReferralQuery {
    /// What a landing page shows for a code: the referrer's first name and the friend's offer;
    /// null for an unknown code (anyone).
    async fn referral_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code from a share link, at most 128 characters.")] code: String,
    ) -> Result<Option<ReferralCodeInfo>> {
        let state = state(ctx)?;
        limit_public(ctx)?;
        let code = input::identifier("code", &code)?;
        let Some(referrer) = find_referrer(&state.db, &code).await? else {
            return Ok(None);
        };
        let campaign = campaigns::active(&state.db, state.clock.now()).await?;
        Ok(Some(ReferralCodeInfo {
            code: referrer.referral_code,
            referrer_first_name: first_name(referrer.name.as_deref()),
            offer: campaign.map(|c| campaigns::referee_reward(&c).into()),
        }))
    }

    /// Referrals, filtered by status and flag, a page at a time (admin tokens).
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, child_complexity)")]
    async fn referrals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only referrals in this status.")] status: Option<ReferralStatus>,
        #[graphql(desc = "Only flagged (true) or unflagged (false) referrals.")] flagged: Option<
            bool,
        >,
        #[graphql(desc = "Page size, 1 to 100; 20 when absent.")] first: Option<i32>,
        #[graphql(desc = "The endCursor of the previous page, at most 128 characters.")]
        after: Option<String>,
    ) -> Result<ReferralConnection> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let request = PageRequest::parse(first, after.as_deref())?;
        let (rows, has_next) =
            service::list(&state.db, status, flagged, request.limit, request.after).await?;
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        Ok(ReferralConnection {
            page_info: page_info(&ids, request, has_next),
            edges: rows
                .into_iter()
                .map(|r| ReferralEdge {
                    cursor: encode_cursor(r.id),
                    node: Referral(r),
                })
                .collect(),
        })
    }

    /// One referral by id (service and admin tokens).
    async fn referral(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Referral>> {
        let (state, _) = require(ctx, &[Role::Service, Role::Admin])?;
        let id = parse_id("id", &id)?;
        Ok(service::find(&state.db, id).await?.map(Referral))
    }
}

#[derive(Default)]
pub struct ReferralMutation;

#[Object]
impl ReferralMutation {
    /// Records a click on a share link from an app, like `GET /r/{code}` does (anyone).
    async fn track_referral_click(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code from a share link, at most 128 characters.")] code: String,
    ) -> Result<ReferralClickResult> {
        let state = state(ctx)?;
        limit_public(ctx)?;
        let code = input::identifier("code", &code)?;
        let visitor = ctx.data_opt::<Visitor>().cloned().unwrap_or_default();
        let landing = links::track(
            crate::server::http::link_site(state),
            &code,
            Channel::App,
            &visitor,
        )
        .await?;
        Ok(ReferralClickResult {
            recorded: landing.recorded,
            landing_url: landing.url,
        })
    }

    /// Decides a flagged referral (admin tokens): approval lets it go on and pays it if it already
    /// qualified; refusal rejects it with REVIEW_REJECTED.
    async fn review_referral(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The referral's id.")] id: ID,
        #[graphql(desc = "true lets the referral go on; false rejects it.")] approve: bool,
        #[graphql(desc = "Why, for the record; at most 2,000 characters.")] note: Option<String>,
    ) -> Result<Referral> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let id = parse_id("id", &id)?;
        let note = input::optional_message("note", note.as_deref())?;
        Ok(Referral(
            crate::referrals::review::review(
                &state.db,
                state.clock.as_ref(),
                &state.reactions(),
                id,
                approve,
                note,
            )
            .await?,
        ))
    }
}
