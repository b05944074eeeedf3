//! Customers: registration, look-up and updates.

pub mod code;
pub mod email;
pub mod service;

pub use code::ReferralCode;
pub use email::EmailAddress;

/// The first word of a name: all that one side of a referral sees of the other.
pub fn first_name(name: Option<&str>) -> Option<String> {
    name.and_then(|n| n.split_whitespace().next())
        .map(str::to_owned)
}
