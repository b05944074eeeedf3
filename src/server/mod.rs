//! The HTTP server: routes, and the handler that runs GraphQL requests as the calling viewer.

pub mod graphiql;
pub mod http;
pub mod telemetry;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{HttpResponse, web};

use crate::graphql::{serving_schema, transport};
use crate::state::{AppState, StartError};

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Binds `settings.bind` (port 0 picks a free port) and prepares the routes.
    pub fn build(state: AppState) -> Result<Self, StartError> {
        let listener = TcpListener::bind(state.settings.bind)?;
        let port = listener.local_addr()?.port();
        let schema = serving_schema(state.clone());
        telemetry::prometheus();
        let app_state = state.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .wrap(actix_web::middleware::from_fn(telemetry::observe))
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(app_state.clone()))
                .route("/graphql", web::post().to(transport::post))
                .route(
                    "/graphql",
                    web::get()
                        .guard(actix_web::guard::fn_guard(|ctx| {
                            crate::graphql::websocket::is_upgrade(ctx.head())
                        }))
                        .to(crate::graphql::websocket::upgrade),
                )
                .route("/graphql", web::get().to(transport::get))
                .route("/r/{code}", web::get().to(http::follow_link))
                .route("/r/{code}", web::head().to(http::follow_link_head))
                .route("/unsubscribe", web::get().to(http::confirmation_page))
                .route("/unsubscribe", web::post().to(http::one_click))
                .route("/health", web::get().to(health))
                .route("/ready", web::get().to(ready))
                .route("/metrics", web::get().to(telemetry::render))
                .route("/graphiql/{file}", web::get().to(graphiql::asset))
        })
        // A client that hangs up has its request dropped, and with it the work in progress.
        .h1_allow_half_closed(false)
        // The process handles SIGTERM itself (`stop_on_signals`), so that workers and
        // subscriptions stop with the server.
        .disable_signals()
        .shutdown_timeout(state.settings.shutdown_grace.as_secs().max(1))
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// On SIGTERM or Ctrl-C: marks the process as stopping (workers finish their step and give
    /// back claimed emails, subscriptions close with 1001), stops accepting connections, and
    /// lets the requests in flight finish within `TANDEM_SHUTDOWN_GRACE`;
    /// [`Application::run_until_stopped`] then returns.
    pub fn stop_on_signals(&self) {
        let handle = self.server.handle();
        let shutdown = self.state.shutdown.clone();
        let stop = termination();
        tokio::spawn(async move {
            stop.await;
            tracing::info!("stopping: finishing the requests in flight");
            shutdown.begin();
            handle.stop(true).await;
        });
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that arrives between start-up's "ready" line and the first poll must still stop the
/// process gracefully rather than kill it.
pub fn termination() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listeners = signal(SignalKind::terminate())
            .and_then(|terminate| Ok((terminate, signal(SignalKind::interrupt())?)));
        async move {
            match listeners {
                Ok((mut terminate, mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// How long the readiness check waits for a free database connection.
const READY_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Ready when the workers are up, a database connection is free and answers, and the schema is
/// the one this build expects (an emptied or older database is not ready, even though it
/// answers).
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let down = state.workers.down();
    if !down.is_empty() {
        let names: Vec<String> = down
            .iter()
            .map(|(name, worker)| {
                format!(
                    "{name} ({})",
                    worker.last_failure.as_deref().unwrap_or("down")
                )
            })
            .collect();
        tracing::warn!(workers = ?names, "readiness check: a worker is down");
        return HttpResponse::ServiceUnavailable().body(format!(
            "a background worker is down and restarting: {}",
            names.join(", ")
        ));
    }
    // A pool whose every connection is taken serves no one: requests would answer UNAVAILABLE.
    match tokio::time::timeout(READY_ACQUIRE_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) if crate::error::is_contention(&error) => {
            tracing::warn!(%error, "readiness check: no database connection is free");
            return HttpResponse::ServiceUnavailable()
                .body("no database connection is free: the pool is exhausted");
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: the database does not answer");
            return HttpResponse::ServiceUnavailable().body("the database does not answer");
        }
        Err(_) => {
            tracing::warn!("readiness check: no database connection was free within 1 s");
            return HttpResponse::ServiceUnavailable()
                .body("no database connection is free: the pool is exhausted");
        }
    }
    match crate::db::pending_migrations(&state.db).await {
        Ok(pending) if pending.is_empty() => HttpResponse::Ok().body("ready"),
        Ok(pending) => {
            tracing::warn!(
                pending = pending.len(),
                "readiness check: migrations are pending"
            );
            HttpResponse::ServiceUnavailable()
                .body("the database schema is not migrated; run `tandem migrate`")
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check: cannot read the applied migrations");
            HttpResponse::ServiceUnavailable().body("the database schema cannot be read")
        }
    }
}
