//! Database migrations: the only way Tandem's schema changes. Each file is one step and runs on both
//! SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_server_keys;
mod m20261122_000002_create_customers;
mod m20261122_000003_create_referrals;
mod m20261122_000004_create_orders_rewards_points;
mod m20261122_000005_create_email_and_carts;
mod m20261123_000006_faults_and_races;
mod m20261130_000007_loyalty;
mod m20261130_000008_marketing_spend;
mod m20261130_000009_metrics_rollups;
mod m20261130_000010_live_events;
pub mod m20261202_000011_kept_points;
mod m20261202_000012_program_version;
mod m20261203_000013_kept_counters;
mod m20261207_000014_leaderboard_queue;
pub mod rollups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_server_keys::Migration),
            Box::new(m20261122_000002_create_customers::Migration),
            Box::new(m20261122_000003_create_referrals::Migration),
            Box::new(m20261122_000004_create_orders_rewards_points::Migration),
            Box::new(m20261122_000005_create_email_and_carts::Migration),
            Box::new(m20261123_000006_faults_and_races::Migration),
            Box::new(m20261130_000007_loyalty::Migration),
            Box::new(m20261130_000008_marketing_spend::Migration),
            Box::new(m20261130_000009_metrics_rollups::Migration),
            Box::new(m20261130_000010_live_events::Migration),
            Box::new(m20261202_000011_kept_points::Migration),
            Box::new(m20261202_000012_program_version::Migration),
            Box::new(m20261203_000013_kept_counters::Migration),
            Box::new(m20261207_000014_leaderboard_queue::Migration),
        ]
    }
}
