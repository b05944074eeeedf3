//! GraphQL types and resolvers for orders and refunds.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::entities::order;
use crate::graphql::context::require;
use crate::graphql::loaders;
use crate::graphql::scalars::Long;
use crate::orders::refunds;
use crate::orders::service::{self, NewOrder, OrderItem};

/// One line of an order.
#[derive(InputObject)]
pub struct OrderItemInput {
    /// The shop's product id, at most 128 characters.
    pub product_id: String,
    /// The product's name, at most 200 characters.
    pub name: Option<String>,
    /// Price of one unit, in minor units: 0 to 1,000,000,000.
    pub unit_price: i32,
    /// How many were bought: 1 to 10,000.
    pub quantity: i32,
}

/// An order as the shop recorded it.
#[derive(InputObject)]
pub struct OrderInput {
    /// The shop's order id, at most 128 characters; recording it again is a no-op that
    /// returns the first result.
    pub external_id: String,
    /// The buyer's externalId, at most 128 characters.
    pub customer_external_id: String,
    /// The order total, in minor units of the program currency: 1 to 1,000,000,000.
    pub amount: i32,
    /// ISO 4217 code; must be the program currency.
    pub currency: String,
    /// The order's lines, at most 100.
    pub items: Option<Vec<OrderItemInput>>,
    /// When the order was placed; now when absent.
    pub placed_at: Option<DateTime<Utc>>,
    /// The cart this order checked out, if any; at most 128 characters.
    pub cart_external_id: Option<String>,
}

/// One line of an order.
#[derive(SimpleObject)]
#[graphql(name = "OrderItem")]
pub struct OrderItemView {
    /// The shop's product id.
    pub product_id: String,
    /// The product's name.
    pub name: Option<String>,
    /// Price of one unit, in minor units.
    pub unit_price: Long,
    /// How many were bought.
    pub quantity: Long,
}

pub struct Order(pub order::Model, Option<String>);

impl Order {
    /// The order; `customer_external_id` when the caller already has the buyer's externalId
    /// (the request named them), which then needs no read.
    pub fn new(order: order::Model, customer_external_id: Option<String>) -> Self {
        Self(order, customer_external_id)
    }
}

/// A purchase, as reported by the shop.
#[Object]
impl Order {
    /// Tandem's id for the order.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The shop's order id.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    /// The buyer's externalId.
    async fn customer_external_id(&self, ctx: &Context<'_>) -> Result<String> {
        if let Some(known) = &self.1 {
            return Ok(known.clone());
        }
        Ok(loaders::customer(ctx, self.0.customer_id)
            .await?
            .external_id)
    }
    /// The order total, in minor units.
    async fn amount(&self) -> Long {
        Long::from(self.0.amount)
    }
    /// How much of it has been refunded, in minor units.
    async fn refunded_amount(&self) -> Long {
        Long::from(self.0.refunded_amount)
    }
    /// ISO 4217 code.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// The order's lines.
    async fn items(&self) -> Vec<OrderItemView> {
        serde_json::from_value::<Vec<OrderItem>>(self.0.items.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|i| OrderItemView {
                product_id: i.product_id,
                name: i.name,
                unit_price: Long::from(i.unit_price),
                quantity: Long::from(i.quantity),
            })
            .collect()
    }
    /// The cart this order checked out, if any.
    async fn cart_external_id(&self) -> Option<&str> {
        self.0.cart_external_id.as_deref()
    }
    /// When the order was placed.
    async fn placed_at(&self) -> DateTime<Utc> {
        self.0.placed_at
    }
}

#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Records an order (service tokens). The friend's first order that meets the campaign
    /// minimum within the window qualifies their referral and pays both sides.
    async fn record_order(&self, ctx: &Context<'_>, input: OrderInput) -> Result<Order> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let new = NewOrder {
            external_id: input.external_id,
            customer_external_id: input.customer_external_id,
            amount: i64::from(input.amount),
            currency: input.currency,
            items: input
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|i| OrderItem {
                    product_id: i.product_id,
                    name: i.name,
                    unit_price: i64::from(i.unit_price),
                    quantity: i64::from(i.quantity),
                })
                .collect(),
            placed_at: input.placed_at,
            cart_external_id: input.cart_external_id,
        }
        .check(&state.settings.currency)?;
        let buyer = new.customer_external_id.clone();
        let order =
            service::record(&state.db, state.clock.as_ref(), &state.reactions(), new).await?;
        Ok(Order::new(order, Some(buyer)))
    }

    /// Refunds part or all of an order (service tokens). A refund that takes a qualifying order
    /// below the campaign minimum reverses the referral's rewards. Pass `refundId` to make
    /// retries of the same refund no-ops.
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The shop's order id, at most 128 characters.")] external_id: String,
        #[graphql(desc = "How much to refund, in minor units: 1 to 1,000,000,000.")] amount: i32,
        #[graphql(
            desc = "The shop's id for this refund, at most 128 characters; a repeat with the same id does nothing."
        )]
        refund_id: Option<String>,
    ) -> Result<Order> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let order = refunds::refund(
            &state.db,
            state.clock.as_ref(),
            &state.reactions(),
            &external_id,
            i64::from(amount),
            refund_id,
        )
        .await?;
        Ok(Order::new(order, None))
    }
}
