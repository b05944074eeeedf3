//! Live events for subscriptions: what changed, published from the writing transaction so that
//! only committed changes are seen, and by every instance. On PostgreSQL an event is a
//! `NOTIFY` on [`CHANNEL`] (delivered at commit, in commit order, to every listening instance);
//! on SQLite, whose writers commit one at a time, it is a row in `live_events` that each
//! process polls. [`hub::Hub`] turns either into an in-process broadcast.

pub mod hub;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ConnectionTrait, DbBackend};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::statement;
use crate::effects::{self, Effect, ReferralNote};
use crate::entities::enums::ReferralStatus;
use crate::entities::referral_decision as decision;
use crate::error::{AppError, DbContext};

/// The PostgreSQL channel live events are sent on.
pub use crate::effects::live::CHANNEL;

/// Something a subscriber may want to hear about. Small on purpose: a NOTIFY payload is limited
/// to 8,000 bytes, and subscribers load what they show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A referral was created or changed status.
    Referral {
        referral_id: Uuid,
        status: String,
        /// The decisions on it so far, oldest first: `rule: outcome (detail)`.
        reasons: Vec<String>,
        at: DateTime<Utc>,
    },
    /// A customer's reward was issued (at once, or when its hold ended) or reversed.
    Reward {
        customer_id: Uuid,
        reward_id: Uuid,
        status: String,
        at: DateTime<Utc>,
    },
    /// Points were credited to a customer.
    Points {
        customer_id: Uuid,
        entry_id: Uuid,
        delta: i64,
        at: DateTime<Utc>,
    },
}

/// At most this many decisions travel with a referral event (a referral has a handful).
const MAX_REASONS: usize = 20;
/// And each is cut to this many bytes.
const MAX_REASON_BYTES: usize = 300;
/// The largest payload sent: PostgreSQL refuses a `NOTIFY` over 8,000 bytes, and with it the
/// whole transaction. Both backends keep to it, so they behave alike.
pub const MAX_PAYLOAD_BYTES: usize = 7_900;

/// `text` cut to at most `bytes` bytes on a character boundary, with `…` when cut.
fn cut_to_bytes(text: &str, bytes: usize) -> String {
    if text.len() <= bytes {
        return text.to_owned();
    }
    let marker = "…";
    let mut end = bytes.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// The payload of `event`, at most [`MAX_PAYLOAD_BYTES`]: a referral's oldest reasons give way
/// to a line that says how many were left out. `None` if even that does not fit.
fn encode(event: &LiveEvent) -> Option<String> {
    let mut event = event.clone();
    let mut left_out = 0usize;
    loop {
        let payload = serde_json::to_string(&event).ok()?;
        if payload.len() <= MAX_PAYLOAD_BYTES {
            return Some(payload);
        }
        let LiveEvent::Referral { reasons, .. } = &mut event else {
            return None;
        };
        let marker = usize::from(left_out > 0);
        if reasons.len() <= marker {
            return None;
        }
        reasons.drain(..=marker);
        left_out += 1;
        reasons.insert(0, format!("({left_out} earlier decisions left out)"));
    }
}

/// Sends `event` with the transaction: subscribers see it if and when `txn` commits (at the
/// end of its batch of effects, when it has one). An event never fails its transaction for its
/// size: one that cannot be made to fit is logged and not sent.
pub async fn publish(txn: &impl ConnectionTrait, event: &LiveEvent) -> Result<(), AppError> {
    let Some(payload) = encode(event) else {
        tracing::warn!("a live event larger than {MAX_PAYLOAD_BYTES} bytes was not sent");
        return Ok(());
    };
    effects::write(txn, Effect::Live(payload)).await
}

/// Publishes a referral's new `status` and the decisions on it so far; call it after changing
/// it.
pub async fn referral_changed(
    txn: &impl ConnectionTrait,
    referral_id: Uuid,
    status: ReferralStatus,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let note = ReferralNote {
        referral_id,
        status: status.to_value(),
        at: now,
        payload: referral_payload,
    };
    effects::write(txn, Effect::Referral(note)).await
}

/// The payload of a referral's event, with its last [`MAX_REASONS`] decisions.
fn referral_payload(note: &ReferralNote, decisions: &[decision::Model]) -> Option<String> {
    let reasons = decisions
        .iter()
        .rev()
        .take(MAX_REASONS)
        .rev()
        .map(|d| {
            let line = format!("{}: {} ({})", d.rule, d.outcome.to_value(), d.detail);
            cut_to_bytes(&line, MAX_REASON_BYTES)
        })
        .collect();
    let event = LiveEvent::Referral {
        referral_id: note.referral_id,
        status: note.status.clone(),
        reasons,
        at: note.at,
    };
    let payload = encode(&event);
    if payload.is_none() {
        tracing::warn!("a live event larger than {MAX_PAYLOAD_BYTES} bytes was not sent");
    }
    payload
}

/// Deletes SQLite's polled events older than `before` (PostgreSQL keeps none).
pub async fn prune(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, AppError> {
    if db.get_database_backend() == DbBackend::Postgres {
        return Ok(0);
    }
    let deleted = db
        .execute_raw(statement(
            DbBackend::Sqlite,
            "DELETE FROM live_events WHERE created_at < ?",
            vec![before.into()],
        ))
        .await
        .context("pruning live events")?
        .rows_affected();
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral_with(reasons: Vec<String>) -> LiveEvent {
        LiveEvent::Referral {
            referral_id: Uuid::nil(),
            status: "pending".into(),
            reasons,
            at: DateTime::<Utc>::MIN_UTC,
        }
    }

    #[test]
    fn a_cut_keeps_whole_characters_and_says_it_was_cut() {
        let emoji = "😀".repeat(100);
        let cut = cut_to_bytes(&emoji, 50);
        assert!(cut.len() <= 50);
        assert!(cut.ends_with('…'));
        assert_eq!(cut_to_bytes("short", 50), "short");
    }

    #[test]
    fn a_referral_event_of_four_byte_reasons_fits_the_notify_limit() {
        let reason = cut_to_bytes(
            &format!("order: ignored ({})", "😀".repeat(128)),
            MAX_REASON_BYTES,
        );
        let event = referral_with(vec![reason.clone(); MAX_REASONS]);
        assert!(encode(&event).unwrap().len() <= MAX_PAYLOAD_BYTES);
        // More than a referral keeps: the oldest give way to a line that says so.
        let event = referral_with(vec![reason; 3 * MAX_REASONS]);
        let payload = encode(&event).expect("it fits");
        assert!(payload.len() <= MAX_PAYLOAD_BYTES, "{}", payload.len());
        let LiveEvent::Referral { reasons, .. } = serde_json::from_str(&payload).unwrap() else {
            panic!("a referral event");
        };
        assert!(
            reasons[0].contains("earlier decisions left out"),
            "{reasons:?}"
        );
    }

    #[test]
    fn escaping_that_doubles_a_reason_still_fits() {
        let quoted = "\"".repeat(MAX_REASON_BYTES);
        let event = referral_with(vec![quoted; MAX_REASONS]);
        assert!(encode(&event).unwrap().len() <= MAX_PAYLOAD_BYTES);
    }
}
