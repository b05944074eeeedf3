//! The delivery worker: claims due outbox rows, checks they still apply, renders and sends them,
//! and records the outcome. Delivery is at least once: a row is claimed with a lease, and a worker
//! that dies after sending but before recording leaves the lease to lapse, so the row is sent again
//! later, with the same Message-ID.

use chrono::{DateTime, Duration, Utc};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use sea_orm::sea_query::{Condition, Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::config::MailSettings;
use crate::customers::first_name;
use crate::db::begin_write;
use crate::email::mailer::Mailer;
use crate::email::mailer::SendFailure;
use crate::email::suppression;
use crate::email::templates::Templates;
use crate::email::unsubscribe::UnsubscribeSigner;
use crate::entities::email_outbox as outbox;
use crate::entities::enums::{CartStatus, EmailStatus, SuppressionReason};
use crate::entities::{cart, customer, order};
use crate::error::{AppError, DbContext};
use crate::loyalty::balance;

/// What delivery works with: the database and clock, the transport, the templates and the
/// settings the messages are built from.
#[derive(Clone, Copy)]
pub struct Deliverer<'a> {
    pub db: &'a DatabaseConnection,
    pub clock: &'a dyn Clock,
    pub mailer: &'a Mailer,
    pub templates: &'a Templates,
    pub unsubscribe: &'a UnsubscribeSigner,
    pub mail: &'a MailSettings,
    /// `TANDEM_PUBLIC_URL`, the base of links in emails.
    pub public_url: &'a str,
    /// The program currency, for amounts in emails.
    pub currency: &'a str,
    /// `TANDEM_CLOCK_SKEW`.
    pub clock_skew: Duration,
    /// When the process is stopping, the rest of a claimed batch goes back to the queue.
    pub shutdown: &'a crate::shutdown::Shutdown,
}

/// Rows one pass claims at most.
const BATCH: u64 = 25;
/// How long a claim lasts; a row still SENDING after this is taken again.
const LEASE_MINUTES: i64 = 10;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    pub cancelled: usize,
    /// Rows given back untried because the SMTP server was unreachable (the breaker opened).
    pub deferred: usize,
    /// Whether the pass found delivery paused by the circuit breaker.
    pub paused: bool,
}

/// Sends every due email once (as the clock tells) and reports what happened.
/// While the SMTP server is unreachable the circuit breaker pauses delivery: claimed rows go back
/// to the queue without using up a try, and passes do nothing until the pause ends.
pub async fn deliver_due(worker: &Deliverer<'_>) -> Result<DeliveryReport, AppError> {
    let now = worker.clock.now();
    let mut report = DeliveryReport::default();
    if worker.mailer.paused_until(now).is_some() {
        report.paused = true;
        return Ok(report);
    }
    let claimed = claim(worker, now).await?;
    let mut rows = claimed.iter();
    for row in rows.by_ref() {
        if worker.shutdown.is_stopping() {
            give_back(worker, now, row, "the worker stopped before sending it").await?;
            report.deferred += 1;
            continue;
        }
        // A batch can outlast its lease (each conversation may take the SMTP timeout), so the
        // lease is renewed before each send; a row whose lease lapsed to another worker is left
        // to it.
        match renew_lease(worker, row).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::error!(%error, email = %row.id, "renewing an email's lease");
                continue;
            }
        }
        match deliver(worker, now, row).await {
            Ok(Delivered::Finished(status)) => match status {
                EmailStatus::Sent => report.sent += 1,
                EmailStatus::Pending => report.retried += 1,
                EmailStatus::Dead => report.dead += 1,
                EmailStatus::Cancelled => report.cancelled += 1,
                EmailStatus::Sending => {}
            },
            Ok(Delivered::Unreachable) => {
                report.deferred += 1;
                break;
            }
            // One row that fails is logged and marked; the rest of the batch goes on.
            Err(error) => {
                tracing::error!(%error, email = %row.id, "delivering an email failed");
                let why = format!("delivery failed: {error}");
                let (status, next) = if row.attempts >= worker.mail.max_attempts as i32 {
                    (EmailStatus::Dead, None)
                } else {
                    (EmailStatus::Pending, Some(now + backoff(row.attempts)))
                };
                if let Err(mark) = finish(worker, now, row, status, Some(why), next).await {
                    tracing::error!(error = %mark, email = %row.id, "recording a failed email");
                }
            }
        }
    }
    for row in rows {
        give_back(
            worker,
            now,
            row,
            "delivery paused: the SMTP server is unreachable",
        )
        .await?;
        report.deferred += 1;
    }
    Ok(report)
}

/// What one claimed row came to.
enum Delivered {
    Finished(EmailStatus),
    /// The SMTP server could not be reached; the row went back to the queue untried.
    Unreachable,
}

/// Extends the lease of a row this worker still holds; `false` when it no longer does.
async fn renew_lease(worker: &Deliverer<'_>, row: &outbox::Model) -> Result<bool, AppError> {
    let now = worker.clock.now();
    let changed = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(now + Duration::minutes(LEASE_MINUTES)),
        )
        .filter(outbox::Column::Id.eq(row.id))
        .filter(outbox::Column::Status.eq(EmailStatus::Sending))
        .filter(outbox::Column::Attempts.eq(row.attempts))
        .exec(worker.db)
        .await
        .context("renewing an email's lease")?
        .rows_affected;
    Ok(changed == 1)
}

/// Returns a claimed row to the queue as if it had not been tried.
async fn give_back(
    worker: &Deliverer<'_>,
    now: DateTime<Utc>,
    row: &outbox::Model,
    why: &str,
) -> Result<(), AppError> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(EmailStatus::Pending))
        .col_expr(outbox::Column::Attempts, Expr::value(row.attempts - 1))
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(now))
        .col_expr(outbox::Column::LastError, Expr::value(why))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
        .filter(outbox::Column::Id.eq(row.id))
        .filter(outbox::Column::Status.eq(EmailStatus::Sending))
        .filter(outbox::Column::Attempts.eq(row.attempts))
        .exec(worker.db)
        .await
        .context("returning an email to the queue")?;
    Ok(())
}

/// Takes due rows (and rows whose claim lapsed) for this worker. On PostgreSQL the select skips
/// rows another worker holds, so any number of workers share the queue.
async fn claim(worker: &Deliverer<'_>, now: DateTime<Utc>) -> Result<Vec<outbox::Model>, AppError> {
    let due_now = || {
        outbox::Entity::find().filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(outbox::Column::Status.eq(EmailStatus::Pending))
                        .add(outbox::Column::NextAttemptAt.lte(now)),
                )
                .add(
                    Condition::all()
                        .add(outbox::Column::Status.eq(EmailStatus::Sending))
                        .add(outbox::Column::LeaseUntil.lt(now)),
                ),
        )
    };
    // A read first, so an idle worker never takes SQLite's write lock.
    let anything_due = due_now()
        .one(worker.db)
        .await
        .context("looking for due emails")?
        .is_some();
    if !anything_due {
        return Ok(Vec::new());
    }
    let txn = begin_write(worker.db)
        .await
        .context("starting an email claim")?;
    let due = due_now()
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(BATCH)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(&txn)
        .await
        .context("finding due emails")?;
    let domain = sender(worker)?.email.domain().to_owned();
    let mut claimed = Vec::with_capacity(due.len());
    for row in due {
        let message_id = if row.message_id.is_empty() {
            format!("<{}@{domain}>", row.id)
        } else {
            row.message_id.clone()
        };
        let lease_until = now + Duration::minutes(LEASE_MINUTES);
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(EmailStatus::Sending))
            .col_expr(outbox::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(outbox::Column::Attempts, Expr::value(row.attempts + 1))
            .col_expr(outbox::Column::MessageId, Expr::value(message_id.clone()))
            .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
            .filter(outbox::Column::Id.eq(row.id))
            .exec(&txn)
            .await
            .context("claiming an email")?;
        claimed.push(outbox::Model {
            status: EmailStatus::Sending,
            attempts: row.attempts + 1,
            lease_until: Some(lease_until),
            message_id,
            ..row
        });
    }
    txn.commit().await.context("committing an email claim")?;
    Ok(claimed)
}

fn sender(worker: &Deliverer<'_>) -> Result<Mailbox, AppError> {
    worker
        .mail
        .from
        .parse()
        .map_err(|e| AppError::internal("reading TANDEM_MAIL_FROM", e))
}

async fn deliver(
    worker: &Deliverer<'_>,
    now: DateTime<Utc>,
    row: &outbox::Model,
) -> Result<Delivered, AppError> {
    let message = match prepare(worker, now, row).await? {
        Ok(message) => message,
        Err(status) => return Ok(Delivered::Finished(status)),
    };
    let (status, error, next) = match worker.mailer.send(now, message).await {
        Ok(()) => (EmailStatus::Sent, None, None),
        Err(SendFailure::Unreachable(why)) => {
            give_back(worker, now, row, &why).await?;
            return Ok(Delivered::Unreachable);
        }
        Err(SendFailure::Permanent { message, recipient }) => {
            // Only a refused address is suppressed; a refused message (content, policy) is
            // DEAD with the reply and the address stays usable.
            if recipient {
                let address = normalized_address(&row.recipient);
                suppression::suppress(
                    worker.db,
                    &address,
                    SuppressionReason::Bounced,
                    Some(message.clone()),
                    now,
                )
                .await?;
            }
            (EmailStatus::Dead, Some(message), None)
        }
        Err(SendFailure::Transient(message)) => {
            if row.attempts >= worker.mail.max_attempts as i32 {
                let why = format!("gave up after {} tries: {message}", row.attempts);
                (EmailStatus::Dead, Some(why), None)
            } else {
                (
                    EmailStatus::Pending,
                    Some(message),
                    Some(now + backoff(row.attempts)),
                )
            }
        }
    };
    let status = finish(worker, now, row, status, error, next).await?;
    Ok(Delivered::Finished(status))
}

/// The message for a claimed row, or the status the row ended in when it should not or cannot
/// be sent (cancelled, or a template that does not render).
async fn prepare(
    worker: &Deliverer<'_>,
    now: DateTime<Utc>,
    row: &outbox::Model,
) -> Result<Result<Message, EmailStatus>, AppError> {
    let ended =
        |status, why| async move { finish(worker, now, row, status, Some(why), None).await };
    if let Some(why) = no_longer_wanted(worker.db, worker.clock_skew, row).await? {
        return Ok(Err(ended(EmailStatus::Cancelled, why).await?));
    }
    let context = context(worker, row).await?;
    let rendered = match worker.templates.render(&row.template, &context) {
        Ok(rendered) => rendered,
        Err(e) => {
            let why = format!("template {} does not render: {e}", row.template);
            return Ok(Err(ended(EmailStatus::Dead, why).await?));
        }
    };
    match build(worker, row, &context, rendered) {
        Ok(message) => Ok(Ok(message)),
        Err(why) => Ok(Err(ended(EmailStatus::Dead, why).await?)),
    }
}

/// The wait after the `attempts`-th failed try: 1 min, 2, 4 … doubling up to 4 h, each scaled by
/// a random 0.8–1.2 so failing rows do not retry in lockstep. With the default 16 tries the last
/// comes about 32 h after the first (at least 25.8 h), so an outage shorter than a day loses no
/// email.
pub fn backoff(attempts: i32) -> Duration {
    let base = 60i64 * (1i64 << attempts.clamp(1, 16).saturating_sub(1).min(12));
    let capped = base.min(4 * 3600);
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        0.8 + 0.4 * f64::from(byte[0]) / 255.0
    } else {
        1.0
    };
    Duration::milliseconds((capped as f64 * 1000.0 * jitter) as i64)
}

/// Why a claimed email should not go out any more, if so.
async fn no_longer_wanted(
    db: &impl ConnectionTrait,
    clock_skew: Duration,
    row: &outbox::Model,
) -> Result<Option<String>, AppError> {
    let normalized = normalized_address(&row.recipient);
    if let Some(reason) = suppression::blocks(db, &normalized, row.marketing).await? {
        return Ok(Some(format!("the address is suppressed ({reason:?})")));
    }
    if row.marketing
        && let Some(customer_id) = row.customer_id
    {
        let consented = customer::Entity::find_by_id(customer_id)
            .one(db)
            .await
            .context("checking consent before sending")?
            .is_some_and(|c| c.marketing_consent);
        if !consented {
            return Ok(Some(
                "the customer no longer consents to marketing email".into(),
            ));
        }
    }
    if let Some(cart_id) = row.data.get("cart_id").and_then(Value::as_str)
        && let Ok(cart_id) = cart_id.parse::<uuid::Uuid>()
    {
        let Some(cart) = cart::Entity::find_by_id(cart_id)
            .one(db)
            .await
            .context("checking a cart before sending")?
        else {
            return Ok(Some("the cart is gone".into()));
        };
        if cart.status != CartStatus::Active {
            return Ok(Some(
                format!("the cart is {:?}", cart.status).to_lowercase(),
            ));
        }
        // An order can arrive between the scan that wrote this email and now.
        let bought = order::Entity::find()
            .filter(order::Column::CustomerId.eq(cart.customer_id))
            .filter(order::Column::PlacedAt.gte(cart.last_changed_at - clock_skew))
            .count(db)
            .await
            .context("checking for a purchase before sending")?;
        if bought > 0 {
            return Ok(Some(
                "the customer bought after the cart's last change".into(),
            ));
        }
    }
    Ok(None)
}

/// The template's values: the row's data, plus the recipient's name, points, referral link and
/// (for marketing email) the unsubscribe link, read now so they are current.
async fn context(worker: &Deliverer<'_>, row: &outbox::Model) -> Result<Value, AppError> {
    let mut context = match &row.data {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let public_url = worker.public_url;
    context.insert("public_url".into(), Value::String(public_url.to_owned()));
    if let Some(customer_id) = row.customer_id
        && let Some(customer) = customer::Entity::find_by_id(customer_id)
            .one(worker.db)
            .await
            .context("loading an email's customer")?
    {
        context.entry("name").or_insert_with(|| {
            Value::String(first_name(customer.name.as_deref()).unwrap_or_else(|| "there".into()))
        });
        context.insert(
            "referral_link".into(),
            Value::String(format!("{public_url}/r/{}", customer.referral_code)),
        );
        context.insert(
            "points_balance".into(),
            Value::from(
                balance::of_customer(worker.db, customer.id, worker.clock.now())
                    .await?
                    .balance(),
            ),
        );
    }
    context
        .entry("name")
        .or_insert_with(|| Value::String("there".into()));
    let kind = context
        .get("reward_kind")
        .cloned()
        .and_then(|k| serde_json::from_value::<crate::entities::enums::RewardKind>(k).ok());
    if let (Some(kind), Some(amount)) = (kind, context.get("reward_amount").and_then(Value::as_i64))
    {
        let text = crate::display::describe(kind, amount, worker.currency);
        context.insert("reward".into(), Value::String(text));
        context.insert(
            "is_points".into(),
            Value::Bool(kind == crate::entities::enums::RewardKind::Points),
        );
    }
    if row.marketing {
        context.insert(
            "unsubscribe_url".into(),
            Value::String(unsubscribe_url(worker, &row.recipient)),
        );
    }
    Ok(Value::Object(context))
}

/// The form the suppression list and unsubscribe tokens use for a recipient.
fn normalized_address(recipient: &str) -> String {
    crate::customers::EmailAddress::parse(recipient)
        .map(|a| a.normalized().to_owned())
        .unwrap_or_else(|_| recipient.to_lowercase())
}

fn unsubscribe_url(worker: &Deliverer<'_>, recipient: &str) -> String {
    let normalized = normalized_address(recipient);
    format!(
        "{}/unsubscribe?token={}",
        worker.public_url,
        worker.unsubscribe.token(&normalized)
    )
}

fn build(
    worker: &Deliverer<'_>,
    row: &outbox::Model,
    context: &Value,
    rendered: crate::email::templates::Rendered,
) -> Result<Message, String> {
    let to: Mailbox = row
        .recipient
        .parse()
        .map_err(|e| format!("the recipient {} is not an address: {e}", row.recipient))?;
    let mut builder = Message::builder()
        .from(sender(worker).map_err(|e| e.to_string())?)
        .to(to)
        .subject(rendered.subject)
        .message_id(Some(row.message_id.clone()));
    if let Some(url) = context.get("unsubscribe_url").and_then(Value::as_str) {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|e| format!("the message cannot be built: {e}"))
}

/// Records the outcome, if this worker still holds the row.
async fn finish(
    worker: &Deliverer<'_>,
    now: DateTime<Utc>,
    row: &outbox::Model,
    status: EmailStatus,
    error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> Result<EmailStatus, AppError> {
    let mut update = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(status))
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
        .filter(outbox::Column::Id.eq(row.id))
        .filter(outbox::Column::Status.eq(EmailStatus::Sending))
        .filter(outbox::Column::Attempts.eq(row.attempts));
    if let Some(error) = error {
        update = update.col_expr(outbox::Column::LastError, Expr::value(error));
    }
    if let Some(at) = next_attempt_at {
        update = update.col_expr(outbox::Column::NextAttemptAt, Expr::value(at));
    }
    if status == EmailStatus::Sent {
        update = update.col_expr(outbox::Column::SentAt, Expr::value(now));
    }
    update
        .exec(worker.db)
        .await
        .context("recording an email's outcome")?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        for _ in 0..50 {
            let first = backoff(1).num_seconds();
            assert!((48..=72).contains(&first), "{first}");
            let late = backoff(30).num_seconds();
            assert!((4 * 2880..=4 * 4320).contains(&late), "{late}");
        }
        assert!(backoff(6).num_seconds() > backoff(1).num_seconds());
    }

    #[test]
    fn the_default_sixteen_tries_span_more_than_a_day() {
        for _ in 0..50 {
            // The waits after failed tries 1 to 15, before the 16th and last.
            let span: i64 = (1..16).map(|n| backoff(n).num_seconds()).sum();
            assert!(span >= 24 * 3600, "{} h", span / 3600);
        }
    }
}
