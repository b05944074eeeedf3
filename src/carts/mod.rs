//! Carts and the abandonment sequence: a reminder, a discount, a last call, stopped the moment
//! the shopper buys, empties the cart or unsubscribes.

pub mod abandonment;
pub mod recommendations;
pub mod service;
