//! Rewards: what customers earn, exactly once, and take to checkout as coupons or points.

pub mod catalog;
pub mod coupon;
pub mod redemption;
pub mod service;
