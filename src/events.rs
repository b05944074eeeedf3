//! The domain events a write produces, and the trait through which the capabilities that care
//! react to them inside the writer's transaction.
//!
//! The capability that produces an event only knows this trait; `crate::reactions`, above every
//! capability, implements it by calling the capabilities that react. So an order never calls
//! referrals, carts or loyalty, a signup never calls referrals, and the rules stay a one-way stack.

use std::future::Future;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, QueryResult};
use uuid::Uuid;

use crate::customers::locks::Held;
use crate::entities::{customer, order, reward};
use crate::error::AppError;
use crate::rollups::changes::Join;

/// A customer registered, or registered again (`first` is false) with the same details.
#[derive(Debug, Clone, Copy)]
pub struct CustomerRegistered<'a> {
    pub customer: &'a customer::Model,
    /// The referral code given with this registration, normalized.
    pub referral_code: Option<&'a str>,
    pub first: bool,
    pub now: DateTime<Utc>,
}

/// A new order was recorded (never for a replay).
#[derive(Debug, Clone, Copy)]
pub struct OrderRecorded<'a> {
    pub order: &'a order::Model,
    /// The buyer and their referrer, locked.
    pub held: &'a Held,
    pub now: DateTime<Utc>,
    /// The program configuration's version, when the workflow read it with its locks.
    pub program_version: Option<i64>,
    /// Whether the buyer has an active cart, when the workflow read it with its locks.
    pub has_active_cart: Option<bool>,
    /// The buyer's rows of the order's snapshot, when it was read with
    /// [`Reactions::order_snapshot_join`].
    pub snapshot: Option<&'a [QueryResult]>,
}

/// Part of an order was refunded; `order` already carries the new refunded amount.
#[derive(Debug, Clone, Copy)]
pub struct OrderRefunded<'a> {
    pub order: &'a order::Model,
    /// The amount this refund took back, in minor units.
    pub amount: i64,
    /// The refund's own row id: the natural key of whatever it causes.
    pub refund_id: uuid::Uuid,
    /// The buyer and their referrer, locked.
    pub held: &'a Held,
    pub now: DateTime<Utc>,
}

/// Referral rewards were issued: at qualification, after an admin's review, or when their hold
/// ended.
#[derive(Debug, Clone, Copy)]
pub struct ReferralRewarded<'a> {
    /// Rewards issued together (both sides of a referral, or a referrer's reward and the
    /// milestone it reaches), each held by one of `held`.
    pub rewards: &'a [reward::Model],
    /// The customers of the rewards' referral (or their holder), locked.
    pub held: &'a Held,
    pub now: DateTime<Utc>,
}

/// What reacts to the events of customers and orders. Each method runs inside the transaction
/// that wrote the event; an error rolls the whole write back.
pub trait Reactions: Sync {
    fn customer_registered(
        &self,
        txn: &DatabaseTransaction,
        event: CustomerRegistered<'_>,
    ) -> impl Future<Output = Result<(), AppError>> + Send;

    /// What the reactions to an order of `buyer_id`, whose lock found a pending referral, read
    /// with the order's snapshot ([`OrderRecorded::snapshot`]), so that it costs no statement of
    /// its own.
    fn order_snapshot_join(&self, buyer_id: Uuid) -> Join;

    fn order_recorded(
        &self,
        txn: &DatabaseTransaction,
        event: OrderRecorded<'_>,
    ) -> impl Future<Output = Result<(), AppError>> + Send;

    fn order_refunded(
        &self,
        txn: &DatabaseTransaction,
        event: OrderRefunded<'_>,
    ) -> impl Future<Output = Result<(), AppError>> + Send;

    fn referral_rewarded(
        &self,
        txn: &DatabaseTransaction,
        event: ReferralRewarded<'_>,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}
