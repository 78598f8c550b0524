//! The consume–fold–commit loop of the projections: one consumer, each projection committing
//! its share of every batch.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::Event;
use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::ownership::{Ownership, OwnershipChange};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::metrics::{Counter, Gauge, Histogram, Registry};
use service_kit::stream::{Batching, CancellationToken};
use service_kit::telemetry::TraceContext;
use sqlx::{Connection as _, PgConnection, PgPool};
use thiserror::Error;
use tracing::{debug, info, info_span, warn, Instrument};

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
    /// projection in, or another process took the partition over and folded it. Nothing was
    /// written; read on from the stored checkpoints.
    #[error(
        "checkpoint of partition {partition} moved under this runner (expected {expected:?}, found {found:?}); \
         read on from the stored checkpoint"
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

/// Per-projection figures for `/metrics`, and whether it is consuming.
#[derive(Debug, Clone)]
pub struct RunnerStatus {
    pub running: Arc<AtomicBool>,
    registry: Registry,
    projection: Projection,
    partitions: Gauge,
    events: Counter,
    batches: Counter,
    dead_letters: Counter,
    batch_size: Histogram,
    batch_seconds: Histogram,
}

impl RunnerStatus {
    pub fn register(registry: &Registry, projection: Projection) -> Self {
        let labels = &[("projection", projection.name().to_owned())];
        Self {
            running: Arc::default(),
            registry: registry.clone(),
            projection,
            partitions: registry.gauge(
                "orderstream_projection_partitions",
                labels,
                "Events partitions this process folds for the projection (its share of the group)",
            ),
            events: registry.counter("orderstream_projection_events_total", labels, "Events applied"),
            batches: registry.counter("orderstream_projection_batches_total", labels, "Transactions committed"),
            dead_letters: registry.counter(
                "orderstream_projection_dead_letters_total",
                labels,
                "Records set aside as dead letters: undecodable, or refused by PostgreSQL",
            ),
            batch_size: registry.histogram(
                "orderstream_projection_batch_size",
                labels,
                "Records in one committed batch (one PostgreSQL transaction)",
            ),
            batch_seconds: registry.histogram(
                "orderstream_projection_batch_seconds",
                labels,
                "How long folding and committing one batch took",
            ),
        }
    }

    pub fn projection(&self) -> Projection {
        self.projection
    }

    /// The lag gauges of `partition`: events behind the partition's head, and seconds.
    fn lag(&self, partition: i32) -> (Gauge, Gauge) {
        let labels = &[
            ("projection", self.projection.name().to_owned()),
            ("partition", partition.to_string()),
        ];
        (
            self.registry.gauge(
                "orderstream_projection_lag_events",
                labels,
                "Offsets on the partition not yet applied by this process, as of the last look at its head (1 when caught up: the last commit marker)",
            ),
            self.registry.gauge(
                "orderstream_projection_lag_seconds",
                labels,
                "Age of the last event applied while the partition has events left to apply; 0 when caught up",
            ),
        )
    }
}

/// Where a runner stands: the next offset per partition, as its checkpoint says. A partition
/// without a checkpoint is absent (read from the beginning).
pub type Positions = BTreeMap<i32, i64>;

/// A turn at least this often while no event comes, to take up assigned partitions at once.
const IDLE_TURN: Duration = Duration::from_millis(500);
/// How often a runner asks the broker for its partitions' heads, to report its lag.
const LAG_INTERVAL: Duration = Duration::from_secs(2);
/// How long asking for one partition's head may take; an unanswered one keeps its last lag.
const LAG_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a seek to a checkpoint may take before the runner gives up and starts again.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer group of the projectors writing the read models in `schema`: every
/// `projectors run` process on that schema joins it and folds every projection of the
/// partitions it is given. A copy of the read models in another schema (a second database, a
/// rebuild) needs every partition for itself, so it is another group.
pub fn group(schema: &str) -> String {
    format!("orderstream-projector-{schema}")
}

/// Runs every projection of `runners` into `schema` in one consumer group, from their
/// checkpoints in the partitions it is given, until `shutdown` (after the batch in hand) or the
/// first error.
///
/// One consumer feeds them all: each record is fetched and decoded once, however many
/// projections fold it, and each projection commits its share of a batch in a transaction of
/// its own, beside the others.
#[tracing::instrument(skip_all)]
pub async fn run(
    runners: &[RunnerStatus],
    settings: &RunnerSettings,
    pool: &PgPool,
    schema: &str,
    shutdown: &CancellationToken,
) -> Result<(), RunnerError> {
    let consumer: Arc<StreamConsumer<Ownership>> = Arc::new(
        settings
            .kafka
            .member_config(&group(schema))
            .set("fetch.wait.max.ms", "50")
            .create_with_context(Ownership::default())?,
    );
    consumer.subscribe(&[&settings.topics.events])?;
    for status in runners {
        status.running.store(true, Ordering::Release);
    }
    let mut partitions = Partitions::new(runners);
    let result = consume(settings, pool, &mut partitions, &consumer, shutdown).await;
    for status in runners {
        status.running.store(false, Ordering::Release);
        status.partitions.set(0);
    }
    result
}

/// A consumer assigned every events partition at `projection`'s checkpoint in `pool`'s schema,
/// and those checkpoints: a rebuild reads the whole log alone. It takes the group name of
/// `schema`, apart from the live group, but never joins it nor commits offsets.
pub(crate) async fn seek_to_checkpoint(
    projection: Projection,
    settings: &RunnerSettings,
    pool: &PgPool,
    schema: &str,
) -> Result<(StreamConsumer, Positions), RunnerError> {
    let consumer: StreamConsumer = settings
        .kafka
        .consumer_config(&group(schema))
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

/// Folds batches of the owned partitions into every projection.
///
/// The checkpoint rows are the truth. A partition is claimed (each projection's checkpoint row
/// made to exist, and read) as soon as it is assigned, and the consumer is sought to the lowest
/// of those checkpoints before any of its records is folded; each projection then folds only
/// the records from its own checkpoint on. The offset the group last committed only says where
/// the fetcher may begin meanwhile, and what it fetched there is dropped. When a projection's
/// batch finds a checkpoint moved under it (a rebuild swapped the projection in, or the group
/// had given the partition to another process that folded it since), that projection writes
/// nothing and every owned partition is claimed and sought again, so the runner carries on from
/// the stored checkpoints without leaving the group.
async fn consume(
    settings: &RunnerSettings,
    pool: &PgPool,
    partitions: &mut Partitions,
    consumer: &Arc<StreamConsumer<Ownership>>,
    shutdown: &CancellationToken,
) -> Result<(), RunnerError> {
    let batching = settings.batching().first_within(IDLE_TURN);
    let topic = &settings.topics.events;
    while let Some(messages) = shutdown
        .run_until_cancelled(batching.next(|| service_kit::kafka::recv(consumer)))
        .await
    {
        let messages: Vec<BorrowedMessage<'_>> = messages?;
        partitions.follow(consumer.context());
        let sought = partitions.take_up(pool, consumer, topic).await?;
        // Not ours (revoked, or not yet at its checkpoint), fetched before the seek to its
        // checkpoint, or already folded by every projection.
        let fresh: Vec<&BorrowedMessage<'_>> = messages
            .iter()
            .filter(|message| {
                let partition = message.partition();
                !sought.contains(&partition)
                    && partitions
                        .owned
                        .get(&partition)
                        .is_some_and(|&next| message.offset() >= next)
            })
            .collect();
        if fresh.is_empty() {
            partitions.report_lag(consumer, topic).await;
            continue;
        }
        let mut batch = Batch::default();
        fresh.iter().for_each(|message| batch.push(message));
        let folded = join_all(
            partitions
                .folders
                .iter_mut()
                .map(|folder| folder.fold(pool, &batch, &fresh)),
        )
        .await;
        partitions.settle();
        commit_hint(consumer, topic, &partitions.owned, &batch.next_offsets);
        let mut moved = None;
        for result in folded {
            match result {
                Ok(()) => {}
                Err(error @ RunnerError::CheckpointMoved { .. }) => moved = Some(error),
                Err(error) => return Err(error),
            }
        }
        if let Some(moved) = moved {
            info!(%moved, "checkpoint moved (projection replaced, or a lost partition folded elsewhere); carrying on from the stored checkpoints");
            partitions.reclaim_all();
            partitions.take_up(pool, consumer, topic).await?;
        }
        partitions.report_lag(consumer, topic).await;
    }
    Ok(())
}

/// One projection in the runner: its figures and where it stands.
#[derive(Debug)]
struct Folder {
    status: RunnerStatus,
    /// Per owned partition, the next offset this projection folds, as its checkpoint says.
    positions: Positions,
    /// Per owned partition, when the last event this projection applied was written (ms since
    /// the epoch).
    applied: BTreeMap<i32, i64>,
}

impl Folder {
    /// Commits the records of `batch` (decoded from `messages`) this projection has not folded
    /// yet, in one transaction.
    async fn fold(
        &mut self,
        pool: &PgPool,
        batch: &Batch,
        messages: &[&BorrowedMessage<'_>],
    ) -> Result<(), RunnerError> {
        let unfolded = |message: &&&BorrowedMessage<'_>| {
            self.positions
                .get(&message.partition())
                .is_some_and(|&next| message.offset() >= next)
        };
        // Usually every projection stands at the same offsets and folds the whole batch; one
        // that stands further on (the others restarted from older checkpoints) decodes its own
        // part again rather than every batch being copied for it.
        let own;
        let batch = if messages.iter().all(|message| unfolded(&message)) {
            batch
        } else {
            let mut part = Batch::default();
            messages.iter().filter(unfolded).for_each(|message| part.push(message));
            own = part;
            &own
        };
        if batch.is_empty() {
            return Ok(());
        }
        let projection = self.status.projection;
        let span = info_span!(parent: None, "project_batch", projection = projection.name(), events = batch.len());
        TraceContext::follow_all(&span, batch.events.iter().map(|event| &event.envelope.trace));
        let started = Instant::now();
        let dead_letters = commit(projection, pool, &mut self.positions, batch)
            .instrument(span)
            .await?;
        let status = &self.status;
        status.batch_seconds.record(started.elapsed());
        status.batch_size.record(batch.len() as f64);
        status.events.increment((batch.len() - dead_letters) as u64);
        status.dead_letters.increment(dead_letters as u64);
        status.batches.increment(1);
        self.applied.extend(&batch.event_times);
        debug!(
            projection = projection.name(),
            events = batch.len(),
            dead_letters,
            "batch committed"
        );
        Ok(())
    }
}

/// The events partitions a runner has been given, and where each projection stands in them.
#[derive(Debug)]
struct Partitions {
    /// Claimed and sought: per partition, the next offset the consumer reads, the lowest of the
    /// projections' positions there.
    owned: Positions,
    /// Assigned (and paused), or to be read again from their checkpoint: none of their records
    /// is folded until the consumer is sought to it.
    waiting: BTreeSet<i32>,
    folders: Vec<Folder>,
    /// The partitions whose lag is on `/metrics`.
    reported: BTreeSet<i32>,
    /// When the partitions' heads were last asked for.
    lag_asked: Option<Instant>,
}

impl Partitions {
    fn new(runners: &[RunnerStatus]) -> Self {
        Self {
            owned: Positions::new(),
            waiting: BTreeSet::new(),
            folders: runners
                .iter()
                .map(|status| Folder {
                    status: status.clone(),
                    positions: Positions::new(),
                    applied: BTreeMap::new(),
                })
                .collect(),
            reported: BTreeSet::new(),
            lag_asked: None,
        }
    }

    /// Forgets revoked partitions and queues assigned ones, in the order the group moved them.
    fn follow(&mut self, ownership: &Ownership) {
        for change in ownership.take_changes() {
            match change {
                OwnershipChange::Revoked(partitions) => {
                    info!(?partitions, "partitions revoked");
                    for partition in partitions {
                        self.owned.remove(&partition);
                        self.waiting.remove(&partition);
                        for folder in &mut self.folders {
                            folder.positions.remove(&partition);
                            folder.applied.remove(&partition);
                        }
                    }
                }
                OwnershipChange::Assigned(partitions) => {
                    info!(?partitions, "partitions assigned");
                    self.waiting.extend(partitions);
                }
            }
        }
        self.report_owned();
    }

    fn report_owned(&self) {
        for folder in &self.folders {
            folder.status.partitions.set(self.owned.len() as f64);
        }
    }

    /// Claims the waiting partitions for every projection, seeks the consumer to the lowest of
    /// their stored checkpoints and resumes them; returns those sought. A partition whose
    /// fetcher has not started yet (the group's committed offset is still being looked up)
    /// refuses the seek and waits for the next turn.
    async fn take_up(
        &mut self,
        pool: &PgPool,
        consumer: &Arc<StreamConsumer<Ownership>>,
        topic: &str,
    ) -> Result<BTreeSet<i32>, RunnerError> {
        if self.waiting.is_empty() {
            return Ok(BTreeSet::new());
        }
        let waiting: Vec<i32> = self.waiting.iter().copied().collect();
        let mut claims = Vec::with_capacity(self.folders.len());
        for folder in &self.folders {
            claims.push(db::claim(pool, folder.status.projection.name(), &waiting).await?);
        }
        let lowest: Positions = waiting
            .iter()
            .filter_map(|partition| {
                let from = claims.iter().filter_map(|claimed| claimed.get(partition)).min()?;
                Some((*partition, *from))
            })
            .collect();
        let mut seeks = TopicPartitionList::new();
        for (&partition, &offset) in &lowest {
            seeks.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        let seeker = Arc::clone(consumer);
        let sought = tokio::task::spawn_blocking(move || seeker.seek_partitions(seeks, SEEK_TIMEOUT))
            .await
            .expect("a seek panicked")?;
        let mut resumed = TopicPartitionList::new();
        for element in sought.elements() {
            let partition = element.partition();
            match element.error() {
                Ok(()) => {
                    self.waiting.remove(&partition);
                    self.owned.insert(partition, lowest[&partition]);
                    for (folder, claimed) in self.folders.iter_mut().zip(&claims) {
                        folder.positions.insert(partition, claimed[&partition]);
                    }
                    resumed.add_partition(topic, partition);
                }
                // Its fetcher not started yet, or a revocation under way: the next turn knows.
                Err(KafkaError::OffsetFetch(RDKafkaErrorCode::State | RDKafkaErrorCode::PreviousInProgress)) => {
                    debug!(partition, "partition not ready for a seek; trying on the next turn");
                }
                Err(error) => return Err(error.into()),
            }
        }
        if resumed.count() > 0 {
            consumer.resume(&resumed)?;
            let sought: Positions = resumed
                .elements()
                .iter()
                .map(|e| (e.partition(), lowest[&e.partition()]))
                .collect();
            info!(from = ?sought, "partitions claimed; folding from their checkpoints");
        }
        self.report_owned();
        Ok(resumed.elements().iter().map(|e| e.partition()).collect())
    }

    /// Moves each owned partition's read position to the lowest of the projections' positions.
    fn settle(&mut self) {
        for (partition, next) in &mut self.owned {
            if let Some(lowest) = self
                .folders
                .iter()
                .filter_map(|folder| folder.positions.get(partition))
                .min()
            {
                *next = *lowest;
            }
        }
    }

    /// Sets each projection's lag in each owned partition from the partition's head, asked of
    /// the broker at most every [`LAG_INTERVAL`], and zeroes that of partitions no longer
    /// owned, which another process reports.
    async fn report_lag(&mut self, consumer: &Arc<StreamConsumer<Ownership>>, topic: &str) {
        if self.lag_asked.is_some_and(|at| at.elapsed() < LAG_INTERVAL) {
            return;
        }
        self.lag_asked = Some(Instant::now());
        let (asker, asked_topic) = (Arc::clone(consumer), topic.to_owned());
        let owned: Vec<i32> = self.owned.keys().copied().collect();
        let heads = tokio::task::spawn_blocking(move || {
            owned
                .into_iter()
                .filter_map(|partition| {
                    let (_, high) = asker.fetch_watermarks(&asked_topic, partition, LAG_TIMEOUT).ok()?;
                    Some((partition, high))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (partition, high) in heads {
            for folder in &self.folders {
                let Some(&next) = folder.positions.get(&partition) else {
                    continue;
                };
                let behind = (high - next).max(0);
                // The decider's transactions end with a commit marker that takes an offset but
                // is never delivered: a caught-up partition is one behind.
                let seconds = match folder.applied.get(&partition) {
                    Some(&written_ms) if behind > 1 => (now_ms - written_ms).max(0) as f64 / 1000.0,
                    _ => 0.0,
                };
                let (events, age) = folder.status.lag(partition);
                events.set(behind as f64);
                age.set(seconds);
            }
            self.reported.insert(partition);
        }
        for &gone in self.reported.iter().filter(|p| !self.owned.contains_key(p)) {
            for folder in &self.folders {
                let (events, age) = folder.status.lag(gone);
                events.set(0.0);
                age.set(0.0);
            }
        }
        self.reported.retain(|partition| self.owned.contains_key(partition));
    }

    /// Sets every owned partition to be claimed and sought again. The records already fetched
    /// are dropped: those of the current batch are spent, and a seek discards the rest.
    fn reclaim_all(&mut self) {
        self.waiting.extend(std::mem::take(&mut self.owned).into_keys());
        for folder in &mut self.folders {
            folder.positions.clear();
        }
    }
}

/// Tells the group where every projection has got to in the batch's partitions (the lowest
/// position in `owned`), so Kafka's tools show the slowest projection's lag in the group. Fire
/// and forget, and never read back as a position: the checkpoints in PostgreSQL are the truth,
/// and every partition is sought to them.
fn commit_hint(consumer: &StreamConsumer<Ownership>, topic: &str, owned: &Positions, batch: &BTreeMap<i32, i64>) {
    let mut offsets = TopicPartitionList::new();
    for (&partition, &offset) in owned.iter().filter(|(partition, _)| batch.contains_key(partition)) {
        if let Err(error) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            debug!(%error, partition, "offset hint not recorded");
            return;
        }
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        debug!(%error, "offset hint not committed");
    }
}

/// Records read from the log for one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// The decoded events, in log order.
    events: Vec<LoggedEvent>,
    /// The record each of `events` was decoded from, index for index: what a dead letter keeps.
    records: RawRecords,
    /// The records that could not be decoded, and why.
    undecodable: Vec<(RawRecord, service_kit::kafka::Error)>,
    /// Per partition, the offset after the batch's last record.
    next_offsets: BTreeMap<i32, i64>,
    /// Per partition, when the batch's last record was written (ms since the epoch).
    event_times: BTreeMap<i32, i64>,
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
        if let Some(written_ms) = message.timestamp().to_millis() {
            self.event_times.insert(message.partition(), written_ms);
        }
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

    /// Forgets every record, keeping the buffers for the next batch.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.records.clear();
        self.undecodable.clear();
        self.next_offsets.clear();
        self.event_times.clear();
    }

    /// Decodes `messages`, in log order, on two threads: decoding is most of a replay's work.
    /// `spare` is a batch to decode the second half into, left empty with its buffers kept.
    ///
    /// Each thread also releases the records it decoded: the client's memory behind a record's
    /// headers is then freed by the thread that allocated it, which the allocator does fastest.
    pub(crate) fn decode(&mut self, mut messages: Vec<BorrowedMessage<'_>>, spare: &mut Batch) {
        let second = messages.split_off(messages.len() / 2);
        std::thread::scope(|scope| {
            scope.spawn(|| second.into_iter().for_each(|message| spare.push(&message)));
            messages.into_iter().for_each(|message| self.push(&message));
        });
        self.events.append(&mut spare.events);
        self.records.append(&mut spare.records);
        self.undecodable.append(&mut spare.undecodable);
        // The second half ends later in every partition it shares with the first.
        self.next_offsets.append(&mut spare.next_offsets);
        self.event_times.append(&mut spare.event_times);
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
/// checks each is still `positions`. When it is not, nothing is written and the runner stops
/// with [`RunnerError::CheckpointMoved`]: a rebuild swapped the projection in, or this process
/// lost the partition (the group gave it to another while this one was silent) and the new
/// owner has folded it since. A live runner claims its rows before its first batch, so there is
/// always a row to lock. On success `positions` moves past the batch.
pub async fn commit(
    projection: Projection,
    pool: &PgPool,
    positions: &mut Positions,
    batch: &Batch,
) -> Result<usize, RunnerError> {
    commit_as(projection, Write::Ordinary, pool, positions, batch).await
}

/// How a batch's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Upserts: what every live batch does.
    Ordinary,
    /// [`Projection::apply_bulk`] for the whole batch first, the ordinary way when PostgreSQL
    /// refuses any of it: the bulk load of a rebuild.
    Bulk,
}

/// [`commit`], writing the rows as `write` says.
pub(crate) async fn commit_as(
    projection: Projection,
    write: Write,
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
    if write == Write::Ordinary || !apply_bulk(projection, &mut tx, &batch.events).await? {
        apply_setting_aside_refused(projection, &mut tx, &batch.events, &batch.records, &mut dead).await?;
    }
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

/// Applies `events` inside `tx` with [`Projection::apply_bulk`], under a savepoint; says whether
/// it did. When PostgreSQL refuses a value, nothing of it is kept and the caller applies the
/// batch the ordinary way, which finds and sets aside the refused events.
async fn apply_bulk(
    projection: Projection,
    tx: &mut PgConnection,
    events: &[LoggedEvent],
) -> Result<bool, sqlx::Error> {
    let mut savepoint = tx.begin().await?;
    match projection.apply_bulk(&mut savepoint, events).await {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(error) if dead_letter::is_data_error(&error) => {
            savepoint.rollback().await?;
            debug!(projection = projection.name(), %error, "bulk write refused; applying the batch the ordinary way");
            Ok(false)
        }
        Err(error) => Err(error),
    }
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

#[cfg(test)]
mod tests {
    use domain::order::{self, OrderName, OrderPlaced};
    use rdkafka::message::{OwnedMessage, Timestamp};
    use service_kit::kafka::Envelope;
    use service_kit::testing::Isolation;
    use uuid::Uuid;

    use super::*;

    /// A batch of one `OrderPlaced` per name, at offsets 0, 1, … of partition 0.
    fn placed(names: &[&str]) -> Batch {
        let mut batch = Batch::default();
        for (offset, name) in names.iter().enumerate() {
            let offset = offset as i64;
            let placed = OrderPlaced {
                order_id: Uuid::new_v4(),
                name: OrderName::parse(name).unwrap(),
                note: None,
                placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
                details: None,
                channel: order::Channel::Api,
                user_id: None,
                catalog_items: None,
            };
            let key = placed.order_id.to_string().into_bytes();
            batch.events.push(LoggedEvent {
                partition: 0,
                offset,
                envelope: Envelope {
                    id: Uuid::new_v4(),
                    time: placed.placed_at,
                    sequence: Some(1),
                    causation_id: None,
                    correlation_id: placed.order_id,
                    trace: Default::default(),
                    message: Event::Order(order::Event::OrderPlaced(placed)),
                },
            });
            batch.records.push(&OwnedMessage::new(
                Some(b"{}".to_vec()),
                Some(key),
                "events".to_owned(),
                Timestamp::NotAvailable,
                0,
                offset,
                None,
            ));
            batch.next_offsets.insert(0, offset + 1);
        }
        batch
    }

    #[tokio::test]
    async fn a_bulk_batch_postgres_refuses_is_applied_the_ordinary_way_setting_the_refused_event_aside() {
        let isolation = Isolation::new();
        let pool = isolation.database.pool().unwrap();
        db::migrate(&pool, &isolation.database.database_schema).await.unwrap();
        // A rule the table refuses one order by, as it would a value out of a column's range:
        // the copy of the whole batch fails, and only that order may be set aside.
        sqlx::query("ALTER TABLE order_status ADD CONSTRAINT refused CHECK (name <> 'Refused')")
            .execute(&pool)
            .await
            .unwrap();
        let batch = placed(&["Ada", "Refused", "Grace"]);
        for projection in [Projection::OrderStatus, Projection::OrderHistory] {
            let mut positions = Positions::new();
            let dead = commit_as(projection, Write::Bulk, &pool, &mut positions, &batch)
                .await
                .unwrap();
            assert_eq!(positions, Positions::from([(0, 3)]), "{}", projection.name());
            let table = projection.name();
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            if projection == Projection::OrderStatus {
                assert_eq!((dead, rows), (1, 2), "every order but the refused one");
            } else {
                assert_eq!((dead, rows), (0, 3), "order_history has no such rule");
            }
        }
        let letters: Vec<(String, i64)> =
            sqlx::query_as("SELECT projection, \"offset\" FROM dead_letters ORDER BY projection")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(letters, [("order_status".to_owned(), 1)]);
    }
}
