//! sea-orm entities, one file a table. Behaviour lives in the capability folders, not here.

pub mod campaign;
pub mod customer;
pub mod customer_email;
pub mod enums;
pub mod order;
pub mod points_ledger_entry;
pub mod referral;
pub mod referral_click;
pub mod referral_decision;
pub mod refund;
pub mod reward;
pub mod server_key;
