//! DataLoaders: one per request, so a list that resolves the same kind of record for every row
//! asks the database once per batch instead of once per row.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_graphql::futures_util::FutureExt;
use async_graphql::futures_util::future::{BoxFuture, Shared};

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::clock::Clock;
use crate::entities::{customer, customer_badge};
use crate::error::{AppError, DbContext};
use crate::loyalty::badges;
use crate::loyalty::balance::{self, Points};
use crate::loyalty::program::{Program, ProgramCache};

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

/// The badges customers hold, oldest award first, by customer id.
pub struct HeldBadgesLoader {
    db: DatabaseConnection,
}

impl Loader<Uuid> for HeldBadgesLoader {
    type Value = Arc<Vec<customer_badge::Model>>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<Vec<customer_badge::Model>>>, Self::Error> {
        let mut held: HashMap<Uuid, Vec<customer_badge::Model>> = HashMap::new();
        for award in badges::awards_of_customers(&self.db, keys)
            .await
            .map_err(Arc::new)?
        {
            held.entry(award.customer_id).or_default().push(award);
        }
        Ok(held.into_iter().map(|(id, v)| (id, Arc::new(v))).collect())
    }
}

/// The loaders of one request (or one socket's operation), and the program's configuration it
/// reads at most once.
pub struct Loaders {
    customers: DataLoader<CustomerLoader, HashMapCache>,
    points: Arc<DataLoader<PointsLoader, HashMapCache>>,
    /// Each customer's points asked for in this request, shared by every field that asks while
    /// the read is still on its way (a loader's cache only answers once it has the rows).
    points_asked: Mutex<HashMap<Uuid, SharedPoints>>,
    expiring: DataLoader<ExpiringLoader, HashMapCache>,
    badges: DataLoader<HeldBadgesLoader, HashMapCache>,
    program: tokio::sync::OnceCell<Arc<Program>>,
    program_cache: Arc<ProgramCache>,
    keep_reads: bool,
    db: DatabaseConnection,
}

/// The loaders of one request. With `keep_reads` (a query over HTTP: it writes nothing, and
/// ends within the request timeout), what a loader read and the program's configuration are
/// kept for the rest of the request; without it (a mutation, whose fields each see the writes of
/// the ones before, or a socket's operations, which live for the socket) every batch reads.
pub fn for_request(
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    program_cache: Arc<ProgramCache>,
    keep_reads: bool,
) -> Loaders {
    let loaders = Loaders {
        customers: cached(CustomerLoader { db: db.clone() }),
        badges: cached(HeldBadgesLoader { db: db.clone() }),
        program: tokio::sync::OnceCell::new(),
        program_cache,
        keep_reads,
        points: Arc::new(cached(PointsLoader {
            db: db.clone(),
            clock: clock.clone(),
        })),
        points_asked: Mutex::default(),
        expiring: cached(ExpiringLoader {
            db: db.clone(),
            clock,
        }),
        db,
    };
    loaders.customers.enable_all_cache(keep_reads);
    loaders.points.enable_all_cache(keep_reads);
    loaders.expiring.enable_all_cache(keep_reads);
    loaders.badges.enable_all_cache(keep_reads);
    loaders
}

/// A loader that can keep what it read for the rest of the request: a field that asks after its
/// batch was sent (behind another read) then gets the same answer without a second statement.
fn cached<L: Send + Sync + 'static>(loader: L) -> DataLoader<L, HashMapCache> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
}

/// The program's configuration, read (or its version checked) once per request.
pub async fn program(ctx: &Context<'_>) -> Result<Arc<Program>, AppError> {
    let loaders = loaders(ctx)?;
    if !loaders.keep_reads {
        return loaders.program_cache.current(&loaders.db).await;
    }
    loaders
        .program
        .get_or_try_init(|| loaders.program_cache.current(&loaders.db))
        .await
        .cloned()
}

/// Whether this request keeps what it reads until it ends (see [`for_request`]): only then is a
/// read made ahead of the fields worth handing to them.
pub fn keeps_reads(ctx: &Context<'_>) -> bool {
    loaders(ctx).is_ok_and(|loaders| loaders.keep_reads)
}

/// Hands the request a customer's points and the configuration's version read with another
/// statement, so the fields that ask for them send none (the configuration is handed over only
/// when the process keeps it at that version; otherwise the first field that needs it reads it).
/// Does nothing when the request does not keep its reads.
pub fn prime(
    ctx: &Context<'_>,
    customer_id: Uuid,
    points: Points,
    program_version: i64,
) -> Result<(), AppError> {
    let loaders = loaders(ctx)?;
    if !loaders.keep_reads {
        return Ok(());
    }
    let ready = async move { Ok(points) }.boxed().shared();
    loaders
        .points_asked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(customer_id, ready);
    if let Some(program) = loaders.program_cache.kept_at(program_version) {
        // Set at most once: a field that already read it read the same version or a later one.
        let _ = loaders.program.set(program);
    }
    Ok(())
}

/// The badges a customer holds, batched with the other customers' the same request reads.
pub async fn held_badges(
    ctx: &Context<'_>,
    customer_id: Uuid,
) -> Result<Arc<Vec<customer_badge::Model>>, AppError> {
    loaders(ctx)?
        .badges
        .load_one(customer_id)
        .await
        .map_err(|e| AppError::internal("loading a customer's badges", e.to_string()))
        .map(Option::unwrap_or_default)
}

fn loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders, AppError> {
    ctx.data::<Loaders>()
        .map_err(|e| AppError::internal("reading the request's loaders", e.message))
}

type SharedPoints = Shared<BoxFuture<'static, Result<Points, String>>>;

/// A customer's points, batched with the other customers' the same request reads.
pub async fn points(ctx: &Context<'_>, customer_id: Uuid) -> Result<Points, AppError> {
    let loaders = loaders(ctx)?;
    let load = {
        let loader = loaders.points.clone();
        move || {
            async move {
                loader
                    .load_one(customer_id)
                    .await
                    .map(Option::unwrap_or_default)
                    .map_err(|e| e.to_string())
            }
            .boxed()
            .shared()
        }
    };
    let asked = if loaders.keep_reads {
        loaders
            .points_asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(customer_id)
            .or_insert_with(load)
            .clone()
    } else {
        load()
    };
    asked
        .await
        .map_err(|e| AppError::internal("loading a customer's points", e))
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
