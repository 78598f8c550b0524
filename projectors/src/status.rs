//! `projectors status`: each projection's checkpoint and lag per partition, its dead letters, and
//! any rebuild.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use service_kit::database::DatabaseArgs;
use service_kit::kafka::{KafkaArgs, Topics};
use sqlx::PgPool;

use crate::projection::Projection;
use crate::{db, dead_letter, rebuild};

/// Prints the status of every projection in `database`'s schema.
pub async fn print(kafka: &KafkaArgs, database: &DatabaseArgs) -> anyhow::Result<()> {
    let live = &database.database_schema;
    db::check_schema(live)?;
    let topic = Topics::new(&kafka.topic_prefix).events;
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let partitions = service_kit::kafka::topics::partition_count(consumer.client(), &topic)? as i32;
    let mut highs = BTreeMap::new();
    for partition in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .with_context(|| format!("watermarks of {topic} partition {partition}"))?;
        highs.insert(partition, high);
    }
    let pool = database.pool()?;
    let rebuild_schema = rebuild::rebuild_schema(live);
    let running = rebuild::rebuild_running(&pool, live).await?;
    let rebuilding = rebuild_checkpoints(&pool, &rebuild_schema).await?;
    let dead_letters = dead_letter::counts(&pool).await?;

    println!("schema {live}, topic {topic} ({partitions} partitions)");
    for projection in Projection::ALL {
        let checkpoints = db::checkpoints(&pool, projection.name()).await?;
        let lags: Vec<(i32, Option<i64>, i64)> = highs
            .iter()
            .map(|(&p, &high)| {
                let next = checkpoints.get(&p).copied();
                (p, next, high - next.unwrap_or(0))
            })
            .collect();
        let total: i64 = lags.iter().map(|(_, _, lag)| lag).sum();
        let dead = dead_letters.get(projection.name()).copied().unwrap_or(0);
        println!("{}: lag {total}, dead letters {dead}", projection.name());
        for (partition, next, lag) in lags {
            let next = next.map_or_else(|| "-".to_owned(), |n| n.to_string());
            println!(
                "  partition {partition}: next offset {next}, high watermark {}, lag {lag}",
                highs[&partition]
            );
        }
        if let Some(rebuilt) = rebuilding.get(projection.name()) {
            let done: i64 = rebuilt.values().sum();
            let total: i64 = highs.values().sum();
            let state = if running {
                "rebuilding"
            } else {
                "interrupted rebuild left"
            };
            println!("  {state} in schema {rebuild_schema}: {done} / {total} events");
        }
    }
    match (running, rebuilding.is_empty()) {
        (true, true) => println!("a rebuild is starting"),
        (false, false) => {
            println!("schema {rebuild_schema} is left from an interrupted rebuild; the next rebuild drops it")
        }
        _ => {}
    }
    Ok(())
}

/// The rebuild schema's checkpoints per projection; empty when there is none.
async fn rebuild_checkpoints(
    pool: &PgPool,
    rebuild_schema: &str,
) -> anyhow::Result<BTreeMap<String, BTreeMap<i32, i64>>> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'projection_checkpoint')",
    )
    .bind(rebuild_schema)
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(&format!(
        "SELECT projection, partition, next_offset FROM \"{rebuild_schema}\".projection_checkpoint"
    ))
    .fetch_all(pool)
    .await?;
    let mut checkpoints: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for (projection, partition, next) in rows {
        checkpoints.entry(projection).or_default().insert(partition, next);
    }
    Ok(checkpoints)
}
