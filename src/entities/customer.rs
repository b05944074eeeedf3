use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub external_id: String,
    pub email: String,
    #[sea_orm(unique)]
    pub email_normalized: String,
    pub name: Option<String>,
    #[sea_orm(unique)]
    pub referral_code: String,
    pub acquisition_channel: String,
    pub marketing_consent: bool,
    /// The code given at signup, as typed (normalized); the referrals capability acts on it.
    pub signup_referral_code: Option<String>,
    pub signup_ip_hash: Option<String>,
    pub device_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The customer's loyalty tier, if any.
    pub tier_id: Option<Uuid>,
    /// Since when the tier metric has been below the current tier's threshold (for the grace
    /// period before a downgrade).
    pub tier_below_since: Option<DateTimeUtc>,
    /// When the tier was last evaluated; the daily pass takes those checked over a day ago.
    pub tier_checked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
