use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::{Referrals, index};

/// Orders and their refunds, the rewards paid for referrals, and the append-only points ledger.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(pk_uuid(Orders::Id))
                    .col(string(Orders::ExternalId))
                    .col(uuid(Orders::CustomerId))
                    .col(big_integer(Orders::Amount))
                    .col(big_integer(Orders::RefundedAmount))
                    .col(string(Orders::Currency))
                    .col(json(Orders::Items))
                    .col(string_null(Orders::CartExternalId))
                    .col(string(Orders::Fingerprint))
                    .col(timestamp_with_time_zone(Orders::PlacedAt))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Orders::Table, Orders::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Replays of an order are no-ops: the externalId decides.
        index(
            manager,
            "uq_orders_external_id",
            Orders::Table,
            &[Orders::ExternalId],
            true,
        )
        .await?;
        index(
            manager,
            "ix_orders_customer",
            Orders::Table,
            &[Orders::CustomerId, Orders::PlacedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .if_not_exists()
                    .col(pk_uuid(Refunds::Id))
                    .col(uuid(Refunds::OrderId))
                    .col(string(Refunds::RefundKey))
                    .col(big_integer(Refunds::Amount))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Refunds::Table, Refunds::OrderId)
                            .to(Orders::Table, Orders::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_refunds_order_refund_key",
            Refunds::Table,
            &[Refunds::OrderId, Refunds::RefundKey],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Rewards::Table)
                    .if_not_exists()
                    .col(pk_uuid(Rewards::Id))
                    .col(uuid(Rewards::CustomerId))
                    .col(uuid_null(Rewards::ReferralId))
                    .col(string(Rewards::Side))
                    .col(string(Rewards::Kind))
                    .col(big_integer(Rewards::Amount))
                    .col(string_null(Rewards::CouponCode))
                    .col(string(Rewards::Status))
                    .col(string(Rewards::DedupeKey))
                    .col(integer_null(Rewards::Milestone))
                    .col(timestamp_with_time_zone_null(Rewards::ReleaseAt))
                    .col(timestamp_with_time_zone_null(Rewards::IssuedAt))
                    .col(timestamp_with_time_zone_null(Rewards::RedeemedAt))
                    .col(timestamp_with_time_zone_null(Rewards::ReversedAt))
                    .col(timestamp_with_time_zone(Rewards::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Rewards::Table, Rewards::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Rewards::Table, Rewards::ReferralId)
                            .to(Referrals::Table, Referrals::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Never paid twice: one reward per referral and side, and one per natural key.
        index(
            manager,
            "uq_rewards_referral_side",
            Rewards::Table,
            &[Rewards::ReferralId, Rewards::Side],
            true,
        )
        .await?;
        index(
            manager,
            "uq_rewards_dedupe_key",
            Rewards::Table,
            &[Rewards::DedupeKey],
            true,
        )
        .await?;
        index(
            manager,
            "uq_rewards_coupon_code",
            Rewards::Table,
            &[Rewards::CouponCode],
            true,
        )
        .await?;
        index(
            manager,
            "ix_rewards_customer",
            Rewards::Table,
            &[Rewards::CustomerId],
            false,
        )
        .await?;
        index(
            manager,
            "ix_rewards_release",
            Rewards::Table,
            &[Rewards::Status, Rewards::ReleaseAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PointsLedger::Table)
                    .if_not_exists()
                    .col(pk_uuid(PointsLedger::Id))
                    .col(uuid(PointsLedger::CustomerId))
                    .col(big_integer(PointsLedger::Delta))
                    .col(string(PointsLedger::Reason))
                    .col(string(PointsLedger::SourceKind))
                    .col(string(PointsLedger::SourceId))
                    .col(timestamp_with_time_zone_null(PointsLedger::ExpiresAt))
                    .col(timestamp_with_time_zone(PointsLedger::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PointsLedger::Table, PointsLedger::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One ledger entry per source: a credit or debit is written once.
        index(
            manager,
            "uq_points_ledger_source",
            PointsLedger::Table,
            &[PointsLedger::SourceKind, PointsLedger::SourceId],
            true,
        )
        .await?;
        index(
            manager,
            "ix_points_ledger_customer",
            PointsLedger::Table,
            &[PointsLedger::CustomerId],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PointsLedger::Table.into_iden(),
            Rewards::Table.into_iden(),
            Refunds::Table.into_iden(),
            Orders::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone)]
enum Customers {
    Table,
    Id,
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
    Id,
    ExternalId,
    CustomerId,
    Amount,
    RefundedAmount,
    Currency,
    Items,
    CartExternalId,
    Fingerprint,
    PlacedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Refunds {
    Table,
    Id,
    OrderId,
    RefundKey,
    Amount,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Rewards {
    Table,
    Id,
    CustomerId,
    ReferralId,
    Side,
    Kind,
    Amount,
    CouponCode,
    Status,
    DedupeKey,
    Milestone,
    ReleaseAt,
    IssuedAt,
    RedeemedAt,
    ReversedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum PointsLedger {
    Table,
    Id,
    CustomerId,
    Delta,
    Reason,
    SourceKind,
    SourceId,
    ExpiresAt,
    CreatedAt,
}
