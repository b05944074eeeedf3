//! Loyalty: the points ledger kept as lots (earning, refunds, adjustments, expiry), the program's
//! settings, tiers, badges and the leaderboard. Referrals and rewards sit above it and call it;
//! order effects reach it through `crate::reactions`.

pub mod adjustment;
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
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::customers::locks::Held;
use crate::error::AppError;

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
