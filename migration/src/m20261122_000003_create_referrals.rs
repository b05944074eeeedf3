use sea_orm_migration::{prelude::*, schema::*};

/// Campaigns, tracked clicks, referrals with the decisions taken on them, and the history of
/// every email address a customer has used (fraud rules compare against all of them).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .if_not_exists()
                    .col(pk_uuid(Campaigns::Id))
                    .col(string(Campaigns::Name))
                    .col(string(Campaigns::ReferrerRewardKind))
                    .col(big_integer(Campaigns::ReferrerRewardAmount))
                    .col(string(Campaigns::RefereeRewardKind))
                    .col(big_integer(Campaigns::RefereeRewardAmount))
                    .col(big_integer(Campaigns::MinOrderAmount))
                    .col(integer(Campaigns::QualifyWithinDays))
                    .col(integer(Campaigns::HoldDays))
                    .col(integer_null(Campaigns::MaxRewardsPerReferrer))
                    .col(json(Campaigns::Milestones))
                    .col(string_null(Campaigns::LandingUrl))
                    .col(timestamp_with_time_zone_null(Campaigns::StartsAt))
                    .col(timestamp_with_time_zone_null(Campaigns::EndsAt))
                    .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                    .col(timestamp_with_time_zone(Campaigns::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReferralClicks::Table)
                    .if_not_exists()
                    .col(pk_uuid(ReferralClicks::Id))
                    .col(uuid(ReferralClicks::ReferrerId))
                    .col(string(ReferralClicks::Code))
                    .col(string(ReferralClicks::Channel))
                    .col(string_null(ReferralClicks::IpHash))
                    .col(string_null(ReferralClicks::UserAgent))
                    .col(string(ReferralClicks::LandingUrl))
                    .col(timestamp_with_time_zone(ReferralClicks::ClickedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReferralClicks::Table, ReferralClicks::ReferrerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_referral_clicks_referrer",
            ReferralClicks::Table,
            &[ReferralClicks::ReferrerId, ReferralClicks::ClickedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Referrals::Table)
                    .if_not_exists()
                    .col(pk_uuid(Referrals::Id))
                    .col(uuid(Referrals::ReferrerId))
                    .col(uuid(Referrals::RefereeId))
                    .col(uuid_null(Referrals::CampaignId))
                    .col(string(Referrals::Code))
                    .col(string(Referrals::Status))
                    .col(string_null(Referrals::RejectionReason))
                    .col(boolean(Referrals::Flagged))
                    .col(string_null(Referrals::FlagReason))
                    .col(string_null(Referrals::ReviewNote))
                    .col(timestamp_with_time_zone_null(Referrals::ReviewedAt))
                    .col(uuid_null(Referrals::QualifyingOrderId))
                    .col(timestamp_with_time_zone_null(Referrals::QualifiedAt))
                    .col(timestamp_with_time_zone_null(Referrals::RewardedAt))
                    .col(timestamp_with_time_zone(Referrals::CreatedAt))
                    .col(timestamp_with_time_zone(Referrals::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Referrals::Table, Referrals::ReferrerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Referrals::Table, Referrals::RefereeId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // A customer is referred once.
        index(
            manager,
            "uq_referrals_referee_id",
            Referrals::Table,
            &[Referrals::RefereeId],
            true,
        )
        .await?;
        index(
            manager,
            "ix_referrals_referrer",
            Referrals::Table,
            &[Referrals::ReferrerId, Referrals::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_referrals_status",
            Referrals::Table,
            &[Referrals::Status, Referrals::Flagged],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReferralDecisions::Table)
                    .if_not_exists()
                    .col(pk_uuid(ReferralDecisions::Id))
                    .col(uuid(ReferralDecisions::ReferralId))
                    .col(string(ReferralDecisions::Rule))
                    .col(string(ReferralDecisions::Outcome))
                    .col(text(ReferralDecisions::Detail))
                    .col(timestamp_with_time_zone(ReferralDecisions::DecidedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReferralDecisions::Table, ReferralDecisions::ReferralId)
                            .to(Referrals::Table, Referrals::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_referral_decisions_referral",
            ReferralDecisions::Table,
            &[ReferralDecisions::ReferralId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CustomerEmails::Table)
                    .if_not_exists()
                    .col(pk_uuid(CustomerEmails::Id))
                    .col(uuid(CustomerEmails::CustomerId))
                    .col(string(CustomerEmails::EmailNormalized))
                    .col(timestamp_with_time_zone(CustomerEmails::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerEmails::Table, CustomerEmails::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_customer_emails_customer_email",
            CustomerEmails::Table,
            &[CustomerEmails::CustomerId, CustomerEmails::EmailNormalized],
            true,
        )
        .await?;
        index(
            manager,
            "ix_customer_emails_email",
            CustomerEmails::Table,
            &[CustomerEmails::EmailNormalized],
            false,
        )
        .await?;
        index(
            manager,
            "ix_customers_signup_ip",
            Customers::Table,
            &[Customers::SignupIpHash, Customers::CreatedAt],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_customers_signup_ip")
                    .table(Customers::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            CustomerEmails::Table.into_iden(),
            ReferralDecisions::Table.into_iden(),
            Referrals::Table.into_iden(),
            ReferralClicks::Table.into_iden(),
            Campaigns::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

pub(crate) async fn index<T: Iden + Clone + 'static, C: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[C],
    unique: bool,
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(table);
    for column in columns {
        statement.col(column.clone());
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}

#[derive(DeriveIden, Clone)]
enum Customers {
    Table,
    Id,
    SignupIpHash,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Campaigns {
    Table,
    Id,
    Name,
    ReferrerRewardKind,
    ReferrerRewardAmount,
    RefereeRewardKind,
    RefereeRewardAmount,
    MinOrderAmount,
    QualifyWithinDays,
    HoldDays,
    MaxRewardsPerReferrer,
    Milestones,
    LandingUrl,
    StartsAt,
    EndsAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum ReferralClicks {
    Table,
    Id,
    ReferrerId,
    Code,
    Channel,
    IpHash,
    UserAgent,
    LandingUrl,
    ClickedAt,
}

#[derive(DeriveIden, Clone)]
pub(crate) enum Referrals {
    Table,
    Id,
    ReferrerId,
    RefereeId,
    CampaignId,
    Code,
    Status,
    RejectionReason,
    Flagged,
    FlagReason,
    ReviewNote,
    ReviewedAt,
    QualifyingOrderId,
    QualifiedAt,
    RewardedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum ReferralDecisions {
    Table,
    Id,
    ReferralId,
    Rule,
    Outcome,
    Detail,
    DecidedAt,
}

#[derive(DeriveIden, Clone)]
enum CustomerEmails {
    Table,
    Id,
    CustomerId,
    EmailNormalized,
    CreatedAt,
}
