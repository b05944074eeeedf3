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
use crate::loyalty::ledger::Account;

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

/// Customers' points accounts (ledger and consumptions) by customer id: the points fields of
/// one customer, and of every row of a list, share two reads.
pub struct AccountLoader {
    db: DatabaseConnection,
}

impl Loader<Uuid> for AccountLoader {
    type Value = Arc<Account>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Arc<Account>>, Self::Error> {
        let accounts = Account::load_many(&self.db, keys).await.map_err(Arc::new)?;
        Ok(accounts
            .into_iter()
            .map(|(id, account)| (id, Arc::new(account)))
            .collect())
    }
}

/// The loaders of one request (or one socket's operation).
pub struct Loaders {
    customers: DataLoader<CustomerLoader>,
    accounts: DataLoader<AccountLoader>,
}

/// The loaders of one request.
pub fn for_request(db: DatabaseConnection) -> Loaders {
    Loaders {
        customers: DataLoader::new(CustomerLoader { db: db.clone() }, tokio::spawn),
        accounts: DataLoader::new(AccountLoader { db }, tokio::spawn),
    }
}

fn loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders, AppError> {
    ctx.data::<Loaders>()
        .map_err(|e| AppError::internal("reading the request's loaders", e.message))
}

/// A customer's points account, batched with the other accounts the same request reads.
pub async fn account(ctx: &Context<'_>, customer_id: Uuid) -> Result<Arc<Account>, AppError> {
    loaders(ctx)?
        .accounts
        .load_one(customer_id)
        .await
        .map_err(|e| AppError::internal("loading a points account", e.to_string()))
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
