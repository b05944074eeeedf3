use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .if_not_exists()
                    .col(pk_uuid(Customers::Id))
                    .col(string(Customers::ExternalId))
                    .col(string(Customers::Email))
                    .col(string(Customers::EmailNormalized))
                    .col(string_null(Customers::Name))
                    .col(string(Customers::ReferralCode))
                    .col(string(Customers::AcquisitionChannel))
                    .col(boolean(Customers::MarketingConsent))
                    .col(string_null(Customers::SignupReferralCode))
                    .col(string_null(Customers::SignupIpHash))
                    .col(string_null(Customers::DeviceId))
                    .col(timestamp_with_time_zone(Customers::CreatedAt))
                    .col(timestamp_with_time_zone(Customers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The unique indexes are the rules; their names are matched when a violation is mapped to
        // an error that names the field, so keep the column name inside each index name.
        for (name, column) in [
            ("uq_customers_external_id", Customers::ExternalId),
            ("uq_customers_email_normalized", Customers::EmailNormalized),
            ("uq_customers_referral_code", Customers::ReferralCode),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Customers::Table)
                        .col(column)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Customers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    ExternalId,
    Email,
    EmailNormalized,
    Name,
    ReferralCode,
    AcquisitionChannel,
    MarketingConsent,
    SignupReferralCode,
    SignupIpHash,
    DeviceId,
    CreatedAt,
    UpdatedAt,
}
