use clap::Parser;
use projectors::config::{Cli, Command, RebuildConfig};
use projectors::projection::Projection;
use projectors::rebuild::{self, RebuildOptions};
use projectors::runner::RunnerSettings;
use projectors::{db, status, Application, Config};
use service_kit::kafka::Topics;
use sqlx::Connection as _;

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
        Command::Rebuild(config) => rebuild(config).await,
        Command::Status { kafka, database } => status::print(&kafka, &database).await,
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(service_kit::server::shutdown_signal()).await
}

async fn rebuild(config: RebuildConfig) -> anyhow::Result<()> {
    let projections: Vec<Projection> = match &config.projection {
        Some(name) if !config.all => vec![rebuild::projection_named(name)?],
        _ => Projection::ALL.to_vec(),
    };
    let settings = RunnerSettings {
        topics: Topics::new(&config.kafka.topic_prefix),
        kafka: config.kafka.clone(),
        batch_size: config.batch_size.max(1),
        batch_linger: std::time::Duration::from_millis(config.batch_linger_ms),
    };
    let options = RebuildOptions {
        keep_old: config.keep_old,
        progress: true,
    };
    tokio::select! {
        result = rebuild::rebuild(&projections, &settings, &config.database, &options) => result,
        () = service_kit::server::shutdown_signal() => {
            // Dropping the rebuild rolled back any swap in flight: the live tables are as they
            // were. Clear the half-built schema if nothing holds it; else the next rebuild will.
            eprintln!("interrupted; the live projections are untouched");
            let rebuild_schema = rebuild::rebuild_schema(&config.database.database_schema);
            let options = config.database.connect_options();
            let connected = match options {
                Ok(options) => sqlx::PgConnection::connect_with(&options).await.ok(),
                Err(_) => None,
            };
            if let Some(mut conn) = connected {
                let _ = sqlx::query("SET lock_timeout = '2s'").execute(&mut conn).await;
                let _ = rebuild::drop_schema(&mut conn, &rebuild_schema).await;
            }
            std::process::exit(130);
        }
    }
}
