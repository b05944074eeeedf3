//! The routes outside GraphQL and what they read from a request: the visitor behind a request
//! (the peer, or the client a trusted proxy names), the share links `GET`/`HEAD /r/{code}`, and
//! the unsubscribe page and one-click `POST /unsubscribe`.

use std::net::IpAddr;

use actix_web::http::header::{
    ContentType, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT, X_FORWARDED_FOR,
};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::config::TrustedProxies;
use crate::email::unsubscribe;
use crate::error::AppError;
use crate::referrals::links::{self, Channel, LinkSite, Visitor};
use crate::state::AppState;

/// The visitor's address is the peer's, unless the peer is a trusted proxy: then it is the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn visitor(request: &HttpRequest, trusted: &TrustedProxies) -> Visitor {
    let peer = request.peer_addr().map(|addr| addr.ip());
    let ip = match peer {
        Some(peer) if trusted.contains(peer) => forwarded_client(request, trusted).or(Some(peer)),
        other => other,
    };
    Visitor {
        ip: ip.map(|ip| ip.to_canonical().to_string()),
        user_agent: request
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
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

/// The share-link rules' view of the application.
pub fn link_site(state: &AppState) -> LinkSite<'_> {
    LinkSite {
        db: &state.db,
        ip_hasher: &state.ip_hasher,
        public_url: &state.settings.public_url,
        now: state.clock.now(),
    }
}

/// A 429 with `Retry-After` when the client IP has spent its public allowance.
fn over_public_limit(state: &AppState, request: &HttpRequest) -> Option<HttpResponse> {
    let ip = visitor(request, &state.settings.trusted_proxies).ip;
    let key = state.rate_limits.client_key(ip.as_deref());
    let wait = state
        .rate_limits
        .public
        .check(&key, state.clock.now())
        .err()?;
    let AppError::RateLimited { retry_after_secs } = AppError::rate_limited(wait) else {
        return None;
    };
    Some(
        HttpResponse::TooManyRequests()
            .insert_header((RETRY_AFTER, retry_after_secs.to_string()))
            .content_type(ContentType::plaintext())
            .body(format!(
                "Too many requests from this address; try again in {retry_after_secs} s"
            )),
    )
}

/// `GET /r/{code}`: always a redirect; a fault is logged and the visitor still lands.
pub async fn follow_link(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    if let Some(refusal) = over_public_limit(&state, &request) {
        return refusal;
    }
    let visitor = visitor(&request, &state.settings.trusted_proxies);
    let url = match links::track(link_site(&state), &code, Channel::Link, &visitor).await {
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
pub async fn follow_link_head(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    if let Some(refusal) = over_public_limit(&state, &request) {
        return refusal;
    }
    let url = match links::landing_for(link_site(&state), &code).await {
        Ok(url) => url,
        Err(error) => {
            tracing::error!(%error, "answering HEAD for a referral link");
            state.settings.public_url.clone()
        }
    };
    redirect(&url, &state.settings.public_url)
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

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn page(status: u16, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 480px; margin: 48px auto;\">\
         <h1>{title}</h1>{body}</body></html>"
    );
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .content_type(ContentType::html())
        .body(html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /unsubscribe?token=…`: a confirmation page. It changes nothing, so link scanners that
/// follow every URL cannot unsubscribe anyone; its button posts the one-click form.
pub async fn confirmation_page(
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
    request: HttpRequest,
) -> HttpResponse {
    if let Some(refusal) = over_public_limit(&state, &request) {
        return refusal;
    }
    let token = query.token.clone().unwrap_or_default();
    match state.unsubscribe.verify(&token) {
        None => page(
            400,
            "This link is not valid",
            "<p>Use the unsubscribe link from the email as it is.</p>",
        ),
        Some(email) => page(
            200,
            "Unsubscribe?",
            &format!(
                "<p>Stop marketing email to <strong>{}</strong>?</p>\
                 <form method=\"post\" action=\"/unsubscribe?token={}\">\
                 <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                escape(&email),
                escape(&token)
            ),
        ),
    }
}

/// `POST /unsubscribe?token=…`: RFC 8058 one-click, and the confirmation page's button.
pub async fn one_click(
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
    request: HttpRequest,
) -> HttpResponse {
    if let Some(refusal) = over_public_limit(&state, &request) {
        return refusal;
    }
    let token = query.token.clone().unwrap_or_default();
    match unsubscribe::unsubscribe(&state.db, state.clock.as_ref(), &state.unsubscribe, &token)
        .await
    {
        Ok(email) => page(
            200,
            "You are unsubscribed",
            &format!(
                "<p>{} will get no more marketing email.</p>",
                escape(&email)
            ),
        ),
        Err(AppError::BadUserInput { .. }) => page(
            400,
            "This link is not valid",
            "<p>Use the unsubscribe link from the email as it is.</p>",
        ),
        Err(error) => {
            tracing::error!(%error, "unsubscribing");
            page(
                500,
                "Something went wrong",
                "<p>Please try again later.</p>",
            )
        }
    }
}
