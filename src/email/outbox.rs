//! The outbox: every email is a row written in the same transaction as the event that causes it,
//! with a unique `dedupe_key`, so an email exists once and only if its event happened. The
//! delivery worker sends the rows.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::customers::EmailAddress;
use crate::db::{begin_write, keyset_page};
use crate::effects::{self, Effect, OutboxRow};
use crate::entities::customer;
use crate::entities::email_outbox as outbox;
use crate::entities::enums::EmailStatus;
use crate::error::{AppError, DbContext};

/// An email to write to the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub template: &'static str,
    pub recipient: String,
    /// The customer the email is about and to; their consent governs marketing email.
    pub customer_id: Option<Uuid>,
    pub data: serde_json::Value,
    pub dedupe_key: String,
    /// What the email belongs to, when something may act on all its emails at once (see
    /// [`cancel_pending`]).
    pub subject_key: Option<String>,
    /// Marketing email goes only to consenting customers at addresses that did not unsubscribe.
    pub marketing: bool,
}

impl OutgoingEmail {
    /// An email to a customer.
    pub fn to_customer(
        template: &'static str,
        customer: &customer::Model,
        data: serde_json::Value,
        dedupe_key: String,
        marketing: bool,
    ) -> Self {
        Self {
            template,
            recipient: customer.email.clone(),
            customer_id: Some(customer.id),
            data,
            dedupe_key,
            subject_key: None,
            marketing,
        }
    }
}

/// Writes the email now unless its key exists, the customer did not consent to marketing, or
/// the address is suppressed. Returns whether a row was written.
pub async fn enqueue(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    email: OutgoingEmail,
) -> Result<bool, AppError> {
    let Some(row) = row_of(txn, now, email).await? else {
        return Ok(false);
    };
    Ok(effects::outbox::write_all(txn, vec![row], &Default::default()).await? > 0)
}

/// Writes the email with the transaction's other effects (`crate::effects`), on the same terms
/// as [`enqueue`], for a caller that need not know whether it was written.
pub async fn queue(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    email: OutgoingEmail,
) -> Result<(), AppError> {
    match row_of(txn, now, email).await? {
        Some(row) => effects::write(txn, Effect::Email(Box::new(row))).await,
        None => Ok(()),
    }
}

/// The outbox row of `email`; `None` for an address that cannot be parsed or a marketing email
/// to a customer who did not consent.
async fn row_of(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    email: OutgoingEmail,
) -> Result<Option<OutboxRow>, AppError> {
    let Ok(address) = EmailAddress::parse(&email.recipient) else {
        return Ok(None);
    };
    if email.marketing
        && let Some(customer_id) = email.customer_id
    {
        let consented = customer::Entity::find_by_id(customer_id)
            .one(txn)
            .await
            .context("checking marketing consent")?
            .is_some_and(|c| c.marketing_consent);
        if !consented {
            return Ok(None);
        }
    }
    Ok(Some(OutboxRow {
        email_normalized: address.normalized().to_owned(),
        row: outbox::Model {
            id: Uuid::now_v7(),
            recipient: address.as_str().to_owned(),
            customer_id: email.customer_id,
            template: email.template.to_owned(),
            data: email.data,
            dedupe_key: email.dedupe_key,
            subject_key: email.subject_key,
            marketing: email.marketing,
            status: EmailStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            last_error: None,
            message_id: String::new(),
            sent_at: None,
            created_at: now,
            updated_at: now,
        },
    }))
}

/// The subject key of a cart's emails.
pub fn cart_subject(cart_id: Uuid) -> String {
    format!("cart:{cart_id}")
}

/// The subject key of the invitations one customer sends.
pub fn invite_subject(customer_id: Uuid) -> String {
    format!("invite:{customer_id}")
}

/// Cancels the not-yet-sent emails of one subject (a cart's stages, say).
pub async fn cancel_pending(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    subject: &str,
    why: &str,
) -> Result<u64, AppError> {
    Ok(outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(EmailStatus::Cancelled))
        .col_expr(outbox::Column::LastError, Expr::value(why))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
        .filter(outbox::Column::SubjectKey.eq(subject))
        .filter(outbox::Column::Status.eq(EmailStatus::Pending))
        .exec(txn)
        .await
        .context("cancelling pending emails")?
        .rows_affected)
}

/// A page of outbox rows, oldest first, optionally of one status.
pub async fn list(
    db: &DatabaseConnection,
    status: Option<EmailStatus>,
    limit: u64,
    after: Option<Uuid>,
) -> Result<(Vec<outbox::Model>, bool), AppError> {
    let mut query = outbox::Entity::find();
    if let Some(status) = status {
        query = query.filter(outbox::Column::Status.eq(status));
    }
    keyset_page(db, query, outbox::Column::Id, limit, after)
        .await
        .context("listing email deliveries")
}

/// Puts a DEAD or CANCELLED email back in the queue, with its tries reset.
pub async fn retry(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    id: Uuid,
) -> Result<outbox::Model, AppError> {
    let txn = begin_write(db).await.context("starting an email retry")?;
    let changed = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(EmailStatus::Pending))
        .col_expr(outbox::Column::Attempts, Expr::value(0))
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(now))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::Status.is_in([EmailStatus::Dead, EmailStatus::Cancelled]))
        .exec(&txn)
        .await
        .context("queueing an email again")?
        .rows_affected;
    let row = outbox::Entity::find_by_id(id)
        .one(&txn)
        .await
        .context("loading an email")?
        .ok_or_else(|| AppError::NotFound(format!("no email delivery has id {id}")))?;
    if changed == 0 {
        return Err(AppError::Conflict(format!(
            "email {id} is {:?}; only DEAD or CANCELLED emails can be retried",
            row.status
        )));
    }
    txn.commit().await.context("committing an email retry")?;
    Ok(row)
}

/// Deletes SENT rows sent more than `retention_days` days before `now`; returns how many. The
/// dedupe keys of pruned rows go with them, which is safe: every key names a one-time event
/// (a reward, a cart stage, an invitation) whose own row guards it for longer.
pub async fn prune(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<u64, AppError> {
    let cutoff = now - chrono::Duration::days(i64::from(retention_days));
    Ok(outbox::Entity::delete_many()
        .filter(outbox::Column::Status.eq(EmailStatus::Sent))
        .filter(outbox::Column::SentAt.lt(cutoff))
        .exec(db)
        .await
        .context("pruning sent emails")?
        .rows_affected)
}
