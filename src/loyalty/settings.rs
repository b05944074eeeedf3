//! The program's settings: one row, read inside the transaction that applies them.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel,
};

use crate::db::begin_write;

use crate::entities::enums::{TierDowngrade, TierMetric, TierPeriod};
use crate::entities::program_settings as settings;
use crate::error::{AppError, DbContext};
use crate::input;

pub use settings::Model as ProgramSettings;

/// The longest expiry, pending period, grace or notice, in days: ten years.
pub const MAX_DAYS: i32 = 3650;
/// The most points a major currency unit can earn.
pub const MAX_POINTS_PER_UNIT: i64 = 10_000;

pub async fn load(db: &impl ConnectionTrait) -> Result<ProgramSettings, AppError> {
    settings::Entity::find_by_id(1)
        .one(db)
        .await
        .context("loading the program settings")?
        .ok_or_else(|| AppError::internal("loading the program settings", "the row is missing"))
}

/// Changes to the settings; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsChanges {
    pub points_per_unit: Option<i64>,
    /// `Some(None)` makes points never expire.
    pub points_expire_after_days: Option<Option<i32>>,
    pub points_pending_days: Option<i32>,
    pub point_value: Option<i64>,
    pub tier_metric: Option<TierMetric>,
    pub tier_period: Option<TierPeriod>,
    pub tier_downgrade: Option<TierDowngrade>,
    pub tier_grace_days: Option<i32>,
    pub expiry_notice_days: Option<i32>,
    pub gross_margin: Option<f64>,
}

/// Saves the changes and raises the program's version, in one transaction.
pub async fn update(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    actor: &str,
    changes: SettingsChanges,
) -> Result<ProgramSettings, AppError> {
    let days = |field: &str, value: i32, min: i32| {
        input::int_in(
            field,
            i64::from(value),
            i64::from(min)..=i64::from(MAX_DAYS),
        )
    };
    if let Some(value) = changes.points_per_unit {
        input::int_in("pointsPerUnit", value, 0..=MAX_POINTS_PER_UNIT)?;
    }
    if let Some(Some(value)) = changes.points_expire_after_days {
        days("pointsExpireAfterDays", value, 1)?;
    }
    if let Some(value) = changes.points_pending_days {
        days("pointsPendingDays", value, 0)?;
    }
    if let Some(value) = changes.point_value {
        input::int_in("pointValue", value, 0..=input::MAX_AMOUNT)?;
    }
    if let Some(value) = changes.tier_grace_days {
        days("tierGraceDays", value, 0)?;
    }
    if let Some(value) = changes.expiry_notice_days {
        days("expiryNoticeDays", value, 1)?;
    }
    if let Some(value) = changes.gross_margin
        && (!value.is_finite() || !(0.0..=1.0).contains(&value))
    {
        return Err(AppError::bad_input(
            "grossMargin",
            "grossMargin must be between 0 and 1",
        ));
    }
    let txn = begin_write(db)
        .await
        .context("starting a settings change")?;
    let current = load(&txn).await?;
    let mut row = current.into_active_model();
    if let Some(value) = changes.points_per_unit {
        row.points_per_unit = Set(value);
    }
    if let Some(value) = changes.points_expire_after_days {
        row.points_expire_after_days = Set(value);
    }
    if let Some(value) = changes.points_pending_days {
        row.points_pending_days = Set(value);
    }
    if let Some(value) = changes.point_value {
        row.point_value = Set(value);
    }
    if let Some(value) = changes.tier_metric {
        row.tier_metric = Set(value);
    }
    if let Some(value) = changes.tier_period {
        row.tier_period = Set(value);
    }
    if let Some(value) = changes.tier_downgrade {
        row.tier_downgrade = Set(value);
    }
    if let Some(value) = changes.tier_grace_days {
        row.tier_grace_days = Set(value);
    }
    if let Some(value) = changes.expiry_notice_days {
        row.expiry_notice_days = Set(value);
    }
    if let Some(value) = changes.gross_margin {
        row.gross_margin = Set(value);
    }
    row.updated_by = Set(Some(actor.to_owned()));
    row.updated_at = Set(Some(now));
    let saved = row
        .update(&txn)
        .await
        .context("saving the program settings")?;
    crate::loyalty::program::changed(&txn).await?;
    txn.commit().await.context("committing a settings change")?;
    Ok(ProgramSettings {
        version: saved.version + 1,
        ..saved
    })
}

/// When points earned at `earned_at` expire under these settings.
pub fn expiry_of(settings: &ProgramSettings, earned_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    settings
        .points_expire_after_days
        .map(|days| earned_at + Duration::days(i64::from(days)))
}

/// The start of the tier period that contains `now`; `None` for lifetime.
pub fn period_start(period: TierPeriod, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match period {
        TierPeriod::Lifetime => None,
        TierPeriod::Rolling12Months => Some(now - Duration::days(365)),
        TierPeriod::CalendarYear => Utc.with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0).single(),
    }
}
