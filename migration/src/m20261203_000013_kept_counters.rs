use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

/// Counters whose reads do not grow with a customer's history, kept in each customer's rollup:
/// how many of their orders were not wholly refunded (`kept_orders`) and the runs of calendar
/// months with one of them (`order_months`), which the ORDERS and ORDER_STREAK_MONTHS badges
/// measure, and what their debits still owe (`points_owed`), which tells a credit whether it has
/// a debt to pay. This step fills them from the orders and the ledger.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ColumnDef::new(CustomerRollups::KeptOrders)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(CustomerRollups::OrderMonths)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(CustomerRollups::PointsOwed)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        // One column a statement: SQLite adds one at a time.
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(CustomerRollups::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for sql in crate::rollups::kept_counters_statements(backend, "SELECT id FROM customers") {
            db.execute_raw(Statement::from_string(backend, sql)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            CustomerRollups::PointsOwed,
            CustomerRollups::OrderMonths,
            CustomerRollups::KeptOrders,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CustomerRollups::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CustomerRollups {
    Table,
    KeptOrders,
    OrderMonths,
    PointsOwed,
}
