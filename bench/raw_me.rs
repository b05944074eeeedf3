//! The baseline of the `me` load benchmark (bench/load.py): a minimal actix-web + sea-orm
//! handler answering `{ me { referralCode pointsBalance tier { name } } }` with the physical
//! read and nothing else: one statement takes the customer by the token's `sub`, their kept
//! balance less what time has made pending or expired in their open lots, and their tier's name
//! by key, with no rule functions. The ratio between the two is what Tandem adds: parsing and
//! validating the query, the schema's limits, resolvers, middleware, the request span and
//! metrics.
//!
//!     DATABASE_URL=postgres://… TANDEM_JWT_SECRET=… BIND=127.0.0.1:8099 \
//!         cargo run --release --example raw_me

use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Deserialize;
use serde_json::json;

/// The customer, their balance and their tier's name (`$n` binds on both backends). A lot counts against the balance while it
/// is not yet spendable or past its expiry (the scheduler has not taken it yet).
const ME: &str = "SELECT c.referral_code, \
       CAST(r.points_balance - COALESCE((SELECT SUM(l.remaining) FROM points_ledger l \
         WHERE l.customer_id = c.id AND l.remaining > 0 AND l.delta > 0 \
         AND (l.available_at > $1 OR l.expires_at <= $1)), 0) AS BIGINT), \
       t.name \
     FROM customers c \
     LEFT JOIN customer_rollups r ON r.customer_id = c.id \
     LEFT JOIN tiers t ON t.id = c.tier_id \
     WHERE c.external_id = $2";

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
        let row = shared
            .db
            .query_one_raw(Statement::from_sql_and_values(
                shared.db.get_database_backend(),
                ME,
                [chrono::Utc::now().into(), claims.sub.into()],
            ))
            .await?
            .ok_or_else(|| sea_orm::DbErr::RecordNotFound("no such customer".into()))?;
        let referral_code: String = row.try_get_by_index(0)?;
        let balance: Option<i64> = row.try_get_by_index(1)?;
        let tier: Option<String> = row.try_get_by_index(2)?;
        Ok::<_, sea_orm::DbErr>(json!({ "data": { "me": {
            "referralCode": referral_code,
            "pointsBalance": balance.unwrap_or_default(),
            "tier": tier.map(|name| json!({ "name": name })),
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
