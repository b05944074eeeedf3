//! The one error type at the API boundary, and its stable GraphQL codes.

use async_graphql::ErrorExtensions;

/// Everything a request can fail with. Each variant maps to one `extensions.code`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The client sent something that cannot be accepted; `field` names the input at fault.
    #[error("{message}")]
    BadUserInput {
        message: String,
        field: Option<String>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A redemption needs more spendable points than the customer has.
    #[error("{0}")]
    InsufficientPoints(String),
    /// The database is busy (a lock wait ran out, the pool is exhausted): nothing was written,
    /// and the same request can be retried.
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests from one client IP or token; the same request may succeed after
    /// `retry_after_secs`.
    #[error("Too many requests; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A fault on our side. The context is logged; the client gets a generic message.
    #[error("{context}: {source}")]
    Internal {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AppError {
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// A refusal from a rate limit, with the wait rounded up to whole seconds.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::RateLimited {
            retry_after_secs: secs.max(1),
        }
    }

    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The stable value of `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::InsufficientPoints(_) => "INSUFFICIENT_POINTS",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Internal { .. } => "INTERNAL",
        }
    }
}

/// Adds context to a database error on its way up, so the log says what was being done.
pub trait DbContext<T> {
    fn context(self, what: &str) -> Result<T, AppError>;
}

impl<T> DbContext<T> for Result<T, sea_orm::DbErr> {
    fn context(self, what: &str) -> Result<T, AppError> {
        self.map_err(|e| from_db(what, e))
    }
}

/// A database error on its way to the client: contention that a retry can get past is
/// `UNAVAILABLE`, anything else `INTERNAL`.
pub fn from_db(what: &str, error: sea_orm::DbErr) -> AppError {
    if is_contention(&error) {
        tracing::warn!(%error, "{what}: the database is busy");
        AppError::Unavailable(format!(
            "The database is busy ({what}) and nothing was saved; try the same request again in a moment"
        ))
    } else {
        AppError::internal(what, error)
    }
}

/// Lock waits that ran out and an exhausted pool: SQLite's SQLITE_BUSY and SQLITE_LOCKED (with
/// their extended codes), PostgreSQL's serialization failure, deadlock and lock_not_available.
pub fn is_contention(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    if matches!(**sqlx, sea_orm::sqlx::Error::PoolTimedOut) {
        return true;
    }
    let Some(code) = sqlx.as_database_error().and_then(|e| e.code()) else {
        return false;
    };
    match code.parse::<u32>() {
        Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6),
        Err(_) => matches!(code.as_ref(), "40001" | "40P01" | "55P03"),
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        error.extend()
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        let message = match self {
            Self::Internal { context, source } => {
                tracing::error!(error.context = %context, error.source = %source, "internal error");
                "Something went wrong on our side; it has been logged. Try again later.".to_owned()
            }
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            if let Self::BadUserInput {
                field: Some(field), ..
            } = self
            {
                extensions.set("field", field.as_str());
            }
            if let Self::RateLimited { retry_after_secs } = self {
                extensions.set("retryAfter", *retry_after_secs);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(error: AppError) -> String {
        let gql: async_graphql::Error = error.into();
        let extensions = gql.extensions.expect("every error carries extensions");
        match extensions.get("code") {
            Some(async_graphql::Value::String(code)) => code.clone(),
            other => panic!("code missing: {other:?}"),
        }
    }

    #[test]
    fn each_variant_maps_to_its_stable_code() {
        assert_eq!(
            code_of(AppError::bad_input("email", "bad")),
            "BAD_USER_INPUT"
        );
        assert_eq!(
            code_of(AppError::Unauthenticated("x".into())),
            "UNAUTHENTICATED"
        );
        assert_eq!(code_of(AppError::Forbidden("x".into())), "FORBIDDEN");
        assert_eq!(code_of(AppError::NotFound("x".into())), "NOT_FOUND");
        assert_eq!(code_of(AppError::Conflict("x".into())), "CONFLICT");
        assert_eq!(code_of(AppError::Unavailable("x".into())), "UNAVAILABLE");
        assert_eq!(
            code_of(AppError::internal(
                "loading",
                sea_orm::DbErr::Custom("boom".into())
            )),
            "INTERNAL"
        );
    }

    #[test]
    fn internal_errors_do_not_reach_the_client() {
        let gql: async_graphql::Error =
            AppError::internal("loading customer", sea_orm::DbErr::Custom("secret".into())).into();
        assert!(!gql.message.contains("secret"));
        assert!(!gql.message.contains("loading customer"));
    }

    #[test]
    fn bad_input_names_the_field() {
        let gql: async_graphql::Error = AppError::bad_input("email", "not an address").into();
        let extensions = gql.extensions.expect("extensions");
        assert_eq!(
            extensions.get("field"),
            Some(&async_graphql::Value::String("email".into()))
        );
    }
}
