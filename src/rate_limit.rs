//! Rate limits, per instance: each key (a client IP, or a token) may spend `count` requests per
//! `per`, in a burst or spread out, and then one every `per / count`. This is GCRA: one
//! timestamp a key (when its allowance is next whole), so memory grows with the keys seen in the
//! last `per`, never with requests; past `MAX_KEYS` active keys every new key shares one
//! overflow bucket (and a warning is logged), so an attacker with many addresses neither grows
//! the map nor passes untracked. An IPv6 client is keyed by its network prefix (a /64 by
//! default: one subscriber's allocation), not by each of its 2⁶⁴ addresses.
//! Time is the injected clock's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// How many keys one limiter tracks at most.
const MAX_KEYS: usize = 100_000;
/// The bucket every new key shares once [`MAX_KEYS`] are active.
const OVERFLOW_KEY: &str = "overflow";

/// The key of a client address: an IPv4 address as it is, an IPv6 address by its first
/// `ipv6_prefix` bits (`2001:db8:1:2::/64`). Text that is not an address is its own key.
pub fn address_key(ip: &str, ipv6_prefix: u8) -> String {
    match ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(ip)) => {
            let prefix = u32::from(ipv6_prefix.clamp(1, 128));
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            let network = std::net::Ipv6Addr::from_bits(ip.to_bits() & mask);
            format!("{network}/{prefix}")
        }
        Ok(IpAddr::V4(ip)) => ip.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: std::time::Duration,
}

impl Rate {
    /// Parses `60/1m` (60 requests a minute); `off` means no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, per) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not a rate like 60/1m, or off"))?;
        let count = count
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| format!("'{count}' is not a count from 1 to 1000000"))?;
        let per = humantime::parse_duration(per.trim())
            .ok()
            .filter(|d| !d.is_zero() && d.as_secs() <= 24 * 3600)
            .ok_or_else(|| format!("'{per}' is not a period from 1s to 24h, such as 1m"))?;
        Ok(Some(Self { count, per }))
    }
}

/// One limit over many keys.
#[derive(Debug)]
pub struct Limiter {
    rate: Option<Rate>,
    /// Per key: the time at which its allowance is whole again.
    keys: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Limiter {
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s allowance, or says how long to wait for the next one.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), std::time::Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let per = Duration::from_std(rate.per).unwrap_or(Duration::days(1));
        let interval = per / i32::try_from(rate.count).unwrap_or(i32::MAX);
        let burst = per - interval;
        // A poisoned lock only means another request panicked mid-update; the map is still whole.
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut key = key;
        if !keys.contains_key(key) && keys.len() >= MAX_KEYS {
            keys.retain(|_, whole_at| *whole_at > now);
            if keys.len() >= MAX_KEYS {
                tracing::warn!(
                    keys = keys.len(),
                    "rate limit: too many active keys; a new one shares the overflow bucket"
                );
                key = OVERFLOW_KEY;
            }
        }
        let whole_at = keys.get(key).copied().unwrap_or(now).max(now);
        let allowed_from = whole_at - burst;
        if now < allowed_from {
            return Err((allowed_from - now).to_std().unwrap_or_default());
        }
        keys.insert(key.to_owned(), whole_at + interval);
        Ok(())
    }
}

/// The limits the API applies.
#[derive(Debug)]
pub struct RateLimits {
    /// Per client IP, on what anyone may call: share links, `trackReferralClick`, `referralCode`,
    /// unsubscribing.
    pub public: Limiter,
    /// Per token (and, for service and admin tokens, per customer acted for), on
    /// `inviteFriends` and `redeemPoints`.
    pub account: Limiter,
    /// How many leading bits of an IPv6 address make one client.
    pub ipv6_prefix: u8,
}

impl RateLimits {
    pub fn new(public: Option<Rate>, account: Option<Rate>, ipv6_prefix: u8) -> Self {
        Self {
            public: Limiter::new(public),
            account: Limiter::new(account),
            ipv6_prefix,
        }
    }

    /// The public limit's key for a client address ([`address_key`]).
    pub fn client_key(&self, ip: Option<&str>) -> String {
        ip.map_or_else(
            || "unknown".to_owned(),
            |ip| address_key(ip, self.ipv6_prefix),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_burst_of_count_passes_then_one_per_interval() {
        let limiter = Limiter::new(Rate::parse("3/1m").unwrap());
        for _ in 0..3 {
            assert!(limiter.check("ip", at(0)).is_ok());
        }
        let wait = limiter.check("ip", at(0)).unwrap_err();
        assert_eq!(wait.as_secs(), 20, "one every 20 s");
        assert!(limiter.check("other-ip", at(0)).is_ok(), "keys are apart");
        assert!(limiter.check("ip", at(19)).is_err());
        assert!(limiter.check("ip", at(20)).is_ok());
        assert!(limiter.check("ip", at(20)).is_err());
        for _ in 0..3 {
            assert!(
                limiter.check("ip", at(200)).is_ok(),
                "idle refills the burst"
            );
        }
    }

    #[test]
    fn an_ipv6_client_is_its_prefix_and_an_ipv4_client_its_address() {
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1", 64),
            address_key("2001:db8:1:2:ffff:1:2:3", 64)
        );
        assert_eq!(address_key("2001:db8:1:2::1", 64), "2001:db8:1:2::/64");
        assert_ne!(
            address_key("2001:db8:1:2::1", 64),
            address_key("2001:db8:1:3::1", 64)
        );
        assert_eq!(address_key("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(address_key("::ffff:10.1.2.3", 64), "10.1.2.3");
        assert_eq!(address_key("10.1.2.3", 64), "10.1.2.3");
    }

    #[test]
    fn past_the_key_table_new_keys_share_one_bucket_instead_of_passing() {
        let limiter = Limiter::new(Rate::parse("2/1h").unwrap());
        for n in 0..MAX_KEYS {
            limiter.check(&format!("k{n}"), at(0)).unwrap();
        }
        assert!(limiter.check("new-1", at(1)).is_ok());
        assert!(limiter.check("new-2", at(1)).is_ok());
        assert!(
            limiter.check("new-3", at(1)).is_err(),
            "new keys share the overflow bucket's allowance"
        );
    }

    #[test]
    fn rates_parse_or_say_why_not() {
        assert_eq!(
            Rate::parse("60/1m").unwrap(),
            Some(Rate {
                count: 60,
                per: std::time::Duration::from_secs(60)
            })
        );
        assert_eq!(Rate::parse("off").unwrap(), None);
        for bad in ["60", "0/1m", "x/1m", "5/0s", "5/2d", "-1/1m"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert!(Limiter::new(None).check("k", at(0)).is_ok());
    }
}
