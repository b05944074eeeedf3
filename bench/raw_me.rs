//! The baseline of the `me` load benchmark (bench/load.py): a minimal actix-web + sea-orm
//! handler doing the same reads as `{ me { referralCode pointsBalance tier { name } } }`
//! (the customer by the token's `sub`, their kept points, their tier) through the same rule functions,
//! so the ratio between the two is what the GraphQL server adds: parsing and validating the
//! query, the schema's limits, middleware, the request span and metrics.
//!
//!     DATABASE_URL=postgres://… TANDEM_JWT_SECRET=… BIND=127.0.0.1:8099 \
//!         cargo run --release --example raw_me

use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::json;
use tandem::customers::service::get_by_external_id;
use tandem::loyalty::{balance, tiers};

struct Shared {
    db: DatabaseConnection,
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    role: String,
}

fn refused(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "errors": [{ "message": message }] }))
}

async fn me(request: HttpRequest, shared: web::Data<Shared>, _body: web::Bytes) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(token) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refused(StatusCode::UNAUTHORIZED, "no token");
    };
    let claims = match decode::<Claims>(token, &shared.key, &shared.validation) {
        Ok(data) if data.claims.role == "customer" => data.claims,
        _ => return refused(StatusCode::UNAUTHORIZED, "bad token"),
    };
    let read = async {
        let customer = get_by_external_id(&shared.db, &claims.sub).await?;
        let points = balance::of_customer(&shared.db, customer.id, chrono::Utc::now()).await?;
        let tier = tiers::of_customer(&shared.db, &customer).await?;
        Ok::<_, tandem::error::AppError>(json!({ "data": { "me": {
            "referralCode": customer.referral_code,
            "pointsBalance": points.balance(),
            "tier": tier.map(|t| json!({ "name": t.name })),
        } } }))
    };
    match read.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(error) => refused(StatusCode::OK, &error.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let setting = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let pool = tandem::db::PoolSettings {
        sqlite_busy_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(5),
        max_connections: None,
    };
    let db = tandem::db::connect(&setting("DATABASE_URL"), pool)
        .await
        .expect("connecting to the database");
    let shared = web::Data::new(Shared {
        db,
        key: DecodingKey::from_secret(setting("TANDEM_JWT_SECRET").as_bytes()),
        validation: Validation::new(Algorithm::HS256),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .route("/graphql", web::post().to(me))
    })
    .bind(setting("BIND"))?;
    for address in server.addrs() {
        println!("raw_me is listening on http://{address}");
    }
    server.run().await
}
