//! IP addresses are stored only as keyed hashes: equal addresses can be compared (for fraud rules)
//! without keeping the address itself.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

#[derive(Clone)]
pub struct IpHasher {
    key: Secret,
}

impl IpHasher {
    pub fn new(key: Secret) -> Self {
        Self { key }
    }

    /// A hex HMAC-SHA256 of the trimmed address.
    pub fn hash(&self, ip: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(ip.trim().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
