//! Leaderboard deltas: each customer's change of a metric per UTC day and their all-time total.
//!
//! A transaction queues its deltas (one insert into `leaderboard_queue`, whatever their
//! number); [`apply_queued`] adds what is queued to the days and the totals in batches, as
//! upserts that add to what is there. The worker applies the queue on each pass and every read
//! of the leaderboard applies it first, so a ranking read after an order includes it. Orders
//! then write no shared leaderboard row: the upserts on a popular day's rows were a point where
//! concurrent orders of one customer queued, and two statements of every order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::db;
use crate::entities::enums::LeaderboardMetric;
use crate::entities::leaderboard_day as day;
use crate::entities::leaderboard_queued as queued;
use crate::entities::leaderboard_total as total;
use crate::error::{AppError, DbContext};

/// `delta` added to a customer's metric on `day` (`YYYY-MM-DD`, UTC) and to their total, at
/// `at`: when the value goes up, `at` becomes when it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardDelta {
    pub metric: LeaderboardMetric,
    pub customer_id: Uuid,
    pub day: String,
    pub delta: i64,
    pub at: DateTime<Utc>,
}

/// The most rows one upsert writes.
const PER_STATEMENT: usize = 200;

/// The most queued rows one transaction of [`apply_queued`] takes.
const APPLY_BATCH: u64 = 1_000;

/// What serialises those who apply the queue ([`db::lock_subject`]).
const APPLY_LOCK: &str = "leaderboard-queue";

/// Makes those who apply the queue wait until `txn` ends: a rebuild of some customers' rows
/// takes it before their locks, so no applier adds to the rows it replaces.
pub async fn hold_appliers(txn: &impl ConnectionTrait) -> Result<(), AppError> {
    db::lock_subject(txn, APPLY_LOCK)
        .await
        .context("waiting for the leaderboard's appliers")
}

/// Queues `deltas` with `txn`, in one insert per [`PER_STATEMENT`].
pub async fn queue_all(
    txn: &impl ConnectionTrait,
    deltas: Vec<LeaderboardDelta>,
) -> Result<(), AppError> {
    let deltas: Vec<LeaderboardDelta> = deltas.into_iter().filter(|d| d.delta != 0).collect();
    for chunk in deltas.chunks(PER_STATEMENT) {
        queued::Entity::insert_many(chunk.iter().map(|d| queued::ActiveModel {
            id: Set(Uuid::now_v7()),
            metric: Set(d.metric),
            customer_id: Set(d.customer_id),
            day: Set(d.day.clone()),
            delta: Set(d.delta),
            at: Set(d.at),
        }))
        .exec_without_returning(txn)
        .await
        .context("queueing leaderboard changes")?;
    }
    Ok(())
}

/// Adds every committed queued delta to the days and the totals and removes it from the queue,
/// [`APPLY_BATCH`] rows a transaction. Returns how many it applied. A read of an empty queue is
/// all it costs when nothing is queued.
///
/// Those who apply take one lock first, so a reader that finds the queue busy waits for the
/// one applying it and then sees its result: a ranking read after an order includes it.
pub async fn apply_queued(db: &DatabaseConnection) -> Result<u64, AppError> {
    let what = "applying the leaderboard queue";
    let anything = queued::Entity::find()
        .select_only()
        .column(queued::Column::Id)
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await
        .context(what)?;
    if anything.is_none() {
        return Ok(0);
    }
    let mut applied = 0;
    loop {
        let txn = db::begin_write(db).await.context(what)?;
        db::lock_subject(&txn, APPLY_LOCK).await.context(what)?;
        // After the lock: this read sees what the previous holder removed and added.
        let rows = queued::Entity::find()
            .order_by_asc(queued::Column::Id)
            .limit(APPLY_BATCH)
            .all(&txn)
            .await
            .context(what)?;
        let taken = rows.len() as u64;
        if taken > 0 {
            let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
            add_all(&txn, in_event_order(rows)).await?;
            for chunk in ids.chunks(PER_STATEMENT) {
                queued::Entity::delete_many()
                    .filter(queued::Column::Id.is_in(chunk.iter().copied()))
                    .exec(&txn)
                    .await
                    .context(what)?;
            }
        }
        txn.commit().await.context(what)?;
        applied += taken;
        if taken < APPLY_BATCH {
            return Ok(applied);
        }
    }
}

/// Queued rows as deltas, in the order their changes happened (the ids tell rows of one
/// moment apart): rows commit in another order than they were written.
fn in_event_order(mut rows: Vec<queued::Model>) -> Vec<LeaderboardDelta> {
    rows.sort_by_key(|row| (row.at, row.id));
    rows.into_iter()
        .map(|row| LeaderboardDelta {
            metric: row.metric,
            customer_id: row.customer_id,
            day: row.day,
            delta: row.delta,
            at: row.at,
        })
        .collect()
}

/// Adds `deltas` to the days and the totals, as if each were added in turn, in two statements
/// when no key moves both up and down in the batch. A rebuild adds its recount with it onto
/// emptied rows (`rollups::leaderboard`).
///
/// PostgreSQL refuses an upsert that meets one key twice, so the deltas of a key are summed
/// first. Only a run of the same sign may be summed: a rise sets `reached_at` and a fall keeps
/// it, so a key that rises and falls takes one round per run, in order.
pub async fn add_all(
    txn: &impl ConnectionTrait,
    deltas: Vec<LeaderboardDelta>,
) -> Result<(), AppError> {
    let deltas: Vec<LeaderboardDelta> = deltas.into_iter().filter(|d| d.delta != 0).collect();
    for round in rounds(&deltas, |d| (d.metric, d.customer_id, Some(d.day.clone()))) {
        for chunk in round.chunks(PER_STATEMENT) {
            upsert_days(txn, chunk).await?;
        }
    }
    for round in rounds(&deltas, |d| (d.metric, d.customer_id, None)) {
        for chunk in round.chunks(PER_STATEMENT) {
            upsert_totals(txn, chunk).await?;
        }
    }
    Ok(())
}

type Key = (LeaderboardMetric, Uuid, Option<String>);

/// The deltas summed per key and run of one sign: round `n` holds each key's `n`th run, keys in
/// the order they first came.
fn rounds(
    deltas: &[LeaderboardDelta],
    key_of: impl Fn(&LeaderboardDelta) -> Key,
) -> Vec<Vec<LeaderboardDelta>> {
    let mut order: Vec<Key> = Vec::new();
    let mut runs: HashMap<Key, Vec<LeaderboardDelta>> = HashMap::new();
    for delta in deltas {
        let key = key_of(delta);
        let key_runs = runs.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        match key_runs.last_mut() {
            Some(run) if (run.delta > 0) == (delta.delta > 0) => {
                run.delta += delta.delta;
                if delta.delta > 0 {
                    run.at = delta.at;
                }
            }
            _ => key_runs.push(delta.clone()),
        }
    }
    let mut rounds: Vec<Vec<LeaderboardDelta>> = Vec::new();
    for key in order {
        for (n, run) in runs
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if rounds.len() <= n {
                rounds.push(Vec::new());
            }
            rounds[n].push(run);
        }
    }
    rounds
}

/// A rise makes its moment when the value was reached, unless a later rise was applied first
/// (the queue is applied in commit order, which is not always the order of the changes).
fn reached_at(table: &str) -> Expr {
    Expr::cust(format!(
        "CASE WHEN excluded.value > 0 AND excluded.reached_at > {table}.reached_at \
         THEN excluded.reached_at ELSE {table}.reached_at END"
    ))
}

async fn upsert_days(
    txn: &impl ConnectionTrait,
    deltas: &[LeaderboardDelta],
) -> Result<(), AppError> {
    if deltas.is_empty() {
        return Ok(());
    }
    day::Entity::insert_many(deltas.iter().map(|d| day::ActiveModel {
        id: Set(Uuid::now_v7()),
        metric: Set(d.metric),
        customer_id: Set(d.customer_id),
        day: Set(d.day.clone()),
        value: Set(d.delta),
        reached_at: Set(d.at),
    }))
    .on_conflict(
        OnConflict::columns([
            day::Column::Metric,
            day::Column::CustomerId,
            day::Column::Day,
        ])
        .value(
            day::Column::Value,
            Expr::cust("leaderboard_days.value + excluded.value"),
        )
        .value(day::Column::ReachedAt, reached_at("leaderboard_days"))
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .context("updating the leaderboard rollup")?;
    Ok(())
}

async fn upsert_totals(
    txn: &impl ConnectionTrait,
    deltas: &[LeaderboardDelta],
) -> Result<(), AppError> {
    if deltas.is_empty() {
        return Ok(());
    }
    total::Entity::insert_many(deltas.iter().map(|d| total::ActiveModel {
        id: Set(Uuid::now_v7()),
        metric: Set(d.metric),
        customer_id: Set(d.customer_id),
        value: Set(d.delta),
        reached_at: Set(d.at),
    }))
    .on_conflict(
        OnConflict::columns([total::Column::Metric, total::Column::CustomerId])
            .value(
                total::Column::Value,
                Expr::cust("leaderboard_totals.value + excluded.value"),
            )
            .value(total::Column::ReachedAt, reached_at("leaderboard_totals"))
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .context("updating the leaderboard totals")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(customer: u128, day: &str, delta: i64, at: i64) -> LeaderboardDelta {
        LeaderboardDelta {
            metric: LeaderboardMetric::PointsEarned,
            customer_id: Uuid::from_u128(customer),
            day: day.into(),
            delta,
            at: DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    fn by_day(d: &LeaderboardDelta) -> Key {
        (d.metric, d.customer_id, Some(d.day.clone()))
    }

    #[test]
    fn deltas_of_one_key_and_sign_become_one_row_reached_at_the_last_rise() {
        let rounds = rounds(
            &[
                delta(1, "2026-12-01", 10, 1),
                delta(2, "2026-12-01", 5, 2),
                delta(1, "2026-12-01", 7, 3),
            ],
            by_day,
        );
        assert_eq!(
            rounds,
            vec![vec![
                delta(1, "2026-12-01", 17, 3),
                delta(2, "2026-12-01", 5, 2)
            ]]
        );
    }

    #[test]
    fn a_key_that_rises_and_falls_takes_a_round_per_run() {
        let rounds = rounds(
            &[
                delta(1, "2026-12-01", 10, 1),
                delta(1, "2026-12-01", -4, 2),
                delta(1, "2026-12-01", -6, 3),
                delta(2, "2026-12-01", 5, 4),
            ],
            by_day,
        );
        assert_eq!(
            rounds,
            vec![
                vec![delta(1, "2026-12-01", 10, 1), delta(2, "2026-12-01", 5, 4)],
                vec![delta(1, "2026-12-01", -10, 2)],
            ]
        );
    }

    #[test]
    fn days_are_keys_of_their_own_and_totals_are_not() {
        let deltas = [delta(1, "2026-12-01", 10, 1), delta(1, "2026-12-02", 3, 2)];
        assert_eq!(rounds(&deltas, by_day)[0].len(), 2);
        let totals = rounds(&deltas, |d| (d.metric, d.customer_id, None));
        assert_eq!(totals, vec![vec![delta(1, "2026-12-01", 13, 2)]]);
    }
}
