//! Loyalty: the points ledger. Earning rules, expiry, tiers and badges grow here.

pub mod ledger;
