//! Points liability: the points customers hold (what the program owes) and breakage (points that
//! expired unspent).

use sea_orm::{ConnectionTrait, Value};

use crate::error::AppError;
use crate::loyalty::settings;
use crate::metrics::{Range, by_bucket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liability {
    /// Points held, pending ones included; a customer below zero counts as 0.
    pub outstanding_points: i64,
    /// Points expired in the range.
    pub breakage_points: i64,
    /// Minor units per point.
    pub point_value: i64,
}

pub async fn liability(db: &impl ConnectionTrait, range: Range) -> Result<Liability, AppError> {
    let outstanding = by_bucket(
        db,
        "SELECT CAST('' AS TEXT), CAST(COALESCE(SUM(CASE WHEN points_balance > 0 \
           THEN points_balance ELSE 0 END), 0) AS BIGINT) \
         FROM customer_rollups",
        Vec::new(),
        "summing outstanding points",
    )
    .await?;
    let breakage = by_bucket(
        db,
        "SELECT CAST('' AS TEXT), CAST(COALESCE(-SUM(delta), 0) AS BIGINT) FROM points_ledger \
         WHERE reason = 'EXPIRY' AND created_at >= ? AND created_at < ?",
        vec![Value::from(range.from), Value::from(range.to)],
        "summing expired points",
    )
    .await?;
    Ok(Liability {
        outstanding_points: outstanding.values().sum(),
        breakage_points: breakage.values().sum(),
        point_value: settings::load(db).await?.point_value,
    })
}
