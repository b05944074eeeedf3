//! Campaigns: the double-sided rules a referral is paid under.

pub mod service;

pub use service::{CampaignRules, Milestone, RewardRule};
