use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "referral_clicks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub referrer_id: Uuid,
    pub code: String,
    /// `link` for `GET /r/{code}`, `app` for `trackReferralClick`.
    pub channel: String,
    pub ip_hash: Option<String>,
    pub user_agent: Option<String>,
    pub landing_url: String,
    pub clicked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
