//! Referral codes: Crockford base32, generated from the operating system's CSPRNG, read forgivingly.

use std::fmt;

use crate::crockford::{self, ALPHABET};

/// Length of a generated code: 40 random bits.
pub const GENERATED_LENGTH: usize = 8;

/// Longest code accepted on input.
const MAX_LENGTH: usize = 32;

/// A referral code in its canonical form (upper case, Crockford alphabet).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferralCode(String);

impl ReferralCode {
    /// A fresh random code.
    pub fn generate() -> Result<Self, getrandom::Error> {
        crockford::random(GENERATED_LENGTH).map(Self)
    }

    /// Reads a code as a person typed it: case is ignored, `I` and `L` read as `1`, `O` as `0`,
    /// and hyphens and spaces are dropped. `None` when it cannot be a code.
    pub fn parse(input: &str) -> Option<Self> {
        let mut code = String::with_capacity(input.len());
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            code.push(c);
        }
        (4..=MAX_LENGTH).contains(&code.len()).then_some(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReferralCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ten_thousand_generated_codes_are_well_formed_and_distinct() {
        let codes: HashSet<ReferralCode> = (0..10_000)
            .map(|_| ReferralCode::generate().unwrap())
            .collect();
        assert_eq!(codes.len(), 10_000);
        for code in &codes {
            assert_eq!(code.as_str().len(), GENERATED_LENGTH);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(ReferralCode::parse(code.as_str()).as_ref(), Some(code));
        }
    }

    #[test]
    fn every_symbol_of_the_alphabet_is_used() {
        let seen: HashSet<u8> = (0..2_000)
            .flat_map(|_| ReferralCode::generate().unwrap().0.into_bytes())
            .collect();
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn look_ups_forgive_case_and_confusable_letters() {
        let canonical = ReferralCode::parse("10AB1Z0Q").unwrap();
        for typed in ["10ab1z0q", "IOAB LZOQ", "lo-ab-iz-oq"] {
            assert_eq!(
                ReferralCode::parse(typed).as_ref(),
                Some(&canonical),
                "{typed}"
            );
        }
    }

    #[test]
    fn impossible_codes_are_refused() {
        for typed in [
            "",
            "AB",
            "ABCU1234",
            "ABC$1234",
            &"A".repeat(40),
            "ÄBCD1234",
        ] {
            assert!(ReferralCode::parse(typed).is_none(), "{typed}");
        }
    }
}
