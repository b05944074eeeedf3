//! Unsubscribing: a signed link in every marketing email (`GET /unsubscribe?token=…` shows a
//! confirmation page whose button posts back), the RFC 8058 one-click `POST` to the same URL (both
//! in `http.rs`), and the `unsubscribe(token)` mutation. The token is the address and an HMAC of it with a server
//! key, so it cannot be forged for another address.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::Sha256;

use crate::clock::Clock;
use crate::config::Secret;
use crate::db::begin_write;
use crate::email::suppression;
use crate::entities::enums::{CartStatus, SuppressionReason};
use crate::entities::{cart, customer};
use crate::error::{AppError, DbContext};

/// Signs and checks unsubscribe tokens.
#[derive(Clone)]
pub struct UnsubscribeSigner {
    key: Secret,
}

impl UnsubscribeSigner {
    pub fn new(key: Secret) -> Self {
        Self { key }
    }

    fn mac(&self, email_normalized: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(email_normalized.as_bytes());
        mac
    }

    pub fn token(&self, email_normalized: &str) -> String {
        let signature = self.mac(email_normalized).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(email_normalized),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The address a genuine token names; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (address, signature) = token.trim().split_once('.')?;
        let address = String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(&address).verify_slice(&signature).ok()?;
        Some(address)
    }
}

/// Unsubscribes the address a token names: suppressed for marketing, consent withdrawn from every
/// customer with it, and their cart sequences stopped. Returns the address.
pub async fn unsubscribe(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    signer: &UnsubscribeSigner,
    token: &str,
) -> Result<String, AppError> {
    let email = signer.verify(token).ok_or_else(|| {
        AppError::bad_input(
            "token",
            "this unsubscribe link is not valid; use the link from the email as it is",
        )
    })?;
    let now = clock.now();
    let txn = begin_write(db).await.context("starting an unsubscribe")?;
    suppression::suppress(&txn, &email, SuppressionReason::Unsubscribed, None, now).await?;
    let customers: Vec<uuid::Uuid> = customer::Entity::find()
        .filter(customer::Column::EmailNormalized.eq(email.as_str()))
        .all(&txn)
        .await
        .context("finding the customers of an address")?
        .into_iter()
        .map(|c| c.id)
        .collect();
    customer::Entity::update_many()
        .col_expr(customer::Column::MarketingConsent, Expr::value(false))
        .col_expr(customer::Column::UpdatedAt, Expr::value(now))
        .filter(customer::Column::Id.is_in(customers.clone()))
        .exec(&txn)
        .await
        .context("withdrawing marketing consent")?;
    cart::Entity::update_many()
        .col_expr(
            cart::Column::NextStageAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(cart::Column::CustomerId.is_in(customers))
        .filter(cart::Column::Status.eq(CartStatus::Active))
        .exec(&txn)
        .await
        .context("stopping cart sequences")?;
    txn.commit().await.context("committing an unsubscribe")?;
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_address_and_cannot_be_changed() {
        let signer = UnsubscribeSigner::new(Secret::new("k".repeat(32)));
        let token = signer.token("ann@example.com");
        assert_eq!(signer.verify(&token).as_deref(), Some("ann@example.com"));
        let (_, signature) = token.split_once('.').unwrap();
        let forged = format!("{}.{signature}", URL_SAFE_NO_PAD.encode("bob@example.com"));
        assert_eq!(signer.verify(&forged), None);
        assert_eq!(signer.verify("garbage"), None);
        let other = UnsubscribeSigner::new(Secret::new("j".repeat(32)));
        assert_eq!(other.verify(&token), None);
    }
}
