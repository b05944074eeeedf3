use sea_orm::entity::prelude::*;

use super::enums::EmailStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient: String,
    pub customer_id: Option<Uuid>,
    pub template: String,
    /// The values the template is rendered with.
    pub data: Json,
    #[sea_orm(unique)]
    pub dedupe_key: String,
    /// What the email belongs to (`cart:<id>`, `invite:<customer id>`), for the queries that act
    /// on all of a subject's emails.
    pub subject_key: Option<String>,
    /// Marketing email needs consent and an address that did not unsubscribe.
    pub marketing: bool,
    pub status: EmailStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// While SENDING: when the claim lapses and another worker may take the row.
    pub lease_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    /// Fixed when the row is written, so a re-send carries the same Message-ID.
    pub message_id: String,
    pub sent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
