//! `projectors status`: each projection's checkpoint and lag per partition, its dead letters, and
//! any rebuild, as `read_models::status` gathers them.

use rdkafka::consumer::BaseConsumer;
use read_models::status::{self, RebuildState};
use service_kit::database::DatabaseArgs;
use service_kit::kafka::{KafkaArgs, Topics};

use crate::projection::Projection;

/// Prints the status of every projection in `database`'s schema.
pub async fn print(kafka: &KafkaArgs, database: &DatabaseArgs) -> anyhow::Result<()> {
    let live = &database.database_schema;
    let topic = Topics::new(&kafka.topic_prefix).events;
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let log_ends = service_kit::kafka::watch::log_ends(&consumer, &topic)?;
    let pool = database.pool()?;
    let names: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
    let mut status = status::gather(&pool, live, &names, &log_ends).await?;
    let reader: BaseConsumer = kafka
        .consumer_config("orderstream-status")
        .set("enable.partition.eof", "true")
        .create()?;
    status.settle(&service_kit::kafka::watch::holding_records(
        &reader,
        &topic,
        &status.behind(),
    )?);
    let rebuild_schema = &status.rebuild_schema;

    println!("schema {live}, topic {topic} ({} partitions)", log_ends.len());
    for projection in &status.projections {
        println!(
            "{}: lag {}, dead letters {}",
            projection.name, projection.lag, projection.dead_letters
        );
        for partition in &projection.partitions {
            let next = partition.next_offset.map_or_else(|| "-".to_owned(), |n| n.to_string());
            let warning = if partition.past_log_end() {
                " (past the log's end: the topic was created again or lost records; rebuild)"
            } else {
                ""
            };
            println!(
                "  partition {}: next offset {next}, high watermark {}, lag {}{warning}",
                partition.partition, partition.log_end, partition.lag
            );
        }
        if let Some(rebuilt) = projection.rebuilt {
            let state = if status.rebuild == RebuildState::Running {
                "rebuilding"
            } else {
                "interrupted rebuild left"
            };
            println!(
                "  {state} in schema {rebuild_schema}: {} / {} events",
                rebuilt.done, rebuilt.total
            );
        }
    }
    match status.rebuild {
        RebuildState::Starting => println!("a rebuild is starting"),
        RebuildState::Interrupted => {
            println!("schema {rebuild_schema} is left from an interrupted rebuild; the next rebuild drops it")
        }
        RebuildState::None | RebuildState::Running => {}
    }
    Ok(())
}
