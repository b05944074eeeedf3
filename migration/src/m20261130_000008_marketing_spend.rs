use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::index;

/// Marketing spend per channel and period, the input of CAC; the gross margin CLV is counted at;
/// and the indexes the metrics read
/// their ranges through (signups, clicks, referrals, orders, issued rewards).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MarketingSpend::Table)
                    .if_not_exists()
                    .col(pk_uuid(MarketingSpend::Id))
                    .col(string(MarketingSpend::Channel))
                    .col(big_integer(MarketingSpend::Amount))
                    .col(timestamp_with_time_zone(MarketingSpend::PeriodStart))
                    .col(timestamp_with_time_zone(MarketingSpend::PeriodEnd))
                    .col(string(MarketingSpend::RecordedBy))
                    .col(timestamp_with_time_zone(MarketingSpend::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ProgramSettings::Table)
                    .add_column(double(ProgramSettings::GrossMargin).default(1.0))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_marketing_spend_period",
            MarketingSpend::Table,
            &[MarketingSpend::PeriodStart, MarketingSpend::PeriodEnd],
            false,
        )
        .await?;
        index(
            manager,
            "ix_customers_created",
            Customers::Table,
            &[Customers::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_referral_clicks_at",
            ReferralClicks::Table,
            &[ReferralClicks::ClickedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_referrals_created",
            Referrals::Table,
            &[Referrals::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_orders_placed",
            Orders::Table,
            &[Orders::PlacedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_rewards_issued",
            Rewards::Table,
            &[Rewards::IssuedAt],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MarketingSpend::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone)]
enum MarketingSpend {
    Table,
    Id,
    Channel,
    Amount,
    PeriodStart,
    PeriodEnd,
    RecordedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Customers {
    Table,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum ReferralClicks {
    Table,
    ClickedAt,
}

#[derive(DeriveIden, Clone)]
enum Referrals {
    Table,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
    PlacedAt,
}

#[derive(DeriveIden, Clone)]
enum Rewards {
    Table,
    IssuedAt,
}

#[derive(DeriveIden, Clone)]
enum ProgramSettings {
    Table,
    GrossMargin,
}
