use clap::Parser;
use projectors::config::{Cli, Command};
use projectors::{db, Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init();
    match Cli::parse().command {
        Command::Migrate { database } => {
            db::migrate(&database.pool()?, &database.database_schema).await?;
            tracing::info!(schema = %database.database_schema, "migrations applied");
            Ok(())
        }
        Command::Run(config) => run(config).await,
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}
