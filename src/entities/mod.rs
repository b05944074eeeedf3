//! sea-orm entities, one file a table. Behaviour lives in the capability folders, not here.

pub mod badge;
pub mod campaign;
pub mod cart;
pub mod customer;
pub mod customer_badge;
pub mod customer_email;
pub mod email_outbox;
pub mod enums;
pub mod leaderboard_day;
pub mod leaderboard_total;
pub mod order;
pub mod order_line;
pub mod points_consumption;
pub mod points_ledger_entry;
pub mod product_view;
pub mod program_settings;
pub mod referral;
pub mod referral_click;
pub mod referral_decision;
pub mod refund;
pub mod reward;
pub mod reward_option;
pub mod server_key;
pub mod suppression;
pub mod tier;
pub mod tier_period;
