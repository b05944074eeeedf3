//! Tiers: a customer's tier is the highest whose threshold their metric reaches in the program's
//! period. Going up is immediate; going down waits `tierGraceDays` below the threshold and then
//! follows `tierDowngrade`. Evaluation runs in the transaction of every event that moves the
//! metric, and daily for periods that slide.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use crate::db::begin_write;
use crate::email::outbox::{self, OutgoingEmail};
use crate::entities::enums::{TierDowngrade, TierMetric};
use crate::entities::{customer, tier, tier_period};
use crate::error::{AppError, DbContext};
use crate::input;
use crate::loyalty::facts::{self, Measures};
use crate::loyalty::program::{self, Program};
use crate::loyalty::settings::{ProgramSettings, period_start};

/// The largest multiplier a tier may give.
pub const MAX_MULTIPLIER: f64 = 100.0;
/// How many perks a tier may list.
pub const MAX_PERKS: usize = 20;

/// A tier to create, or the new values of one.
#[derive(Debug, Clone)]
pub struct TierInput {
    pub name: String,
    pub threshold: i64,
    pub multiplier: Option<f64>,
    pub perks: Vec<String>,
}

fn multiplier_milli(value: Option<f64>) -> Result<i64, AppError> {
    let value = value.unwrap_or(1.0);
    if !value.is_finite() || !(0.0..=MAX_MULTIPLIER).contains(&value) {
        return Err(AppError::bad_input(
            "pointsMultiplier",
            format!("pointsMultiplier must be between 0 and {MAX_MULTIPLIER}"),
        ));
    }
    Ok((value * 1000.0).round() as i64)
}

fn checked(input: TierInput) -> Result<(String, i64, i64, serde_json::Value), AppError> {
    let name = input::name("name", &input.name)?;
    let threshold = input::int_in("threshold", input.threshold, 0..=input::MAX_AMOUNT)?;
    let multiplier = multiplier_milli(input.multiplier)?;
    input::list_len("perks", input.perks.len(), MAX_PERKS)?;
    let perks = input
        .perks
        .iter()
        .map(|perk| input::name("perks", perk))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, threshold, multiplier, serde_json::json!(perks)))
}

fn taken(error: &sea_orm::DbErr) -> Option<AppError> {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))).then(|| {
        AppError::Conflict(
            "another tier already has this name or this threshold; each must be unique".into(),
        )
    })
}

/// Creates a tier and raises the program's version, in one transaction.
pub async fn create(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    input: TierInput,
) -> Result<tier::Model, AppError> {
    let (name, threshold, multiplier_milli, perks) = checked(input)?;
    let txn = begin_write(db).await.context("starting a tier change")?;
    let created = tier::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        threshold: Set(threshold),
        multiplier_milli: Set(multiplier_milli),
        perks: Set(perks),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| taken(&e).unwrap_or_else(|| AppError::internal("creating a tier", e)))?;
    program::changed(&txn).await?;
    txn.commit().await.context("committing a tier change")?;
    Ok(created)
}

/// Replaces a tier's values. Customers move on their next evaluation (an event or the daily
/// pass), so a raised threshold follows the downgrade policy like any other drop.
pub async fn update(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    id: Uuid,
    input: TierInput,
) -> Result<tier::Model, AppError> {
    let (name, threshold, multiplier_milli, perks) = checked(input)?;
    let txn = begin_write(db).await.context("starting a tier change")?;
    let mut row = get(&txn, id).await?.into_active_model();
    row.name = Set(name);
    row.threshold = Set(threshold);
    row.multiplier_milli = Set(multiplier_milli);
    row.perks = Set(perks);
    row.updated_at = Set(now);
    let updated = row
        .update(&txn)
        .await
        .map_err(|e| taken(&e).unwrap_or_else(|| AppError::internal("updating a tier", e)))?;
    program::changed(&txn).await?;
    txn.commit().await.context("committing a tier change")?;
    Ok(updated)
}

/// Deletes a tier. Its members move to the tier below it at once (their history says why).
pub async fn delete(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    id: Uuid,
) -> Result<tier::Model, AppError> {
    let doomed = get(db, id).await?;
    let below = all(db)
        .await?
        .into_iter()
        .rfind(|t| t.threshold < doomed.threshold);
    let member_ids: Vec<Uuid> = customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .filter(customer::Column::TierId.eq(id))
        .into_tuple()
        .all(db)
        .await
        .context("loading a tier's members")?;
    for member in crate::customers::locks::all_of(db, &member_ids)
        .await?
        .rows()
    {
        let reason = format!("the {} tier was removed", doomed.name);
        let mut row = RowChanges::default();
        row.move_to(below.as_ref(), None);
        // One statement a member: a `CASE` over every member of a large tier would not fit.
        let mut rows = TierRows::default();
        rows.add(member.id, row);
        rows.write(db).await?;
        record_period(db, now, member, below.as_ref(), &reason).await?;
    }
    tier::Entity::delete_by_id(id)
        .exec(db)
        .await
        .context("deleting a tier")?;
    program::changed(db).await?;
    Ok(doomed)
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<tier::Model, AppError> {
    tier::Entity::find_by_id(id)
        .one(db)
        .await
        .context("loading a tier")?
        .ok_or_else(|| AppError::NotFound(format!("no tier has id '{id}'")))
}

/// Every tier, lowest threshold first.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<tier::Model>, AppError> {
    tier::Entity::find()
        .order_by_asc(tier::Column::Threshold)
        .all(db)
        .await
        .context("loading tiers")
}

/// The customer's tier, if any.
pub async fn of_customer(
    db: &impl ConnectionTrait,
    customer: &customer::Model,
) -> Result<Option<tier::Model>, AppError> {
    match customer.tier_id {
        Some(id) => tier::Entity::find_by_id(id)
            .one(db)
            .await
            .context("loading a customer's tier"),
        None => Ok(None),
    }
}

/// The customer's metric in the current period, under the program's settings.
pub async fn metric_of(
    db: &impl ConnectionTrait,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
    customer_id: Uuid,
) -> Result<i64, AppError> {
    let since = period_start(settings.tier_period, now);
    facts::tier_metric(db, customer_id, settings.tier_metric, since).await
}

/// [`metric_of`], from `lifetime_points` (the customer's kept lifetime points, read already) when
/// the program measures lifetime points over a customer's whole life.
pub async fn metric_given(
    db: &impl ConnectionTrait,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
    customer_id: Uuid,
    lifetime_points: i64,
) -> Result<i64, AppError> {
    if settings.tier_metric == TierMetric::LifetimePoints
        && period_start(settings.tier_period, now).is_none()
    {
        return Ok(lifetime_points);
    }
    metric_of(db, settings, now, customer_id).await
}

fn unit(metric: TierMetric) -> &'static str {
    match metric {
        TierMetric::LifetimePoints => "points",
        TierMetric::SuccessfulReferrals => "successful referrals",
        TierMetric::Spend => "in spend (minor units)",
    }
}

/// Re-evaluates one customer's tier: `customer` is their row as locked by the caller. The
/// change to their row joins `rows`, which the caller writes ([`TierRows::write`]); the tier
/// period and the email are written at once.
pub async fn evaluate<C: ConnectionTrait>(
    txn: &C,
    program: &Program,
    now: DateTime<Utc>,
    customer: &customer::Model,
    measures: &Measures<'_, C>,
    rows: &mut TierRows,
) -> Result<(), AppError> {
    let (settings, tiers) = (&program.settings, &program.tiers);
    if tiers.is_empty() && customer.tier_id.is_none() {
        // Nothing to evaluate, and nothing the daily check would look at: no write on this path.
        return Ok(());
    }
    let mut row = RowChanges::default();
    // The stamp only keeps the daily pass off customers evaluated lately: within the hour is
    // recent enough, and saves a write on every order.
    if customer
        .tier_checked_at
        .is_none_or(|at| now - at >= Duration::hours(1) || at > now)
    {
        row.checked_at = Some(now);
    }
    let metric = measures
        .tier_metric(
            settings.tier_metric,
            period_start(settings.tier_period, now),
        )
        .await?;
    let target = tiers.iter().rev().find(|t| t.threshold <= metric);
    let current = customer
        .tier_id
        .and_then(|id| tiers.iter().find(|t| t.id == id));
    let rank = |t: Option<&tier::Model>| t.map_or(-1, |t| t.threshold);
    let (target_rank, current_rank) = (rank(target), rank(current));
    if target_rank > current_rank {
        let reason = format!("reached {metric} {}", unit(settings.tier_metric));
        row.move_to(target, None);
        rows.add(customer.id, row);
        record_period(txn, now, customer, target, &reason).await?;
        if let Some(reached) = target {
            announce(txn, now, customer, reached).await?;
        }
        return Ok(());
    }
    if target_rank == current_rank || settings.tier_downgrade == TierDowngrade::Never {
        if customer.tier_below_since.is_some() {
            row.below_since = Some(None);
        }
        rows.add(customer.id, row);
        return Ok(());
    }
    let below_since = match customer.tier_below_since {
        Some(since) => since,
        None => {
            row.below_since = Some(Some(now));
            now
        }
    };
    let grace = Duration::days(i64::from(settings.tier_grace_days));
    if now - below_since < grace {
        rows.add(customer.id, row);
        return Ok(());
    }
    let new = match settings.tier_downgrade {
        TierDowngrade::DropOne => tiers.iter().rev().find(|t| t.threshold < current_rank),
        _ => target,
    };
    let reason = format!(
        "{metric} {} is below the threshold after {} grace days",
        unit(settings.tier_metric),
        settings.tier_grace_days
    );
    // Still above what the metric supports: the next drop waits for another grace period.
    let still_above = rank(new) > target_rank;
    row.move_to(new, still_above.then_some(now));
    rows.add(customer.id, row);
    record_period(txn, now, customer, new, &reason).await
}

/// What an evaluation changes in the customer's row.
#[derive(Debug, Default, Clone, Copy)]
struct RowChanges {
    checked_at: Option<DateTime<Utc>>,
    tier_id: Option<Option<Uuid>>,
    below_since: Option<Option<DateTime<Utc>>>,
}

impl RowChanges {
    fn move_to(&mut self, tier: Option<&tier::Model>, below_since: Option<DateTime<Utc>>) {
        self.tier_id = Some(tier.map(|t| t.id));
        self.below_since = Some(below_since);
    }

    fn is_empty(&self) -> bool {
        self.checked_at.is_none() && self.tier_id.is_none() && self.below_since.is_none()
    }
}

/// The customers' rows the evaluations of one transaction change, written together by
/// [`TierRows::write`]: one statement whatever the number of customers (a qualifying order
/// evaluates the friend and the referrer).
#[derive(Debug, Default)]
pub struct TierRows(Vec<(Uuid, RowChanges)>);

impl TierRows {
    fn add(&mut self, customer_id: Uuid, changes: RowChanges) {
        if changes.is_empty() {
            return;
        }
        // A customer evaluated twice keeps what the later evaluation set.
        match self.0.iter_mut().find(|(id, _)| *id == customer_id) {
            Some((_, kept)) => {
                kept.checked_at = changes.checked_at.or(kept.checked_at);
                kept.tier_id = changes.tier_id.or(kept.tier_id);
                kept.below_since = changes.below_since.or(kept.below_since);
            }
            None => self.0.push((customer_id, changes)),
        }
    }

    /// Writes the changes, in one `UPDATE`: each column set by a `CASE` on the customer's id
    /// (left as it is for a customer that does not change it).
    pub async fn write(self, txn: &impl ConnectionTrait) -> Result<(), AppError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = self.0.iter().map(|(id, _)| *id).collect();
        let only = ids.len() == 1;
        let mut update = customer::Entity::update_many();
        let columns: [(customer::Column, ValueOf); 3] = [
            (customer::Column::TierCheckedAt, |c| {
                c.checked_at.map(Expr::value)
            }),
            (customer::Column::TierId, |c| c.tier_id.map(Expr::value)),
            (customer::Column::TierBelowSince, |c| {
                c.below_since.map(Expr::value)
            }),
        ];
        for (column, value_of) in columns {
            let values = self
                .0
                .iter()
                .filter_map(|(id, changes)| value_of(changes).map(|value| (*id, value)))
                .collect();
            if let Some(value) = per_customer(values, column, only) {
                update = update.col_expr(column, value);
            }
        }
        update
            .filter(customer::Column::Id.is_in(ids))
            .exec(txn)
            .await
            .context("recording customers' tier evaluations")?;
        Ok(())
    }
}

/// What a [`RowChanges`] sets one column to, if it sets it.
type ValueOf = fn(&RowChanges) -> Option<Expr>;

/// The value of `column` for each customer that sets it, the column as it is for the others;
/// `None` when nobody sets it. `only_customer` when the statement writes one customer's row.
fn per_customer(
    values: Vec<(Uuid, Expr)>,
    column: customer::Column,
    only_customer: bool,
) -> Option<Expr> {
    if only_customer {
        return values.into_iter().next().map(|(_, value)| value);
    }
    let mut values = values.into_iter();
    let (first_id, first) = values.next()?;
    let case = values.fold(
        Expr::case(customer::Column::Id.eq(first_id), first),
        |case, (id, value)| case.case(customer::Column::Id.eq(id), value),
    );
    Some(case.finally(Expr::col(column)).into())
}

/// The history of a move of `customer` (as locked, before the move) to `tier`: the open period
/// closed, and one opened for the new tier. A customer without a tier has no open period:
/// periods are opened only for a tier.
async fn record_period(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    customer: &customer::Model,
    tier: Option<&tier::Model>,
    reason: &str,
) -> Result<(), AppError> {
    if customer.tier_id.is_some() {
        tier_period::Entity::update_many()
            .col_expr(tier_period::Column::EndedAt, Expr::value(now))
            .filter(tier_period::Column::CustomerId.eq(customer.id))
            .filter(tier_period::Column::EndedAt.is_null())
            .exec(txn)
            .await
            .context("closing a tier period")?;
    }
    if let Some(tier) = tier {
        tier_period::ActiveModel {
            id: Set(Uuid::now_v7()),
            customer_id: Set(customer.id),
            tier_id: Set(Some(tier.id)),
            tier_name: Set(tier.name.clone()),
            reason: Set(reason.to_owned()),
            started_at: Set(now),
            ended_at: Set(None),
        }
        .insert(txn)
        .await
        .context("opening a tier period")?;
    }
    Ok(())
}

/// The `tier_upgraded` email: transactional, once per customer and tier reached.
async fn announce(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    customer: &customer::Model,
    tier: &tier::Model,
) -> Result<(), AppError> {
    let multiplier = (tier.multiplier_milli != 1000)
        .then(|| format!("{}", tier.multiplier_milli as f64 / 1000.0));
    let data = serde_json::json!({
        "tier": tier.name,
        "multiplier": multiplier,
        "perks": tier.perks,
    });
    outbox::queue(
        txn,
        now,
        OutgoingEmail::to_customer(
            "tier_upgraded",
            customer,
            data,
            format!("tier_upgraded:{}:{}", customer.id, tier.id),
            false,
        ),
    )
    .await?;
    Ok(())
}

/// A customer's tier periods, newest first.
pub async fn history(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
) -> Result<Vec<tier_period::Model>, AppError> {
    tier_period::Entity::find()
        .filter(tier_period::Column::CustomerId.eq(customer_id))
        .order_by_desc(tier_period::Column::StartedAt)
        .order_by_desc(tier_period::Column::Id)
        .all(db)
        .await
        .context("loading tier history")
}

/// Customers whose tier can change with time alone and who were not evaluated in the last day:
/// members of a tier when the period slides, and anyone counting down a grace period.
pub async fn due_for_daily_check(
    db: &impl ConnectionTrait,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, AppError> {
    use sea_orm::{Condition, QuerySelect};
    let mut who = Condition::any().add(customer::Column::TierBelowSince.is_not_null());
    if settings.tier_period != crate::entities::enums::TierPeriod::Lifetime {
        who = who.add(customer::Column::TierId.is_not_null());
    }
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .filter(who)
        .filter(
            Condition::any()
                .add(customer::Column::TierCheckedAt.is_null())
                .add(customer::Column::TierCheckedAt.lte(now - Duration::days(1))),
        )
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
        .context("loading customers due a tier check")
}
