use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::index;

/// Loyalty: the program's settings (one row), points lots and what consumed them, tiers and each
/// customer's time in them, badges and their awards, the rewards catalog, and the rollups the
/// leaderboard reads instead of the ledger (per day, and all-time totals).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .create_table(
                Table::create()
                    .table(ProgramSettings::Table)
                    .if_not_exists()
                    .col(integer(ProgramSettings::Id).primary_key())
                    .col(big_integer(ProgramSettings::PointsPerUnit).default(1))
                    .col(integer_null(ProgramSettings::PointsExpireAfterDays))
                    .col(integer(ProgramSettings::PointsPendingDays).default(0))
                    .col(big_integer(ProgramSettings::PointValue).default(1))
                    .col(string(ProgramSettings::TierMetric).default("LIFETIME_POINTS"))
                    .col(string(ProgramSettings::TierPeriod).default("LIFETIME"))
                    .col(string(ProgramSettings::TierDowngrade).default("NEVER"))
                    .col(integer(ProgramSettings::TierGraceDays).default(0))
                    .col(integer(ProgramSettings::ExpiryNoticeDays).default(7))
                    .col(string_null(ProgramSettings::UpdatedBy))
                    .col(timestamp_with_time_zone_null(ProgramSettings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("INSERT INTO program_settings (id) VALUES (1)")
            .await?;

        for column in [
            ColumnDef::new(PointsLedger::Description)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            timestamp_with_time_zone_null(PointsLedger::EarnedAt),
            timestamp_with_time_zone_null(PointsLedger::AvailableAt),
            string_null(PointsLedger::Actor),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PointsLedger::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // Entries written before: the sentence moves to `description`, `reason` becomes a code.
        db.execute_unprepared(
            "UPDATE points_ledger SET description = reason, earned_at = created_at, \
             reason = CASE \
               WHEN source_kind = 'reward_reversal' THEN 'REVERSAL' \
               WHEN reason LIKE '%milestone%' THEN 'MILESTONE' \
               ELSE 'REFERRAL_REWARD' END",
        )
        .await?;
        index(
            manager,
            "ix_points_ledger_customer_created",
            PointsLedger::Table,
            &[PointsLedger::CustomerId, PointsLedger::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_points_ledger_expires",
            PointsLedger::Table,
            &[PointsLedger::ExpiresAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PointsConsumptions::Table)
                    .if_not_exists()
                    .col(pk_uuid(PointsConsumptions::Id))
                    .col(uuid(PointsConsumptions::CustomerId))
                    .col(uuid(PointsConsumptions::DebitId))
                    .col(uuid(PointsConsumptions::LotId))
                    .col(big_integer(PointsConsumptions::Amount))
                    .col(timestamp_with_time_zone(PointsConsumptions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_points_consumptions_pair",
            PointsConsumptions::Table,
            &[PointsConsumptions::DebitId, PointsConsumptions::LotId],
            true,
        )
        .await?;
        index(
            manager,
            "ix_points_consumptions_lot",
            PointsConsumptions::Table,
            &[PointsConsumptions::LotId],
            false,
        )
        .await?;
        index(
            manager,
            "ix_points_consumptions_customer",
            PointsConsumptions::Table,
            &[PointsConsumptions::CustomerId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tiers::Table)
                    .if_not_exists()
                    .col(pk_uuid(Tiers::Id))
                    .col(string_uniq(Tiers::Name))
                    .col(big_integer_uniq(Tiers::Threshold))
                    .col(big_integer(Tiers::MultiplierMilli))
                    .col(json(Tiers::Perks))
                    .col(timestamp_with_time_zone(Tiers::CreatedAt))
                    .col(timestamp_with_time_zone(Tiers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for column in [
            uuid_null(Customers::TierId),
            timestamp_with_time_zone_null(Customers::TierBelowSince),
            timestamp_with_time_zone_null(Customers::TierCheckedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Customers::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        index(
            manager,
            "ix_customers_tier",
            Customers::Table,
            &[Customers::TierId],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(TierPeriods::Table)
                    .if_not_exists()
                    .col(pk_uuid(TierPeriods::Id))
                    .col(uuid(TierPeriods::CustomerId))
                    .col(uuid_null(TierPeriods::TierId))
                    .col(string(TierPeriods::TierName))
                    .col(string(TierPeriods::Reason))
                    .col(timestamp_with_time_zone(TierPeriods::StartedAt))
                    .col(timestamp_with_time_zone_null(TierPeriods::EndedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_tier_periods_customer",
            TierPeriods::Table,
            &[TierPeriods::CustomerId, TierPeriods::StartedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Badges::Table)
                    .if_not_exists()
                    .col(pk_uuid(Badges::Id))
                    .col(string_uniq(Badges::Key))
                    .col(string(Badges::Name))
                    .col(text_null(Badges::Description))
                    .col(string(Badges::Rule))
                    .col(big_integer(Badges::Threshold))
                    .col(uuid_null(Badges::BackfillCursor))
                    .col(timestamp_with_time_zone_null(Badges::BackfilledAt))
                    .col(timestamp_with_time_zone(Badges::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CustomerBadges::Table)
                    .if_not_exists()
                    .col(pk_uuid(CustomerBadges::Id))
                    .col(uuid(CustomerBadges::CustomerId))
                    .col(uuid(CustomerBadges::BadgeId))
                    .col(timestamp_with_time_zone(CustomerBadges::AwardedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_customer_badges_award",
            CustomerBadges::Table,
            &[CustomerBadges::CustomerId, CustomerBadges::BadgeId],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(RewardOptions::Table)
                    .if_not_exists()
                    .col(pk_uuid(RewardOptions::Id))
                    .col(string(RewardOptions::Name))
                    .col(big_integer(RewardOptions::PointsCost))
                    .col(string(RewardOptions::Kind))
                    .col(big_integer(RewardOptions::Amount))
                    .col(uuid_null(RewardOptions::MinTierId))
                    .col(boolean(RewardOptions::Active))
                    .col(timestamp_with_time_zone(RewardOptions::CreatedAt))
                    .col(timestamp_with_time_zone(RewardOptions::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeaderboardDays::Table)
                    .if_not_exists()
                    .col(pk_uuid(LeaderboardDays::Id))
                    .col(string(LeaderboardDays::Metric))
                    .col(uuid(LeaderboardDays::CustomerId))
                    .col(string(LeaderboardDays::Day))
                    .col(big_integer(LeaderboardDays::Value))
                    .col(timestamp_with_time_zone(LeaderboardDays::ReachedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_leaderboard_days_cell",
            LeaderboardDays::Table,
            &[
                LeaderboardDays::Metric,
                LeaderboardDays::CustomerId,
                LeaderboardDays::Day,
            ],
            true,
        )
        .await?;
        index(
            manager,
            "ix_leaderboard_days_range",
            LeaderboardDays::Table,
            &[LeaderboardDays::Metric, LeaderboardDays::Day],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeaderboardTotals::Table)
                    .if_not_exists()
                    .col(pk_uuid(LeaderboardTotals::Id))
                    .col(string(LeaderboardTotals::Metric))
                    .col(uuid(LeaderboardTotals::CustomerId))
                    .col(big_integer(LeaderboardTotals::Value))
                    .col(timestamp_with_time_zone(LeaderboardTotals::ReachedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_leaderboard_totals_cell",
            LeaderboardTotals::Table,
            &[LeaderboardTotals::Metric, LeaderboardTotals::CustomerId],
            true,
        )
        .await?;
        // All-time rankings and a customer's own rank read this index in order.
        index(
            manager,
            "ix_leaderboard_totals_rank",
            LeaderboardTotals::Table,
            &[
                LeaderboardTotals::Metric,
                LeaderboardTotals::Value,
                LeaderboardTotals::ReachedAt,
            ],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LeaderboardTotals::Table.into_iden(),
            LeaderboardDays::Table.into_iden(),
            RewardOptions::Table.into_iden(),
            CustomerBadges::Table.into_iden(),
            Badges::Table.into_iden(),
            TierPeriods::Table.into_iden(),
            Tiers::Table.into_iden(),
            PointsConsumptions::Table.into_iden(),
            ProgramSettings::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone)]
enum ProgramSettings {
    Table,
    Id,
    PointsPerUnit,
    PointsExpireAfterDays,
    PointsPendingDays,
    PointValue,
    TierMetric,
    TierPeriod,
    TierDowngrade,
    TierGraceDays,
    ExpiryNoticeDays,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum PointsLedger {
    Table,
    CustomerId,
    Description,
    EarnedAt,
    AvailableAt,
    Actor,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum PointsConsumptions {
    Table,
    Id,
    CustomerId,
    DebitId,
    LotId,
    Amount,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Tiers {
    Table,
    Id,
    Name,
    Threshold,
    MultiplierMilli,
    Perks,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum Customers {
    Table,
    TierId,
    TierBelowSince,
    TierCheckedAt,
}

#[derive(DeriveIden, Clone)]
enum TierPeriods {
    Table,
    Id,
    CustomerId,
    TierId,
    TierName,
    Reason,
    StartedAt,
    EndedAt,
}

#[derive(DeriveIden, Clone)]
enum Badges {
    Table,
    Id,
    Key,
    Name,
    Description,
    Rule,
    Threshold,
    BackfillCursor,
    BackfilledAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum CustomerBadges {
    Table,
    Id,
    CustomerId,
    BadgeId,
    AwardedAt,
}

#[derive(DeriveIden, Clone)]
enum RewardOptions {
    Table,
    Id,
    Name,
    PointsCost,
    Kind,
    Amount,
    MinTierId,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum LeaderboardDays {
    Table,
    Id,
    Metric,
    CustomerId,
    Day,
    Value,
    ReachedAt,
}

#[derive(DeriveIden, Clone)]
enum LeaderboardTotals {
    Table,
    Id,
    Metric,
    CustomerId,
    Value,
    ReachedAt,
}
