//! What operators watch. Every request runs in a span that carries its request id (taken from
//! `x-request-id` when the client sent a sane one, else made) and, for GraphQL, the operation and
//! the caller's role; the id goes back in the response. `GET /metrics` serves Prometheus text
//! from the `metrics` facade, plus gauges read when scraped (outbox rows by status, the database
//! pool).
//!
//! Label values are bounded by what the server knows, never by what a client sends: an operation
//! is labelled by its type and first root field (`mutation.recordOrder`), which must exist in the
//! schema for the label to be used, and a route by its pattern (`/r/{code}`).

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{ConnectionTrait, DbBackend};
use tracing::Instrument;

use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; a longer or odd one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The request's id, for handlers that put it in what they write.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The process's Prometheus recorder, installed the first time it is asked for. Counters are
/// process-wide, as Prometheus expects of one process.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
            Ok(builder) => builder,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics shows only gauges");
        }
        describe();
        handle
    })
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tandem_http_requests_total",
        "HTTP requests by route pattern and status"
    );
    describe_histogram!(
        "tandem_http_request_duration_seconds",
        "HTTP request latency by route pattern"
    );
    describe_counter!(
        "tandem_graphql_operations_total",
        "GraphQL operations by operation (type.firstRootField) and outcome (ok, errors, refused, timeout)"
    );
    describe_histogram!(
        "tandem_graphql_operation_duration_seconds",
        "GraphQL operation latency by operation"
    );
    describe_gauge!("tandem_outbox_rows", "Email outbox rows by status");
    describe_counter!(
        "tandem_emails_sent_total",
        "Emails accepted by the mail server"
    );
    describe_counter!(
        "tandem_emails_failed_total",
        "Email sending attempts that failed (to be retried, or given up)"
    );
    describe_counter!("tandem_scheduler_runs_total", "Scheduler passes");
    describe_histogram!(
        "tandem_scheduler_run_duration_seconds",
        "How long a scheduler pass took"
    );
    describe_gauge!(
        "tandem_db_pool_connections",
        "Database pool connections by state (idle, in_use)"
    );
    describe_gauge!("tandem_subscriptions_open", "GraphQL subscriptions open");
    // Counters that only workers move still show, at 0, on an API-only process.
    for name in [
        "tandem_emails_sent_total",
        "tandem_emails_failed_total",
        "tandem_scheduler_runs_total",
    ] {
        ::metrics::counter!(name).increment(0);
    }
}

/// A client's request id, when it is one a log line can carry as it is.
fn client_request_id(request: &ServiceRequest) -> Option<String> {
    let value = request.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    sane.then(|| value.to_owned())
}

/// Middleware: the request's span, id and metrics.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = client_request_id(&request).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        operation = tracing::field::Empty,
        operation_name = tracing::field::Empty,
        role = tracing::field::Empty,
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let result = next.call(request).instrument(span.clone()).await;
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "request"));
    ::metrics::counter!("tandem_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    ::metrics::histogram!("tandem_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    let mut response = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// `GET /metrics`: Prometheus text.
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let handle = prometheus();
    sample_gauges(&state).await;
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

async fn sample_gauges(state: &AppState) {
    let backend = state.db.get_database_backend();
    let (size, idle) = match backend {
        DbBackend::Postgres => {
            let pool = state.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = state.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    let idle = idle as f64;
    ::metrics::gauge!("tandem_db_pool_connections", "state" => "idle").set(idle);
    ::metrics::gauge!("tandem_db_pool_connections", "state" => "in_use")
        .set((f64::from(size) - idle).max(0.0));
    let counted = state
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT status, COUNT(*) FROM email_outbox GROUP BY status",
        ))
        .await;
    match counted {
        Ok(rows) => {
            let mut by_status = std::collections::BTreeMap::from([
                ("PENDING".to_owned(), 0i64),
                ("SENDING".to_owned(), 0),
                ("SENT".to_owned(), 0),
                ("DEAD".to_owned(), 0),
                ("CANCELLED".to_owned(), 0),
            ]);
            for row in rows {
                if let (Ok(status), Ok(count)) = (
                    row.try_get_by_index::<String>(0),
                    row.try_get_by_index::<i64>(1),
                ) && let Some(slot) = by_status.get_mut(&status)
                {
                    *slot = count;
                }
            }
            for (status, count) in by_status {
                ::metrics::gauge!("tandem_outbox_rows", "status" => status).set(count as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: cannot count the outbox"),
    }
}
