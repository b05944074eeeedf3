//! What every request and worker shares, and how it is put together at start.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

use crate::auth::JwtKeys;
use crate::clock::Clock;
use crate::config::{ConfigError, Settings};
use crate::email::mailer::Mailer;
use crate::email::templates::Templates;
use crate::email::unsubscribe::UnsubscribeSigner;
use crate::ip_hash::IpHasher;
use crate::metrics::Range;
use crate::metrics::referrals::ReferralFigures;
use crate::metrics::shared_reads::SharedReads;
use crate::referrals::attribution::FraudLimits;
use crate::{db, server_keys};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub jwt: Arc<JwtKeys>,
    pub ip_hasher: IpHasher,
    pub templates: Arc<Templates>,
    pub mailer: Arc<Mailer>,
    pub unsubscribe: UnsubscribeSigner,
    /// The background workers this process runs, and whether each is up.
    pub workers: Arc<crate::jobs::supervisor::WorkerHealth>,
    /// Set when the process starts stopping.
    pub shutdown: Arc<crate::shutdown::Shutdown>,
    /// This process's broadcast of live events, for subscriptions.
    pub live: Arc<crate::live::hub::Hub>,
    /// This instance's rate limits.
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// Statements this process has sent to the database (`BEGIN` and `COMMIT` aside), also
    /// exported as `tandem_db_statements_total`; the statement budgets are tested against it.
    pub statements: Arc<std::sync::atomic::AtomicU64>,
    /// The WebSocket operations each caller holds open in this process.
    pub socket_slots: Arc<crate::graphql::socket_slots::SocketSlots>,
    /// `referralMetrics` totals read once for callers asking for the same range together.
    pub referral_totals: Arc<SharedReads<Range, ReferralFigures>>,
    /// The program's configuration as this process last read it, by version.
    pub program: Arc<crate::loyalty::program::ProgramCache>,
    /// The GraphQL documents this process has parsed, by the hash of their text.
    pub documents: Arc<crate::graphql::documents::Documents>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("DATABASE_URL: cannot use the database: {0}")]
    Database(#[from] DbErr),
    #[error("DATABASE_URL: {0}")]
    Pool(db::PoolError),
    #[error("TANDEM_BIND: cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    #[error(
        "DATABASE_URL: {0} migration(s) have not been applied; run `tandem migrate` first, or start without --no-migrate"
    )]
    NotMigrated(usize),
}

/// What start-up does about the database schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (under a lock on PostgreSQL).
    Apply,
    /// Apply nothing; refuse to start when a migration is pending (`--no-migrate`, for
    /// deployments that run `tandem migrate` as a step of their own).
    Require,
}

impl From<db::PoolError> for StartError {
    fn from(error: db::PoolError) -> Self {
        match error {
            db::PoolError::Database(error) => Self::Database(error),
            other => Self::Pool(other),
        }
    }
}

impl AppState {
    /// The limits the referral fraud rules apply, from the settings.
    pub fn fraud_limits(&self) -> FraudLimits {
        FraudLimits {
            referrals_per_day: self.settings.referral_daily_limit,
            signups_per_ip_hour: self.settings.signup_ip_hourly_limit,
        }
    }

    /// What reacts to signups, orders and refunds, with its settings.
    pub fn reactions(&self) -> crate::reactions::ProgramReactions<'_> {
        crate::reactions::ProgramReactions {
            fraud_limits: self.fraud_limits(),
            clock_skew: self.clock_skew(),
            currency: &self.settings.currency,
            program: &self.program,
        }
    }

    /// The delivery worker's view of the application.
    pub fn deliverer(&self) -> crate::delivery::Deliverer<'_> {
        crate::delivery::Deliverer {
            db: &self.db,
            clock: self.clock.as_ref(),
            mailer: &self.mailer,
            templates: &self.templates,
            unsubscribe: &self.unsubscribe,
            mail: &self.settings.mail,
            public_url: &self.settings.public_url,
            currency: &self.settings.currency,
            clock_skew: self.clock_skew(),
            shutdown: &self.shutdown,
        }
    }

    /// How far the merchant's clock may lag Tandem's (`TANDEM_CLOCK_SKEW`).
    pub fn clock_skew(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.clock_skew)
            .unwrap_or(chrono::Duration::minutes(10))
    }

    /// Connects, migrates, and loads (or generates) the server's keys.
    pub async fn init(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        Self::init_with(settings, clock, Migrations::Apply).await
    }

    /// Connects, applies pending migrations or requires that there are none, and loads (or
    /// generates) the server's keys.
    pub async fn init_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        migrations: Migrations,
    ) -> Result<Self, StartError> {
        let pool = db::PoolSettings {
            sqlite_busy_timeout: settings.sqlite_busy_timeout,
            acquire_timeout: (settings.http.request_timeout / 2)
                .clamp(Duration::from_millis(100), Duration::from_secs(30)),
            max_connections: settings.db_pool_size,
        };
        let mut db = db::connect(settings.database_url.expose(), pool).await?;
        let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
        db.set_metric_callback({
            let statements = statements.clone();
            move |info| {
                // `RUST_LOG=tandem::sql=trace` lists the statements an operation sends.
                tracing::trace!(target: "tandem::sql", "{}", info.statement.sql);
                statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ::metrics::counter!("tandem_db_statements_total").increment(1);
            }
        });
        match migrations {
            Migrations::Apply => db::migrate(&db).await?,
            Migrations::Require => {
                let pending = db::pending_migrations(&db).await?;
                if !pending.is_empty() {
                    return Err(StartError::NotMigrated(pending.len()));
                }
            }
        }
        let generated_secret = match &settings.jwt.secret {
            None if settings.jwt.public_key_pem.is_none() => {
                tracing::warn!(
                    "TANDEM_JWT_SECRET is not set: using a secret generated once and kept in the \
                     database (table server_keys). Set TANDEM_JWT_SECRET to manage it yourself."
                );
                Some(server_keys::get_or_create(&db, server_keys::JWT_SECRET).await?)
            }
            _ => None,
        };
        let jwt = JwtKeys::new(
            &settings.jwt,
            settings.jwt.secret.as_ref().or(generated_secret.as_ref()),
        )?;
        let ip_hasher =
            IpHasher::new(server_keys::get_or_create(&db, server_keys::IP_HASH_KEY).await?);
        let unsubscribe = UnsubscribeSigner::new(
            server_keys::get_or_create(&db, server_keys::UNSUBSCRIBE_KEY).await?,
        );
        let templates = Arc::new(Templates::new(settings.mail.template_dir.clone()));
        let mailer = Arc::new(Mailer::from_settings(&settings.mail)?);
        Ok(Self {
            live: Arc::new(crate::live::hub::Hub::new(db.clone())),
            shutdown: Arc::default(),
            rate_limits: Arc::new(crate::rate_limit::RateLimits::new(
                settings.rate_limit_public,
                settings.rate_limit_account,
                settings.rate_limit_ipv6_prefix,
            )),
            workers: Arc::default(),
            statements,
            socket_slots: Arc::new(crate::graphql::socket_slots::SocketSlots::new(
                settings.http.ws_max_subscriptions_per_token,
            )),
            referral_totals: Arc::default(),
            program: Arc::default(),
            documents: Arc::default(),
            templates,
            mailer,
            unsubscribe,
            db,
            clock,
            settings: Arc::new(settings),
            jwt: Arc::new(jwt),
            ip_hasher,
        })
    }
}
