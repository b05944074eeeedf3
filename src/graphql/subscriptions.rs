//! Live updates, over WebSocket at `/graphql` (graphql-transport-ws; see `websocket.rs`). Each
//! subscription listens to the process's hub, which hears every instance's committed changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::futures_util::{Stream, StreamExt, stream};
use async_graphql::{Context, Enum, ErrorExtensions, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveEnum, ConnectionTrait, EntityTrait};
use tokio::sync::broadcast;

use crate::auth::Role;
use crate::customers::service as customers;
use crate::entities::enums::ReferralStatus;
use crate::entities::reward;
use crate::graphql::context::require;
use crate::graphql::rewards::Reward;
use crate::live::LiveEvent;
use crate::state::AppState;

/// Set on a connection whose subscriber fell too far behind; the socket then closes with
/// [`SLOW_SUBSCRIBER_CLOSE`].
#[derive(Debug, Clone, Default)]
pub struct SlowSubscriber(pub Arc<AtomicBool>);

/// The close code for a subscriber dropped for falling behind (1013, "try again later").
pub const SLOW_SUBSCRIBER_CLOSE: u16 = 1013;

/// Counts open subscriptions in the `tandem_subscriptions_open` gauge while it lives.
struct Open;

impl Open {
    fn new() -> Self {
        ::metrics::gauge!("tandem_subscriptions_open").increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        ::metrics::gauge!("tandem_subscriptions_open").decrement(1.0);
    }
}

/// The subscription root.
#[derive(Default)]
pub struct SubscriptionRoot;

/// Everything a caller can follow live, over WebSocket at `/graphql` (graphql-transport-ws).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every referral created or changing status, on any instance, with the decisions behind
    /// it (admin tokens).
    async fn referral_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<ReferralEvent>> + use<>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let receiver = state.live.subscribe().await;
        Ok(follow(receiver, slow_flag(ctx), |event| async move {
            match event.as_ref() {
                LiveEvent::Referral {
                    referral_id,
                    status,
                    reasons,
                    at,
                } => Some(ReferralEvent {
                    referral_id: ID(referral_id.to_string()),
                    status: ReferralStatus::try_from_value(status).ok()?,
                    reasons: reasons.clone(),
                    at: *at,
                }),
                _ => None,
            }
        }))
    }

    /// The calling customer's rewards as they are issued or reversed, and their points credits
    /// (customer tokens).
    async fn my_rewards(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<RewardEvent>> + use<>> {
        let (state, principal) = require(ctx, &[Role::Customer])?;
        let receiver = state.live.subscribe().await;
        let me = customers::get_by_external_id(&state.db, &principal.subject)
            .await?
            .id;
        let db = state.db.clone();
        Ok(follow(receiver, slow_flag(ctx), move |event| {
            let db = db.clone();
            async move {
                match event.as_ref() {
                    LiveEvent::Reward {
                        customer_id,
                        reward_id,
                        status,
                        at,
                    } if *customer_id == me => {
                        let found = reward::Entity::find_by_id(*reward_id)
                            .one(&db)
                            .await
                            .ok()
                            .flatten()?;
                        Some(RewardEvent {
                            kind: if status == "REVERSED" {
                                RewardEventKind::RewardReversed
                            } else {
                                RewardEventKind::RewardIssued
                            },
                            reward: Some(Reward(found)),
                            points: None,
                            at: *at,
                        })
                    }
                    LiveEvent::Points {
                        customer_id,
                        delta,
                        at,
                        ..
                    } if *customer_id == me => Some(RewardEvent {
                        kind: RewardEventKind::PointsCredited,
                        reward: None,
                        points: Some(*delta),
                        at: *at,
                    }),
                    _ => None,
                }
            }
        }))
    }

    /// New customers, new referrals and revenue in the last minute, every minute (the first at
    /// once), read from the database so every instance's writes count (admin tokens).
    async fn metrics_ticker(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<MetricsTick>> + use<>> {
        let (state, _) = require(ctx, &[Role::Admin])?;
        let state = state.clone();
        let open = Open::new();
        let ticks = stream::unfold(
            (state, open, None::<tokio::time::Interval>),
            |(state, open, ticker)| async move {
                let mut ticker = match ticker {
                    Some(mut ticker) => {
                        ticker.tick().await;
                        ticker
                    }
                    None => {
                        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
                        ticker.tick().await;
                        ticker
                    }
                };
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let tick = minute(&state).await;
                Some((tick, (state, open, Some(ticker))))
            },
        );
        Ok(ticks)
    }
}

fn slow_flag(ctx: &Context<'_>) -> SlowSubscriber {
    ctx.data_opt::<SlowSubscriber>()
        .cloned()
        .unwrap_or_default()
}

/// The hub's events that `pick` keeps, until the subscriber falls more than the hub's
/// capacity behind: it then gets one error (code `SLOW_SUBSCRIBER`) and its connection is
/// marked for closing.
fn follow<T, F, Fut>(
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    slow: SlowSubscriber,
    pick: F,
) -> impl Stream<Item = Result<T>>
where
    T: Send + 'static,
    F: Fn(Arc<LiveEvent>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send,
{
    let pick = Arc::new(pick);
    stream::unfold(Some((receiver, Open::new())), move |listening| {
        let pick = pick.clone();
        let slow = slow.clone();
        async move {
            let (mut receiver, open) = listening?;
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if let Some(item) = pick(event).await {
                            return Some((Ok(item), Some((receiver, open))));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        slow.0.store(true, Ordering::SeqCst);
                        let error = async_graphql::Error::new(format!(
                            "This subscriber fell {missed} events behind and was dropped; \
                                 read faster, or subscribe again"
                        ))
                        .extend_with(|_, e| e.set("code", "SLOW_SUBSCRIBER"));
                        return Some((Err(error), None));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
    .boxed()
}

async fn minute(state: &AppState) -> Result<MetricsTick> {
    let to = state.clock.now();
    let from = to - Duration::minutes(1);
    let backend = state.db.get_database_backend();
    let count = |sql: &'static str| {
        let db = state.db.clone();
        async move {
            let row = db
                .query_one_raw(crate::db::statement(
                    backend,
                    sql,
                    vec![from.into(), to.into()],
                ))
                .await
                .map_err(|e| crate::error::from_db("reading the last minute", e))?;
            Ok::<i64, crate::error::AppError>(
                row.and_then(|r| r.try_get_by_index::<i64>(0).ok())
                    .unwrap_or(0),
            )
        }
    };
    Ok(MetricsTick {
        from,
        to,
        new_customers: count(
            "SELECT COUNT(*) FROM customers WHERE created_at > ? AND created_at <= ?",
        )
        .await?,
        referrals: count("SELECT COUNT(*) FROM referrals WHERE created_at >= ? AND created_at < ?")
            .await?,
        revenue: count(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM orders \
             WHERE placed_at > ? AND placed_at <= ?",
        )
        .await?,
    })
}

/// A referral was created or changed status.
#[derive(SimpleObject)]
pub struct ReferralEvent {
    /// The referral's id; `referral(id:)` reads the rest.
    pub referral_id: ID,
    /// Its status after the change.
    pub status: ReferralStatus,
    /// The decisions on it so far, oldest first, as `rule: OUTCOME (detail)`.
    pub reasons: Vec<String>,
    /// When the change was made.
    pub at: DateTime<Utc>,
}

/// What happened to one of the customer's rewards or points.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RewardEventKind {
    /// A reward was issued (at once, or when its hold ended).
    RewardIssued,
    /// A reward was taken back (its order was refunded, or its referral reversed).
    RewardReversed,
    /// Points were credited.
    PointsCredited,
}

/// A change to the customer's rewards or points.
#[derive(SimpleObject)]
pub struct RewardEvent {
    /// What happened.
    pub kind: RewardEventKind,
    /// The reward, for `REWARD_ISSUED` and `REWARD_REVERSED`.
    pub reward: Option<Reward>,
    /// The points credited, for `POINTS_CREDITED`.
    pub points: Option<i64>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// The program's last minute.
#[derive(SimpleObject)]
pub struct MetricsTick {
    /// The start of the minute (not included).
    pub from: DateTime<Utc>,
    /// Its end (now, by the server's clock; included).
    pub to: DateTime<Utc>,
    /// Customers who signed up in it.
    pub new_customers: i64,
    /// Referrals created in it.
    pub referrals: i64,
    /// Order amounts placed in it, in minor units.
    pub revenue: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(delta: i64) -> Arc<LiveEvent> {
        Arc::new(LiveEvent::Points {
            customer_id: uuid::Uuid::nil(),
            entry_id: uuid::Uuid::nil(),
            delta,
            at: Utc::now(),
        })
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_gets_one_error_is_marked_and_ends() {
        let (sender, receiver) = broadcast::channel(2);
        let slow = SlowSubscriber::default();
        let mut events = follow(receiver, slow.clone(), |event| async move {
            match event.as_ref() {
                LiveEvent::Points { delta, .. } => Some(*delta),
                _ => None,
            }
        });
        for delta in 1..=5 {
            sender.send(points(delta)).unwrap();
        }
        let error = events.next().await.unwrap().unwrap_err();
        assert!(
            error.message.contains("fell 3 events behind"),
            "{}",
            error.message
        );
        assert!(slow.0.load(Ordering::SeqCst));
        assert!(events.next().await.is_none(), "dropped");
        assert!(sender.send(points(6)).is_err(), "and no longer listening");
    }

    #[tokio::test]
    async fn a_subscriber_that_keeps_up_hears_what_it_picks_in_order() {
        let (sender, receiver) = broadcast::channel(8);
        let slow = SlowSubscriber::default();
        let mut events = follow(receiver, slow.clone(), |event| async move {
            match event.as_ref() {
                LiveEvent::Points { delta, .. } if *delta % 2 == 0 => Some(*delta),
                _ => None,
            }
        });
        for delta in 1..=4 {
            sender.send(points(delta)).unwrap();
        }
        assert_eq!(events.next().await.unwrap().unwrap(), 2);
        assert_eq!(events.next().await.unwrap().unwrap(), 4);
        assert!(!slow.0.load(Ordering::SeqCst));
    }
}
