//! Typed settings, read from the environment (`DATABASE_URL`, `TANDEM_*`) and an optional
//! `tandem.toml`. The environment wins over the file. Every value is checked here, at start, so a
//! bad one stops the process with one line that names the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A value that must never be printed or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HS256 secret; `None` means "generate one and keep it in the database".
    pub secret: Option<Secret>,
    /// A PEM public key (RSA or EC): tokens are then verified with RS256 or ES256.
    pub public_key_pem: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: Secret,
    pub bind: SocketAddr,
    pub jwt: JwtSettings,
    /// Base of referral links, without a trailing slash.
    pub public_url: String,
    /// The program currency, ISO 4217 (three upper-case letters).
    pub currency: String,
    /// Referrals one referrer may make in 24 hours; more are rejected (`VELOCITY_LIMIT`).
    pub referral_daily_limit: u32,
    /// Signups from one IP address in an hour above which a referral is flagged for review.
    pub signup_ip_hourly_limit: u32,
    /// How often the scheduler looks for due work (reward holds, abandoned carts).
    pub scheduler_interval: std::time::Duration,
    pub mail: MailSettings,
    pub carts: CartSettings,
    pub http: HttpLimits,
    /// How long a SQLite writer waits for the write lock before the request answers
    /// `UNAVAILABLE`.
    pub sqlite_busy_timeout: std::time::Duration,
    /// Most database connections this process's pool opens; `None` for the default (20 on
    /// PostgreSQL, 8 on SQLite), either way no more than the database allows the role.
    pub db_pool_size: Option<u32>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// How far the merchant's clock may be behind Tandem's: an order placed up to this long
    /// before a cart change or a referral still counts as after it.
    pub clock_skew: std::time::Duration,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Whether the schema answers introspection (and suggests field names in errors).
    pub introspection: bool,
    /// Whether `GET /graphql` from a browser serves GraphiQL.
    pub playground: bool,
    /// Per client IP on the public surface (share links, clicks, code lookups, unsubscribing).
    pub rate_limit_public: Option<crate::rate_limit::Rate>,
    /// Per token on `inviteFriends` and `redeemPoints`.
    pub rate_limit_account: Option<crate::rate_limit::Rate>,
    /// How many leading bits of an IPv6 address make one client for the per-IP limits.
    pub rate_limit_ipv6_prefix: u8,
    /// How long a stopping process waits for requests in flight and workers to finish.
    pub shutdown_grace: std::time::Duration,
}

/// How log lines are written: text for a person, JSON (one object a line) for a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The proxies whose `X-Forwarded-For` header is believed: addresses and CIDR ranges. Empty by
/// default, so a client cannot choose the address its clicks are counted under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 192.168.1.10, ::1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (address, bits) = part.split_once('/').unwrap_or((part, ""));
            let address: std::net::IpAddr = address
                .parse()
                .map_err(|_| format!("'{part}' is not an IP address or a CIDR range"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("'{part}' has a prefix length outside 0 to {max}"))?
            };
            ranges.push((address, bits));
        }
        Ok(Self(ranges))
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0
            .iter()
            .any(|(network, bits)| in_range(ip, *network, *bits))
    }
}

fn in_range(ip: std::net::IpAddr, network: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr;
    let (ip, network, width) = match (ip.to_canonical(), network.to_canonical()) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            (u128::from(ip.to_bits()), u128::from(net.to_bits()), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => (ip.to_bits(), net.to_bits(), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (ip >> shift) == (network >> shift)
}

/// What one HTTP request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body; a larger one is refused with 413 before it is read.
    pub max_body_bytes: usize,
    /// Most operations in one batch (a JSON array body); 0 turns batches off.
    pub max_batch: usize,
    /// How long one request may run before it is stopped; over a WebSocket, how long one query
    /// or mutation may run.
    pub request_timeout: std::time::Duration,
    pub query: QueryLimits,
    /// How long one message to a WebSocket client may wait for the client to read before the
    /// socket is closed with 1013.
    pub ws_send_timeout: std::time::Duration,
    /// Most WebSocket operations one caller (a token's role and subject, or an anonymous
    /// client's address) may hold open at once in this process, across all their sockets.
    pub ws_max_subscriptions_per_token: usize,
}

/// The limits on one GraphQL operation, checked before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Deepest chain of fields (introspection fields excepted).
    pub max_depth: usize,
    /// Most expensive operation: a field costs 1, a paged list multiplies what is inside it by
    /// its `first`.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 1_000,
            max_aliases: 30,
            max_root_fields: 20,
        }
    }
}

/// Email delivery.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `None` writes `.eml` files to `dir` instead of sending.
    pub smtp_url: Option<Secret>,
    pub from: String,
    pub dir: PathBuf,
    /// A folder whose template folders replace the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// Tries before a row is DEAD; with the backoff schedule the default spans over a day.
    pub max_attempts: u32,
    /// The longest one SMTP conversation may take, greeting and every reply included.
    pub smtp_timeout: std::time::Duration,
    /// SENT rows older than this many days are deleted by the scheduler.
    pub retention_days: u32,
    /// How often the delivery worker looks for due email.
    pub poll_interval: std::time::Duration,
}

/// The cart-abandonment sequence.
#[derive(Debug, Clone, Copy)]
pub struct CartSettings {
    pub reminder_after: std::time::Duration,
    pub discount_after: std::time::Duration,
    pub last_call_after: std::time::Duration,
    pub discount_percent: u32,
    pub cooldown: std::time::Duration,
}

/// A setting that could not be accepted. Its `Display` is the one line printed at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Each setting: its environment variable, its key in `tandem.toml`, and its default.
pub const SETTINGS: &[(&str, &str, Option<&str>)] = &[
    ("DATABASE_URL", "database_url", Some("sqlite://tandem.db")),
    ("TANDEM_BIND", "bind", Some("127.0.0.1:8080")),
    ("TANDEM_JWT_SECRET", "jwt_secret", None),
    ("TANDEM_JWT_PUBLIC_KEY", "jwt_public_key", None),
    ("TANDEM_JWT_ISSUER", "jwt_issuer", None),
    ("TANDEM_JWT_AUDIENCE", "jwt_audience", None),
    (
        "TANDEM_PUBLIC_URL",
        "public_url",
        Some("http://127.0.0.1:8080"),
    ),
    ("TANDEM_CURRENCY", "currency", Some("USD")),
    ("TANDEM_SMTP_URL", "smtp_url", None),
    (
        "TANDEM_MAIL_FROM",
        "mail_from",
        Some("Tandem <no-reply@localhost>"),
    ),
    ("TANDEM_MAIL_DIR", "mail_dir", Some("./mail")),
    (
        "TANDEM_REFERRAL_DAILY_LIMIT",
        "referral_daily_limit",
        Some("20"),
    ),
    (
        "TANDEM_SIGNUP_IP_HOURLY_LIMIT",
        "signup_ip_hourly_limit",
        Some("5"),
    ),
    (
        "TANDEM_SCHEDULER_INTERVAL",
        "scheduler_interval",
        Some("60s"),
    ),
    ("TANDEM_TEMPLATE_DIR", "template_dir", None),
    ("TANDEM_MAIL_MAX_ATTEMPTS", "mail_max_attempts", Some("16")),
    ("TANDEM_SMTP_TIMEOUT", "smtp_timeout", Some("60s")),
    (
        "TANDEM_OUTBOX_RETENTION_DAYS",
        "outbox_retention_days",
        Some("30"),
    ),
    ("TANDEM_CLOCK_SKEW", "clock_skew", Some("10m")),
    (
        "TANDEM_MAIL_POLL_INTERVAL",
        "mail_poll_interval",
        Some("5s"),
    ),
    (
        "TANDEM_CART_REMINDER_AFTER",
        "cart_reminder_after",
        Some("1h"),
    ),
    (
        "TANDEM_CART_DISCOUNT_AFTER",
        "cart_discount_after",
        Some("24h"),
    ),
    (
        "TANDEM_CART_LAST_CALL_AFTER",
        "cart_last_call_after",
        Some("72h"),
    ),
    (
        "TANDEM_CART_DISCOUNT_PERCENT",
        "cart_discount_percent",
        Some("10"),
    ),
    ("TANDEM_CART_COOLDOWN", "cart_cooldown", Some("7d")),
    ("TANDEM_MAX_DEPTH", "max_depth", Some("12")),
    ("TANDEM_MAX_COMPLEXITY", "max_complexity", Some("1000")),
    ("TANDEM_MAX_ALIASES", "max_aliases", Some("30")),
    ("TANDEM_MAX_ROOT_FIELDS", "max_root_fields", Some("20")),
    ("TANDEM_MAX_BATCH", "max_batch", Some("10")),
    ("TANDEM_MAX_BODY_BYTES", "max_body_bytes", Some("65536")),
    ("TANDEM_REQUEST_TIMEOUT", "request_timeout", Some("10s")),
    ("TANDEM_WS_SEND_TIMEOUT", "ws_send_timeout", Some("10s")),
    (
        "TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN",
        "ws_max_subscriptions_per_token",
        Some("100"),
    ),
    (
        "TANDEM_SQLITE_BUSY_TIMEOUT",
        "sqlite_busy_timeout",
        Some("30s"),
    ),
    ("TANDEM_DB_POOL_SIZE", "db_pool_size", None),
    ("TANDEM_TRUSTED_PROXIES", "trusted_proxies", None),
    ("TANDEM_LOG_FORMAT", "log_format", Some("text")),
    ("TANDEM_INTROSPECTION", "introspection", Some("true")),
    ("TANDEM_PLAYGROUND", "playground", Some("true")),
    (
        "TANDEM_RATE_LIMIT_PUBLIC",
        "rate_limit_public",
        Some("120/1m"),
    ),
    (
        "TANDEM_RATE_LIMIT_ACCOUNT",
        "rate_limit_account",
        Some("30/1m"),
    ),
    (
        "TANDEM_RATE_LIMIT_IPV6_PREFIX",
        "rate_limit_ipv6_prefix",
        Some("64"),
    ),
    ("TANDEM_SHUTDOWN_GRACE", "shutdown_grace", Some("30s")),
];

/// The file read when `TANDEM_CONFIG` does not name another.
pub const DEFAULT_CONFIG_FILE: &str = "tandem.toml";

impl Settings {
    /// Reads the process environment and the config file (`TANDEM_CONFIG`, else `./tandem.toml`
    /// when it exists).
    pub fn load() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let (path, required) = match env.get("TANDEM_CONFIG") {
            Some(path) => (PathBuf::from(path), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ConfigError::new(
                    "TANDEM_CONFIG",
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        Self::from_sources(&env, file.as_deref())
    }

    /// Builds settings from an environment map and the text of a config file.
    pub fn from_sources(
        env: &HashMap<String, String>,
        config_file: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let file_values = match config_file {
            Some(text) => parse_config_file(text)?,
            None => HashMap::new(),
        };
        let raw = |variable: &str| -> Option<String> {
            let (_, key, default) = SETTINGS
                .iter()
                .find(|(name, _, _)| *name == variable)
                .copied()?;
            env.get(variable)
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .or_else(|| file_values.get(key).cloned())
                .or_else(|| default.map(str::to_owned))
        };

        let database_url = raw("DATABASE_URL").unwrap_or_default();
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must start with sqlite:// or postgres:// (for example sqlite://tandem.db)",
            ));
        }

        let bind_text = raw("TANDEM_BIND").unwrap_or_default();
        let bind = bind_text.parse::<SocketAddr>().map_err(|_| {
            ConfigError::new(
                "TANDEM_BIND",
                format!("'{bind_text}' is not an address and port like 127.0.0.1:8080"),
            )
        })?;

        let secret = raw("TANDEM_JWT_SECRET").map(Secret::new);
        if let Some(secret) = &secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError::new(
                "TANDEM_JWT_SECRET",
                "must be at least 32 characters long; leave it unset to have one generated",
            ));
        }
        let public_key_pem = match raw("TANDEM_JWT_PUBLIC_KEY") {
            None => None,
            Some(value) if value.trim_start().starts_with("-----BEGIN") => Some(value),
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new(
                    "TANDEM_JWT_PUBLIC_KEY",
                    format!("is neither a PEM nor a readable file ({path}: {e})"),
                )
            })?),
        };

        let public_url = raw("TANDEM_PUBLIC_URL").unwrap_or_default();
        let public_url = public_url.trim_end_matches('/').to_owned();
        let has_host = public_url.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(' ')
        });
        if !has_host {
            return Err(ConfigError::new(
                "TANDEM_PUBLIC_URL",
                format!("'{public_url}' is not an http:// or https:// URL"),
            ));
        }

        let currency = raw("TANDEM_CURRENCY").unwrap_or_default().to_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::new(
                "TANDEM_CURRENCY",
                format!("'{currency}' is not an ISO 4217 code such as USD or EUR"),
            ));
        }

        let smtp_url = raw("TANDEM_SMTP_URL").map(Secret::new);
        if let Some(url) = &smtp_url
            && !(url.expose().starts_with("smtp://") || url.expose().starts_with("smtps://"))
        {
            return Err(ConfigError::new(
                "TANDEM_SMTP_URL",
                "must start with smtp:// or smtps://",
            ));
        }

        let count = |variable: &str| -> Result<u32, ConfigError> {
            let text = raw(variable).unwrap_or_default();
            text.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ConfigError::new(variable, format!("'{text}' is not a whole number above 0"))
                })
        };
        let duration = |variable: &str| -> Result<std::time::Duration, ConfigError> {
            let text = raw(variable).unwrap_or_default();
            humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    ConfigError::new(
                        variable,
                        format!("'{text}' is not a duration such as 90s, 1h or 7d"),
                    )
                })
        };
        let scheduler_interval = duration("TANDEM_SCHEDULER_INTERVAL")?;
        let mail_from = raw("TANDEM_MAIL_FROM").unwrap_or_default();
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "TANDEM_MAIL_FROM",
                format!("'{mail_from}' is not an address like 'Shop <hello@shop.example>'"),
            ));
        }
        let carts = CartSettings {
            reminder_after: duration("TANDEM_CART_REMINDER_AFTER")?,
            discount_after: duration("TANDEM_CART_DISCOUNT_AFTER")?,
            last_call_after: duration("TANDEM_CART_LAST_CALL_AFTER")?,
            discount_percent: count("TANDEM_CART_DISCOUNT_PERCENT")?,
            cooldown: duration("TANDEM_CART_COOLDOWN")?,
        };
        if carts.discount_percent > 100 {
            return Err(ConfigError::new(
                "TANDEM_CART_DISCOUNT_PERCENT",
                "must be a percent from 1 to 100",
            ));
        }
        if !(carts.reminder_after < carts.discount_after
            && carts.discount_after < carts.last_call_after)
        {
            return Err(ConfigError::new(
                "TANDEM_CART_DISCOUNT_AFTER",
                "the cart stages must come in order: reminder, then discount, then last call",
            ));
        }

        let batch_text = raw("TANDEM_MAX_BATCH").unwrap_or_default();
        let max_batch = batch_text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 100)
            .ok_or_else(|| {
                ConfigError::new(
                    "TANDEM_MAX_BATCH",
                    format!("'{batch_text}' is not a whole number from 0 (batches off) to 100"),
                )
            })?;
        let http = HttpLimits {
            max_body_bytes: count("TANDEM_MAX_BODY_BYTES")? as usize,
            max_batch,
            request_timeout: duration("TANDEM_REQUEST_TIMEOUT")?,
            query: QueryLimits {
                max_depth: count("TANDEM_MAX_DEPTH")? as usize,
                max_complexity: count("TANDEM_MAX_COMPLEXITY")? as usize,
                max_aliases: count("TANDEM_MAX_ALIASES")? as usize,
                max_root_fields: count("TANDEM_MAX_ROOT_FIELDS")? as usize,
            },
            ws_send_timeout: duration("TANDEM_WS_SEND_TIMEOUT")?,
            ws_max_subscriptions_per_token: count("TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN")?
                as usize,
        };

        let switch = |variable: &str| -> Result<bool, ConfigError> {
            let text = raw(variable).unwrap_or_default();
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    variable,
                    format!("'{text}' is neither true nor false"),
                )),
            }
        };
        let log_format = match raw("TANDEM_LOG_FORMAT")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "TANDEM_LOG_FORMAT",
                    format!("'{other}' is neither text nor json"),
                ));
            }
        };
        let rate = |variable: &str| {
            crate::rate_limit::Rate::parse(&raw(variable).unwrap_or_default())
                .map_err(|problem| ConfigError::new(variable, problem))
        };
        Ok(Self {
            shutdown_grace: duration("TANDEM_SHUTDOWN_GRACE")?,
            rate_limit_public: rate("TANDEM_RATE_LIMIT_PUBLIC")?,
            rate_limit_account: rate("TANDEM_RATE_LIMIT_ACCOUNT")?,
            rate_limit_ipv6_prefix: count("TANDEM_RATE_LIMIT_IPV6_PREFIX")
                .ok()
                .and_then(|bits| u8::try_from(bits).ok())
                .filter(|bits| *bits <= 128)
                .ok_or_else(|| {
                    ConfigError::new(
                        "TANDEM_RATE_LIMIT_IPV6_PREFIX",
                        "must be a prefix length from 1 to 128, such as 64",
                    )
                })?,
            log_format,
            introspection: switch("TANDEM_INTROSPECTION")?,
            playground: switch("TANDEM_PLAYGROUND")?,
            http,
            sqlite_busy_timeout: duration("TANDEM_SQLITE_BUSY_TIMEOUT")?,
            db_pool_size: match raw("TANDEM_DB_POOL_SIZE") {
                None => None,
                Some(_) => Some(count("TANDEM_DB_POOL_SIZE")?)
                    .filter(|n| (2..=1_000).contains(n))
                    .map(Some)
                    .ok_or_else(|| {
                        ConfigError::new("TANDEM_DB_POOL_SIZE", "must be from 2 to 1000")
                    })?,
            },
            trusted_proxies: TrustedProxies::parse(
                &raw("TANDEM_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|problem| ConfigError::new("TANDEM_TRUSTED_PROXIES", problem))?,
            clock_skew: Some(duration("TANDEM_CLOCK_SKEW")?)
                .filter(|skew| skew.as_secs() <= 24 * 3600)
                .ok_or_else(|| ConfigError::new("TANDEM_CLOCK_SKEW", "must be at most 24h"))?,
            referral_daily_limit: count("TANDEM_REFERRAL_DAILY_LIMIT")?,
            signup_ip_hourly_limit: count("TANDEM_SIGNUP_IP_HOURLY_LIMIT")?,
            scheduler_interval,
            database_url: Secret::new(database_url),
            bind,
            jwt: JwtSettings {
                secret,
                public_key_pem,
                issuer: raw("TANDEM_JWT_ISSUER"),
                audience: raw("TANDEM_JWT_AUDIENCE"),
            },
            public_url,
            currency,
            mail: MailSettings {
                smtp_url,
                from: mail_from,
                dir: PathBuf::from(raw("TANDEM_MAIL_DIR").unwrap_or_default()),
                template_dir: raw("TANDEM_TEMPLATE_DIR").map(PathBuf::from),
                max_attempts: count("TANDEM_MAIL_MAX_ATTEMPTS")?,
                smtp_timeout: duration("TANDEM_SMTP_TIMEOUT")?,
                retention_days: count("TANDEM_OUTBOX_RETENTION_DAYS")?,
                poll_interval: duration("TANDEM_MAIL_POLL_INTERVAL")?,
            },
            carts,
        })
    }
}

/// The file's keys are the setting names in lower case without the `TANDEM_` prefix.
fn parse_config_file(text: &str) -> Result<HashMap<String, String>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| ConfigError::new("TANDEM_CONFIG", format!("is not valid TOML: {e}")))?;
    let mut values = HashMap::new();
    for (key, value) in table {
        if !SETTINGS.iter().any(|(_, name, _)| *name == key) {
            return Err(ConfigError::new(
                "TANDEM_CONFIG",
                format!("unknown setting '{key}'"),
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        values.insert(key, text);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_start_an_embedded_server() {
        let settings = Settings::from_sources(&env(&[]), None).expect("defaults are valid");
        assert_eq!(settings.database_url.expose(), "sqlite://tandem.db");
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.public_url, "http://127.0.0.1:8080");
        assert_eq!(settings.currency, "USD");
        assert!(settings.jwt.secret.is_none());
        assert_eq!(settings.http.query, QueryLimits::default());
        assert_eq!(settings.http.max_body_bytes, 64 * 1024);
        assert_eq!(settings.http.max_batch, 10);
        assert_eq!(settings.http.request_timeout.as_secs(), 10);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let file = "bind = \"127.0.0.1:9000\"\ncurrency = \"EUR\"\n";
        let settings =
            Settings::from_sources(&env(&[("TANDEM_CURRENCY", "gbp")]), Some(file)).unwrap();
        assert_eq!(settings.bind.port(), 9000);
        assert_eq!(settings.currency, "GBP");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let cases = [
            ("TANDEM_BIND", "localhost"),
            ("TANDEM_CURRENCY", "dollars"),
            ("DATABASE_URL", "mysql://x"),
            ("TANDEM_JWT_SECRET", "short"),
            ("TANDEM_PUBLIC_URL", "ftp://x"),
            ("TANDEM_SMTP_URL", "mail.example.com"),
            ("TANDEM_JWT_PUBLIC_KEY", "/no/such/key.pem"),
            ("TANDEM_REFERRAL_DAILY_LIMIT", "-1"),
            ("TANDEM_SIGNUP_IP_HOURLY_LIMIT", "many"),
            ("TANDEM_SCHEDULER_INTERVAL", "soon"),
            ("TANDEM_MAIL_FROM", "not an address"),
            ("TANDEM_CART_COOLDOWN", "a week"),
            ("TANDEM_CART_DISCOUNT_PERCENT", "101"),
            ("TANDEM_MAIL_MAX_ATTEMPTS", "0"),
            ("TANDEM_MAX_BATCH", "-1"),
            ("TANDEM_MAX_DEPTH", "0"),
            ("TANDEM_MAX_BODY_BYTES", "64k"),
            ("TANDEM_REQUEST_TIMEOUT", "forever"),
            ("TANDEM_WS_SEND_TIMEOUT", "0s"),
            ("TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN", "0"),
            ("TANDEM_RATE_LIMIT_IPV6_PREFIX", "129"),
            ("TANDEM_DB_POOL_SIZE", "1"),
            ("TANDEM_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TANDEM_TRUSTED_PROXIES", "proxy.local"),
        ];
        for (variable, value) in cases {
            let error = Settings::from_sources(&env(&[(variable, value)]), None).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
            assert!(error.to_string().starts_with(variable));
        }
    }

    #[test]
    fn trusted_proxies_hold_addresses_and_ranges() {
        let trusted =
            TrustedProxies::parse("10.0.0.0/8, 192.168.1.10, ::1, 2001:db8::/32").unwrap();
        for ip in [
            "10.1.2.3",
            "192.168.1.10",
            "::1",
            "2001:db8::7",
            "::ffff:10.9.9.9",
        ] {
            assert!(trusted.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["11.0.0.1", "192.168.1.11", "::2", "2001:db9::1"] {
            assert!(!trusted.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let error = Settings::from_sources(&env(&[]), Some("bnid = \"x\"")).unwrap_err();
        assert!(error.problem.contains("bnid"));
    }

    #[test]
    fn secrets_never_print() {
        let settings = Settings::from_sources(
            &env(&[(
                "TANDEM_JWT_SECRET",
                "a-very-long-secret-of-at-least-32-chars",
            )]),
            None,
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("a-very-long-secret"));
    }
}
