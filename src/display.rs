//! How amounts and rewards read in sentences shown to shoppers (emails, landing pages, points
//! history).

use crate::entities::enums::RewardKind;

/// A reward in words, for emails and landing pages: "500 points", "15% off", "10.00 USD off",
/// "10.00 USD store credit".
pub fn describe(kind: RewardKind, amount: i64, currency: &str) -> String {
    match kind {
        RewardKind::Points => format!("{amount} points"),
        RewardKind::PercentCoupon => format!("{amount}% off"),
        RewardKind::FixedCoupon => format!("{} off", money(amount, currency)),
        RewardKind::StoreCredit => format!("{} store credit", money(amount, currency)),
    }
}

/// Minor units as a decimal amount with its currency (two decimals).
pub fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", amount / 100, amount % 100)
}
