//! The process's broadcast of live events. It starts with the first subscriber: on PostgreSQL
//! it LISTENs on one connection of its own (and listens again after losing it; events in the
//! gap are lost, as a subscriber that reconnects would lose them); on SQLite it polls
//! `live_events` every 250 ms. A subscriber that falls more than [`CAPACITY`] events behind is
//! told so by its receiver, and dropped by the subscription; writers never wait for anyone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tokio::sync::{broadcast, watch};

use crate::db::statement;
use crate::live::{CHANNEL, LiveEvent};

/// Events a subscriber may lag behind before it is dropped.
pub const CAPACITY: usize = 1024;
const POLL_EVERY: Duration = Duration::from_millis(250);
const POLL_BATCH: i64 = 500;

#[derive(Debug)]
pub struct Hub {
    db: DatabaseConnection,
    sender: broadcast::Sender<Arc<LiveEvent>>,
    ready: watch::Sender<bool>,
    started: OnceLock<()>,
}

impl Hub {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            sender: broadcast::Sender::new(CAPACITY),
            ready: watch::Sender::new(false),
            started: OnceLock::new(),
        }
    }

    /// A receiver of every event committed from now on, on any instance.
    pub async fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        let receiver = self.sender.subscribe();
        self.started.get_or_init(|| {
            let (db, sender, ready) = (self.db.clone(), self.sender.clone(), self.ready.clone());
            if db.get_database_backend() == DbBackend::Postgres {
                tokio::spawn(listen(db, sender, ready));
            } else {
                tokio::spawn(poll(db, sender, ready));
            }
        });
        // Until the pump listens, a change could commit unheard.
        let _ = self.ready.subscribe().wait_for(|ready| *ready).await;
        receiver
    }
}

fn forward(sender: &broadcast::Sender<Arc<LiveEvent>>, payload: &str) {
    match serde_json::from_str::<LiveEvent>(payload) {
        // No receivers is not an error: nobody is listening right now.
        Ok(event) => {
            let _ = sender.send(Arc::new(event));
        }
        Err(error) => tracing::warn!(%error, "a live event that does not parse; skipped"),
    }
}

async fn listen(
    db: DatabaseConnection,
    sender: broadcast::Sender<Arc<LiveEvent>>,
    ready: watch::Sender<bool>,
) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        }
        .await;
        match listener {
            Ok(mut listener) => {
                ready.send_replace(true);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => forward(&sender, notification.payload()),
                        Ok(None) => {
                            tracing::warn!("live events: the LISTEN connection was lost");
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "live events: listening failed");
                            break;
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "live events: cannot LISTEN; trying again"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn poll(
    db: DatabaseConnection,
    sender: broadcast::Sender<Arc<LiveEvent>>,
    ready: watch::Sender<bool>,
) {
    let backend = db.get_database_backend();
    let mut last: i64 = loop {
        match db
            .query_one_raw(statement(
                backend,
                "SELECT COALESCE(MAX(id), 0) FROM live_events",
                Vec::new(),
            ))
            .await
        {
            Ok(row) => break row.and_then(|r| r.try_get_by_index(0).ok()).unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "live events: cannot read where the log ends");
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
    };
    ready.send_replace(true);
    let mut ticker = tokio::time::interval(POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let rows = db
            .query_all_raw(statement(
                backend,
                "SELECT id, payload FROM live_events WHERE id > ? ORDER BY id LIMIT ?",
                vec![last.into(), POLL_BATCH.into()],
            ))
            .await;
        match rows {
            Ok(rows) => {
                for row in rows {
                    let (Ok(id), Ok(payload)) = (
                        row.try_get_by_index::<i64>(0),
                        row.try_get_by_index::<String>(1),
                    ) else {
                        continue;
                    };
                    last = last.max(id);
                    forward(&sender, &payload);
                }
            }
            Err(error) => tracing::warn!(%error, "live events: polling failed"),
        }
    }
}
