//! Customers: registration, look-up and updates.

pub mod email;
pub mod graphql;
pub mod service;

pub use email::EmailAddress;
