//! DataLoaders: one per request, so a list that resolves the same kind of record for every row
//! asks the database once per batch instead of once per row.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entities::customer;
use crate::error::{AppError, DbContext};

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

/// The loaders of one request.
pub fn for_request(db: DatabaseConnection) -> DataLoader<CustomerLoader> {
    DataLoader::new(CustomerLoader { db }, tokio::spawn)
}

/// The customer with `id`, batched with the other look-ups of the same request.
pub async fn customer(ctx: &Context<'_>, id: Uuid) -> Result<customer::Model, AppError> {
    let loader = ctx
        .data::<DataLoader<CustomerLoader>>()
        .map_err(|e| AppError::internal("reading the customer loader", e.message))?;
    loader
        .load_one(id)
        .await
        .map_err(|e| AppError::internal("loading a customer", e.to_string()))?
        .ok_or_else(|| {
            AppError::internal("loading a customer", format!("customer {id} is missing"))
        })
}
