use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::index;

/// The rollups the metrics read instead of scanning orders and the ledger: one row per customer
/// (signup, channel, referred or not, order count and revenue, the months after signup with an
/// order, points held), and on each order the time of the customer's previous one, so the
/// customers who ordered in any range are counted without `COUNT(DISTINCT …)`. Both are kept in
/// the writing transactions; this step fills them from the data already there.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CustomerRollups::Table)
                    .if_not_exists()
                    .col(uuid(CustomerRollups::CustomerId).primary_key())
                    .col(timestamp_with_time_zone(CustomerRollups::SignedUpAt))
                    .col(string(CustomerRollups::Channel))
                    .col(boolean(CustomerRollups::Referred))
                    .col(big_integer(CustomerRollups::Orders))
                    .col(big_integer(CustomerRollups::Gross))
                    .col(big_integer(CustomerRollups::Net))
                    .col(big_integer(CustomerRollups::ActiveMonths))
                    .col(big_integer(CustomerRollups::PointsBalance))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerRollups::Table, CustomerRollups::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_customer_rollups_signed_up",
            CustomerRollups::Table,
            &[CustomerRollups::SignedUpAt],
            false,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(timestamp_with_time_zone_null(Orders::PreviousPlacedAt))
                    .to_owned(),
            )
            .await?;
        // Counting the customers who ordered in a range reads only this index.
        manager
            .drop_index(
                Index::drop()
                    .name("ix_orders_placed")
                    .table(Orders::Table)
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_orders_placed_previous",
            Orders::Table,
            &[Orders::PlacedAt, Orders::PreviousPlacedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_referrals_qualified",
            Referrals::Table,
            &[Referrals::QualifiedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_points_ledger_reason_created",
            PointsLedger::Table,
            &[PointsLedger::Reason, PointsLedger::CreatedAt],
            false,
        )
        .await?;
        crate::rollups::rebuild_before_kept_points(manager.get_connection()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CustomerRollups::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone)]
enum CustomerRollups {
    Table,
    CustomerId,
    SignedUpAt,
    Channel,
    Referred,
    Orders,
    Gross,
    Net,
    ActiveMonths,
    PointsBalance,
}

#[derive(DeriveIden, Clone)]
enum Customers {
    Table,
    Id,
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
    PreviousPlacedAt,
    PlacedAt,
}

#[derive(DeriveIden, Clone)]
enum Referrals {
    Table,
    QualifiedAt,
}

#[derive(DeriveIden, Clone)]
enum PointsLedger {
    Table,
    Reason,
    CreatedAt,
}
