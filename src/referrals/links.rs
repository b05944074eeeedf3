//! Tracked share links: `GET /r/{code}` (see `http.rs`) and `trackReferralClick` record a click
//! (time, hashed IP, user agent) and send the visitor to the campaign's landing page with
//! `?ref=CODE`. An unknown code still lands, without `ref`, and records nothing.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection};
use uuid::Uuid;

use crate::campaigns::service as campaigns;
use crate::entities::referral_click;
use crate::error::{AppError, DbContext};
use crate::ip_hash::IpHasher;
use crate::referrals::attribution::find_referrer;

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

/// What a click resolved to.
#[derive(Debug, Clone)]
pub struct Landing {
    /// Whether the code was known and the click recorded.
    pub recorded: bool,
    /// Where to send the visitor.
    pub url: String,
}

/// Where share links land when no campaign names a landing page.
#[derive(Clone, Copy)]
pub struct LinkSite<'a> {
    pub db: &'a DatabaseConnection,
    pub ip_hasher: &'a IpHasher,
    /// `TANDEM_PUBLIC_URL`.
    pub public_url: &'a str,
    pub now: DateTime<Utc>,
}

/// Records a click on `code` (when it is someone's) and answers where the visitor lands.
pub async fn track(
    site: LinkSite<'_>,
    code: &str,
    channel: Channel,
    visitor: &Visitor,
) -> Result<Landing, AppError> {
    let base = landing_base(site).await?;
    let Some(referrer) = find_referrer(site.db, code).await? else {
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
        ip_hash: Set(visitor.ip.as_deref().map(|ip| site.ip_hasher.hash(ip))),
        user_agent: Set(visitor.user_agent.clone()),
        landing_url: Set(url.clone()),
        clicked_at: Set(site.now),
    }
    .insert(site.db)
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

/// The active campaign's landing page, else the public URL.
async fn landing_base(site: LinkSite<'_>) -> Result<String, AppError> {
    let campaign = campaigns::active(site.db, site.now).await?;
    Ok(campaign
        .and_then(|c| c.landing_url)
        .unwrap_or_else(|| site.public_url.to_owned()))
}

/// Where a visitor of `code` lands, without recording anything.
pub async fn landing_for(site: LinkSite<'_>, code: &str) -> Result<String, AppError> {
    let base = landing_base(site).await?;
    Ok(match find_referrer(site.db, code).await? {
        Some(referrer) => with_ref(&base, &referrer.referral_code),
        None => base,
    })
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
