//! GraphQL types and resolvers for rewards.

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::entities::enums::{RewardKind, RewardSide, RewardStatus};
use crate::entities::reward;
use crate::graphql::context::require;
use crate::graphql::scalars::Long;
use crate::input;
use crate::rewards::service;

pub struct Reward(pub reward::Model);

/// Something a customer earned: points, a coupon, or store credit.
#[Object]
impl Reward {
    /// The reward's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What the reward gives.
    async fn kind(&self) -> RewardKind {
        self.0.kind
    }
    /// Points, a percent, or minor units of the program currency.
    async fn amount(&self) -> Long {
        Long::from(self.0.amount)
    }
    /// The code to enter at checkout, for coupons and store credit.
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
    /// Where the reward stands.
    async fn status(&self) -> RewardStatus {
        self.0.status
    }
    /// Which side of the referral it pays.
    async fn side(&self) -> RewardSide {
        self.0.side
    }
    /// For a milestone bonus, the number of referrals it was reached at.
    async fn milestone(&self) -> Option<i32> {
        self.0.milestone
    }
    /// For a held reward, when it will be issued.
    async fn release_at(&self) -> Option<DateTime<Utc>> {
        self.0.release_at
    }
    /// When the reward was issued.
    async fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.0.issued_at
    }
    /// When the coupon was used.
    async fn redeemed_at(&self) -> Option<DateTime<Utc>> {
        self.0.redeemed_at
    }
    /// When the reward was taken back.
    async fn reversed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reversed_at
    }
    /// When the reward was earned.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Default)]
pub struct RewardMutation;

#[Object]
impl RewardMutation {
    /// Marks a coupon reward used, when the shop applies it at checkout (service tokens). A second
    /// redemption, or a coupon on hold or reversed, is a CONFLICT.
    async fn redeem_coupon(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The coupon's code as the shopper typed it, at most 128 characters.")]
        code: String,
    ) -> Result<Reward> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let code = input::identifier("code", &code)?;
        Ok(Reward(
            service::redeem(&state.db, state.clock.as_ref(), &code).await?,
        ))
    }
}
