//! Loyalty: the points ledger kept as lots (earning, refunds, adjustments, expiry), the program's
//! settings, tiers, badges and the leaderboard. Referrals and rewards sit above it and call it;
//! order effects reach it through `crate::reactions`.

pub mod audit;
pub mod badge_backfill;
pub mod badges;
pub mod balance;
pub mod debit_plan;
pub mod earning;
pub mod expiry;
pub mod expiry_pass;
pub mod facts;
pub mod leaderboard;
pub mod ledger;
pub mod ledger_batch;
pub mod program;
pub mod settings;
pub mod tiers;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::clock::Clock;
use crate::customers::locks::{self, Held};
use crate::customers::service as customers;
use crate::db::begin_write;
use crate::entities::enums::PointsReason;
use crate::entities::points_ledger_entry as entry;
use crate::error::{AppError, DbContext};
use crate::input;
use ledger::{Consume, Credit, Debit};

/// Re-evaluates what follows from the points, orders or referrals of each of `customer_ids`
/// changing (their tier and their badges), in the transaction of the change and under the
/// configuration the caller has already read in it. The badges they hold come with their
/// rollups (read once for all of them, for those without a rollup row).
pub async fn activity_under<C: ConnectionTrait>(
    txn: &C,
    held: &Held,
    program: &program::Program,
    now: DateTime<Utc>,
    customer_ids: &[Uuid],
) -> Result<(), AppError> {
    // A tier over a period measures the ledger itself: the credits waiting are written first
    // (one statement for all of them, the evaluation coming after the workflow's credits).
    ledger::write_deferred(txn, held).await?;
    let mut held_badges: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let mut without_rollup = Vec::new();
    for &customer_id in customer_ids {
        match held.badges(txn, customer_id).await? {
            Some(keys) => {
                let ids = program.badges.iter().filter(|b| keys.contains(&b.key));
                held_badges.insert(customer_id, ids.map(|b| b.id).collect());
            }
            None => without_rollup.push(customer_id),
        }
    }
    held_badges.extend(badges::held_by(txn, &program.badges, &without_rollup).await?);
    let mut tier_rows = tiers::TierRows::default();
    for &customer_id in customer_ids {
        let measures = facts::Measures::new(txn, customer_id, held.kept(txn, customer_id).await?);
        let customer = held.customer(customer_id)?;
        tiers::evaluate(txn, program, now, customer, &measures, &mut tier_rows).await?;
        let holds = held_badges.get(&customer_id).map_or(&[][..], Vec::as_slice);
        let awarded =
            badges::evaluate(txn, &program.badges, now, &measures, customer_id, holds).await?;
        for badge in awarded {
            held.badge_awarded(customer_id, &badge.key).await;
        }
    }
    tier_rows.write(txn).await
}

/// The most points one adjustment may move.
pub const MAX_ADJUSTMENT: i64 = 100_000_000;

/// An operator's correction: credits a lot (expiring like any other) or debits oldest first,
/// going below zero if it must. The reason is shown to the customer; the operator is recorded.
pub async fn adjust(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    programs: &program::ProgramCache,
    customer_external_id: &str,
    delta: i64,
    reason: &str,
    actor: &str,
) -> Result<entry::Model, AppError> {
    let external_id = input::identifier("customerExternalId", customer_external_id)?;
    if delta == 0 {
        return Err(AppError::bad_input("delta", "delta must not be 0"));
    }
    input::int_in("delta", delta, -MAX_ADJUSTMENT..=MAX_ADJUSTMENT)?;
    let reason = input::optional_message("reason", Some(reason))?
        .ok_or_else(|| AppError::bad_input("reason", "reason must not be blank"))?;
    let now = clock.now();
    let txn = begin_write(db).await.context("starting an adjustment")?;
    let customer = customers::get_by_external_id(&txn, &external_id).await?;
    let held = locks::one(&txn, customer.id).await?;
    // The configuration's version is read in the transaction; the process keeps the rest.
    let program = programs.current(&txn).await?;
    let source_id = Uuid::now_v7().to_string();
    let written = if delta > 0 {
        ledger::credit(
            &txn,
            &held,
            now,
            Credit {
                customer_id: customer.id,
                amount: delta,
                reason: PointsReason::Adjustment,
                description: reason,
                source_kind: "adjustment",
                source_id,
                earned_at: now,
                available_at: now,
                expires_at: settings::expiry_of(&program.settings, now),
                actor: Some(actor.to_owned()),
            },
        )
        .await?
    } else {
        ledger::debit(
            &txn,
            &held,
            now,
            Debit {
                customer_id: customer.id,
                amount: -delta,
                reason: PointsReason::Adjustment,
                description: reason,
                source_kind: "adjustment",
                source_id,
                earned_at: now,
                actor: Some(actor.to_owned()),
                consume: Consume::Fifo { debt: true },
            },
        )
        .await?
    };
    let written =
        written.ok_or_else(|| AppError::internal("adjusting points", "nothing was written"))?;
    activity_under(&txn, &held, &program, now, &[customer.id]).await?;
    txn.commit().await.context("committing an adjustment")?;
    Ok(written)
}
