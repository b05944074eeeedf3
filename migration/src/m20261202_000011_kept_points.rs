use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

/// Points reads that do not grow with a customer's history. Each ledger entry keeps what is
/// still open of it (`remaining`: of a lot, the points left in it; of a debit, what it still
/// owes), so consuming, paying a debt, expiring and summing what is pending read only the open
/// rows, through partial indexes that hold nothing else. Each customer's rollup keeps their
/// lifetime points beside the points they hold. This step fills both from the consumptions.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The statement that sets `remaining` from the consumptions, for the entries of the customers
/// `customers` selects; `rollups::rebuild_where` runs it too.
pub fn remaining_from_consumptions(customers: &str) -> String {
    format!(
        "UPDATE points_ledger SET remaining = CASE \
           WHEN delta > 0 THEN delta - COALESCE((SELECT SUM(c.amount) FROM points_consumptions c \
             WHERE c.lot_id = points_ledger.id), 0) \
           ELSE -delta - COALESCE((SELECT SUM(c.amount) FROM points_consumptions c \
             WHERE c.debit_id = points_ledger.id), 0) \
         END \
         WHERE customer_id IN ({customers})"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PointsLedger::Table)
                    .add_column(
                        ColumnDef::new(PointsLedger::Remaining)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CustomerRollups::Table)
                    .add_column(
                        ColumnDef::new(CustomerRollups::PointsLifetime)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let statements = [
            // Every writer sets it; the lots ordered by it must not have a gap.
            "UPDATE points_ledger SET earned_at = created_at WHERE earned_at IS NULL".to_owned(),
            remaining_from_consumptions("SELECT id FROM customers"),
            "UPDATE customer_rollups SET points_lifetime = COALESCE((SELECT SUM(l.delta) \
               FROM points_ledger l WHERE l.customer_id = customer_rollups.customer_id \
               AND l.reason NOT IN ('REDEMPTION', 'EXPIRY')), 0)"
                .to_owned(),
            // A customer's period sums (tier windows) read their entries by date.
            "DROP INDEX ix_points_ledger_customer".to_owned(),
            "CREATE INDEX ix_points_ledger_customer_earned ON points_ledger (customer_id, earned_at)"
                .to_owned(),
            // Open lots, oldest earned first: what a debit consumes.
            "CREATE INDEX ix_points_ledger_open_lots ON points_ledger (customer_id, earned_at, id) \
               WHERE remaining > 0 AND delta > 0"
                .to_owned(),
            // Open lots by the day they become spendable: what is pending.
            "CREATE INDEX ix_points_ledger_open_pending ON points_ledger (customer_id, available_at) \
               WHERE remaining > 0 AND delta > 0"
                .to_owned(),
            // Open lots by expiry, one customer's (expiring soon) and everyone's (the pass).
            "CREATE INDEX ix_points_ledger_open_expiring ON points_ledger (customer_id, expires_at) \
               WHERE remaining > 0 AND delta > 0"
                .to_owned(),
            "DROP INDEX ix_points_ledger_expires".to_owned(),
            "CREATE INDEX ix_points_ledger_open_expires ON points_ledger (expires_at, id) \
               WHERE remaining > 0 AND delta > 0"
                .to_owned(),
            // Debits that still owe: what the next credits pay first.
            "CREATE INDEX ix_points_ledger_open_debts ON points_ledger (customer_id, id) \
               WHERE remaining > 0 AND delta < 0"
                .to_owned(),
        ];
        for sql in statements {
            db.execute_raw(Statement::from_string(backend, sql)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for sql in [
            "DROP INDEX ix_points_ledger_open_debts",
            "DROP INDEX ix_points_ledger_open_expires",
            "DROP INDEX ix_points_ledger_open_expiring",
            "DROP INDEX ix_points_ledger_open_pending",
            "DROP INDEX ix_points_ledger_open_lots",
            "DROP INDEX ix_points_ledger_customer_earned",
            "CREATE INDEX ix_points_ledger_customer ON points_ledger (customer_id)",
            "CREATE INDEX ix_points_ledger_expires ON points_ledger (expires_at)",
        ] {
            db.execute_raw(Statement::from_string(backend, sql)).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(CustomerRollups::Table)
                    .drop_column(CustomerRollups::PointsLifetime)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(PointsLedger::Table)
                    .drop_column(PointsLedger::Remaining)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum PointsLedger {
    Table,
    Remaining,
}

#[derive(DeriveIden)]
enum CustomerRollups {
    Table,
    PointsLifetime,
}
