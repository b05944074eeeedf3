//! sea-orm entities, one file a table. Behaviour lives in the capability folders, not here.

pub mod customer;
pub mod server_key;
