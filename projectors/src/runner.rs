//! The consume–fold–commit loop of one projection.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::Event;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::metrics::{Counter, Registry};
use service_kit::stream::{Batching, CancellationToken};
use sqlx::{Connection as _, PgConnection, PgPool};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::db;
use crate::dead_letter::{self, DeadLetter, RawRecord, RawRecords};
use crate::projection::{LoggedEvent, Projection};

/// What stops a runner. Every one is transient: a record that cannot be applied becomes a dead
/// letter instead.
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

impl RunnerSettings {
    pub fn batching(&self) -> Batching {
        Batching::new(self.batch_size, self.batch_linger)
    }
}

/// Per-projection counters for `/metrics`, and whether it is consuming.
#[derive(Debug, Clone)]
pub struct RunnerStatus {
    pub running: Arc<AtomicBool>,
    events: Arc<Counter>,
    batches: Arc<Counter>,
    dead_letters: Arc<Counter>,
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
            dead_letters: registry.counter(
                "orderstream_projection_dead_letters_total",
                &labels,
                "Records set aside as dead letters: undecodable, or refused by PostgreSQL",
            ),
        }
    }
}

/// Where a runner stands: the next offset per partition, as its checkpoint says. A partition
/// without a checkpoint is absent (read from the beginning).
pub type Positions = BTreeMap<i32, i64>;

/// Runs `projection` from its checkpoint until `shutdown` (after the batch in hand) or the
/// first error.
#[tracing::instrument(skip_all, fields(projection = projection.name()))]
pub async fn run(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    status: &RunnerStatus,
    shutdown: &CancellationToken,
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
    shutdown: &CancellationToken,
) -> Result<(), RunnerError> {
    let batching = settings.batching();
    while let Some(batch) = shutdown.run_until_cancelled(batching.next(|| consumer.recv())).await {
        let batch: Batch = batch?;
        let dead_letters = commit(projection, pool, positions, &batch).await?;
        status.events.add((batch.len() - dead_letters) as u64);
        status.dead_letters.add(dead_letters as u64);
        status.batches.add(1);
        debug!(events = batch.len(), dead_letters, "batch committed");
    }
    Ok(())
}

/// Records read from the log for one transaction.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The decoded events, in log order.
    events: Vec<LoggedEvent>,
    /// The record each of `events` was decoded from, index for index: what a dead letter keeps.
    records: RawRecords,
    /// The records that could not be decoded, and why.
    undecodable: Vec<(RawRecord, service_kit::kafka::Error)>,
    /// Per partition, the offset after the batch's last record.
    next_offsets: BTreeMap<i32, i64>,
}

impl<'a> Extend<BorrowedMessage<'a>> for Batch {
    fn extend<I: IntoIterator<Item = BorrowedMessage<'a>>>(&mut self, messages: I) {
        for message in messages {
            self.push(&message);
        }
    }
}

impl Batch {
    fn push(&mut self, message: &BorrowedMessage<'_>) {
        self.next_offsets.insert(message.partition(), message.offset() + 1);
        match Envelope::<Event>::from_kafka(message) {
            Ok(envelope) => {
                self.events.push(LoggedEvent {
                    partition: message.partition(),
                    offset: message.offset(),
                    envelope,
                });
                self.records.push(message);
            }
            Err(error) => self.undecodable.push((RawRecord::of(message), error)),
        }
    }

    /// How many records the batch holds, decoded or not.
    pub(crate) fn len(&self) -> usize {
        self.events.len() + self.undecodable.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rows, dead letters and checkpoint in one transaction: all or nothing. Returns how many
/// records became dead letters.
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
    batch: &Batch,
) -> Result<usize, RunnerError> {
    let next_offsets = &batch.next_offsets;
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
    let mut dead: Vec<DeadLetter> = batch
        .undecodable
        .iter()
        .map(|(record, error)| DeadLetter::undecodable(record.clone(), error))
        .collect();
    apply_setting_aside_refused(projection, &mut tx, &batch.events, &batch.records, &mut dead).await?;
    dead.sort_by_key(|letter| (letter.partition(), letter.offset()));
    dead_letter::store(&mut tx, projection.name(), &dead).await?;
    db::save_checkpoints(&mut tx, projection.name(), next_offsets).await?;
    tx.commit().await?;
    positions.extend(next_offsets.iter().map(|(&p, &o)| (p, o)));
    for letter in &dead {
        warn!(
            projection = projection.name(),
            partition = letter.partition(),
            offset = letter.offset(),
            error = letter.error(),
            "record set aside as a dead letter"
        );
    }
    Ok(dead.len())
}

/// Applies `events` inside `tx`; when PostgreSQL refuses a value, finds the events it refuses
/// and adds them to `dead` instead of applying them.
///
/// Each slice is tried under a savepoint. A refused slice is rolled back and split in halves,
/// tried in log order, down to the single events that cannot be applied, so a batch with one
/// bad event still applies every other one. Applying consecutive slices one after the other
/// folds to the same rows as the whole batch at once, as consecutive batches do.
async fn apply_setting_aside_refused(
    projection: Projection,
    tx: &mut PgConnection,
    events: &[LoggedEvent],
    records: &RawRecords,
    dead: &mut Vec<DeadLetter>,
) -> Result<(), sqlx::Error> {
    // Slices still to try, the next one last.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..events.len());
    while let Some(slice) = pending.pop() {
        if slice.is_empty() {
            continue;
        }
        let mut savepoint = tx.begin().await?;
        match projection.apply(&mut savepoint, &events[slice.clone()]).await {
            Ok(()) => savepoint.commit().await?,
            Err(error) if dead_letter::is_data_error(&error) => {
                savepoint.rollback().await?;
                if slice.len() == 1 {
                    dead.push(DeadLetter::refused(
                        records.get(slice.start),
                        &events[slice.start],
                        &error,
                    ));
                } else {
                    let middle = slice.start + slice.len() / 2;
                    pending.push(middle..slice.end);
                    pending.push(slice.start..middle);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
