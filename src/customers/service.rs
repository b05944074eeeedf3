//! The rules for customers. Uniqueness (externalId, normalized email, referral code) is enforced by
//! the database; these functions turn violations into the errors a client can act on.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, SqlErr,
};
use uuid::Uuid;

use crate::clock::Clock;
use crate::customers::EmailAddress;
use crate::customers::ReferralCode;
use crate::db::{begin_write, keyset_page};
use crate::effects;
use crate::entities::{customer, customer_email};
use crate::error::{AppError, DbContext};
use crate::events::{CustomerRegistered, Reactions};
use crate::rollups;

/// How many times registration retries after losing a race or drawing a taken referral code.
const MAX_ATTEMPTS: usize = 8;

/// A registration, parsed.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub external_id: String,
    pub email: EmailAddress,
    pub name: Option<String>,
    pub acquisition_channel: String,
    pub marketing_consent: bool,
    pub signup_referral_code: Option<String>,
    pub signup_ip_hash: Option<String>,
    pub device_id: Option<String>,
}

/// Changes to a customer; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub email: Option<EmailAddress>,
    pub marketing_consent: Option<bool>,
}

/// An email address; the error names `field` and what is wrong with the value.
pub fn parse_email(field: &str, value: &str) -> Result<EmailAddress, AppError> {
    EmailAddress::parse(value)
        .map_err(|problem| AppError::bad_input(field, format!("{field}: {problem}")))
}

/// Registers a customer, or returns the one already registered under the same externalId with the
/// same email. Each new customer gets a fresh referral code. The registration is an event that
/// `reactions` handle in the same transaction (a referral code given at signup creates the
/// referral); a repeated registration is one too, so a code given late still counts once.
#[tracing::instrument(skip_all, fields(external_id = %input.external_id))]
pub async fn register(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
    input: NewCustomer,
) -> Result<customer::Model, AppError> {
    register_with_codes(db, clock, reactions, input, &mut || {
        ReferralCode::generate().map_err(|e| AppError::internal("generating a referral code", e))
    })
    .await
}

/// [`register`] with the source of referral codes given, so collisions can be tested.
pub async fn register_with_codes(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
    input: NewCustomer,
    next_code: &mut (dyn FnMut() -> Result<ReferralCode, AppError> + Send),
) -> Result<customer::Model, AppError> {
    for _ in 0..MAX_ATTEMPTS {
        if let Some(existing) = find_by_external_id(db, &input.external_id).await? {
            let customer = same_registration(existing, &input)?;
            return register_again(db, clock, reactions, customer, &input).await;
        }
        let now = clock.now();
        let code = next_code()?;
        let txn = begin_write(db).await.context("starting registration")?;
        let inserted = customer::ActiveModel {
            id: Set(Uuid::now_v7()),
            external_id: Set(input.external_id.clone()),
            email: Set(input.email.as_str().to_owned()),
            email_normalized: Set(input.email.normalized().to_owned()),
            name: Set(input.name.clone()),
            referral_code: Set(code.to_string()),
            acquisition_channel: Set(input.acquisition_channel.clone()),
            marketing_consent: Set(input.marketing_consent),
            signup_referral_code: Set(input.signup_referral_code.clone()),
            signup_ip_hash: Set(input.signup_ip_hash.clone()),
            device_id: Set(input.device_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            tier_id: Set(None),
            tier_below_since: Set(None),
            tier_checked_at: Set(None),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(model) => {
                // A referred signup records its checks, an event and the referrer's email:
                // written together before the commit.
                effects::batched(async {
                    remember_email(&txn, model.id, &model.email_normalized, now).await?;
                    rollups::customer_registered(&txn, &model).await?;
                    reactions
                        .customer_registered(
                            &txn,
                            CustomerRegistered {
                                customer: &model,
                                referral_code: input.signup_referral_code.as_deref(),
                                first: true,
                                now,
                            },
                        )
                        .await?;
                    effects::flush(&txn).await
                })
                .await?;
                txn.commit().await.context("committing registration")?;
                return Ok(model);
            }
            Err(error) => {
                txn.rollback().await.context("rolling back registration")?;
                match violated_column(&error) {
                    // Another request registered this externalId first: the next round reads it.
                    Some(Violation::ExternalId) | Some(Violation::ReferralCode) => continue,
                    // A concurrent registration of the same customer can trip the email index
                    // before the externalId one; only a different customer makes it a conflict.
                    Some(Violation::Email) => {
                        return match find_by_external_id(db, &input.external_id).await? {
                            Some(existing) => {
                                let customer = same_registration(existing, &input)?;
                                register_again(db, clock, reactions, customer, &input).await
                            }
                            None => Err(email_taken(&input.email)),
                        };
                    }
                    None => return Err(AppError::internal("inserting a customer", error)),
                }
            }
        }
    }
    Err(AppError::internal(
        "registering a customer",
        format!("no free referral code after {MAX_ATTEMPTS} attempts"),
    ))
}

/// A repeated registration is an event too: a customer registered without a code who registers
/// again with one gets it attached now (the fraud rules then see any orders they already placed).
/// The customer's row is locked, so concurrent repeats react one after the other.
async fn register_again(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    reactions: &impl Reactions,
    customer: customer::Model,
    input: &NewCustomer,
) -> Result<customer::Model, AppError> {
    if input.signup_referral_code.is_none() {
        return Ok(customer);
    }
    let txn = begin_write(db)
        .await
        .context("starting a repeated registration")?;
    let customer = lock(&txn, customer.id).await?;
    reactions
        .customer_registered(
            &txn,
            CustomerRegistered {
                customer: &customer,
                referral_code: input.signup_referral_code.as_deref(),
                first: false,
                now: clock.now(),
            },
        )
        .await?;
    txn.commit()
        .await
        .context("committing a repeated registration")?;
    Ok(customer)
}

/// Keeps every email a customer has used, for the self-referral rule.
async fn remember_email(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
    email_normalized: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    customer_email::Entity::insert(customer_email::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(customer_id),
        email_normalized: Set(email_normalized.to_owned()),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            customer_email::Column::CustomerId,
            customer_email::Column::EmailNormalized,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .context("remembering a customer's email")?;
    Ok(())
}

/// A replay of a registration is answered with the first result, unless it names another email.
fn same_registration(
    existing: customer::Model,
    input: &NewCustomer,
) -> Result<customer::Model, AppError> {
    if existing.email_normalized == input.email.normalized() {
        Ok(existing)
    } else {
        Err(AppError::Conflict(format!(
            "externalId '{}' is already registered with another email address; use updateCustomer to change it",
            input.external_id
        )))
    }
}

fn email_taken(email: &EmailAddress) -> AppError {
    AppError::Conflict(format!(
        "the email address '{}' is already registered to another customer",
        email.as_str()
    ))
}

/// Applies `changes` to the customer with `external_id`.
#[tracing::instrument(skip(db, clock, changes))]
pub async fn update(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    external_id: &str,
    changes: CustomerChanges,
) -> Result<customer::Model, AppError> {
    let txn = begin_write(db)
        .await
        .context("starting a customer update")?;
    let existing = find_by_external_id(&txn, external_id)
        .await?
        .ok_or_else(|| not_found(external_id))?;
    let mut model = existing.into_active_model();
    if let Some(name) = changes.name {
        model.name = Set(name);
    }
    if let Some(email) = &changes.email {
        model.email = Set(email.as_str().to_owned());
        model.email_normalized = Set(email.normalized().to_owned());
    }
    if let Some(consent) = changes.marketing_consent {
        model.marketing_consent = Set(consent);
    }
    model.updated_at = Set(clock.now());
    let updated = match model.update(&txn).await {
        Ok(updated) => updated,
        Err(error) => {
            txn.rollback()
                .await
                .context("rolling back a customer update")?;
            return Err(match (violated_column(&error), &changes.email) {
                (Some(Violation::Email), Some(email)) => email_taken(email),
                _ => AppError::internal("updating a customer", error),
            });
        }
    };
    remember_email(
        &txn,
        updated.id,
        &updated.email_normalized,
        updated.updated_at,
    )
    .await?;
    txn.commit().await.context("committing a customer update")?;
    Ok(updated)
}

pub async fn find_by_external_id(
    db: &impl ConnectionTrait,
    external_id: &str,
) -> Result<Option<customer::Model>, AppError> {
    customer::Entity::find()
        .filter(customer::Column::ExternalId.eq(external_id))
        .one(db)
        .await
        .context("loading a customer by externalId")
}

pub async fn find_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<customer::Model>, AppError> {
    customer::Entity::find_by_id(id)
        .one(db)
        .await
        .context("loading a customer")
}

pub async fn get_by_external_id(
    db: &impl ConnectionTrait,
    external_id: &str,
) -> Result<customer::Model, AppError> {
    find_by_external_id(db, external_id)
        .await?
        .ok_or_else(|| not_found(external_id))
}

pub fn not_found(external_id: &str) -> AppError {
    AppError::NotFound(format!("no customer has externalId '{external_id}'"))
}

/// One page of customers in registration order, and whether more follow.
pub async fn list(
    db: &DatabaseConnection,
    limit: u64,
    after: Option<Uuid>,
) -> Result<(Vec<customer::Model>, bool), AppError> {
    keyset_page(
        db,
        customer::Entity::find(),
        customer::Column::Id,
        limit,
        after,
    )
    .await
    .context("listing customers")
}

#[derive(Debug, PartialEq, Eq)]
enum Violation {
    ExternalId,
    Email,
    ReferralCode,
}

/// Which unique rule an insert or update broke. Both databases name the column (SQLite) or the
/// index, whose name holds the column (PostgreSQL), in the message.
fn violated_column(error: &DbErr) -> Option<Violation> {
    let Some(SqlErr::UniqueConstraintViolation(message)) = error.sql_err() else {
        return None;
    };
    if message.contains("email_normalized") {
        Some(Violation::Email)
    } else if message.contains("referral_code") {
        Some(Violation::ReferralCode)
    } else if message.contains("external_id") {
        Some(Violation::ExternalId)
    } else {
        None
    }
}

/// Locks the customer's row until the end of `txn` (`SELECT … FOR NO KEY UPDATE` on PostgreSQL; a
/// write transaction already holds SQLite's one write lock), so the limits counted per customer
/// (invitations a day, referrals a day, the referrer's cap and milestones) and their points
/// ledger are written by one writer at a time.
///
/// `NO KEY UPDATE`, not `UPDATE`: inserting a row that references the customer (an order, a
/// cart) takes `KEY SHARE` on it, which `FOR UPDATE` would block. An order holding this lock
/// and waiting for a cart's lock, while the cart's upsert holds that and waits to insert its row,
/// would be a deadlock.
pub async fn lock(txn: &impl ConnectionTrait, id: Uuid) -> Result<customer::Model, AppError> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::LockType;
    customer::Entity::find_by_id(id)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await
        .context("locking a customer")?
        .ok_or_else(|| {
            AppError::internal("locking a customer", format!("customer {id} is missing"))
        })
}
