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
    /// The stored checkpoint is not where this runner left it: a rebuild has swapped the
    /// projection in (or another runner wrote it). Nothing was written; restart from the
    /// stored checkpoint.
    #[error(
        "checkpoint of partition {partition} moved under this runner (expected {expected:?}, found {found:?}); \
         restart from the stored checkpoint"
    )]
    CheckpointMoved {
        partition: i32,
        expected: Option<i64>,
        found: Option<i64>,
    },
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

/// Where a runner stands: the next offset per partition, as its checkpoint says. A partition
/// without a checkpoint is absent (read from the beginning).
pub type Positions = BTreeMap<i32, i64>;

/// Runs `projection` from its checkpoint until `shutdown` or the first error.
#[tracing::instrument(skip_all, fields(projection = projection.name()))]
pub async fn run(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    status: &RunnerStatus,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    let (consumer, mut positions) = seek_to_checkpoint(projection, settings, pool, "").await?;
    status.running.store(true, Ordering::Release);
    let result = consume(projection, settings, pool, status, &consumer, &mut positions, shutdown).await;
    status.running.store(false, Ordering::Release);
    result
}

/// A consumer assigned every events partition at `projection`'s checkpoint in `pool`'s schema,
/// and those checkpoints. `group_suffix` keeps the group names of rebuilds apart (no offsets are
/// ever committed to the group; it only names the client).
pub(crate) async fn seek_to_checkpoint(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    group_suffix: &str,
) -> Result<(StreamConsumer, Positions), RunnerError> {
    let consumer: StreamConsumer = settings
        .kafka
        .consumer_config(&format!("orderstream-projector-{}{group_suffix}", projection.name()))
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
    Ok((consumer, checkpoints))
}

async fn consume(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    status: &RunnerStatus,
    consumer: &StreamConsumer,
    positions: &mut Positions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunnerError> {
    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            () = &mut shutdown => return Ok(()),
            batch = next_batch(consumer, settings, None) => batch?,
        };
        let Some(batch) = batch else { continue };
        commit(projection, pool, positions, &batch).await?;
        status.events.add(batch.len() as u64);
        status.batches.add(1);
        debug!(events = batch.len(), "batch committed");
    }
}

/// The next batch: waits for a first event (at most `wait`, when given; `None` after that),
/// then fills the batch for up to the linger time.
pub(crate) async fn next_batch(
    consumer: &StreamConsumer,
    settings: &RunnerSettings,
    wait: Option<Duration>,
) -> Result<Option<Vec<LoggedEvent>>, RunnerError> {
    let first = match wait {
        None => consumer.recv().await?,
        Some(wait) => match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(first) => first?,
            Err(_elapsed) => return Ok(None),
        },
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
    Ok(Some(batch))
}

fn logged(message: &rdkafka::message::BorrowedMessage<'_>) -> Result<LoggedEvent, RunnerError> {
    Ok(LoggedEvent {
        partition: message.partition(),
        offset: message.offset(),
        envelope: Envelope::<Event>::from_kafka(message)?,
    })
}

/// Rows and checkpoint in one transaction: both or neither.
///
/// The transaction first takes the projection's tables (`ROW EXCLUSIVE`, the order a rebuild's
/// swap takes them in), then locks the stored checkpoint rows of the batch's partitions and
/// checks each is still `positions`: after a rebuild swapped the projection in, they are the
/// rebuild's, and this runner stops with [`RunnerError::CheckpointMoved`] without writing.
/// On success `positions` moves past the batch.
pub(crate) async fn commit(
    projection: Projection,
    pool: &PgPool,
    positions: &mut Positions,
    batch: &[LoggedEvent],
) -> Result<(), RunnerError> {
    let mut next_offsets = BTreeMap::new();
    for event in batch {
        next_offsets.insert(event.partition, event.offset + 1);
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "LOCK TABLE {} IN ROW EXCLUSIVE MODE",
        db::tables(projection).join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    let partitions: Vec<i32> = next_offsets.keys().copied().collect();
    let stored: BTreeMap<i32, i64> = sqlx::query_as::<_, (i32, i64)>(
        "SELECT partition, next_offset FROM projection_checkpoint \
         WHERE projection = $1 AND partition = ANY($2) FOR UPDATE",
    )
    .bind(projection.name())
    .bind(&partitions)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    for partition in partitions {
        let (expected, found) = (positions.get(&partition).copied(), stored.get(&partition).copied());
        if expected != found {
            return Err(RunnerError::CheckpointMoved {
                partition,
                expected,
                found,
            });
        }
    }
    projection.apply(&mut tx, batch).await?;
    db::save_checkpoints(&mut tx, projection.name(), &next_offsets).await?;
    tx.commit().await?;
    positions.extend(next_offsets);
    Ok(())
}
