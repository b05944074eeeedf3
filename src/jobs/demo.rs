//! `tandem seed-demo`, a one-off job beside the scheduler and delivery loops: a deterministic,
//! realistic program history written through the same rules the API uses, so every rule and constraint holds: customers on several channels, referral
//! chains (some rejected, some flagged), orders with refunds, carts (some abandoned), marketing
//! spend, tiers, badges, a catalog and redemptions. A clock that starts 400 days ago moves
//! forward as the story goes, and the scheduler runs once a simulated day (holds, expiry, cart
//! emails, badge backfill). It refuses a database that already has customers.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::campaigns::service::{self as campaigns, CampaignRules, Milestone, RewardRule};
use crate::carts::service::{self as carts, CartItem, CartUpdate};
use crate::clock::{Clock, ManualClock};
use crate::customers::EmailAddress;
use crate::customers::service::{self as customers, NewCustomer};
use crate::entities::customer;
use crate::entities::enums::{BadgeRule, RewardKind, TierDowngrade, TierMetric, TierPeriod};
use crate::error::AppError;
use crate::loyalty::badges::{self, NewBadge};
use crate::loyalty::settings::{self, SettingsChanges};
use crate::loyalty::tiers::{self, TierInput};
use crate::metrics::spend::{self, NewSpend};
use crate::orders::refunds;
use crate::orders::service::{self as orders, NewOrder, OrderItem};
use crate::referrals::links::{self, Channel, Visitor};
use crate::referrals::service as referrals;
use crate::rewards::catalog::{self, OptionInput};
use crate::rewards::redemption;
use crate::state::AppState;

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub customers: usize,
    pub orders: usize,
    pub seed: u64,
}

impl Default for DemoSize {
    fn default() -> Self {
        Self {
            customers: 300,
            orders: 900,
            seed: 1,
        }
    }
}

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemoReport {
    pub customers: usize,
    pub referred: usize,
    pub orders: usize,
    pub refunds: usize,
    pub carts: usize,
    pub redemptions: usize,
}

const DAYS: i64 = 400;
const CHANNELS: [&str; 4] = ["organic", "ads", "social", "email"];
const FIRST_NAMES: [&str; 12] = [
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kira", "Luis",
];
const LAST_NAMES: [&str; 8] = [
    "Lovelace", "Okafor", "Martin", "Patel", "Rossi", "Nakamura", "Silva", "Berg",
];
const PRODUCTS: [(&str, &str, i64); 6] = [
    ("mug", "Enamel mug", 1_800),
    ("tee", "Organic tee", 2_900),
    ("beans", "Coffee beans 1kg", 3_400),
    ("grinder", "Hand grinder", 8_900),
    ("kettle", "Pour-over kettle", 6_500),
    ("filters", "Paper filters", 600),
];

/// A small deterministic generator (xorshift64*), so the same seed writes the same story.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Seeds the program. `state` must use a [`ManualClock`] given as `clock`; it is moved forward.
pub async fn seed(
    state: &AppState,
    clock: &ManualClock,
    size: DemoSize,
) -> Result<DemoReport, AppError> {
    let existing = customer::Entity::find()
        .count(&state.db)
        .await
        .map_err(|e| AppError::internal("counting customers", e))?;
    if existing > 0 {
        return Err(AppError::Conflict(format!(
            "this database already has {existing} customers; seed-demo fills an empty one"
        )));
    }
    let mut dice = Dice(size.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let end = clock.now();
    let start = end - Duration::days(DAYS);
    clock.set(start);
    let reactions = state.reactions();
    setup(state, start).await?;

    let mut report = DemoReport::default();
    // Each customer's id and signup IP.
    let mut registered: Vec<(String, String)> = Vec::new();
    let steps = size.customers + size.orders;
    let mut orders_left = size.orders;
    let mut customers_left = size.customers;
    let mut last_day = start.date_naive();
    for step in 0..steps {
        clock.set(start + Duration::seconds((DAYS * 86_400) * step as i64 / steps.max(1) as i64));
        if clock.now().date_naive() != last_day {
            last_day = clock.now().date_naive();
            crate::jobs::scheduler::run_once(state).await;
        }
        // Signups come first in the story's early days; orders need customers.
        let sign_up = customers_left > 0
            && (registered.is_empty()
                || orders_left == 0
                || dice.below((customers_left + orders_left) as u64) < customers_left as u64);
        if sign_up {
            customers_left -= 1;
            let customer = register(state, &reactions, &mut dice, &registered, &mut report).await?;
            registered.push(customer);
        } else {
            orders_left -= 1;
            order(state, &reactions, &mut dice, &registered, &mut report).await?;
        }
    }
    clock.set(end);
    crate::jobs::scheduler::run_once(state).await;
    Ok(report)
}

async fn setup(state: &AppState, start: DateTime<Utc>) -> Result<(), AppError> {
    let db = &state.db;
    settings::update(
        db,
        start,
        "seed-demo",
        SettingsChanges {
            points_expire_after_days: Some(Some(365)),
            point_value: Some(1),
            tier_metric: Some(TierMetric::LifetimePoints),
            tier_period: Some(TierPeriod::Rolling12Months),
            tier_downgrade: Some(TierDowngrade::DropOne),
            tier_grace_days: Some(30),
            gross_margin: Some(0.4),
            ..SettingsChanges::default()
        },
    )
    .await?;
    for (name, threshold, multiplier, perk) in [
        ("Silver", 500, 1.25, "Free shipping"),
        ("Gold", 2_000, 1.5, "Early access to new roasts"),
    ] {
        tiers::create(
            db,
            start,
            TierInput {
                name: name.into(),
                threshold,
                multiplier: Some(multiplier),
                perks: vec![perk.into()],
            },
        )
        .await?;
    }
    for (key, name, rule, threshold) in [
        ("first-order", "First order", BadgeRule::Orders, 1),
        (
            "regular",
            "Three months running",
            BadgeRule::OrderStreakMonths,
            3,
        ),
        (
            "ambassador",
            "Ambassador",
            BadgeRule::SuccessfulReferrals,
            3,
        ),
        (
            "big-spender",
            "Big spender",
            BadgeRule::LifetimeSpend,
            50_000,
        ),
    ] {
        badges::create(
            db,
            start,
            NewBadge {
                key: key.into(),
                name: name.into(),
                description: None,
                rule,
                threshold,
            },
        )
        .await?;
    }
    for (name, cost, kind, amount) in [
        ("5.00 off", 500, RewardKind::FixedCoupon, 500),
        ("15% off", 1_200, RewardKind::PercentCoupon, 15),
        ("20.00 store credit", 2_000, RewardKind::StoreCredit, 2_000),
    ] {
        catalog::create(
            db,
            start,
            OptionInput {
                name: name.into(),
                points_cost: cost,
                kind,
                amount,
                min_tier_id: None,
                active: true,
            },
        )
        .await?;
    }
    let clock = FixedClock(start);
    campaigns::create(
        db,
        &clock,
        CampaignRules {
            name: "Give 10, get 500 points".into(),
            referrer_reward: RewardRule {
                kind: RewardKind::Points,
                amount: 500,
            },
            referee_reward: RewardRule {
                kind: RewardKind::FixedCoupon,
                amount: 1_000,
            },
            min_order_amount: 2_000,
            qualify_within_days: 30,
            hold_days: 14,
            max_rewards_per_referrer: Some(20),
            milestones: vec![Milestone {
                referrals: 5,
                reward: RewardRule {
                    kind: RewardKind::Points,
                    amount: 1_000,
                },
            }],
            landing_url: None,
            starts_at: Some(start),
            ends_at: None,
        },
    )
    .await?;
    for month in 0..(DAYS / 30 + 1) {
        for (channel, amount) in [("ads", 150_000), ("social", 60_000), ("email", 20_000)] {
            let period_start = start + Duration::days(30 * month);
            spend::record(
                db,
                start,
                "seed-demo",
                NewSpend {
                    channel: channel.into(),
                    amount: amount + 1_000 * month,
                    period_start,
                    period_end: period_start + Duration::days(30),
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// A clock that always says one time, for the set-up written before the story starts.
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

async fn register(
    state: &AppState,
    reactions: &crate::reactions::ProgramReactions<'_>,
    dice: &mut Dice,
    registered: &[(String, String)],
    report: &mut DemoReport,
) -> Result<(String, String), AppError> {
    let n = report.customers + 1;
    let external_id = format!("demo-{n:05}");
    let first = FIRST_NAMES[dice.below(FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[dice.below(LAST_NAMES.len() as u64) as usize];
    let mut ip = format!("198.51.{}.{}", dice.below(200), dice.below(250) + 1);
    let mut code = None;
    if !registered.is_empty() && dice.chance(35) {
        // Referral chains: friends of recent customers more often than of old ones.
        let back = dice.below(registered.len().min(60) as u64) as usize;
        let (referrer, referrer_ip) = &registered[registered.len() - 1 - back];
        let referrer = customers::get_by_external_id(&state.db, referrer).await?;
        for _ in 0..=dice.below(3) {
            let visitor = Visitor {
                ip: Some(format!("203.0.113.{}", dice.below(250) + 1)),
                user_agent: Some("Mozilla/5.0 (demo)".into()),
            };
            let channel = if dice.chance(50) {
                Channel::Link
            } else {
                Channel::App
            };
            links::track(
                crate::server::http::link_site(state),
                &referrer.referral_code,
                channel,
                &visitor,
            )
            .await?;
        }
        if dice.chance(15) {
            // The same network as the referrer: flagged for review.
            ip = referrer_ip.clone();
        }
        code = Some(referrer.referral_code);
        report.referred += 1;
    }
    let new = NewCustomer {
        external_id: external_id.clone(),
        email: EmailAddress::parse(&format!(
            "{}.{}.{n}@demo.example",
            first.to_lowercase(),
            last.to_lowercase()
        ))
        .map_err(|e| AppError::internal("making a demo email", e))?,
        name: Some(format!("{first} {last}")),
        acquisition_channel: CHANNELS[dice.below(CHANNELS.len() as u64) as usize].into(),
        marketing_consent: dice.chance(60),
        signup_referral_code: code,
        signup_ip_hash: Some(state.ip_hasher.hash(&ip)),
        device_id: None,
    };
    let customer = customers::register(&state.db, state.clock.as_ref(), reactions, new).await?;
    report.customers += 1;
    // An operator reviews most flagged referrals (most pass, some are refused); the rest wait in
    // the review queue.
    if let Some(referral) = referrals::of_referee(&state.db, customer.id).await?
        && referral.flagged
        && dice.chance(60)
    {
        let approve = dice.chance(60);
        crate::referrals::review::review(
            &state.db,
            state.clock.as_ref(),
            reactions,
            referral.id,
            approve,
            Some("seed-demo review".into()),
        )
        .await?;
    }
    Ok((external_id, ip))
}

async fn order(
    state: &AppState,
    reactions: &crate::reactions::ProgramReactions<'_>,
    dice: &mut Dice,
    registered: &[(String, String)],
    report: &mut DemoReport,
) -> Result<(), AppError> {
    // Recent customers order more: a skewed pick.
    let back = (dice.below(registered.len() as u64) * dice.below(100) / 100) as usize;
    let buyer = &registered[registered.len() - 1 - back].0;
    let mut items = Vec::new();
    for _ in 0..=dice.below(3) {
        let (id, name, price) = PRODUCTS[dice.below(PRODUCTS.len() as u64) as usize];
        items.push((id, name, price, 1 + dice.below(2) as i64));
    }
    report.carts += 1;
    let cart_id = format!("demo-cart-{:05}", report.carts);
    carts::upsert(
        &state.db,
        state.clock.as_ref(),
        &state.settings.carts,
        CartUpdate {
            external_id: cart_id.clone(),
            customer_external_id: buyer.clone(),
            items: items
                .iter()
                .map(|(id, name, price, quantity)| CartItem {
                    product_id: (*id).into(),
                    name: Some((*name).into()),
                    unit_price: *price,
                    quantity: *quantity,
                    image_url: None,
                    url: None,
                })
                .collect(),
            checkout_url: Some(format!("{}/checkout/{cart_id}", state.settings.public_url)),
        }
        .check()?,
    )
    .await?;
    if dice.chance(20) {
        // Abandoned: the scheduler's cart sequence takes it from here.
        return Ok(());
    }
    report.orders += 1;
    let external_id = format!("demo-order-{:05}", report.orders);
    let amount: i64 = items.iter().map(|(_, _, p, q)| p * q).sum();
    let new = NewOrder {
        external_id: external_id.clone(),
        customer_external_id: buyer.clone(),
        amount,
        currency: state.settings.currency.clone(),
        items: items
            .iter()
            .map(|(id, name, price, quantity)| OrderItem {
                product_id: (*id).into(),
                name: Some((*name).into()),
                unit_price: *price,
                quantity: *quantity,
            })
            .collect(),
        placed_at: None,
        cart_external_id: Some(cart_id),
    }
    .check(&state.settings.currency)?;
    orders::record(&state.db, state.clock.as_ref(), reactions, new).await?;
    if dice.chance(8) {
        let refunded = if dice.chance(50) { amount } else { amount / 2 };
        refunds::refund(
            &state.db,
            state.clock.as_ref(),
            reactions,
            &external_id,
            refunded.max(1),
            None,
        )
        .await?;
        report.refunds += 1;
    }
    if dice.chance(15) {
        for option in catalog::list(&state.db, false).await? {
            match redemption::redeem(&state.db, state.clock.as_ref(), buyer, option.id).await {
                Ok(_) => {
                    report.redemptions += 1;
                    break;
                }
                Err(AppError::InsufficientPoints(_)) => {}
                Err(other) => return Err(other),
            }
        }
    }
    Ok(())
}

/// Builds a state on a manual clock for seeding.
pub async fn state_for_seeding(
    settings: crate::config::Settings,
) -> Result<(AppState, ManualClock), crate::state::StartError> {
    let clock = ManualClock::new(Utc::now());
    let state = AppState::init(settings, Arc::new(clock.clone())).await?;
    Ok((state, clock))
}
