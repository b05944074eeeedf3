//! Who is calling: JWT verification, roles, and the checks resolvers make.
//!
//! The algorithm comes from configuration (HS256 with a secret, or RS256/ES256 with a public key),
//! never from the token's header, so `alg: none` and algorithm-confusion tokens are refused.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, JwtSettings, Secret};
use crate::error::AppError;

/// How far a token's `exp` and `nbf` may be off, to allow for clocks that disagree a little.
pub const LEEWAY_SECONDS: i64 = 30;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// One shopper, whose `externalId` is the token's `sub`.
    Customer,
    /// The merchant's backend.
    Service,
    /// An operator.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }
}

/// The claims Tandem reads. `iss` and `aud` are checked by the validator when configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// A token's `aud`: RFC 7519 allows one string or an array of them. The validator checks that
/// the configured audience is among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// A caller whose token was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// For a customer, their `externalId`; for others, whoever the token was minted for.
    pub subject: String,
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub enum Viewer {
    Anonymous,
    Authenticated(Principal),
    /// A token was sent but refused; protected fields answer with this reason.
    Rejected(String),
}

impl Viewer {
    /// The principal, when its role is one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<&Principal, AppError> {
        match self {
            Viewer::Anonymous => Err(AppError::Unauthenticated(
                "This field needs a token: send 'Authorization: Bearer <JWT>'.".into(),
            )),
            Viewer::Rejected(reason) => Err(AppError::Unauthenticated(format!(
                "The token was refused: {reason}."
            ))),
            Viewer::Authenticated(principal) if allowed.contains(&principal.role) => Ok(principal),
            Viewer::Authenticated(principal) => Err(AppError::Forbidden(format!(
                "This needs a {} token; a {} token cannot do it.",
                allowed
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                principal.role.as_str(),
            ))),
        }
    }
}

/// When an accepted token is valid, as Unix seconds from its `nbf` and `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenWindow {
    pub not_before: Option<i64>,
    pub expires: i64,
}

impl TokenWindow {
    /// Why the token is no longer (or not yet) valid at `now`, with the same leeway as
    /// [`JwtKeys::verify`].
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<&'static str> {
        let now = now.timestamp();
        if self.expires.saturating_add(LEEWAY_SECONDS) < now {
            return Some("it has expired");
        }
        match self.not_before {
            Some(nbf) if nbf.saturating_sub(LEEWAY_SECONDS) > now => {
                Some("it is not valid yet (nbf is in the future)")
            }
            _ => None,
        }
    }
}

/// Signs and verifies tokens with the configured algorithm and key.
pub struct JwtKeys {
    algorithm: Algorithm,
    /// Present only with a shared secret: with a public key, tokens are minted elsewhere.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    issuer: Option<String>,
    audience: Option<String>,
    /// What a token must satisfy, built once: every request checks one.
    validation: Validation,
}

/// What a token must satisfy besides its time window, which [`JwtKeys::verify_window`] checks
/// against the injected clock (with the same leeway).
fn validation(
    algorithm: Algorithm,
    issuer: Option<&String>,
    audience: Option<&String>,
) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = LEEWAY_SECONDS as u64;
    let mut required = vec!["exp", "sub"];
    match issuer {
        Some(issuer) => {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        None => validation.iss = None,
    }
    match audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

impl JwtKeys {
    /// `secret` is the configured secret, or the generated one when none was configured.
    pub fn new(settings: &JwtSettings, secret: Option<&Secret>) -> Result<Self, ConfigError> {
        let (algorithm, encoding, decoding) = match (&settings.public_key_pem, secret) {
            (Some(pem), _) => {
                let pem = pem.as_bytes();
                if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    (Algorithm::RS256, None, key)
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                    (Algorithm::ES256, None, key)
                } else {
                    return Err(ConfigError {
                        variable: "TANDEM_JWT_PUBLIC_KEY".into(),
                        problem: "is not an RSA or EC public key in PEM form".into(),
                    });
                }
            }
            (None, Some(secret)) => (
                Algorithm::HS256,
                Some(EncodingKey::from_secret(secret.expose().as_bytes())),
                DecodingKey::from_secret(secret.expose().as_bytes()),
            ),
            (None, None) => {
                return Err(ConfigError {
                    variable: "TANDEM_JWT_SECRET".into(),
                    problem: "no secret and no public key to verify tokens with".into(),
                });
            }
        };
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            validation: validation(
                algorithm,
                settings.issuer.as_ref(),
                settings.audience.as_ref(),
            ),
        })
    }

    /// Whether this server can mint tokens (it can only with a shared secret).
    pub fn can_mint(&self) -> bool {
        self.encoding.is_some()
    }

    /// Mints a token for `subject` with `role`, valid for `ttl` from `now`.
    pub fn mint(
        &self,
        role: Role,
        subject: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<String, AppError> {
        let encoding = self.encoding.as_ref().ok_or_else(|| {
            AppError::Forbidden(
                "Tokens are minted by your identity provider when TANDEM_JWT_PUBLIC_KEY is set."
                    .into(),
            )
        })?;
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            exp: (now + ttl).timestamp(),
            nbf: None,
            iat: Some(now.timestamp()),
            iss: self.issuer.clone(),
            aud: self.audience.clone().map(Audience::One),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(|e| AppError::internal("signing a token", e))
    }

    /// Checks a token's signature, algorithm, issuer, audience and time window against `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, String> {
        self.verify_window(token, now)
            .map(|(principal, _)| principal)
    }

    /// [`JwtKeys::verify`], with the window in which the token stays valid, for a connection that
    /// outlives the moment it was checked.
    pub fn verify_window(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(Principal, TokenWindow), String> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| describe(&e))?
            .claims;
        let now = now.timestamp();
        if claims.exp.saturating_add(LEEWAY_SECONDS) < now {
            return Err("it has expired".into());
        }
        if let Some(nbf) = claims.nbf
            && nbf.saturating_sub(LEEWAY_SECONDS) > now
        {
            return Err("it is not valid yet (nbf is in the future)".into());
        }
        if claims.sub.trim().is_empty() {
            return Err("its sub claim is empty".into());
        }
        let window = TokenWindow {
            not_before: claims.nbf,
            expires: claims.exp,
        };
        Ok((
            Principal {
                role: claims.role,
                subject: claims.sub,
            },
            window,
        ))
    }

    /// Reads the `Authorization` header value of a request into a viewer.
    pub fn viewer(&self, authorization: Option<&str>, now: DateTime<Utc>) -> Viewer {
        let Some(header) = authorization else {
            return Viewer::Anonymous;
        };
        let Some(token) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        else {
            return Viewer::Rejected("the Authorization header must be 'Bearer <JWT>'".into());
        };
        match self.verify(token.trim(), now) {
            Ok(principal) => Viewer::Authenticated(principal),
            Err(reason) => Viewer::Rejected(reason),
        }
    }
}

fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => "its signature does not match".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "it is not signed with the algorithm this server uses".into()
        }
        ErrorKind::InvalidIssuer => "its issuer (iss) is not the configured one".into(),
        ErrorKind::InvalidAudience => "its audience (aud) is not the configured one".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no {claim} claim"),
        ErrorKind::Json(_) => {
            "its claims are not valid (sub, exp and a role of customer, service or admin are required)"
                .into()
        }
        _ => "it is not a well-formed JWT".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        let settings = JwtSettings {
            secret: None,
            public_key_pem: None,
            issuer: None,
            audience: None,
        };
        JwtKeys::new(&settings, Some(&Secret::new("x".repeat(32)))).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let keys = keys();
        let now = Utc::now();
        let token = keys
            .mint(Role::Admin, "ops", Duration::hours(1), now)
            .unwrap();
        assert_eq!(keys.verify(&token, now).unwrap().role, Role::Admin);
        assert!(keys.verify(&token, now + Duration::hours(2)).is_err());
    }

    #[test]
    fn the_wrong_role_is_forbidden_and_no_token_is_unauthenticated() {
        let viewer = Viewer::Authenticated(Principal {
            role: Role::Customer,
            subject: "c1".into(),
        });
        assert_eq!(
            viewer.require(&[Role::Admin]).unwrap_err().code(),
            "FORBIDDEN"
        );
        assert_eq!(
            Viewer::Anonymous
                .require(&[Role::Admin])
                .unwrap_err()
                .code(),
            "UNAUTHENTICATED"
        );
    }
}
