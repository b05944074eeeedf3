//! Orders and refunds, as the merchant's backend reports them. An order can qualify a referral;
//! a refund can reverse one.

pub mod refunds;
pub mod service;
