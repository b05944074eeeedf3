//! Products to suggest in cart emails: up to three, never one already in the cart — first ones the
//! customer viewed and did not add, then ones most often bought together with the cart's items,
//! then best sellers. Counts are SQL aggregates over order lines.

use std::collections::HashSet;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, JoinType, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use crate::entities::{order_line, product_view};
use crate::error::{AppError, DbContext};

pub const MAX_RECOMMENDATIONS: usize = 3;

/// A product to suggest, with what is known of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub unit_price: Option<i64>,
    pub url: Option<String>,
    pub image_url: Option<String>,
}

/// Up to three products for the customer's cart email. `best_sellers` is [`best_sellers`], read
/// once per scan.
pub async fn recommend(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    in_cart: &[String],
    best_sellers: &[String],
) -> Result<Vec<Product>, AppError> {
    let mut chosen: Vec<String> = Vec::new();
    let mut excluded: HashSet<String> = in_cart.iter().cloned().collect();
    let take = |ids: Vec<String>, chosen: &mut Vec<String>, excluded: &mut HashSet<String>| {
        for id in ids {
            if chosen.len() < MAX_RECOMMENDATIONS && excluded.insert(id.clone()) {
                chosen.push(id);
            }
        }
    };

    let viewed: Vec<String> = product_view::Entity::find()
        .select_only()
        .column(product_view::Column::ProductId)
        .filter(product_view::Column::CustomerId.eq(customer_id))
        .order_by_desc(product_view::Column::ViewedAt)
        .limit(50)
        .into_tuple()
        .all(db)
        .await
        .context("loading viewed products")?;
    take(viewed, &mut chosen, &mut excluded);

    if chosen.len() < MAX_RECOMMENDATIONS && !in_cart.is_empty() {
        let bought_with = co_purchased(db, in_cart, &excluded).await?;
        take(bought_with, &mut chosen, &mut excluded);
    }
    if chosen.len() < MAX_RECOMMENDATIONS {
        take(best_sellers.to_vec(), &mut chosen, &mut excluded);
    }
    describe(db, chosen).await
}

async fn co_purchased(
    db: &impl ConnectionTrait,
    in_cart: &[String],
    excluded: &HashSet<String>,
) -> Result<Vec<String>, AppError> {
    let (a, b) = (Alias::new("a"), Alias::new("b"));
    let product = order_line::Column::ProductId;
    let statement = Query::select()
        .column((b.clone(), product))
        .from_as(order_line::Entity, a.clone())
        .join_as(
            JoinType::InnerJoin,
            order_line::Entity,
            b.clone(),
            Expr::col((a.clone(), order_line::Column::OrderId))
                .equals((b.clone(), order_line::Column::OrderId)),
        )
        .and_where(Expr::col((a, product)).is_in(in_cart.iter().cloned()))
        .and_where(Expr::col((b.clone(), product)).is_not_in(excluded.iter().cloned()))
        .group_by_col((b.clone(), product))
        .order_by_expr(
            Func::count(Expr::col((b.clone(), product))).into(),
            Order::Desc,
        )
        .order_by((b, product), Order::Asc)
        .limit(MAX_RECOMMENDATIONS as u64)
        .to_owned();
    product_ids(db, &statement).await
}

/// How many best sellers one aggregate reads: enough that three remain after excluding a
/// cart's items and the customer's views.
pub const BEST_SELLERS: u64 = 50;

/// The most-bought products by quantity, best first: one aggregate over the order lines.
pub async fn best_sellers(db: &impl ConnectionTrait) -> Result<Vec<String>, AppError> {
    let product = order_line::Column::ProductId;
    let statement = Query::select()
        .column(product)
        .from(order_line::Entity)
        .group_by_col(product)
        .order_by_expr(
            Func::sum(Expr::col(order_line::Column::Quantity)).into(),
            Order::Desc,
        )
        .order_by(product, Order::Asc)
        .limit(BEST_SELLERS)
        .to_owned();
    product_ids(db, &statement).await
}

async fn product_ids(
    db: &impl ConnectionTrait,
    statement: &sea_orm::sea_query::SelectStatement,
) -> Result<Vec<String>, AppError> {
    db.query_all(statement)
        .await
        .context("counting products")?
        .iter()
        .map(|row| {
            row.try_get::<String>("", "product_id")
                .context("reading a product id")
        })
        .collect()
}

/// Names, prices, links and images, from the latest view of each product or else its latest sale:
/// one row each, through the product indexes, however often a product was viewed or sold.
async fn describe(db: &impl ConnectionTrait, ids: Vec<String>) -> Result<Vec<Product>, AppError> {
    let mut products = Vec::with_capacity(ids.len());
    for id in ids {
        let view = product_view::Entity::find()
            .filter(product_view::Column::ProductId.eq(id.as_str()))
            .order_by_desc(product_view::Column::ViewedAt)
            .one(db)
            .await
            .context("loading product details")?;
        let line = match &view {
            Some(view) if view.name.is_some() && view.unit_price.is_some() => None,
            _ => order_line::Entity::find()
                .filter(order_line::Column::ProductId.eq(id.as_str()))
                .order_by_desc(order_line::Column::Id)
                .one(db)
                .await
                .context("loading product details")?,
        };
        products.push(Product {
            name: view
                .as_ref()
                .and_then(|v| v.name.clone())
                .or_else(|| line.as_ref().and_then(|l| l.name.clone()))
                .unwrap_or_else(|| id.clone()),
            unit_price: view
                .as_ref()
                .and_then(|v| v.unit_price)
                .or_else(|| line.as_ref().map(|l| l.unit_price)),
            url: view.as_ref().and_then(|v| v.url.clone()),
            image_url: view.as_ref().and_then(|v| v.image_url.clone()),
            product_id: id,
        });
    }
    Ok(products)
}
