use clap::Parser;
use projectors::config::{Cli, Command, DeadLetterCommand, RebuildConfig};
use projectors::projection::Projection;
use projectors::rebuild::{self, RebuildOptions};
use projectors::runner::RunnerSettings;
use projectors::{db, dead_letter, status, Application, Config};
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
        Command::DeadLetters(command) => dead_letters(command).await,
    }
}

async fn dead_letters(command: DeadLetterCommand) -> anyhow::Result<()> {
    match command {
        DeadLetterCommand::List { projection, database } => {
            db::check_schema(&database.database_schema)?;
            if let Some(name) = &projection {
                rebuild::projection_named(name)?;
            }
            let letters = dead_letter::list(&database.pool()?, projection.as_deref()).await?;
            println!("{} dead letters in schema {}", letters.len(), database.database_schema);
            for letter in letters {
                let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
                println!(
                    "{}  {}  partition {} offset {}  type {}  aggregate {}  at {}\n    error: {}",
                    letter.id,
                    letter.projection,
                    letter.partition,
                    letter.offset,
                    or_dash(letter.event_type),
                    or_dash(letter.aggregate_id.map(|id| id.to_string())),
                    letter
                        .dead_lettered_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    letter.error
                );
            }
            Ok(())
        }
        DeadLetterCommand::Retry { id, kafka, database } => {
            db::check_schema(&database.database_schema)?;
            let topic = Topics::new(&kafka.topic_prefix).events;
            let projection = dead_letter::retry(&database.pool()?, &topic, id).await?;
            println!("dead letter {id} applied to {} and removed", projection.name());
            Ok(())
        }
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
