//! Email addresses: refused when malformed, and compared in a normalized form so one mailbox cannot
//! register twice.

/// Longest address SMTP can carry (RFC 5321 path limit less the angle brackets).
const MAX_LENGTH: usize = 254;
const MAX_LOCAL_LENGTH: usize = 64;

/// A syntactically valid address, as given, with the form it is compared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    address: String,
    normalized: String,
}

impl EmailAddress {
    /// Accepts `local@domain` with an ASCII local part and a domain of at least two labels.
    /// The error says what is wrong, for the client to show.
    pub fn parse(input: &str) -> Result<Self, String> {
        let address = input.trim();
        if address.is_empty() {
            return Err("the email address is empty".into());
        }
        if address.len() > MAX_LENGTH {
            return Err(format!(
                "the email address is longer than {MAX_LENGTH} characters"
            ));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(format!("'{address}' has no @"));
        };
        if !valid_local_part(local) {
            return Err(format!(
                "'{address}' has an invalid part before the @ (letters, digits and . _ % + - are allowed, without leading, trailing or doubled dots)"
            ));
        }
        if !valid_domain(domain) {
            return Err(format!(
                "'{address}' does not end in a valid domain such as example.com"
            ));
        }
        Ok(Self {
            normalized: normalize(local, domain),
            address: address.to_owned(),
        })
    }

    /// The address as the customer gave it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// Lower case; for Gmail also without dots and `+tags`, which Gmail ignores.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LENGTH
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|b| b.is_ascii_digit()))
}

fn normalize(local: &str, domain: &str) -> String {
    let local = local.to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    if domain == "gmail.com" || domain == "googlemail.com" {
        let without_tag = local.split('+').next().unwrap_or_default();
        format!("{}@gmail.com", without_tag.replace('.', ""))
    } else {
        format!("{local}@{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_addresses_are_accepted_as_given() {
        for address in [
            "a@b.co",
            "first.last@example.com",
            "x+tag@sub.example.org",
            "o'brien@example.ie",
        ] {
            assert_eq!(EmailAddress::parse(address).unwrap().as_str(), address);
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for address in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            ".a@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b.c",
            "a@1.23",
            "ä@b.com",
            "a@b..com",
        ] {
            assert!(EmailAddress::parse(address).is_err(), "{address}");
        }
    }

    #[test]
    fn case_is_ignored_when_comparing() {
        let a = EmailAddress::parse("Ann@Example.COM").unwrap();
        let b = EmailAddress::parse("ann@example.com").unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }

    #[test]
    fn gmail_dots_and_tags_are_ignored_when_comparing() {
        let plain = EmailAddress::parse("annsmith@gmail.com").unwrap();
        for variant in [
            "Ann.Smith@gmail.com",
            "annsmith+promo@gmail.com",
            "a.n.n.smith+x+y@googlemail.com",
        ] {
            assert_eq!(
                EmailAddress::parse(variant).unwrap().normalized(),
                plain.normalized(),
                "{variant}"
            );
        }
    }

    #[test]
    fn other_providers_keep_dots_and_tags() {
        let a = EmailAddress::parse("ann.smith+x@example.com").unwrap();
        assert_eq!(a.normalized(), "ann.smith+x@example.com");
    }
}
