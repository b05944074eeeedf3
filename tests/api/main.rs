//! Black-box tests through HTTP, one module a capability. One binary keeps linking fast.

#[path = "../common/mod.rs"]
mod common;

mod architecture;
mod auth;
mod bounds;
mod campaigns;
mod caps;
mod carts;
mod cli;
mod concurrency;
mod customers;
mod demo;
mod emails;
mod extremes;
mod fuzz;
mod health;
mod hostile;
mod hostile_socket;
mod leaderboard;
mod lock_order;
mod loyalty;
mod metrics;
mod operations;
mod persisted_queries;
mod points_property;
mod processes;
mod rate_limits;
mod referrals;
mod schema;
mod statements;
mod subscriptions;
