//! GraphQL types and resolvers for loyalty: points, the program settings, tiers, badges, the
//! leaderboard and the rewards catalog.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::Role;
use crate::customers::first_name;
use crate::customers::service as customers;
use crate::entities::enums::{
    BadgeRule, LeaderboardMetric, PointsReason, RewardKind, TierDowngrade, TierMetric, TierPeriod,
};
use crate::entities::{
    badge, customer, points_ledger_entry, program_settings, reward_option, tier, tier_period,
};
use crate::error::AppError;
use crate::graphql::context::{limit_account, parse_id, require, state};
use crate::graphql::loaders;
use crate::graphql::pagination::{PageInfo, PageRequest, encode_cursor, page_info};
use crate::graphql::rewards::Reward;
use crate::graphql::scalars::Long;
use crate::input;
use crate::loyalty::badges::{self, NewBadge};
use crate::loyalty::settings::{self, SettingsChanges};
use crate::loyalty::tiers::{self, TierInput};
use crate::loyalty::{self, facts, leaderboard};
use crate::rewards::catalog::{self, OptionInput};
use crate::rewards::redemption;

pub struct ProgramSettings(pub program_settings::Model);

/// The loyalty program's settings.
#[Object]
impl ProgramSettings {
    /// Points per major unit of the program currency an order earns (before a tier's multiplier).
    async fn points_per_unit(&self) -> Long {
        Long::from(self.0.points_per_unit)
    }
    /// Days after they were earned that points expire; null means never.
    async fn points_expire_after_days(&self) -> Option<i32> {
        self.0.points_expire_after_days
    }
    /// Days after an order before its points can be spent.
    async fn points_pending_days(&self) -> i32 {
        self.0.points_pending_days
    }
    /// What one point is worth in minor units of the program currency, for reporting.
    async fn point_value(&self) -> Long {
        Long::from(self.0.point_value)
    }
    /// What tiers are measured by.
    async fn tier_metric(&self) -> TierMetric {
        self.0.tier_metric
    }
    /// Which stretch of time the tier metric counts.
    async fn tier_period(&self) -> TierPeriod {
        self.0.tier_period
    }
    /// What happens when a customer falls below their tier.
    async fn tier_downgrade(&self) -> TierDowngrade {
        self.0.tier_downgrade
    }
    /// Days below a tier's threshold before a downgrade.
    async fn tier_grace_days(&self) -> i32 {
        self.0.tier_grace_days
    }
    /// Days before points expire that the `points_expiring` email goes.
    async fn expiry_notice_days(&self) -> i32 {
        self.0.expiry_notice_days
    }
    /// The share of net revenue that is margin (0 to 1): CLV and ROI count revenue at it.
    async fn gross_margin(&self) -> f64 {
        self.0.gross_margin
    }
    /// Who last changed the settings (the admin token's `sub`).
    async fn updated_by(&self) -> Option<&str> {
        self.0.updated_by.as_deref()
    }
    /// When the settings last changed.
    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }
}

/// Changes to the program settings; absent fields stay as they are.
#[derive(InputObject)]
pub struct ProgramSettingsInput {
    /// Points per major currency unit: 0 to 10,000 (0 turns earning from orders off).
    pub points_per_unit: Option<i32>,
    /// Days after earning that points expire: 1 to 3,650; null for never.
    pub points_expire_after_days: MaybeUndefined<i32>,
    /// Days before an order's points can be spent: 0 to 3,650.
    pub points_pending_days: Option<i32>,
    /// Minor units one point is worth, for reporting: 0 to 1,000,000,000.
    pub point_value: Option<i32>,
    /// What tiers are measured by.
    pub tier_metric: Option<TierMetric>,
    /// Which stretch of time the tier metric counts.
    pub tier_period: Option<TierPeriod>,
    /// What happens when a customer falls below their tier.
    pub tier_downgrade: Option<TierDowngrade>,
    /// Days below the threshold before a downgrade: 0 to 3,650.
    pub tier_grace_days: Option<i32>,
    /// Days before expiry that the `points_expiring` email goes: 1 to 3,650.
    pub expiry_notice_days: Option<i32>,
    /// The share of net revenue that is margin: 0 to 1.
    pub gross_margin: Option<f64>,
}

pub struct PointsEntry(pub points_ledger_entry::Model);

/// One line of a customer's points history.
#[Object]
impl PointsEntry {
    /// Points added (positive) or taken (negative).
    async fn delta(&self) -> Long {
        Long::from(self.0.delta)
    }
    /// Why.
    async fn reason(&self) -> PointsReason {
        self.0.reason
    }
    /// The reason as a sentence the shopper can read.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// What caused it, as `kind:id` (an order, a reward, a refund, a lot that expired…).
    async fn source(&self) -> String {
        format!("{}:{}", self.0.source_kind, self.0.source_id)
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the points were earned (for a take-back, when the points it takes were earned).
    async fn earned_at(&self) -> Option<DateTime<Utc>> {
        self.0.earned_at
    }
    /// For a credit: when what is left of it expires.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// For a credit: when it becomes spendable.
    async fn available_at(&self) -> Option<DateTime<Utc>> {
        (self.0.delta > 0).then_some(self.0.available_at).flatten()
    }
}

/// One entry in a page.
#[derive(SimpleObject)]
pub struct PointsEntryEdge {
    /// Pass as `after` to continue after this entry.
    pub cursor: String,
    /// The entry.
    pub node: PointsEntry,
}

/// A page of points history, newest first.
#[derive(SimpleObject)]
pub struct PointsEntryConnection {
    /// The entries of this page with their cursors.
    pub edges: Vec<PointsEntryEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

/// Points that expire on one date.
#[derive(SimpleObject)]
pub struct ExpiringPoints {
    /// How many.
    pub amount: Long,
    /// When.
    pub expires_at: DateTime<Utc>,
}

pub struct Tier(pub tier::Model);

/// A tier of the loyalty program.
#[Object]
impl Tier {
    /// The tier's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The tier metric a customer needs in the period to reach it.
    async fn threshold(&self) -> Long {
        Long::from(self.0.threshold)
    }
    /// What order points are multiplied by in this tier.
    async fn points_multiplier(&self) -> f64 {
        self.0.multiplier_milli as f64 / 1000.0
    }
    /// What members get, as the shop describes it.
    async fn perks(&self) -> Vec<String> {
        serde_json::from_value(self.0.perks.clone()).unwrap_or_default()
    }
}

/// A tier to create, or the new values of one.
#[derive(InputObject)]
#[graphql(name = "TierInput")]
pub struct TierFields {
    /// A unique name, at most 200 characters.
    pub name: String,
    /// The metric needed to reach it: 0 to 1,000,000,000; unique among tiers.
    pub threshold: i32,
    /// What order points are multiplied by: 0 to 100; 1 when absent.
    pub points_multiplier: Option<f64>,
    /// What members get: at most 20 perks of at most 200 characters each.
    pub perks: Option<Vec<String>>,
}

impl TierFields {
    fn into_rules(self) -> TierInput {
        TierInput {
            name: self.name,
            threshold: i64::from(self.threshold),
            multiplier: self.points_multiplier,
            perks: self.perks.unwrap_or_default(),
        }
    }
}

/// The tier above the customer's, and how far it is.
#[derive(SimpleObject)]
pub struct NextTier {
    /// The tier.
    pub tier: Tier,
    /// How much more of the tier metric it needs in the period.
    pub remaining: Long,
    /// The share of its threshold reached: 0 to 1.
    pub progress: f64,
}

pub struct TierStint(pub tier_period::Model);

/// A stretch of time a customer spent in a tier.
#[Object(name = "TierStint")]
impl TierStint {
    /// The tier's name at the time.
    async fn tier(&self) -> &str {
        &self.0.tier_name
    }
    /// When the customer entered it.
    async fn from(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When they left it; null while they are in it.
    async fn to(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// Why they entered it.
    async fn reason(&self) -> &str {
        &self.0.reason
    }
}

pub struct Badge(pub badge::Model);

/// A badge and the rule that earns it.
#[Object]
impl Badge {
    /// The badge's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its stable key.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// What it counts.
    async fn rule(&self) -> BadgeRule {
        self.0.rule
    }
    /// How much of it earns the badge.
    async fn threshold(&self) -> Long {
        Long::from(self.0.threshold)
    }
}

/// A badge to create.
#[derive(InputObject)]
pub struct BadgeInput {
    /// A unique key, at most 128 characters.
    pub key: String,
    /// Its name, at most 200 characters.
    pub name: String,
    /// What it is for, at most 2,000 characters.
    pub description: Option<String>,
    /// What it counts.
    pub rule: BadgeRule,
    /// How much of it earns the badge: 1 to 1,000,000,000.
    pub threshold: i32,
}

/// A badge a customer holds.
#[derive(SimpleObject)]
pub struct AwardedBadge {
    /// The badge.
    pub badge: Badge,
    /// When it was awarded.
    pub awarded_at: DateTime<Utc>,
}

/// Where a customer stands on a badge.
#[derive(SimpleObject)]
pub struct BadgeProgress {
    /// The badge.
    pub badge: Badge,
    /// The customer's count on the badge's rule.
    pub current: Long,
    /// What earns it.
    pub threshold: Long,
    /// Whether the customer holds it.
    pub achieved: bool,
}

/// One place on a leaderboard.
#[derive(SimpleObject)]
pub struct LeaderboardEntry {
    /// 1 for the first; ties go to whoever reached the value first.
    pub rank: i32,
    /// The first name and the initial of the last ("Ada L."), or "A customer".
    pub display_name: String,
    /// The metric in the range.
    pub value: Long,
}

pub struct RewardOption(pub reward_option::Model);

/// A reward in the catalog, bought with points.
#[Object]
impl RewardOption {
    /// The option's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it costs in points.
    async fn points_cost(&self) -> Long {
        Long::from(self.0.points_cost)
    }
    /// What the reward gives.
    async fn kind(&self) -> RewardKind {
        self.0.kind
    }
    /// A percent, or minor units of the program currency.
    async fn amount(&self) -> Long {
        Long::from(self.0.amount)
    }
    /// The lowest tier that may buy it; null for everyone.
    async fn min_tier(&self, ctx: &Context<'_>) -> Result<Option<Tier>> {
        match self.0.min_tier_id {
            Some(id) => Ok(Some(Tier(tiers::get(&state(ctx)?.db, id).await?))),
            None => Ok(None),
        }
    }
    /// Whether it is offered.
    async fn active(&self) -> bool {
        self.0.active
    }
}

/// A catalog option to create, or the new values of one.
#[derive(InputObject)]
pub struct RewardOptionInput {
    /// Its name, at most 200 characters.
    pub name: String,
    /// What it costs in points: 1 to 1,000,000,000.
    pub points_cost: i32,
    /// What the reward gives (not POINTS).
    pub kind: RewardKind,
    /// A percent (1–100) for PERCENT_COUPON, or minor units of the program currency (1 to
    /// 1,000,000,000).
    pub amount: i32,
    /// The lowest tier that may buy it; everyone when absent.
    pub min_tier: Option<ID>,
    /// Whether it is offered; true when absent.
    pub active: Option<bool>,
}

impl RewardOptionInput {
    fn into_rules(self) -> Result<OptionInput, AppError> {
        Ok(OptionInput {
            name: self.name,
            points_cost: i64::from(self.points_cost),
            kind: self.kind,
            amount: i64::from(self.amount),
            min_tier_id: self
                .min_tier
                .as_ref()
                .map(|id| parse_id("minTier", id))
                .transpose()?,
            active: self.active.unwrap_or(true),
        })
    }
}

/// "Ada L." from "Ada Lovelace"; "Ada" alone; "A customer" without a name.
pub fn display_name(name: Option<&str>) -> String {
    let Some(first) = first_name(name) else {
        return "A customer".into();
    };
    let initial = name
        .and_then(|n| n.split_whitespace().nth(1))
        .and_then(|last| last.chars().next());
    match initial {
        Some(initial) => format!("{first} {initial}."),
        None => first,
    }
}

async fn ranked(
    ctx: &Context<'_>,
    standings: Vec<leaderboard::Standing>,
) -> Result<Vec<LeaderboardEntry>> {
    let db = &state(ctx)?.db;
    let mut entries = Vec::with_capacity(standings.len());
    for standing in standings {
        let name = customers::find_by_id(db, standing.customer_id)
            .await?
            .and_then(|c| c.name);
        entries.push(LeaderboardEntry {
            rank: i32::try_from(standing.rank).unwrap_or(i32::MAX),
            display_name: display_name(name.as_deref()),
            value: Long::from(standing.value),
        });
    }
    Ok(entries)
}

// The loyalty fields of `Customer`, kept here with the types they return.

pub async fn points_balance(ctx: &Context<'_>, customer: &customer::Model) -> Result<Long> {
    Ok(Long::from(
        loaders::points(ctx, customer.id).await?.balance(),
    ))
}

pub async fn pending_points(ctx: &Context<'_>, customer: &customer::Model) -> Result<Long> {
    Ok(Long::from(loaders::points(ctx, customer.id).await?.pending))
}

pub async fn lifetime_points(ctx: &Context<'_>, customer: &customer::Model) -> Result<Long> {
    Ok(Long::from(
        loaders::points(ctx, customer.id).await?.lifetime,
    ))
}

pub async fn points_expiring_soon(
    ctx: &Context<'_>,
    customer: &customer::Model,
    days: i32,
) -> Result<Vec<ExpiringPoints>> {
    input::int_in("days", i64::from(days), 1..=i64::from(settings::MAX_DAYS))?;
    Ok(loaders::expiring(ctx, customer.id, days)
        .await?
        .iter()
        .map(|(expires_at, amount)| ExpiringPoints {
            amount: Long::from(*amount),
            expires_at: *expires_at,
        })
        .collect())
}

pub async fn points_history(
    ctx: &Context<'_>,
    customer: &customer::Model,
    first: Option<i32>,
    after: Option<String>,
) -> Result<PointsEntryConnection> {
    let request = PageRequest::parse(first, after.as_deref())?;
    let (rows, has_next_page) =
        crate::loyalty::ledger::history(&state(ctx)?.db, customer.id, request.limit, request.after)
            .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    Ok(PointsEntryConnection {
        page_info: page_info(&ids, request, has_next_page),
        edges: rows
            .into_iter()
            .map(|row| PointsEntryEdge {
                cursor: encode_cursor(row.id),
                node: PointsEntry(row),
            })
            .collect(),
    })
}

pub async fn tier(ctx: &Context<'_>, customer: &customer::Model) -> Result<Option<Tier>> {
    // Most customers hold no tier: they need no configuration to say so.
    if customer.tier_id.is_none() {
        return Ok(None);
    }
    let program = loaders::program(ctx).await?;
    Ok(program.tier(customer.tier_id).cloned().map(Tier))
}

pub async fn next_tier(ctx: &Context<'_>, customer: &customer::Model) -> Result<Option<NextTier>> {
    let state = state(ctx)?;
    let program = loaders::program(ctx).await?;
    let Some(next) = program.tier_above(program.tier(customer.tier_id)).cloned() else {
        return Ok(None);
    };
    let lifetime = loaders::points(ctx, customer.id).await?.lifetime;
    let metric = tiers::metric_given(
        &state.db,
        &program.settings,
        state.clock.now(),
        customer.id,
        lifetime,
    )
    .await?;
    let progress = if next.threshold == 0 {
        1.0
    } else {
        (metric as f64 / next.threshold as f64).clamp(0.0, 1.0)
    };
    Ok(Some(NextTier {
        remaining: Long::from((next.threshold - metric).max(0)),
        progress,
        tier: Tier(next),
    }))
}

pub async fn tier_history(ctx: &Context<'_>, customer: &customer::Model) -> Result<Vec<TierStint>> {
    Ok(tiers::history(&state(ctx)?.db, customer.id)
        .await?
        .into_iter()
        .map(TierStint)
        .collect())
}

pub async fn badges_of(ctx: &Context<'_>, customer: &customer::Model) -> Result<Vec<AwardedBadge>> {
    let held = loaders::held_badges(ctx, customer.id).await?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let program = loaders::program(ctx).await?;
    Ok(held
        .iter()
        .filter_map(|award| {
            program
                .badges
                .iter()
                .find(|b| b.id == award.badge_id)
                .map(|b| AwardedBadge {
                    badge: Badge(b.clone()),
                    awarded_at: award.awarded_at,
                })
        })
        .collect())
}

pub async fn badge_progress(
    ctx: &Context<'_>,
    customer: &customer::Model,
) -> Result<Vec<BadgeProgress>> {
    let db = &state(ctx)?.db;
    let program = loaders::program(ctx).await?;
    let awards = loaders::held_badges(ctx, customer.id).await?;
    let mut progress = Vec::new();
    for badge in program.badges.iter().cloned() {
        let current = facts::badge_value(db, customer.id, badge.rule).await?;
        progress.push(BadgeProgress {
            achieved: awards.iter().any(|a| a.badge_id == badge.id),
            current: Long::from(current),
            threshold: Long::from(badge.threshold),
            badge: Badge(badge),
        });
    }
    Ok(progress)
}

pub async fn leaderboard_position(
    ctx: &Context<'_>,
    customer: &customer::Model,
    metric: LeaderboardMetric,
) -> Result<Option<LeaderboardEntry>> {
    let db = &state(ctx)?.db;
    let standing = leaderboard::position(db, metric, customer.id).await?;
    Ok(ranked(ctx, standing.into_iter().collect())
        .await?
        .into_iter()
        .next())
}

#[derive(Default)]
pub struct LoyaltyQuery;

#[Object]
impl LoyaltyQuery {
    /// The loyalty program's settings (admin tokens).
    async fn program_settings(&self, ctx: &Context<'_>) -> Result<ProgramSettings> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(ProgramSettings(settings::load(&state.db).await?))
    }

    /// Every tier, lowest threshold first (any token).
    async fn tiers(&self, ctx: &Context<'_>) -> Result<Vec<Tier>> {
        let (state, _) = require(ctx, &[Role::Admin, Role::Service, Role::Customer])?;
        Ok(tiers::all(&state.db).await?.into_iter().map(Tier).collect())
    }

    /// Every badge, oldest first (any token).
    async fn badges(&self, ctx: &Context<'_>) -> Result<Vec<Badge>> {
        let (state, _) = require(ctx, &[Role::Admin, Role::Service, Role::Customer])?;
        Ok(badges::all(&state.db)
            .await?
            .into_iter()
            .map(Badge)
            .collect())
    }

    /// The catalog, cheapest first (any token); admins also see inactive options.
    async fn reward_options(&self, ctx: &Context<'_>) -> Result<Vec<RewardOption>> {
        let (state, principal) = require(ctx, &[Role::Admin, Role::Service, Role::Customer])?;
        Ok(catalog::list(&state.db, principal.role == Role::Admin)
            .await?
            .into_iter()
            .map(RewardOption)
            .collect())
    }

    /// The best customers on a metric in a range of days (customer and admin tokens). Reversed
    /// referrals and points taken back do not count.
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        metric: LeaderboardMetric,
        #[graphql(desc = "The first day counted (UTC); from the start when absent.")] from: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "The last day counted (UTC); up to today when absent.")] to: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "How many places: 1 to 100.", default = 10)] first: i32,
    ) -> Result<Vec<LeaderboardEntry>> {
        let (state, _) = require(ctx, &[Role::Admin, Role::Customer])?;
        input::int_in("first", i64::from(first), 1..=100)?;
        let from = input::optional_moment("from", from)?;
        let to = input::optional_moment("to", to)?;
        let standings =
            leaderboard::standings(&state.db, metric, from, to, Some(first as u64)).await?;
        ranked(ctx, standings).await
    }
}

#[derive(Default)]
pub struct LoyaltyMutation;

#[Object]
impl LoyaltyMutation {
    /// Changes the program settings (admin tokens). New values apply to what happens next:
    /// lots already written keep their dates.
    async fn update_program_settings(
        &self,
        ctx: &Context<'_>,
        input: ProgramSettingsInput,
    ) -> Result<ProgramSettings> {
        let (state, principal) = require(ctx, &[Role::Admin])?;
        let changes = SettingsChanges {
            points_per_unit: input.points_per_unit.map(i64::from),
            points_expire_after_days: match input.points_expire_after_days {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(days) => Some(Some(days)),
            },
            points_pending_days: input.points_pending_days,
            point_value: input.point_value.map(i64::from),
            tier_metric: input.tier_metric,
            tier_period: input.tier_period,
            tier_downgrade: input.tier_downgrade,
            tier_grace_days: input.tier_grace_days,
            expiry_notice_days: input.expiry_notice_days,
            gross_margin: input.gross_margin,
        };
        Ok(ProgramSettings(
            settings::update(&state.db, state.clock.now(), &principal.subject, changes).await?,
        ))
    }

    /// Adds or takes points by hand (admin tokens). The reason is shown to the customer in
    /// their history; the admin's `sub` is recorded.
    async fn adjust_points(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The merchant's id for the customer; at most 128 characters.")]
        customer_external_id: String,
        #[graphql(
            desc = "Points to add (positive) or take (negative): 1 to 100,000,000 either way."
        )]
        delta: i32,
        #[graphql(desc = "Why, as the customer will read it: at most 2,000 characters.")]
        reason: String,
    ) -> Result<PointsEntry> {
        let (state, principal) = require(ctx, &[Role::Admin])?;
        Ok(PointsEntry(
            loyalty::adjustment::adjust(
                &state.db,
                state.clock.as_ref(),
                &state.program,
                &customer_external_id,
                i64::from(delta),
                &reason,
                &principal.subject,
            )
            .await?,
        ))
    }

    /// Creates a tier (admin tokens). Customers reach it on their next event or the daily pass.
    async fn create_tier(&self, ctx: &Context<'_>, input: TierFields) -> Result<Tier> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(Tier(
            tiers::create(&state.db, state.clock.now(), input.into_rules()).await?,
        ))
    }

    /// Replaces a tier's values (admin tokens).
    async fn update_tier(&self, ctx: &Context<'_>, id: ID, input: TierFields) -> Result<Tier> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let id = parse_id("id", &id)?;
        Ok(Tier(
            tiers::update(&state.db, state.clock.now(), id, input.into_rules()).await?,
        ))
    }

    /// Deletes a tier (admin tokens); its members move to the tier below at once.
    async fn delete_tier(&self, ctx: &Context<'_>, id: ID) -> Result<Tier> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let id = parse_id("id", &id)?;
        let txn = crate::db::begin_write(&state.db)
            .await
            .map_err(|e| AppError::internal("starting a tier deletion", e))?;
        let deleted = tiers::delete(&txn, state.clock.now(), id).await?;
        txn.commit()
            .await
            .map_err(|e| AppError::internal("committing a tier deletion", e))?;
        Ok(Tier(deleted))
    }

    /// Creates a badge (admin tokens). Customers who already meet it get it from a background
    /// job, in batches.
    async fn create_badge(&self, ctx: &Context<'_>, input: BadgeInput) -> Result<Badge> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let new = NewBadge {
            key: input.key,
            name: input.name,
            description: input.description,
            rule: input.rule,
            threshold: i64::from(input.threshold),
        };
        Ok(Badge(
            badges::create(&state.db, state.clock.now(), new).await?,
        ))
    }

    /// Adds an option to the catalog (admin tokens).
    async fn create_reward_option(
        &self,
        ctx: &Context<'_>,
        input: RewardOptionInput,
    ) -> Result<RewardOption> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        Ok(RewardOption(
            catalog::create(&state.db, state.clock.now(), input.into_rules()?).await?,
        ))
    }

    /// Replaces an option's values, or withdraws it with `active: false` (admin tokens).
    async fn update_reward_option(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: RewardOptionInput,
    ) -> Result<RewardOption> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let id = parse_id("id", &id)?;
        Ok(RewardOption(
            catalog::update(&state.db, state.clock.now(), id, input.into_rules()?).await?,
        ))
    }

    /// Buys a catalog option with the caller's points (customer tokens): the points are taken
    /// and the reward issued with its own coupon code, together. `INSUFFICIENT_POINTS` when the
    /// spendable balance is short; `FORBIDDEN` when the option needs a higher tier.
    async fn redeem_points(&self, ctx: &Context<'_>, option_id: ID) -> Result<Reward> {
        let (state, principal) = require(ctx, &[Role::Customer])?;
        limit_account(state, principal, None)?;
        let external_id = input::identifier("token sub", &principal.subject)?;
        let option_id = parse_id("optionId", &option_id)?;
        Ok(Reward(
            redemption::redeem(&state.db, state.clock.as_ref(), &external_id, option_id).await?,
        ))
    }
}
