//! Referrals: the codes customers share. Attribution, qualification and rewards grow here.

pub mod code;

pub use code::ReferralCode;
