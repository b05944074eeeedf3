//! The one path for the effects of a signup, an order and a refund: the implementation of
//! [`crate::events::Reactions`], calling each capability that reacts, in a fixed order, inside
//! the writer's transaction. This is the top of the rules' stack: it may call any capability,
//! and none calls it.

use chrono::Duration;
use sea_orm::DatabaseTransaction;

use crate::carts::service as carts;
use crate::error::AppError;
use crate::events::{CustomerRegistered, OrderRecorded, OrderRefunded, Reactions};
use crate::referrals::attribution::{self, FraudLimits};
use crate::referrals::service as referrals;
use crate::referrals::{qualification, reversal};

/// The settings the reacting capabilities need.
#[derive(Debug, Clone, Copy)]
pub struct ProgramReactions {
    pub fraud_limits: FraudLimits,
    /// How far the merchant's clock may lag Tandem's.
    pub clock_skew: Duration,
}

impl Reactions for ProgramReactions {
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
        qualification::on_order(txn, event.now, self.clock_skew, event.order).await?;
        carts::convert_on_order(txn, event.now, self.clock_skew, event.order).await?;
        Ok(())
    }

    async fn order_refunded(
        &self,
        txn: &DatabaseTransaction,
        event: OrderRefunded<'_>,
    ) -> Result<(), AppError> {
        reversal::on_refund(txn, event.now, event.order).await?;
        Ok(())
    }
}
