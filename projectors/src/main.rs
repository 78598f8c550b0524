use clap::Parser;
use projectors::config::{Cli, Command};
use projectors::{cli, db, status, Application};

fn main() -> anyhow::Result<()> {
    service_kit::server::run_main("projectors", || run(Cli::parse()))
}

/// Runs the command; when it fails because PostgreSQL could not be reached, the error says why.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let database = cli.command.database().clone();
    match execute(cli.command).await {
        Err(error) => Err(database.explain(error).await),
        done => done,
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate { database } => {
            db::migrate(&database.pool()?, &database.database_schema).await?;
            tracing::info!(schema = %database.database_schema, "migrations applied");
            Ok(())
        }
        Command::Run(config) => service_kit::server::run::<Application>(config).await,
        Command::Rebuild(config) => cli::rebuild(config, service_kit::server::shutdown_signal()).await,
        Command::Status { kafka, database } => status::print(&kafka, &database).await,
        Command::DeadLetters(command) => cli::dead_letters(command).await,
    }
}
