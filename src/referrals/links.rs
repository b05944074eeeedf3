//! Tracked share links: `GET /r/{code}` and `trackReferralClick` record a click (time, hashed IP,
//! user agent) and send the visitor to the campaign's landing page with `?ref=CODE`. An unknown
//! code still lands, without `ref`, and records nothing.

use std::net::IpAddr;

use actix_web::http::header::{HeaderValue, LOCATION, USER_AGENT, X_FORWARDED_FOR};
use actix_web::{HttpRequest, HttpResponse, web};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use uuid::Uuid;

use crate::campaigns::service as campaigns;
use crate::config::TrustedProxies;
use crate::entities::referral_click;
use crate::error::{AppError, DbContext};
use crate::referrals::attribution::find_referrer;
use crate::state::AppState;

/// Where a click came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The shared link, `GET /r/{code}`.
    Link,
    /// An app calling `trackReferralClick`.
    App,
}

/// Who clicked, as far as the request tells.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Visitor {
    /// The visitor's address is the peer's, unless the peer is a trusted proxy: then it is the
    /// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn from_request(request: &HttpRequest, trusted: &TrustedProxies) -> Self {
        let peer = request.peer_addr().map(|addr| addr.ip());
        let ip = match peer {
            Some(peer) if trusted.contains(peer) => {
                forwarded_client(request, trusted).or(Some(peer))
            }
            other => other,
        };
        Self {
            ip: ip.map(|ip| ip.to_canonical().to_string()),
            user_agent: request
                .headers()
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(512).collect()),
        }
    }
}

/// Walks `X-Forwarded-For` from the right (the hops our proxies added) past trusted proxies; an
/// entry that is not an address ends the walk, and the peer's address is used instead.
fn forwarded_client(request: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let hops: Vec<&str> = request
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let hop: IpAddr = hop.trim().parse().ok()?;
        if !trusted.contains(hop) {
            return Some(hop);
        }
    }
    None
}

/// What a click resolved to.
#[derive(Debug, Clone)]
pub struct Landing {
    /// Whether the code was known and the click recorded.
    pub recorded: bool,
    /// Where to send the visitor.
    pub url: String,
}

pub async fn track(
    state: &AppState,
    code: &str,
    channel: Channel,
    visitor: &Visitor,
) -> Result<Landing, AppError> {
    let now = state.clock.now();
    let base = landing_base(state).await?;
    let Some(referrer) = find_referrer(&state.db, code).await? else {
        return Ok(Landing {
            recorded: false,
            url: base,
        });
    };
    let url = with_ref(&base, &referrer.referral_code);
    referral_click::ActiveModel {
        id: Set(Uuid::now_v7()),
        referrer_id: Set(referrer.id),
        code: Set(referrer.referral_code.clone()),
        channel: Set(match channel {
            Channel::Link => "link",
            Channel::App => "app",
        }
        .to_owned()),
        ip_hash: Set(visitor.ip.as_deref().map(|ip| state.ip_hasher.hash(ip))),
        user_agent: Set(visitor.user_agent.clone()),
        landing_url: Set(url.clone()),
        clicked_at: Set(now),
    }
    .insert(&state.db)
    .await
    .context("recording a referral click")?;
    Ok(Landing {
        recorded: true,
        url,
    })
}

/// The landing URL with `ref=CODE` added to its query, before any `#fragment`. A base that does
/// not parse (landing URLs are checked when written, so only an old row can be one) gets the
/// parameter appended as text.
pub fn with_ref(base: &str, code: &str) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("ref", code);
            url.into()
        }
        Err(_) => {
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}ref={code}")
        }
    }
}

/// `GET /r/{code}`: always a redirect; a fault is logged and the visitor still lands.
pub async fn follow_link(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    let visitor = Visitor::from_request(&request, &state.settings.trusted_proxies);
    let url = match track(&state, &code, Channel::Link, &visitor).await {
        Ok(landing) => landing.url,
        Err(error) => {
            tracing::error!(%error, "recording a referral link click");
            state.settings.public_url.clone()
        }
    };
    redirect(&url, &state.settings.public_url)
}

/// `HEAD /r/{code}`: answers as `GET` would (link checkers and previews ask this way), without
/// recording a click, since nobody followed the link.
pub async fn follow_link_head(state: web::Data<AppState>, code: web::Path<String>) -> HttpResponse {
    let url = match landing_for(&state, &code).await {
        Ok(url) => url,
        Err(error) => {
            tracing::error!(%error, "answering HEAD for a referral link");
            state.settings.public_url.clone()
        }
    };
    redirect(&url, &state.settings.public_url)
}

/// The active campaign's landing page, else the public URL.
async fn landing_base(state: &AppState) -> Result<String, AppError> {
    let campaign = campaigns::active(&state.db, state.clock.now()).await?;
    Ok(campaign
        .and_then(|c| c.landing_url)
        .unwrap_or_else(|| state.settings.public_url.clone()))
}

/// Where a visitor of `code` lands, without recording anything.
async fn landing_for(state: &AppState, code: &str) -> Result<String, AppError> {
    let base = landing_base(state).await?;
    Ok(match find_referrer(&state.db, code).await? {
        Some(referrer) => with_ref(&base, &referrer.referral_code),
        None => base,
    })
}

/// A 302 to `url`, or to `fallback` when `url` cannot be a header value.
fn redirect(url: &str, fallback: &str) -> HttpResponse {
    let location = HeaderValue::from_str(url).unwrap_or_else(|_| {
        tracing::warn!("a landing URL cannot be sent as a Location header; using the public URL");
        HeaderValue::from_str(fallback).unwrap_or_else(|_| HeaderValue::from_static("/"))
    });
    HttpResponse::Found()
        .insert_header((LOCATION, location))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::with_ref;

    #[test]
    fn the_ref_parameter_goes_before_a_fragment() {
        assert_eq!(
            with_ref("https://shop.example/join#offer", "ABCD1234"),
            "https://shop.example/join?ref=ABCD1234#offer"
        );
        assert_eq!(
            with_ref("https://shop.example/join?utm=x", "ABCD1234"),
            "https://shop.example/join?utm=x&ref=ABCD1234"
        );
    }
}
