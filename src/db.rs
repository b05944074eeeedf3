//! Connecting to the database, migrating it, and starting write transactions that cannot hit
//! "database is locked" on SQLite.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

/// How the pool is sized and how long a request waits for one of its connections.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// How long a SQLite writer waits for another's write lock.
    pub sqlite_busy_timeout: Duration,
    /// How long a caller waits for a free connection before it is told `UNAVAILABLE`; shorter
    /// than a request's time limit, so an exhausted pool says so instead of timing out.
    pub acquire_timeout: Duration,
    /// The most connections wanted; `None` for 20 on PostgreSQL and 8 on SQLite.
    pub max_connections: Option<u32>,
}

/// Connections a process holds outside its pool: PostgreSQL's `LISTEN` for live events.
pub const HELD_OUTSIDE_POOL: u32 = 1;
/// The smallest pool that serves: requests, and the scheduler and delivery workers beside them.
pub const MIN_POOL: u32 = 3;

/// Why the pool cannot be sized.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error(
        "the database allows this role {allowed} connection(s); a Tandem process needs at least {needed} ({MIN_POOL} in its pool and {HELD_OUTSIDE_POOL} to listen for live events). Raise the role's or database's CONNECTION LIMIT (or max_connections)"
    )]
    TooFewConnections { allowed: i64, needed: u32 },
}

/// How many connections PostgreSQL lets this role open: the least of the role's and the
/// database's `CONNECTION LIMIT` and the server's `max_connections` less those reserved for
/// superusers.
async fn postgres_connection_limit(options: &ConnectOptions) -> Result<i64, DbErr> {
    let mut probe = options.clone();
    probe.max_connections(1).min_connections(0);
    let db = Database::connect(probe).await?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT LEAST( \
               COALESCE(NULLIF((SELECT rolconnlimit FROM pg_roles \
                 WHERE rolname = current_user), -1), 2147483647), \
               COALESCE(NULLIF((SELECT datconnlimit FROM pg_database \
                 WHERE datname = current_database()), -1), 2147483647), \
               current_setting('max_connections')::int \
                 - current_setting('superuser_reserved_connections')::int \
             )::bigint",
        ))
        .await?;
    db.close().await?;
    Ok(row
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(i64::MAX))
}

/// Opens a pool on `url`. A SQLite file is created when missing and runs in WAL mode; a writer
/// waits up to `sqlite_busy_timeout` for another to finish, so requests queue instead of failing.
/// On PostgreSQL the pool is no larger than the role may open beside the connection the process
/// holds for itself, and a role that allows too few refuses to start with the reason.
pub async fn connect(url: &str, pool: PoolSettings) -> Result<DatabaseConnection, PoolError> {
    let sqlite_busy_timeout = pool.sqlite_busy_timeout;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(pool.acquire_timeout);
    if url.starts_with("sqlite:") {
        options
            .max_connections(pool.max_connections.unwrap_or(8))
            .map_sqlx_sqlite_opts(move |opts: SqliteConnectOptions| {
                opts.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(sqlite_busy_timeout)
                    .foreign_keys(true)
            });
    } else {
        let allowed = postgres_connection_limit(&options).await?;
        let needed = MIN_POOL + HELD_OUTSIDE_POOL;
        if allowed < i64::from(needed) {
            return Err(PoolError::TooFewConnections { allowed, needed });
        }
        let room = u32::try_from(allowed - i64::from(HELD_OUTSIDE_POOL)).unwrap_or(u32::MAX);
        let wanted = pool.max_connections.unwrap_or(20);
        if wanted > room {
            tracing::warn!(
                wanted,
                allowed,
                "the database allows fewer connections than the pool wants; using {room}"
            );
        }
        options.max_connections(wanted.min(room));
    }
    // A fresh SQLite file is switched to WAL by the first connection, which needs the file to
    // itself: processes starting together may find it busy, and the busy timeout does not cover
    // that step. They try again until the same timeout has passed.
    let deadline = std::time::Instant::now() + sqlite_busy_timeout;
    loop {
        match Database::connect(options.clone()).await {
            Err(error)
                if crate::error::is_contention(&error) && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            connected => return Ok(connected?),
        }
    }
}

/// The key of the PostgreSQL advisory lock taken around migrating ("tandem" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7461_6e64_656d;

/// Applies every pending migration, all in one transaction that first takes a lock no other
/// process can hold at once: the write lock on SQLite (`BEGIN IMMEDIATE`), a transaction-scoped
/// advisory lock on PostgreSQL. So any number of processes can start at once on a fresh
/// database: the first migrates, the others wait, then find nothing to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// Names of the migrations not yet applied, without creating or changing anything.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect())
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one of them failing
/// when it upgrades a read lock; on PostgreSQL it is a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Serialises, until the end of `txn`, every writer that locks the same `subject` (a string such
/// as `"signup-ip:<hash>"`): a count-then-write limit on a subject with no row of its own to lock
/// is then exact. On PostgreSQL this is a transaction-scoped advisory lock keyed by a 64-bit hash
/// of the subject (a collision only makes two subjects wait for each other); on SQLite a write
/// transaction ([`begin_write`]) already holds the database's one write lock.
pub async fn lock_subject(txn: &impl ConnectionTrait, subject: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [subject.into()],
        ))
        .await?;
    }
    Ok(())
}

/// One page of `query` in ascending `id` order after the cursor `after`, and whether more follow.
/// Ids are UUID v7, so this is creation order.
pub async fn keyset_page<E>(
    db: &impl sea_orm::ConnectionTrait,
    query: sea_orm::Select<E>,
    id: E::Column,
    limit: u64,
    after: Option<uuid::Uuid>,
) -> Result<(Vec<E::Model>, bool), DbErr>
where
    E: sea_orm::EntityTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = query.order_by_asc(id);
    if let Some(after) = after {
        query = query.filter(id.gt(after));
    }
    let mut rows = query.limit(limit + 1).all(db).await?;
    let has_next = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_next))
}

/// How many rows `query` selects, counting no further than `limit`: a count that is only
/// compared with a threshold (a cap, the largest milestone) reads at most that many rows,
/// however many the table holds for the subject.
pub async fn count_up_to<E: sea_orm::EntityTrait>(
    db: &impl ConnectionTrait,
    query: sea_orm::Select<E>,
    limit: u64,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{Alias, Expr, Query};
    use sea_orm::{QuerySelect, QueryTrait};
    let capped = query
        .select_only()
        .expr(Expr::value(1))
        .limit(limit)
        .into_query();
    let count = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(capped, Alias::new("capped"))
        .to_owned();
    let row = db
        .query_one_raw(db.get_database_backend().build(&count))
        .await?;
    let counted: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(counted).unwrap_or_default())
}

/// A statement with `?` placeholders, numbered for PostgreSQL.
pub fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        use std::fmt::Write;
        // Copied a piece at a time between placeholders: this runs on every statement of a hot
        // path (an app screen's read is a kilobyte of SQL).
        let mut numbered = String::with_capacity(sql.len() + 2 * values.len());
        let mut pieces = sql.split('?');
        numbered.push_str(pieces.next().unwrap_or_default());
        for (n, piece) in pieces.enumerate() {
            let _ = write!(numbered, "${}", n + 1);
            numbered.push_str(piece);
        }
        numbered
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgresql_and_kept_for_sqlite() {
        let sql = "SELECT ? FROM t WHERE a = ? AND b IN (?, ?)";
        let numbered = statement(DbBackend::Postgres, sql, vec![]);
        assert_eq!(
            numbered.sql,
            "SELECT $1 FROM t WHERE a = $2 AND b IN ($3, $4)"
        );
        assert_eq!(statement(DbBackend::Sqlite, sql, vec![]).sql, sql);
        assert_eq!(
            statement(DbBackend::Postgres, "SELECT 1", vec![]).sql,
            "SELECT 1"
        );
        assert_eq!(statement(DbBackend::Postgres, "?", vec![]).sql, "$1");
    }
}
