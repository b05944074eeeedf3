//! The one path for the effects of a signup, an order and a refund: the implementation of
//! [`crate::events::Reactions`], calling each capability that reacts, in a fixed order, inside
//! the writer's transaction. This is the top of the rules' stack: it may call any capability,
//! and none calls it.

use chrono::Duration;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::carts::service as carts;
use crate::customers::locks::Held;
use crate::error::AppError;
use crate::events::{
    CustomerRegistered, OrderRecorded, OrderRefunded, Reactions, ReferralRewarded,
};
use crate::loyalty::program::{Program, ProgramCache};
use crate::loyalty::{self, earning};
use crate::referrals::attribution::{self, FraudLimits};
use crate::referrals::service as referrals;
use crate::referrals::{pending, qualification, reversal};
use crate::rollups::changes::Join;

/// The settings the reacting capabilities need.
#[derive(Debug, Clone, Copy)]
pub struct ProgramReactions<'a> {
    pub fraud_limits: FraudLimits,
    /// How far the merchant's clock may lag Tandem's.
    pub clock_skew: Duration,
    /// The program currency, for the sentences in points history.
    pub currency: &'a str,
    /// The program's configuration as this process last read it.
    pub program: &'a ProgramCache,
}

impl Reactions for ProgramReactions<'_> {
    fn order_snapshot_join(&self, buyer_id: Uuid) -> Join {
        let (sql, values) = pending::join("r.customer_id", buyer_id);
        Join {
            sql,
            columns: pending::COLUMNS,
            values,
        }
    }

    async fn customer_registered(
        &self,
        txn: &DatabaseTransaction,
        event: CustomerRegistered<'_>,
    ) -> Result<(), AppError> {
        let Some(code) = event.referral_code else {
            return Ok(());
        };
        // A customer is referred once: a code given again, or later, is ignored once a referral
        // exists. The registration holds the customer's row lock, so this check cannot race.
        if !event.first
            && referrals::of_referee(txn, event.customer.id)
                .await?
                .is_some()
        {
            return Ok(());
        }
        attribution::attribute(txn, self.fraud_limits, event.now, event.customer, code).await?;
        Ok(())
    }

    async fn order_recorded(
        &self,
        txn: &DatabaseTransaction,
        event: OrderRecorded<'_>,
    ) -> Result<(), AppError> {
        let order = event.order;
        // Points first, at the tier held when the order was placed; the referral's rewards and
        // the tier and badge re-evaluation then see them. The settings are read once, and each
        // customer is re-evaluated once, at the end: the buyer and the referrer whose referral
        // this order qualified (who gets any reward it paid).
        let program = match event.program_version {
            Some(version) => self.program.at(txn, version).await?,
            None => self.program.current(txn).await?,
        };
        earning::on_order(txn, event.held, &program, self.currency, event.now, order).await?;
        let referral = qualification::on_order(
            txn,
            event.held,
            event.now,
            self.clock_skew,
            order,
            event.snapshot,
        )
        .await?;
        for reward in &referral.rewards {
            earning::on_reward(txn, event.held, &program.settings, event.now, reward).await?;
        }
        carts::convert_on_order(
            txn,
            event.now,
            self.clock_skew,
            order,
            event.has_active_cart,
        )
        .await?;
        let evaluated: Vec<_> = std::iter::once(order.customer_id)
            .chain(referral.qualified_for)
            .collect();
        loyalty::activity_under(txn, event.held, &program, event.now, &evaluated).await
    }

    async fn order_refunded(
        &self,
        txn: &DatabaseTransaction,
        event: OrderRefunded<'_>,
    ) -> Result<(), AppError> {
        let order = event.order;
        // The referral first: the hold release locks rewards, the referral and then customers,
        // and so does a reversal; taking the buyer's row first here could deadlock with it.
        reversal::on_refund(txn, event.held, event.now, order).await?;
        earning::on_refund(
            txn,
            event.held,
            self.currency,
            event.now,
            order,
            event.amount,
            event.refund_id,
        )
        .await?;
        let program = self.program.current(txn).await?;
        self.reevaluate(txn, event.held, &program, event.now, order)
            .await
    }

    async fn referral_rewarded(
        &self,
        txn: &DatabaseTransaction,
        event: ReferralRewarded<'_>,
    ) -> Result<(), AppError> {
        // Loyalty's part: the points credited, then tiers and badges, once per holder.
        if event.rewards.is_empty() {
            return Ok(());
        }
        let program = self.program.current(txn).await?;
        let mut holders = Vec::with_capacity(event.rewards.len());
        for reward in event.rewards {
            earning::on_reward(txn, event.held, &program.settings, event.now, reward).await?;
            if !holders.contains(&reward.customer_id) {
                holders.push(reward.customer_id);
            }
        }
        loyalty::activity_under(txn, event.held, &program, event.now, &holders).await
    }
}

impl ProgramReactions<'_> {
    /// Tiers and badges of the buyer, and of the referrer whose referral this order qualified.
    async fn reevaluate(
        &self,
        txn: &DatabaseTransaction,
        held: &Held,
        program: &Program,
        now: chrono::DateTime<chrono::Utc>,
        order: &crate::entities::order::Model,
    ) -> Result<(), AppError> {
        let mut evaluated = vec![order.customer_id];
        if held.has_referrer(order.customer_id) != Some(false)
            && let Some(referral) = referrals::qualified_by(txn, order.id).await?
        {
            evaluated.push(referral.referrer_id);
        }
        loyalty::activity_under(txn, held, program, now, &evaluated).await
    }
}
