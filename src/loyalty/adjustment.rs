//! An operator's correction of a customer's points, as a workflow: **load** the customer locked
//! by their external id and the configuration's version (the process keeps the rest,
//! `ProgramCache`); **decide** ([`decide`], no I/O) the entry: a credit of a lot that expires
//! like any other, or a debit oldest first that may leave a debt; **apply** it through the
//! ledger, then the customer's tier and badges, with the live events in the workflow's batch.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::clock::Clock;
use crate::customers::locks;
use crate::db::begin_write;
use crate::effects;
use crate::entities::enums::PointsReason;
use crate::entities::points_ledger_entry as entry;
use crate::entities::program_settings::Model as ProgramSettings;
use crate::error::{AppError, DbContext};
use crate::input;
use crate::loyalty::ledger::{self, Consume, Credit, Debit};
use crate::loyalty::{activity_under, program, settings};

/// The most points one adjustment may move.
pub const MAX_ADJUSTMENT: i64 = 100_000_000;

/// The entry an adjustment writes.
#[derive(Debug, Clone)]
pub enum Entry {
    Credit(Credit),
    Debit(Debit),
}

/// What an adjustment of `delta` (not 0) with `reason` by `actor` writes for the customer:
/// one entry, its source a new id.
pub fn decide(
    customer_id: Uuid,
    delta: i64,
    reason: String,
    actor: &str,
    settings: &ProgramSettings,
    now: DateTime<Utc>,
) -> Entry {
    let source_id = Uuid::now_v7().to_string();
    if delta > 0 {
        Entry::Credit(Credit {
            customer_id,
            amount: delta,
            reason: PointsReason::Adjustment,
            description: reason,
            source_kind: "adjustment",
            source_id,
            earned_at: now,
            available_at: now,
            expires_at: settings::expiry_of(settings, now),
            actor: Some(actor.to_owned()),
        })
    } else {
        Entry::Debit(Debit {
            customer_id,
            amount: -delta,
            reason: PointsReason::Adjustment,
            description: reason,
            source_kind: "adjustment",
            source_id,
            earned_at: now,
            actor: Some(actor.to_owned()),
            consume: Consume::Fifo { debt: true },
        })
    }
}

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
    effects::batched(async {
        let txn = begin_write(db).await.context("starting an adjustment")?;
        let (held, customer_id) = locks::one_by_external_id(&txn, &external_id).await?;
        // The configuration's version is read in the transaction; the process keeps the rest.
        let program = programs.current(&txn).await?;
        let written = match decide(customer_id, delta, reason, actor, &program.settings, now) {
            Entry::Credit(credit) => ledger::credit(&txn, &held, now, credit).await?,
            Entry::Debit(debit) => ledger::debit(&txn, &held, now, debit).await?,
        };
        let written =
            written.ok_or_else(|| AppError::internal("adjusting points", "nothing was written"))?;
        activity_under(&txn, &held, &program, now, &[customer_id]).await?;
        effects::flush(&txn).await?;
        txn.commit().await.context("committing an adjustment")?;
        Ok(written)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn settings(points_expire_after_days: Option<i32>) -> ProgramSettings {
        use crate::entities::enums::{TierDowngrade, TierMetric, TierPeriod};
        ProgramSettings {
            id: 1,
            points_per_unit: 1,
            points_expire_after_days,
            points_pending_days: 0,
            point_value: 1,
            tier_metric: TierMetric::LifetimePoints,
            tier_period: TierPeriod::Lifetime,
            tier_downgrade: TierDowngrade::Never,
            tier_grace_days: 0,
            expiry_notice_days: 7,
            gross_margin: 0.5,
            updated_by: None,
            updated_at: None,
            version: 1,
        }
    }

    #[test]
    fn a_positive_delta_credits_a_lot_that_expires_like_any_other() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let customer = Uuid::from_u128(1);
        let Entry::Credit(credit) = decide(
            customer,
            40,
            "goodwill".into(),
            "ops",
            &settings(Some(30)),
            now,
        ) else {
            panic!("a credit");
        };
        assert_eq!((credit.customer_id, credit.amount), (customer, 40));
        assert_eq!(credit.expires_at, Some(now + chrono::Duration::days(30)));
        assert_eq!(credit.actor.as_deref(), Some("ops"));
        assert_eq!(credit.description, "goodwill");
    }

    #[test]
    fn a_negative_delta_debits_oldest_first_and_may_leave_a_debt() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let Entry::Debit(debit) = decide(
            Uuid::from_u128(1),
            -25,
            "typo".into(),
            "ops",
            &settings(None),
            now,
        ) else {
            panic!("a debit");
        };
        assert_eq!(debit.amount, 25);
        assert!(matches!(debit.consume, Consume::Fifo { debt: true }));
    }
}
