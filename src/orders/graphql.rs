//! GraphQL types and resolvers for orders and refunds.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::entities::order;
use crate::graphql::context::require;
use crate::graphql::loaders;
use crate::orders::service::{self, NewOrder, OrderItem};

/// One line of an order.
#[derive(InputObject)]
pub struct OrderItemInput {
    /// The shop's product id.
    pub product_id: String,
    /// The product's name.
    pub name: Option<String>,
    /// Price of one unit, in minor units.
    pub unit_price: i64,
    /// How many were bought.
    pub quantity: i64,
}

/// An order as the shop recorded it.
#[derive(InputObject)]
pub struct OrderInput {
    /// The shop's order id; recording it again is a no-op that returns the first result.
    pub external_id: String,
    /// The buyer's externalId.
    pub customer_external_id: String,
    /// The order total, in minor units of the program currency.
    pub amount: i64,
    /// ISO 4217 code; must be the program currency.
    pub currency: String,
    /// The order's lines.
    pub items: Option<Vec<OrderItemInput>>,
    /// When the order was placed; now when absent.
    pub placed_at: Option<DateTime<Utc>>,
    /// The cart this order checked out, if any.
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
    pub unit_price: i64,
    /// How many were bought.
    pub quantity: i64,
}

pub struct Order(pub order::Model);

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
        Ok(loaders::customer(ctx, self.0.customer_id)
            .await?
            .external_id)
    }
    /// The order total, in minor units.
    async fn amount(&self) -> i64 {
        self.0.amount
    }
    /// How much of it has been refunded, in minor units.
    async fn refunded_amount(&self) -> i64 {
        self.0.refunded_amount
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
                unit_price: i.unit_price,
                quantity: i.quantity,
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
            amount: input.amount,
            currency: input.currency,
            items: input
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|i| OrderItem {
                    product_id: i.product_id.trim().to_owned(),
                    name: i.name,
                    unit_price: i.unit_price,
                    quantity: i.quantity,
                })
                .collect(),
            placed_at: input.placed_at,
            cart_external_id: input.cart_external_id.filter(|c| !c.trim().is_empty()),
        }
        .check(&state.settings.currency)?;
        Ok(Order(
            service::record(&state.db, state.clock.as_ref(), new).await?,
        ))
    }

    /// Refunds part or all of an order (service tokens). A refund that takes a qualifying order
    /// below the campaign minimum reverses the referral's rewards. Pass `refundId` to make
    /// retries of the same refund no-ops.
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        external_id: String,
        #[graphql(desc = "How much to refund, in minor units.")] amount: i64,
        #[graphql(desc = "The shop's id for this refund; a repeat with the same id does nothing.")]
        refund_id: Option<String>,
    ) -> Result<Order> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let refund_id = refund_id
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let order = service::refund(
            &state.db,
            state.clock.as_ref(),
            external_id.trim(),
            amount,
            refund_id,
        )
        .await?;
        Ok(Order(order))
    }
}
