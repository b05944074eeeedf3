use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::index;

/// The email outbox and suppression list, carts with their abandonment sequence, product views,
/// and order lines (for co-purchase recommendations).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EmailOutbox::Table)
                    .if_not_exists()
                    .col(pk_uuid(EmailOutbox::Id))
                    .col(string(EmailOutbox::Recipient))
                    .col(uuid_null(EmailOutbox::CustomerId))
                    .col(string(EmailOutbox::Template))
                    .col(json(EmailOutbox::Data))
                    .col(string(EmailOutbox::DedupeKey))
                    .col(boolean(EmailOutbox::Marketing))
                    .col(string(EmailOutbox::Status))
                    .col(integer(EmailOutbox::Attempts))
                    .col(timestamp_with_time_zone(EmailOutbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(EmailOutbox::LeaseUntil))
                    .col(text_null(EmailOutbox::LastError))
                    .col(string(EmailOutbox::MessageId))
                    .col(timestamp_with_time_zone_null(EmailOutbox::SentAt))
                    .col(timestamp_with_time_zone(EmailOutbox::CreatedAt))
                    .col(timestamp_with_time_zone(EmailOutbox::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // An email is written once per natural key (cart stage, reward, invite…).
        index(
            manager,
            "uq_email_outbox_dedupe_key",
            EmailOutbox::Table,
            &[EmailOutbox::DedupeKey],
            true,
        )
        .await?;
        index(
            manager,
            "ix_email_outbox_due",
            EmailOutbox::Table,
            &[EmailOutbox::Status, EmailOutbox::NextAttemptAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_email_outbox_customer",
            EmailOutbox::Table,
            &[
                EmailOutbox::CustomerId,
                EmailOutbox::Template,
                EmailOutbox::CreatedAt,
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Suppressions::Table)
                    .if_not_exists()
                    .col(string(Suppressions::EmailNormalized).primary_key())
                    .col(string(Suppressions::Reason))
                    .col(text_null(Suppressions::Detail))
                    .col(timestamp_with_time_zone(Suppressions::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Carts::Table)
                    .if_not_exists()
                    .col(pk_uuid(Carts::Id))
                    .col(string(Carts::ExternalId))
                    .col(uuid(Carts::CustomerId))
                    .col(json(Carts::Items))
                    .col(string_null(Carts::CheckoutUrl))
                    .col(string(Carts::Status))
                    .col(integer(Carts::Stage))
                    .col(timestamp_with_time_zone(Carts::LastChangedAt))
                    .col(timestamp_with_time_zone_null(Carts::NextStageAt))
                    .col(timestamp_with_time_zone_null(Carts::SequenceStartedAt))
                    .col(timestamp_with_time_zone_null(Carts::ClosedAt))
                    .col(timestamp_with_time_zone(Carts::CreatedAt))
                    .col(timestamp_with_time_zone(Carts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Carts::Table, Carts::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_carts_external_id",
            Carts::Table,
            &[Carts::ExternalId],
            true,
        )
        .await?;
        // The abandonment scan reads due carts through this index, not the whole table.
        index(
            manager,
            "ix_carts_due",
            Carts::Table,
            &[Carts::Status, Carts::NextStageAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_carts_customer",
            Carts::Table,
            &[Carts::CustomerId, Carts::Status],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductViews::Table)
                    .if_not_exists()
                    .col(pk_uuid(ProductViews::Id))
                    .col(uuid(ProductViews::CustomerId))
                    .col(string(ProductViews::ProductId))
                    .col(string_null(ProductViews::Name))
                    .col(big_integer_null(ProductViews::UnitPrice))
                    .col(string_null(ProductViews::Url))
                    .col(string_null(ProductViews::ImageUrl))
                    .col(timestamp_with_time_zone(ProductViews::ViewedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ProductViews::Table, ProductViews::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_product_views_customer",
            ProductViews::Table,
            &[ProductViews::CustomerId, ProductViews::ViewedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OrderLines::Table)
                    .if_not_exists()
                    .col(pk_uuid(OrderLines::Id))
                    .col(uuid(OrderLines::OrderId))
                    .col(string(OrderLines::ProductId))
                    .col(string_null(OrderLines::Name))
                    .col(big_integer(OrderLines::UnitPrice))
                    .col(big_integer(OrderLines::Quantity))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderLines::Table, OrderLines::OrderId)
                            .to(Orders::Table, Orders::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_order_lines_order",
            OrderLines::Table,
            &[OrderLines::OrderId],
            false,
        )
        .await?;
        index(
            manager,
            "ix_order_lines_product",
            OrderLines::Table,
            &[OrderLines::ProductId, OrderLines::OrderId],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OrderLines::Table.into_iden(),
            ProductViews::Table.into_iden(),
            Carts::Table.into_iden(),
            Suppressions::Table.into_iden(),
            EmailOutbox::Table.into_iden(),
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
}

#[derive(DeriveIden, Clone)]
enum EmailOutbox {
    Table,
    Id,
    Recipient,
    CustomerId,
    Template,
    Data,
    DedupeKey,
    Marketing,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LastError,
    MessageId,
    SentAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum Suppressions {
    Table,
    EmailNormalized,
    Reason,
    Detail,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Carts {
    Table,
    Id,
    ExternalId,
    CustomerId,
    Items,
    CheckoutUrl,
    Status,
    Stage,
    LastChangedAt,
    NextStageAt,
    SequenceStartedAt,
    ClosedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum ProductViews {
    Table,
    Id,
    CustomerId,
    ProductId,
    Name,
    UnitPrice,
    Url,
    ImageUrl,
    ViewedAt,
}

#[derive(DeriveIden, Clone)]
enum OrderLines {
    Table,
    Id,
    OrderId,
    ProductId,
    Name,
    UnitPrice,
    Quantity,
}
