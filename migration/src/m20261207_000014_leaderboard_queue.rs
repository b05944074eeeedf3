use sea_orm_migration::{prelude::*, schema::*};

/// The leaderboard's queue: the changes a transaction makes to the leaderboard wait here, one
/// row each, until a reader or the worker adds them to the days and totals in a batch. Orders
/// then write one insert instead of two upserts on shared rows.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LeaderboardQueue::Table)
                    .if_not_exists()
                    .col(pk_uuid(LeaderboardQueue::Id))
                    .col(string(LeaderboardQueue::Metric))
                    .col(uuid(LeaderboardQueue::CustomerId))
                    .col(string(LeaderboardQueue::Day))
                    .col(big_integer(LeaderboardQueue::Delta))
                    .col(timestamp_with_time_zone(LeaderboardQueue::At))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LeaderboardQueue::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LeaderboardQueue {
    Table,
    Id,
    Metric,
    CustomerId,
    Day,
    Delta,
    At,
}
