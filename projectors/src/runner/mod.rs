//! The consume–fold–commit loop of the projections: one consumer, each projection committing
//! its share of every batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::ownership::{Ownership, OwnershipChange};
use service_kit::kafka::{KafkaArgs, Topics};
use service_kit::metrics::{Counter, Gauge, Histogram, Registry};
use service_kit::stream::{Batching, CancellationToken};
use service_kit::telemetry::TraceContext;
use sqlx::PgPool;
use thiserror::Error;
use tracing::{debug, info, info_span, Instrument};

use crate::db;
use crate::projection::Projection;

mod batch;
mod commit;

pub use self::batch::Batch;
pub use self::commit::commit;
pub(crate) use self::commit::{commit_as, Write};

/// What stops a runner. Every one but [`RunnerError::LogBehindCheckpoint`] is transient: a record
/// that cannot be applied becomes a dead letter instead.
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
    /// The events log ends before a checkpoint: the topic was deleted and created again, or lost
    /// records. The read models reflect a log that is gone, and folding on would skip every new
    /// event up to the checkpoint, so the runner folds nothing until a rebuild has matched them
    /// to the log again.
    #[error(
        "the events log ends at offset {end} in partition {partition}, before the checkpoint of {projection} \
         ({checkpoint}): the topic was created again or lost records; rebuild the read models \
         (`projectors rebuild --all`)"
    )]
    LogBehindCheckpoint {
        projection: &'static str,
        partition: i32,
        checkpoint: i64,
        end: i64,
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
        // Ready once its partitions are taken up: a log behind its checkpoints refuses that.
        partitions.consuming();
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

/// The end of the log in each of `partitions`, asked off the async workers (the client blocks)
/// within `within`.
async fn log_ends(
    consumer: &Arc<StreamConsumer<Ownership>>,
    topic: &str,
    partitions: Vec<i32>,
    within: Duration,
) -> Result<BTreeMap<i32, i64>, KafkaError> {
    let (asker, topic) = (Arc::clone(consumer), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        service_kit::kafka::topics::offsets_at(&*asker, &topic, &partitions, Offset::End, within)
    })
    .await
    .expect("asking for the log's ends panicked")
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

    fn consuming(&self) {
        for folder in &self.folders {
            folder.status.running.store(true, Ordering::Release);
        }
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
        self.check_log_ends(consumer, topic, &waiting, &claims).await?;
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

    /// Refuses `claims` (per projection, its checkpoints in `partitions`) that stand past the end
    /// of the log. A checkpoint never passes the end of the log it was read from, so the log is
    /// another one: one created under the same name. A log created again that has since grown
    /// past the checkpoints is not caught here.
    async fn check_log_ends(
        &self,
        consumer: &Arc<StreamConsumer<Ownership>>,
        topic: &str,
        partitions: &[i32],
        claims: &[Positions],
    ) -> Result<(), RunnerError> {
        let ends = log_ends(consumer, topic, partitions.to_vec(), SEEK_TIMEOUT).await?;
        for (folder, claimed) in self.folders.iter().zip(claims) {
            for (&partition, &checkpoint) in claimed {
                if let Some(&end) = ends.get(&partition).filter(|&&end| checkpoint > end) {
                    return Err(RunnerError::LogBehindCheckpoint {
                        projection: folder.status.projection.name(),
                        partition,
                        checkpoint,
                        end,
                    });
                }
            }
        }
        Ok(())
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
        let owned: Vec<i32> = self.owned.keys().copied().collect();
        let heads = log_ends(consumer, topic, owned, LAG_TIMEOUT).await.unwrap_or_default();
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
