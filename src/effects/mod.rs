//! Writes a transaction's rules may leave to its end: live events, leaderboard deltas, outbox
//! emails and referral decisions. No rule of the same transaction reads them back, so they may
//! wait until the rules are done and then go out together, one statement per kind whatever
//! their number, inside the same transaction (so they still exist only if it commits).
//!
//! A workflow opts in by running its rules inside [`batched`] and calling [`flush`] before it
//! commits; `orders::record`, `orders::refunds::refund` and a first registration do. Everywhere
//! else [`write`] applies an effect at once, as before, so a path that did not opt in loses
//! nothing. The batch is task-local: it belongs to the one task that runs the workflow's
//! transaction.
//!
//! This module sits below every capability that produces these effects: it knows the tables,
//! not the rules (the rules build the rows; `live`, `email` and `loyalty` call [`write`]).

pub mod decisions;
pub mod leaderboard;
pub mod live;
pub mod outbox;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::entities::enums::SuppressionReason;
use crate::entities::referral_decision as decision;
use crate::error::AppError;

pub use leaderboard::LeaderboardDelta;
pub use live::ReferralNote;
pub use outbox::OutboxRow;

/// One write a rule leaves to the end of its transaction.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A live event's payload, already encoded.
    Live(String),
    Leaderboard(LeaderboardDelta),
    Email(Box<OutboxRow>),
    /// A decision on a referral.
    Decision(decision::Model),
    /// A live event about a referral, which carries the decisions on it so far.
    Referral(ReferralNote),
}

/// The effects queued so far, in the order the rules queued them.
#[derive(Debug, Default)]
struct Batch {
    live: Vec<live::Item>,
    leaderboard: Vec<LeaderboardDelta>,
    emails: Vec<OutboxRow>,
    decisions: Vec<decision::Model>,
    /// Addresses whose suppression the workflow read already, with the reason if suppressed.
    known_suppressions: HashMap<String, Option<SuppressionReason>>,
    /// Referrals whose written decisions the workflow read already, oldest first.
    known_decisions: HashMap<Uuid, Vec<decision::Model>>,
}

impl Batch {
    fn queue(&mut self, effect: Effect) {
        match effect {
            Effect::Live(payload) => self.live.push(live::Item::Ready(payload)),
            Effect::Leaderboard(delta) => self.leaderboard.push(delta),
            Effect::Email(row) => self.emails.push(*row),
            Effect::Decision(decision) => self.decisions.push(decision),
            Effect::Referral(note) => self.live.push(live::Item::Referral {
                note,
                decisions_before: self.decisions.len(),
            }),
        }
    }
}

tokio::task_local! {
    static BATCH: RefCell<Option<Batch>>;
}

/// Runs `work` with a batch open: the effects its rules write wait for [`flush`].
pub async fn batched<T>(work: impl Future<Output = T>) -> T {
    BATCH
        .scope(RefCell::new(Some(Batch::default())), work)
        .await
}

/// Tells the open batch whether these addresses (normalized) are suppressed, as the workflow
/// read it with its other reads: the batch's emails read the suppression list only for other
/// addresses. Nothing happens outside a batch.
pub fn suppressions_known(known: impl IntoIterator<Item = (String, Option<SuppressionReason>)>) {
    let _ = BATCH.try_with(|batch| {
        if let Some(batch) = batch.borrow_mut().as_mut() {
            batch.known_suppressions.extend(known);
        }
    });
}

/// Tells the open batch the decisions written on `referral_id` before the workflow began, as
/// it read them with the referral: that referral's events read no decisions. Nothing happens
/// outside a batch.
pub fn decisions_known(referral_id: Uuid, written: Vec<decision::Model>) {
    let _ = BATCH.try_with(|batch| {
        if let Some(batch) = batch.borrow_mut().as_mut() {
            batch.known_decisions.insert(referral_id, written);
        }
    });
}

/// Queues `effect` when a batch is open, or applies it on `txn` now.
pub async fn write(txn: &impl ConnectionTrait, effect: Effect) -> Result<(), AppError> {
    let mut unqueued = Some(effect);
    // Without an open batch (or outside any task's batch scope) the effect stays unqueued.
    let _ = BATCH.try_with(|batch| {
        if let Some(batch) = batch.borrow_mut().as_mut()
            && let Some(effect) = unqueued.take()
        {
            batch.queue(effect);
        }
    });
    let Some(effect) = unqueued else {
        return Ok(());
    };
    match effect {
        Effect::Live(payload) => live::send_all(txn, vec![payload]).await,
        Effect::Leaderboard(delta) => leaderboard::queue_all(txn, vec![delta]).await,
        Effect::Email(row) => outbox::write_all(txn, vec![*row], &HashMap::new())
            .await
            .map(|_| ()),
        Effect::Decision(decision) => decisions::insert_all(txn, &[decision]).await,
        Effect::Referral(note) => {
            let item = live::Item::Referral {
                note,
                decisions_before: 0,
            };
            live::resolve_and_send(txn, vec![item], &[], HashMap::new()).await
        }
    }
}

/// Applies what the open batch holds on `txn`, one statement per kind (the leaderboard's is an
/// insert into its queue; referral events one read of the decisions not known already), and leaves the batch
/// open and empty. Call it when the rules are
/// done and before the commit. Nothing happens outside a batch.
pub async fn flush(txn: &impl ConnectionTrait) -> Result<(), AppError> {
    let Some(batch) = BATCH
        .try_with(|batch| batch.borrow_mut().as_mut().map(std::mem::take))
        .ok()
        .flatten()
    else {
        return Ok(());
    };
    leaderboard::queue_all(txn, batch.leaderboard).await?;
    outbox::write_all(txn, batch.emails, &batch.known_suppressions).await?;
    live::resolve_and_send(txn, batch.live, &batch.decisions, batch.known_decisions).await?;
    decisions::insert_all(txn, &batch.decisions).await
}
