use sea_orm::entity::prelude::*;

use super::enums::{TierDowngrade, TierMetric, TierPeriod};

/// The loyalty program's settings: one row, id 1.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "program_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub points_per_unit: i64,
    pub points_expire_after_days: Option<i32>,
    pub points_pending_days: i32,
    pub point_value: i64,
    pub tier_metric: TierMetric,
    pub tier_period: TierPeriod,
    pub tier_downgrade: TierDowngrade,
    pub tier_grace_days: i32,
    pub expiry_notice_days: i32,
    /// The share of net revenue that is margin, 0 to 1: CLV and ROI count revenue at it.
    pub gross_margin: f64,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTimeUtc>,
    /// Raised by every change to the settings, a tier or a badge (`loyalty::program`).
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
