//! The consume–fold–commit loop of one projection.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::Event;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::metrics::{Counter, Registry};
use sqlx::PgPool;
use thiserror::Error;
use tracing::{debug, info};

use crate::db;
use crate::projection::{LoggedEvent, Projection};

#[derive(Debug, Error)]
pub enum RunnerError {
    #[error(transparent)]
    Log(#[from] service_kit::kafka::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// How one projection batches.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    pub batch_size: usize,
    pub batch_linger: Duration,
}

/// Per-projection counters for `/metrics`, and whether it is consuming.
#[derive(Debug, Clone)]
pub struct RunnerStatus {
    pub running: Arc<AtomicBool>,
    events: Arc<Counter>,
    batches: Arc<Counter>,
}

impl RunnerStatus {
    pub fn register(registry: &Registry, projection: Projection) -> Self {
        let labels = format!("projection=\"{}\"", projection.name());
        Self {
            running: Arc::default(),
            events: registry.counter("orderstream_projection_events_total", &labels, "Events applied"),
            batches: registry.counter(
                "orderstream_projection_batches_total",
                &labels,
                "Transactions committed",
            ),
        }
    }
}

/// Runs `projection` from its checkpoint until `shutdown` or the first error.
#[tracing::instrument(skip_all, fields(projection = projection.name()))]
pub async fn run(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    status: &RunnerStatus,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let consumer = seek_to_checkpoint(projection, settings, pool).await?;
    status.running.store(true, Ordering::Release);
    let result = consume(projection, settings, pool, status, &consumer, shutdown).await;
    status.running.store(false, Ordering::Release);
    result
}

async fn seek_to_checkpoint(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
) -> Result<StreamConsumer, RunnerError> {
    let consumer: StreamConsumer = settings
        .kafka
        .consumer_config(&format!("orderstream-projector-{}", projection.name()))
        .set("fetch.wait.max.ms", "50")
        .create()?;
    let topic = &settings.topics.events;
    let partitions = service_kit::kafka::topics::partition_count(consumer.client(), topic)?;
    let checkpoints = db::checkpoints(pool, projection.name()).await?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        let offset = checkpoints
            .get(&partition)
            .map_or(Offset::Beginning, |&o| Offset::Offset(o));
        assignment.add_partition_offset(topic, partition, offset)?;
    }
    consumer.assign(&assignment)?;
    info!(?checkpoints, "seeking to checkpoint");
    Ok(consumer)
}

async fn consume(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    status: &RunnerStatus,
    consumer: &StreamConsumer,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    tokio::pin!(shutdown);
    loop {
        let first = tokio::select! {
            () = &mut shutdown => return Ok(()),
            first = consumer.recv() => first?,
        };
        let mut batch = vec![logged(&first)?];
        drop(first);
        let deadline = tokio::time::Instant::now() + settings.batch_linger;
        while batch.len() < settings.batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(message) => batch.push(logged(&message?)?),
                Err(_elapsed) => break,
            }
        }
        commit(projection, pool, &batch).await?;
        status.events.add(batch.len() as u64);
        status.batches.add(1);
        debug!(events = batch.len(), "batch committed");
    }
}

fn logged(message: &rdkafka::message::BorrowedMessage<'_>) -> Result<LoggedEvent, RunnerError> {
    Ok(LoggedEvent {
        partition: message.partition(),
        offset: message.offset(),
        envelope: Envelope::<Event>::from_kafka(message)?,
    })
}

/// Rows and checkpoint in one transaction: both or neither.
async fn commit(projection: Projection, pool: &PgPool, batch: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let mut next_offsets = BTreeMap::new();
    for event in batch {
        next_offsets.insert(event.partition, event.offset + 1);
    }
    let mut tx = pool.begin().await?;
    projection.apply(&mut tx, batch).await?;
    db::save_checkpoints(&mut tx, projection.name(), &next_offsets).await?;
    tx.commit().await
}
