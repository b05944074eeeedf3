use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000003_create_referrals::index;

/// What exactly-once under races and faults needs from the schema: the subject an email belongs
/// to (a cart, an inviting customer), so its emails are found through an index instead of a
/// `LIKE` on the dedupe key; a cart's last processing error; and the indexes the order, referral
/// and recommendation paths were missing.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(EmailOutbox::Table)
                    .add_column(string_null(EmailOutbox::SubjectKey))
                    .to_owned(),
            )
            .await?;
        // Rows written before this column existed: their keys are `cart:<uuid>:…` and
        // `invite:<uuid>:…`, and a UUID is 36 characters.
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE email_outbox SET subject_key = substr(dedupe_key, 1, 41) \
             WHERE dedupe_key LIKE 'cart:%'",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE email_outbox SET subject_key = substr(dedupe_key, 1, 43) \
             WHERE dedupe_key LIKE 'invite:%'",
        )
        .await?;
        index(
            manager,
            "ix_email_outbox_subject",
            EmailOutbox::Table,
            &[EmailOutbox::SubjectKey, EmailOutbox::CreatedAt],
            false,
        )
        .await?;
        // Pruning finds old SENT rows without reading the queue.
        index(
            manager,
            "ix_email_outbox_sent",
            EmailOutbox::Table,
            &[EmailOutbox::Status, EmailOutbox::SentAt],
            false,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Carts::Table)
                    .add_column(text_null(Carts::LastError))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_product_views_product",
            ProductViews::Table,
            &[ProductViews::ProductId, ProductViews::ViewedAt],
            false,
        )
        .await?;
        index(
            manager,
            "ix_referrals_qualifying_order",
            Referrals::Table,
            &[Referrals::QualifyingOrderId],
            false,
        )
        .await?;
        // A cart that arrives after its order looks for the order that named it.
        index(
            manager,
            "ix_orders_cart",
            Orders::Table,
            &[Orders::CartExternalId],
            false,
        )
        .await?;
        Ok(())
    }
}

#[derive(DeriveIden, Clone)]
enum EmailOutbox {
    Table,
    SubjectKey,
    CreatedAt,
    Status,
    SentAt,
}

#[derive(DeriveIden, Clone)]
enum Carts {
    Table,
    LastError,
}

#[derive(DeriveIden, Clone)]
enum ProductViews {
    Table,
    ProductId,
    ViewedAt,
}

#[derive(DeriveIden, Clone)]
enum Referrals {
    Table,
    QualifyingOrderId,
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
    CartExternalId,
}
