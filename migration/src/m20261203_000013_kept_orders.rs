use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

/// Order badges whose reads do not grow with a customer's history: each customer's rollup keeps
/// how many of their orders were not wholly refunded (`kept_orders`) and the runs of calendar
/// months with one of them (`order_months`), which the ORDERS and ORDER_STREAK_MONTHS badges
/// measure. This step fills both from the orders.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CustomerRollups::Table)
                    .add_column(
                        ColumnDef::new(CustomerRollups::KeptOrders)
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
                        ColumnDef::new(CustomerRollups::OrderMonths)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for sql in crate::rollups::kept_orders_statements(backend, "SELECT id FROM customers") {
            db.execute_raw(Statement::from_string(backend, sql)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [CustomerRollups::OrderMonths, CustomerRollups::KeptOrders] {
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
}
