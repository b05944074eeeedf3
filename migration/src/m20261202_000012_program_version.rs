use sea_orm_migration::prelude::*;

/// A version for the program's configuration (its settings, tiers and badges), raised by every
/// change to them in the changing transaction: a process that holds the configuration read at
/// the version it sees need not read it again.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ProgramSettings::Table)
                    .add_column(
                        ColumnDef::new(ProgramSettings::Version)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ProgramSettings::Table)
                    .drop_column(ProgramSettings::Version)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ProgramSettings {
    Table,
    Version,
}
