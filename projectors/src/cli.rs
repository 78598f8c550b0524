//! What the subcommands other than `run` do at the terminal: printing and retrying dead letters,
//! and a rebuild that a signal interrupts.

use service_kit::kafka::Topics;
use service_kit::metrics::Registry;
use service_kit::server::Listener;
use sqlx::Connection as _;

use crate::config::{DeadLetterCommand, RebuildConfig};
use crate::projection::Projection;
use crate::rebuild::{self, RebuildOptions};
use crate::{db, dead_letter};

/// `projectors dead-letters list|retry`.
pub async fn dead_letters(command: DeadLetterCommand) -> anyhow::Result<()> {
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

/// `projectors rebuild`, until done or until `shutdown`; then the process exits with 130.
pub async fn rebuild(config: RebuildConfig, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let projections: Vec<Projection> = match &config.projection {
        Some(name) if !config.all => vec![rebuild::projection_named(name)?],
        _ => Projection::ALL.to_vec(),
    };
    let settings = config.projections.runner_settings();
    let options = RebuildOptions {
        keep_old: config.keep_old,
        progress: true,
        metrics: Registry::default(),
    };
    if let Some(addr) = &config.metrics_listen {
        let listener = Listener::bind(addr).await?;
        let router = axum::Router::new().route("/metrics", axum::routing::get(options.metrics.scrape()));
        // Ends with the process, which ends with the rebuild.
        tokio::spawn(service_kit::server::serve(
            listener,
            router,
            service_kit::server::DEFAULT_HEADER_READ_TIMEOUT,
            std::future::pending(),
        ));
    }
    tokio::select! {
        result = rebuild::rebuild(&projections, &settings, &config.projections.database, &options) => result,
        () = shutdown => {
            eprintln!("interrupted; the live projections are untouched");
            clear_interrupted(&config).await;
            std::process::exit(130);
        }
    }
}

/// Dropping the rebuild rolled back any swap in flight: the live tables are as they were. Clears
/// the half-built schema if nothing holds it; else the next rebuild will.
async fn clear_interrupted(config: &RebuildConfig) {
    let rebuild_schema = rebuild::rebuild_schema(&config.projections.database.database_schema);
    let Ok(options) = config.projections.database.connect_options() else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect_with(&options).await {
        let _ = sqlx::query("SET lock_timeout = '2s'").execute(&mut conn).await;
        let _ = rebuild::drop_schema(&mut conn, &rebuild_schema).await;
    }
}
