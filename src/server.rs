//! The HTTP server: routes, and the handler that runs GraphQL requests as the calling viewer.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::header::{AUTHORIZATION, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::http::GraphiQLSource;
use async_graphql::{ServerError, Value};
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse};

use crate::email::unsubscribe;
use crate::graphql::{TandemSchema, loaders, schema_builder};
use crate::referrals::links::{self, Visitor};
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
        let schema = schema_builder().data(state.clone()).finish();
        let app_state = state.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(app_state.clone()))
                .route("/graphql", web::post().to(graphql))
                .route("/graphql", web::get().to(graphiql))
                .route("/r/{code}", web::get().to(links::follow_link))
                .route(
                    "/unsubscribe",
                    web::get().to(unsubscribe::confirmation_page),
                )
                .route("/unsubscribe", web::post().to(unsubscribe::one_click))
                .route("/health", web::get().to(health))
                .route("/ready", web::get().to(ready))
        })
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
}

async fn graphql(
    schema: web::Data<TandemSchema>,
    state: web::Data<AppState>,
    http: HttpRequest,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let authorization = http
        .headers()
        .get(AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or_default());
    let viewer = state.jwt.viewer(authorization, state.clock.now());
    let visitor = Visitor::from_request(&http);
    let mut response = schema
        .execute(
            request
                .into_inner()
                .data(viewer)
                .data(visitor)
                .data(loaders::for_request(state.db.clone())),
        )
        .await;
    label_request_errors(&mut response.errors);
    response.into()
}

/// Errors raised before any resolver ran (parse, validation, limits, argument types) are the
/// client's request at fault; they get the code every other client error has.
fn label_request_errors(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Value::String("BAD_USER_INPUT".into()));
        }
    }
}

async fn graphiql() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().body("ready"),
        Err(error) => {
            tracing::warn!(%error, "readiness check: the database does not answer");
            HttpResponse::ServiceUnavailable().body("the database does not answer")
        }
    }
}
