//! Referrals: codes, tracked links, attribution with fraud rules, qualification, rewards for both
//! sides exactly once, holds and reversals.

pub mod attribution;
pub mod attribution_rules;
pub mod decisions;
pub mod holds;
pub mod invites;
pub mod links;
pub mod pending;
pub mod qualification;
pub mod qualification_rules;
pub mod reversal;
pub mod review;
pub mod service;
