//! Keys the server makes for itself and keeps in the database, so that every process sharing the
//! database (and every restart) agrees on them.

use base64::Engine;
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};

use crate::config::Secret;
use crate::entities::server_key;

/// The HS256 secret used when `TANDEM_JWT_SECRET` is not set.
pub const JWT_SECRET: &str = "jwt_secret";
/// The key that turns IP addresses into hashes before they are stored.
pub const IP_HASH_KEY: &str = "ip_hash_key";
/// The key that signs unsubscribe links.
pub const UNSUBSCRIBE_KEY: &str = "unsubscribe_key";

/// Returns the key called `name`, generating and storing it first if there is none. Safe when
/// several processes start at once: the first insert wins and everyone reads that one.
pub async fn get_or_create(db: &DatabaseConnection, name: &str) -> Result<Secret, DbErr> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DbErr::Custom(format!("no randomness: {e}")))?;
    let candidate = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    server_key::Entity::insert(server_key::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(candidate),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(server_key::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let stored = server_key::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("server key {name}")))?;
    Ok(Secret::new(stored.value))
}
