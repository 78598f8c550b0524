use clap::Parser;
use projectors::config::{Cli, Command};
use projectors::{cli, db, status, Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::run("projectors", || run(Cli::parse())).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate { database } => {
            db::migrate(&database.pool()?, &database.database_schema).await?;
            tracing::info!(schema = %database.database_schema, "migrations applied");
            Ok(())
        }
        Command::Run(config) => {
            let app = Application::build(config).await?;
            app.run_until(service_kit::server::shutdown_signal()).await
        }
        Command::Rebuild(config) => cli::rebuild(config, service_kit::server::shutdown_signal()).await,
        Command::Status { kafka, database } => status::print(&kafka, &database).await,
        Command::DeadLetters(command) => cli::dead_letters(command).await,
    }
}
