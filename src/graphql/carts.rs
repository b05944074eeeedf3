//! GraphQL types and resolvers for carts and product views.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::carts::service::{self, CartItem, CartUpdate, ProductView};
use crate::entities::cart;
use crate::entities::enums::CartStatus;
use crate::graphql::context::require;
use crate::graphql::scalars::Long;

/// One line of a cart.
#[derive(InputObject)]
pub struct CartItemInput {
    /// The shop's product id, at most 128 characters.
    pub product_id: String,
    /// The product's name, shown in cart emails; at most 200 characters.
    pub name: Option<String>,
    /// Price of one unit, in minor units: 0 to 1,000,000,000.
    pub unit_price: i32,
    /// How many: 1 to 10,000.
    pub quantity: i32,
    /// A picture of the product, shown in cart emails: an http(s) URL of at most 2,048
    /// characters.
    pub image_url: Option<String>,
    /// The product's page: an http(s) URL of at most 2,048 characters.
    pub url: Option<String>,
}

/// A cart as the shop has it now.
#[derive(InputObject)]
pub struct CartInput {
    /// The shop's cart id, at most 128 characters.
    pub external_id: String,
    /// The shopper's externalId, at most 128 characters.
    pub customer_external_id: String,
    /// Everything in the cart, at most 100 lines; an empty list means the cart was emptied.
    pub items: Vec<CartItemInput>,
    /// Where the shopper finishes the purchase: an http(s) URL of at most 2,048 characters;
    /// the public URL when absent.
    pub checkout_url: Option<String>,
}

/// A product page a shopper looked at.
#[derive(InputObject)]
pub struct ProductViewInput {
    /// The shopper's externalId, at most 128 characters.
    pub customer_external_id: String,
    /// The shop's product id, at most 128 characters.
    pub product_id: String,
    /// The product's name, at most 200 characters.
    pub name: Option<String>,
    /// Price of one unit, in minor units: 0 to 1,000,000,000.
    pub unit_price: Option<i32>,
    /// The product's page: an http(s) URL of at most 2,048 characters.
    pub url: Option<String>,
    /// A picture of the product: an http(s) URL of at most 2,048 characters.
    pub image_url: Option<String>,
}

/// One line of a cart.
#[derive(SimpleObject)]
#[graphql(name = "CartItem")]
pub struct CartItemView {
    /// The shop's product id.
    pub product_id: String,
    /// The product's name.
    pub name: Option<String>,
    /// Price of one unit, in minor units.
    pub unit_price: Long,
    /// How many.
    pub quantity: Long,
    /// A picture of the product.
    pub image_url: Option<String>,
    /// The product's page.
    pub url: Option<String>,
}

pub struct Cart(pub cart::Model);

/// A shopper's cart and where its abandonment sequence stands.
#[Object]
impl Cart {
    /// Tandem's id for the cart.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The shop's cart id.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    /// What is in it.
    async fn items(&self) -> Vec<CartItemView> {
        service::items_of(&self.0)
            .into_iter()
            .map(|i| CartItemView {
                product_id: i.product_id,
                name: i.name,
                unit_price: Long::from(i.unit_price),
                quantity: Long::from(i.quantity),
                image_url: i.image_url,
                url: i.url,
            })
            .collect()
    }
    /// The sum of unit price × quantity over the items, in minor units; null only for a cart
    /// stored before input bounds whose sum does not fit 64 bits.
    async fn total(&self) -> Option<Long> {
        service::total(&service::items_of(&self.0)).map(Long::from)
    }
    /// Where the shopper finishes the purchase.
    async fn checkout_url(&self) -> Option<&str> {
        self.0.checkout_url.as_deref()
    }
    /// Whether it is active, bought or emptied.
    async fn status(&self) -> CartStatus {
        self.0.status
    }
    /// The last abandonment email sent: 0 none, 1 reminder, 2 discount, 3 last call.
    async fn stage(&self) -> i32 {
        self.0.stage
    }
    /// When the items last changed.
    async fn last_changed_at(&self) -> DateTime<Utc> {
        self.0.last_changed_at
    }
    /// When the next abandonment email is due; null when none is.
    async fn next_stage_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_stage_at
    }
}

#[derive(Default)]
pub struct CartMutation;

#[Object]
impl CartMutation {
    /// Creates or updates a cart (service tokens). A change of items restarts the abandonment
    /// clock; a stage already sent is not sent again; an empty cart stops the sequence. A
    /// CONVERTED cart is final: an update answers it unchanged. A cart an order already named
    /// is stored CONVERTED.
    async fn upsert_cart(&self, ctx: &Context<'_>, input: CartInput) -> Result<Cart> {
        let (state, _) = require(ctx, &[Role::Service])?;
        let update = CartUpdate {
            external_id: input.external_id,
            customer_external_id: input.customer_external_id,
            items: input
                .items
                .into_iter()
                .map(|i| CartItem {
                    product_id: i.product_id,
                    name: i.name,
                    unit_price: i64::from(i.unit_price),
                    quantity: i64::from(i.quantity),
                    image_url: i.image_url,
                    url: i.url,
                })
                .collect(),
            checkout_url: input.checkout_url,
        }
        .check()?;
        let saved = service::upsert(
            &state.db,
            state.clock.as_ref(),
            &state.settings.carts,
            update,
        )
        .await?;
        Ok(Cart(saved))
    }

    /// Records that a shopper looked at a product, for cart-email recommendations (service
    /// tokens). Returns true.
    async fn track_product_view(&self, ctx: &Context<'_>, input: ProductViewInput) -> Result<bool> {
        let (state, _) = require(ctx, &[Role::Service])?;
        service::track_view(
            &state.db,
            state.clock.as_ref(),
            ProductView {
                customer_external_id: input.customer_external_id,
                product_id: input.product_id,
                name: input.name,
                unit_price: input.unit_price.map(i64::from),
                url: input.url,
                image_url: input.image_url,
            },
        )
        .await?;
        Ok(true)
    }
}
