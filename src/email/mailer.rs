//! Sending a message: SMTP through lettre's pooled async transport, or `.eml` files in
//! `TANDEM_MAIL_DIR` when no SMTP server is configured.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{ConfigError, MailSettings};

pub struct Mailer {
    transport: Transport,
    /// The longest one conversation may take, greeting and every reply included.
    timeout: Duration,
    breaker: Mutex<Breaker>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf),
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The SMTP server could not be reached or did not answer in time: the message is not at
    /// fault, so the try does not count, and delivery pauses (see [`Mailer::paused_until`]).
    Unreachable(String),
    /// Worth trying again later: a 4xx reply, or a file that could not be written.
    Transient(String),
    /// Not worth trying again: a 5xx reply. `recipient` when the reply refused the address
    /// itself, which then should not be mailed again.
    Permanent { message: String, recipient: bool },
}

/// How long delivery pauses after the SMTP server was unreachable: 30 s, doubling with each
/// failure in a row, at most 10 minutes.
#[derive(Debug, Default)]
struct Breaker {
    failures_in_a_row: u32,
    open_until: Option<DateTime<Utc>>,
}

const FIRST_PAUSE_SECONDS: i64 = 30;
const LONGEST_PAUSE_SECONDS: i64 = 600;

impl Mailer {
    pub fn from_settings(mail: &MailSettings) -> Result<Self, ConfigError> {
        let transport = match &mail.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| ConfigError {
                        variable: "TANDEM_SMTP_URL".into(),
                        problem: format!("is not a usable SMTP URL: {e}"),
                    })?
                    .timeout(Some(mail.smtp_timeout))
                    .pool_config(PoolConfig::new().max_size(8))
                    .build();
                Transport::Smtp(transport)
            }
            None => Transport::Files(
                AsyncFileTransport::<Tokio1Executor>::new(&mail.dir),
                mail.dir.clone(),
            ),
        };
        Ok(Self {
            transport,
            timeout: mail.smtp_timeout,
            breaker: Mutex::default(),
        })
    }

    /// Until when delivery should not try the SMTP server, if it is paused at `now`.
    pub fn paused_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        breaker.open_until.filter(|until| *until > now)
    }

    /// Sends one message; a conversation longer than the timeout is abandoned. The outcome
    /// opens or closes the circuit breaker.
    pub async fn send(&self, now: DateTime<Utc>, message: Message) -> Result<(), SendFailure> {
        let sent = match &self.transport {
            Transport::Smtp(transport) => {
                match tokio::time::timeout(self.timeout, transport.send(message)).await {
                    Err(_) => Err(SendFailure::Unreachable(format!(
                        "the SMTP server did not finish the conversation within {} s",
                        self.timeout.as_secs()
                    ))),
                    Ok(result) => result.map(|_| ()).map_err(|e| classify(&e)),
                }
            }
            Transport::Files(transport, dir) => write_file(transport, dir, message).await,
        };
        let mut breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match &sent {
            Err(SendFailure::Unreachable(_)) => {
                breaker.failures_in_a_row = breaker.failures_in_a_row.saturating_add(1);
                let pause = FIRST_PAUSE_SECONDS
                    .saturating_mul(1 << breaker.failures_in_a_row.min(6).saturating_sub(1))
                    .min(LONGEST_PAUSE_SECONDS);
                breaker.open_until = Some(now + chrono::Duration::seconds(pause));
            }
            _ => *breaker = Breaker::default(),
        }
        sent
    }
}

async fn write_file(
    transport: &AsyncFileTransport<Tokio1Executor>,
    dir: &std::path::Path,
    message: Message,
) -> Result<(), SendFailure> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| SendFailure::Transient(format!("cannot create {}: {e}", dir.display())))?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| SendFailure::Transient(e.to_string()))
}

fn classify(error: &lettre::transport::smtp::Error) -> SendFailure {
    let text = error.to_string();
    if error.is_permanent() {
        let code = error.status().map(|c| c.to_string()).unwrap_or_default();
        SendFailure::Permanent {
            recipient: refuses_recipient(&code, &text),
            message: text,
        }
    } else if error.is_transient() {
        SendFailure::Transient(text)
    } else {
        // No reply at all: refused connection, TLS or network failure, lettre's own timeout.
        SendFailure::Unreachable(text)
    }
}

/// Whether a permanent reply refuses the recipient address itself. An RFC 3463 enhanced status
/// decides when the server gives one: 5.1.x is about the address (no such user, bad mailbox);
/// 5.7.x (policy, content) and the rest are about the message. Without one, 551 and 553 are
/// replies only RCPT TO gives, and a bare 550 counts when its text speaks of the recipient, since
/// lettre's pooled transport does not say which command a reply answered.
pub fn refuses_recipient(code: &str, reply: &str) -> bool {
    let enhanced = reply.split_whitespace().find(|word| {
        let mut parts = word.split('.');
        matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(class), Some(subject), Some(detail), None)
                if matches!(class, "4" | "5")
                    && !subject.is_empty() && subject.chars().all(|c| c.is_ascii_digit())
                    && !detail.is_empty() && detail.chars().all(|c| c.is_ascii_digit())
        )
    });
    if let Some(enhanced) = enhanced {
        return enhanced.starts_with("5.1.");
    }
    let reply = reply.to_lowercase();
    match code {
        "551" | "553" => true,
        "550" => ["user", "mailbox", "recipient", "address"]
            .iter()
            .any(|word| reply.contains(word)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::refuses_recipient;

    #[test]
    fn only_recipient_failures_refuse_the_address() {
        assert!(refuses_recipient(
            "550",
            "permanent error (550): 5.1.1 No such user"
        ));
        assert!(refuses_recipient(
            "553",
            "permanent error (553): 5.1.3 Bad address syntax"
        ));
        assert!(!refuses_recipient(
            "550",
            "permanent error (550): 5.7.1 Message rejected as spam"
        ));
        assert!(!refuses_recipient(
            "554",
            "permanent error (554): 5.6.0 Content rejected"
        ));
        assert!(refuses_recipient(
            "550",
            "permanent error (550): No such user here"
        ));
        assert!(!refuses_recipient(
            "550",
            "permanent error (550): Message refused"
        ));
        assert!(refuses_recipient("551", "permanent error (551): not local"));
    }
}
