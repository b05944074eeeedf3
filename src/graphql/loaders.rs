//! DataLoaders: one per request, so a list that resolves the same kind of record for every row
//! asks the database once per batch instead of once per row.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::clock::Clock;
use crate::entities::customer;
use crate::error::{AppError, DbContext};
use crate::loyalty::balance::{self, Points};

/// Customers by id.
pub struct CustomerLoader {
    db: DatabaseConnection,
}

impl Loader<Uuid> for CustomerLoader {
    type Value = customer::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, customer::Model>, Self::Error> {
        let rows = customer::Entity::find()
            .filter(customer::Column::Id.is_in(keys.iter().copied()))
            .all(&self.db)
            .await
            .context("batch-loading customers")
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|c| (c.id, c)).collect())
    }
}

/// Customers' points (kept values and the open lots time has moved) by customer id: the points
/// fields of one customer, and of every row of a list, share one read.
pub struct PointsLoader {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl Loader<Uuid> for PointsLoader {
    type Value = Points;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Points>, Self::Error> {
        balance::of_customers(&self.db, keys, self.clock.now())
            .await
            .map_err(Arc::new)
    }
}

/// What expires of customers' points within a number of days, by (customer, days): a list asks
/// once per distinct number of days.
pub struct ExpiringLoader {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

/// One customer's points by expiry date.
pub type Expiring = Arc<Vec<(DateTime<Utc>, i64)>>;

impl Loader<(Uuid, i32)> for ExpiringLoader {
    type Value = Expiring;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[(Uuid, i32)],
    ) -> Result<HashMap<(Uuid, i32), Expiring>, Self::Error> {
        let now = self.clock.now();
        let mut by_days: BTreeMap<i32, Vec<Uuid>> = BTreeMap::new();
        for (customer_id, days) in keys {
            by_days.entry(*days).or_default().push(*customer_id);
        }
        let mut found = HashMap::with_capacity(keys.len());
        for (days, customer_ids) in by_days {
            let soon = balance::expiring_soon(&self.db, &customer_ids, now, i64::from(days))
                .await
                .map_err(Arc::new)?;
            for (customer_id, dates) in soon {
                found.insert((customer_id, days), Arc::new(dates));
            }
        }
        Ok(found)
    }
}

/// The loaders of one request (or one socket's operation).
pub struct Loaders {
    customers: DataLoader<CustomerLoader>,
    points: DataLoader<PointsLoader>,
    expiring: DataLoader<ExpiringLoader>,
}

/// The loaders of one request.
pub fn for_request(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Loaders {
    Loaders {
        customers: DataLoader::new(CustomerLoader { db: db.clone() }, tokio::spawn),
        points: DataLoader::new(
            PointsLoader {
                db: db.clone(),
                clock: clock.clone(),
            },
            tokio::spawn,
        ),
        expiring: DataLoader::new(ExpiringLoader { db, clock }, tokio::spawn),
    }
}

fn loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders, AppError> {
    ctx.data::<Loaders>()
        .map_err(|e| AppError::internal("reading the request's loaders", e.message))
}

/// A customer's points, batched with the other customers' the same request reads.
pub async fn points(ctx: &Context<'_>, customer_id: Uuid) -> Result<Points, AppError> {
    loaders(ctx)?
        .points
        .load_one(customer_id)
        .await
        .map_err(|e| AppError::internal("loading a customer's points", e.to_string()))
        .map(Option::unwrap_or_default)
}

/// A customer's points that expire within `days`, batched with the other customers' the same
/// request reads.
pub async fn expiring(
    ctx: &Context<'_>,
    customer_id: Uuid,
    days: i32,
) -> Result<Expiring, AppError> {
    loaders(ctx)?
        .expiring
        .load_one((customer_id, days))
        .await
        .map_err(|e| AppError::internal("loading points about to expire", e.to_string()))
        .map(Option::unwrap_or_default)
}

/// The customer with `id`, batched with the other look-ups of the same request.
pub async fn customer(ctx: &Context<'_>, id: Uuid) -> Result<customer::Model, AppError> {
    loaders(ctx)?
        .customers
        .load_one(id)
        .await
        .map_err(|e| AppError::internal("loading a customer", e.to_string()))?
        .ok_or_else(|| {
            AppError::internal("loading a customer", format!("customer {id} is missing"))
        })
}
