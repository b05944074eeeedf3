//! Sending a message: SMTP through lettre's pooled async transport, or `.eml` files in
//! `TANDEM_MAIL_DIR` when no SMTP server is configured.

use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{ConfigError, MailSettings};

/// How long one SMTP conversation may take before it counts as a temporary failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf),
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Worth trying again later: a 4xx reply, a timeout, a refused connection.
    Transient(String),
    /// Not worth trying again: a 5xx reply. `recipient` when the reply refused the address.
    Permanent { message: String, recipient: bool },
}

impl Mailer {
    pub fn from_settings(mail: &MailSettings) -> Result<Self, ConfigError> {
        match &mail.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| ConfigError {
                        variable: "TANDEM_SMTP_URL".into(),
                        problem: format!("is not a usable SMTP URL: {e}"),
                    })?
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(8))
                    .build();
                Ok(Self::Smtp(transport))
            }
            None => Ok(Self::Files(
                AsyncFileTransport::<Tokio1Executor>::new(&mail.dir),
                mail.dir.clone(),
            )),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendFailure> {
        match self {
            Self::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| {
                let text = e.to_string();
                if e.is_permanent() {
                    // 550 (mailbox unavailable), 551 (not local) and 553 (name not allowed)
                    // are the replies that refuse the recipient itself.
                    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                    SendFailure::Permanent {
                        message: text,
                        recipient: matches!(code.as_str(), "550" | "551" | "553"),
                    }
                } else {
                    SendFailure::Transient(text)
                }
            }),
            Self::Files(transport, dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    SendFailure::Transient(format!("cannot create {}: {e}", dir.display()))
                })?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendFailure::Transient(e.to_string()))
            }
        }
    }
}
