//! The program's configuration as the rules read it: the settings, the tiers and the badges, as
//! one snapshot per operation.
//!
//! Every change to the settings, a tier or a badge raises `program_settings.version` in the
//! changing transaction ([`changed`]). A process keeps the last snapshot it read, with the version
//! it was read at ([`ProgramCache`]); an operation reads the version (one key read, or a column
//! of a statement it sends anyway) and reads the configuration again only when the version moved.
//! So every instance sees a change with its next operation, and an order does not read three
//! tables that change a few times a year.

use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};
use uuid::Uuid;

use crate::db::statement;
use crate::entities::{badge, program_settings, tier};
use crate::error::{AppError, DbContext};
use crate::loyalty::settings::{self, ProgramSettings};
use crate::loyalty::{badges, tiers};

/// The settings, the tiers (lowest threshold first) and the badges (oldest first) at one version.
#[derive(Debug, Clone)]
pub struct Program {
    pub settings: ProgramSettings,
    pub tiers: Vec<tier::Model>,
    pub badges: Vec<badge::Model>,
}

impl Program {
    /// Reads the configuration: the settings first, so the version it is labelled with is never
    /// newer than the tiers and badges read after it.
    pub async fn load(db: &impl ConnectionTrait) -> Result<Self, AppError> {
        Ok(Self {
            settings: settings::load(db).await?,
            tiers: tiers::all(db).await?,
            badges: badges::all(db).await?,
        })
    }

    pub fn version(&self) -> i64 {
        self.settings.version
    }

    /// The tier with this id, if it exists.
    pub fn tier(&self, id: Option<Uuid>) -> Option<&tier::Model> {
        id.and_then(|id| self.tiers.iter().find(|t| t.id == id))
    }

    /// The lowest tier above `current` (above none: the lowest).
    pub fn tier_above(&self, current: Option<&tier::Model>) -> Option<&tier::Model> {
        let floor = current.map_or(-1, |t| t.threshold);
        self.tiers.iter().find(|t| t.threshold > floor)
    }

    /// The points multiplier of a tier, in thousandths (1000 without one).
    pub fn multiplier_milli(&self, tier_id: Option<Uuid>) -> i64 {
        self.tier(tier_id).map_or(1000, |t| t.multiplier_milli)
    }
}

/// The snapshot a process read last. One per application state (a test process runs several,
/// each on its own database).
#[derive(Debug, Default)]
pub struct ProgramCache {
    last: Mutex<Option<Arc<Program>>>,
}

impl ProgramCache {
    /// The configuration now: the kept snapshot when the stored version is still its own.
    pub async fn current(&self, db: &impl ConnectionTrait) -> Result<Arc<Program>, AppError> {
        let version = version(db).await?;
        self.at(db, version).await
    }

    /// The configuration at `version`, a version the caller has just read in its own statement.
    pub async fn at(
        &self,
        db: &impl ConnectionTrait,
        version: i64,
    ) -> Result<Arc<Program>, AppError> {
        if let Some(kept) = self.kept_at(version) {
            return Ok(kept);
        }
        let fresh = Arc::new(Program::load(db).await?);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the newest of what concurrent readers loaded.
        if last
            .as_ref()
            .is_none_or(|kept| kept.version() <= fresh.version())
        {
            *last = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// The kept snapshot when it is at `version`, without reading anything.
    pub fn kept_at(&self, version: i64) -> Option<Arc<Program>> {
        self.kept().filter(|kept| kept.version() == version)
    }

    fn kept(&self) -> Option<Arc<Program>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// [`version`] as a scalar expression, for a workflow that reads it in a statement of its own.
pub const VERSION_COLUMN: &str = "(SELECT version FROM program_settings WHERE id = 1)";

/// The configuration's version as stored.
pub async fn version(db: &impl ConnectionTrait) -> Result<i64, AppError> {
    program_settings::Entity::find_by_id(1)
        .select_only()
        .column(program_settings::Column::Version)
        .into_tuple::<i64>()
        .one(db)
        .await
        .context("reading the program's version")?
        .ok_or_else(|| AppError::internal("reading the program's version", "the row is missing"))
}

/// Raises the configuration's version: called after a write to the settings, a tier or a badge,
/// in the same transaction (or, outside one, after the write, never before it).
pub async fn changed(db: &impl ConnectionTrait) -> Result<(), AppError> {
    db.execute_raw(statement(
        db.get_database_backend(),
        "UPDATE program_settings SET version = version + 1 WHERE id = 1",
        vec![],
    ))
    .await
    .context("raising the program's version")?;
    Ok(())
}
