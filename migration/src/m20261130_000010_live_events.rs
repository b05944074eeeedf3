use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::index;

/// Live events for subscriptions on SQLite, where each process polls this table (writers
/// commit one at a time there, so ids follow commit order). PostgreSQL sends them with NOTIFY
/// and leaves the table empty.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LiveEvents::Table)
                    .if_not_exists()
                    .col(big_integer(LiveEvents::Id).auto_increment().primary_key())
                    .col(text(LiveEvents::Payload))
                    .col(timestamp_with_time_zone(LiveEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_live_events_created",
            LiveEvents::Table,
            &[LiveEvents::CreatedAt],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LiveEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone)]
enum LiveEvents {
    Table,
    Id,
    Payload,
    CreatedAt,
}
