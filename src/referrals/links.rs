//! Tracked share links: `GET /r/{code}` and `trackReferralClick` record a click (time, hashed IP,
//! user agent) and send the visitor to the campaign's landing page with `?ref=CODE`. An unknown
//! code still lands, without `ref`, and records nothing.

use actix_web::http::header::{LOCATION, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use uuid::Uuid;

use crate::campaigns::service as campaigns;
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
    pub fn from_request(request: &HttpRequest) -> Self {
        Self {
            ip: request
                .connection_info()
                .realip_remote_addr()
                .map(str::to_owned),
            user_agent: request
                .headers()
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(512).collect()),
        }
    }
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
    let campaign = campaigns::active(&state.db, now).await?;
    let base = campaign
        .and_then(|c| c.landing_url)
        .unwrap_or_else(|| state.settings.public_url.clone());
    let Some(referrer) = find_referrer(&state.db, code).await? else {
        return Ok(Landing {
            recorded: false,
            url: base,
        });
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}ref={}", referrer.referral_code);
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

/// `GET /r/{code}`: always a redirect; a fault is logged and the visitor still lands.
pub async fn follow_link(
    state: web::Data<AppState>,
    code: web::Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    let visitor = Visitor::from_request(&request);
    let url = match track(&state, &code, Channel::Link, &visitor).await {
        Ok(landing) => landing.url,
        Err(error) => {
            tracing::error!(%error, "recording a referral link click");
            state.settings.public_url.clone()
        }
    };
    HttpResponse::Found()
        .insert_header((LOCATION, url))
        .finish()
}
