//! The exactly-once decider.
//!
//! It consumes commands in a consumer group (`read_committed`, cooperative-sticky), decides
//! each against the state of its aggregate, and writes the events (to the same partition
//! number), the verdicts, one state changelog record per changed aggregate and the consumed
//! offsets in ONE Kafka transaction per batch, committing the offsets with the group's metadata
//! (KIP-447) so that a zombie left over from a rebalance is fenced by Kafka. After the commit the
//! changed aggregates and verdicts go to the local store ([`store`]) with the changelog and
//! verdicts offsets they bring it to. Any transactional failure aborts and starts over from the
//! committed offsets and the store, which catches up from the changelog ([`restore`]).
//!
//! Accepted and rejected verdicts also go, in the same transaction, to the verdicts topic (keyed
//! by command id, on the command's partition number): a repeated command gets its first answer,
//! even after a restart, for as long as that topic keeps it (the idempotency horizon). The same
//! command id with another request digest is refused as a reused idempotency key.
//!
//! A partition assigned to it is paused while it is restored in a task of its own, so the other
//! partitions keep being decided; a revoked one is dropped at once. At shutdown it finishes the
//! batch in hand (its transaction commits or aborts), leaves the group so its partitions move at
//! once, and makes the store durable.
//!
//! No record stops a partition: a command that does not decode is refused at once when its id
//! can be read (else skipped), and a command for a quarantined aggregate is refused; both are
//! logged and counted.
//!
//! A partition restored by folding the events log (no complete changelog yet) has its changelog
//! seeded from the store before it is decided ([`seed`]); [`metrics`] holds what `/metrics` shows.

pub mod instance;
mod metrics;
mod restore;
mod seed;
mod state;
mod store;
mod transaction;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::envelope::{header, trace_context};
use service_kit::kafka::ownership::{Ownership, OwnershipChange};
use service_kit::kafka::topics::DECIDER_GROUP as GROUP;
use service_kit::kafka::{KafkaArgs, Topics};
use service_kit::stream::{Batching, CancellationToken};
use service_kit::telemetry::{self, TraceContext};
use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{info, info_span, warn, Instrument};
use uuid::Uuid;

use self::restore::{blocking_store, Restored};
use self::store::Store;

pub use self::metrics::DeciderMetrics;
pub use self::restore::Read as RestoreRead;
pub(crate) use self::store::check_dir as check_state_dir;
pub use self::store::StoreError;

/// Short on purpose: a crashed decider's open transaction holds back every `read_committed`
/// reader of its partitions until it expires.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a transactional call may take, its own timeout included, before the decider gives up
/// on it. librdkafka can leave `send_offsets_to_transaction` waiting, past its timeout, for a group
/// coordinator that died (librdkafka issues 5456 and 5511), and such a call cannot be cancelled.
const HUNG_AFTER: Duration = Duration::from_secs(30);
/// How often verdicts past the horizon are dropped from the store.
const FORGET_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum DeciderError {
    #[error(transparent)]
    Log(#[from] service_kit::kafka::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event delivery was cancelled")]
    DeliveryCancelled,
    /// A transactional call that never returned: only a new process frees it.
    #[error("the Kafka call `{call}` has not returned within {after:?}; the process must restart")]
    Hung { call: &'static str, after: Duration },
    #[error("the consumer has no group metadata (not in a group)")]
    NoGroupMetadata,
    #[error(transparent)]
    DuplicateInstance(#[from] instance::DuplicateInstance),
}

impl From<KafkaError> for DeciderError {
    fn from(err: KafkaError) -> Self {
        Self::Log(err.into())
    }
}

impl From<rdkafka::error::RDKafkaError> for DeciderError {
    fn from(err: rdkafka::error::RDKafkaError) -> Self {
        KafkaError::Transaction(err).into()
    }
}

type Result<T, E = DeciderError> = std::result::Result<T, E>;

/// How the decider batches, names itself and keeps its state.
#[derive(Debug, Clone)]
pub struct DeciderSettings {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    pub instance_id: String,
    pub batching: Batching,
    /// Partitions of the outcomes topic: a verdict goes to the reply partition its command
    /// names when the topic has it (see [`crate::reply`]).
    pub outcome_partitions: i32,
    /// Directory of the local state store; the file is named after the topic prefix and the
    /// instance id.
    pub state_dir: PathBuf,
    /// Fold the events log on every assignment instead of restoring from the changelog.
    pub rebuild_state: bool,
}

impl DeciderSettings {
    fn store_path(&self) -> PathBuf {
        self.state_dir
            .join(format!("{}decider-{}.redb", self.kafka.topic_prefix, self.instance_id))
    }
}

/// Runs one incarnation of the decider until `shutdown` (between batches) or the first error,
/// then leaves the consumer group and makes the store durable.
/// `ready` is true while every owned partition's state is restored.
pub async fn run(
    settings: &DeciderSettings,
    metrics: &DeciderMetrics,
    ready: &AtomicBool,
    shutdown: &CancellationToken,
) -> Result<()> {
    // Starting waits on the transaction coordinator, for long when Kafka is away: no reason to
    // hold up a shutdown, as nothing is written yet.
    let Some(started) = shutdown
        .run_until_cancelled(Decider::start(settings, metrics.clone()))
        .await
    else {
        return Ok(());
    };
    let mut decider = started?;
    let result = decider.run(ready, shutdown).await;
    metrics.ready.set(0.0);
    if matches!(result, Err(DeciderError::Hung { .. })) {
        // Closing would wait on the hung call as well: leave everything to the process's end.
        std::mem::forget(decider);
        return result;
    }
    decider.close().await;
    result
}

/// Restores `partitions` of a fresh store at `state_dir`, as a decider newly assigned them
/// would, and says what it read: for the restore benchmark.
pub async fn restore_for_benchmark(
    settings: &DeciderSettings,
    metrics: &DeciderMetrics,
    partitions: &[i32],
) -> Result<RestoreRead> {
    let store = Arc::new(open_store(settings).await?);
    let mut total = RestoreRead::default();
    for &partition in partitions {
        let (_, read) = restore::restore(settings, &store, partition, metrics).await?;
        total.changelog += read.changelog;
        total.events += read.events;
        total.verdicts += read.verdicts;
    }
    blocking_store(move || store.persist()).await?;
    Ok(total)
}

async fn open_store(settings: &DeciderSettings) -> Result<Store> {
    let path = settings.store_path();
    blocking_store(move || Store::open(&path)).await
}

struct Decider<'a> {
    settings: &'a DeciderSettings,
    metrics: DeciderMetrics,
    consumer: Arc<StreamConsumer<Ownership>>,
    producer: FutureProducer,
    store: Arc<Store>,
    /// Partitions restored and being decided.
    owned: BTreeSet<i32>,
    /// Partitions being restored, each in a task of its own; paused on the consumer meanwhile.
    restoring: HashMap<i32, JoinHandle<Result<(Restored, RestoreRead)>>>,
    /// The first offset of a restoring partition's commands fetched before its pause took
    /// effect: where to seek back to when it resumes.
    fetched_early: HashMap<i32, i64>,
    last_forget: Instant,
}

impl<'a> Decider<'a> {
    async fn start(settings: &'a DeciderSettings, metrics: DeciderMetrics) -> Result<Self> {
        let kafka = &settings.kafka;
        let client_id = instance::client_id(&settings.instance_id);
        // Before anything of ours can fence a namesake: its transactional id is ours too.
        instance::ensure_unique(kafka, &kafka.group(GROUP), &client_id).await?;
        let store = Arc::new(open_store(settings).await?);
        let producer: FutureProducer = kafka
            .producer_config()
            .set(
                "transactional.id",
                format!("{}orderstream-decider-{}", kafka.topic_prefix, settings.instance_id),
            )
            .set("transaction.timeout.ms", TRANSACTION_TIMEOUT.as_millis().to_string())
            .set("linger.ms", "1")
            // Right after a commit the coordinator is still writing markers and answers the next
            // transaction's first request with CONCURRENT_TRANSACTIONS; the default 100 ms
            // backoff would put a floor of 100 ms under every batch.
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "50")
            .create()?;
        let init = producer.clone();
        blocking(move || init.init_transactions(TRANSACTION_TIMEOUT)).await?;
        let consumer: StreamConsumer<Ownership> = kafka
            .member_config(GROUP)
            .set("client.id", &client_id)
            .set("fetch.wait.max.ms", "10")
            .create_with_context(Ownership::default())?;
        consumer.subscribe(&[&settings.topics.commands])?;
        info!(instance = %settings.instance_id, "decider started");
        Ok(Self {
            settings,
            metrics,
            consumer: Arc::new(consumer),
            producer,
            store,
            owned: BTreeSet::new(),
            restoring: HashMap::new(),
            fetched_early: HashMap::new(),
            last_forget: Instant::now(),
        })
    }

    async fn run(&mut self, ready: &AtomicBool, shutdown: &CancellationToken) -> Result<()> {
        // A turn at least this often, to follow a rebalance and restores while no command comes.
        let batching = self.settings.batching.first_within(Duration::from_millis(200));
        loop {
            let consumer = &self.consumer;
            let recv = || async { service_kit::kafka::recv(consumer).await.map(|message| message.detach()) };
            let Some(batch) = shutdown.run_until_cancelled(batching.next(recv)).await else {
                return Ok(());
            };
            let batch: Vec<OwnedMessage> = batch?;
            self.follow_ownership();
            self.finish_restores().await?;
            let restored = self.consumer.context().has_joined() && self.restoring.is_empty();
            ready.store(restored, Ordering::Release);
            self.metrics.ready.set(if restored { 1.0 } else { 0.0 });
            self.metrics.partitions_owned.set(self.owned.len() as f64);
            self.forget_old_verdicts().await?;
            if !batch.is_empty() {
                self.decide(batch).await?;
            }
        }
    }

    /// Stops restoring, leaves the group (so the partitions move at once) and makes the store
    /// durable; each off the async workers.
    async fn close(self) {
        for (_, restore) in self.restoring {
            restore.abort();
        }
        let consumer = self.consumer;
        // Dropping the last handle closes the consumer: it leaves the group.
        let closed = tokio::task::spawn_blocking(move || drop(consumer)).await;
        let producer = self.producer;
        let flushed = tokio::task::spawn_blocking(move || drop(producer)).await;
        let store = self.store;
        let persisted = tokio::task::spawn_blocking(move || store.persist()).await;
        match (closed, flushed, persisted) {
            (Ok(()), Ok(()), Ok(Ok(()))) => info!("decider stopped and left the group"),
            (_, _, Ok(Err(error))) => warn!(%error, "decider stopped; the store could not be made durable"),
            _ => warn!("decider stopped; closing panicked"),
        }
    }

    /// Starts restoring newly assigned partitions and drops revoked ones, restoring or not.
    fn follow_ownership(&mut self) {
        for change in self.consumer.context().take_changes() {
            match change {
                OwnershipChange::Revoked(partitions) => {
                    for partition in partitions {
                        self.owned.remove(&partition);
                        self.fetched_early.remove(&partition);
                        if let Some(restore) = self.restoring.remove(&partition) {
                            restore.abort();
                        }
                    }
                }
                OwnershipChange::Assigned(partitions) => {
                    info!(?partitions, "restoring partitions");
                    for partition in partitions {
                        let (settings, store, metrics) =
                            (self.settings.clone(), self.store.clone(), self.metrics.clone());
                        let restore =
                            tokio::spawn(async move { restore::restore(&settings, &store, partition, &metrics).await });
                        if let Some(previous) = self.restoring.insert(partition, restore) {
                            previous.abort();
                        }
                    }
                }
            }
        }
    }

    /// Takes over the partitions whose restore has finished: seeds their changelog if it had to
    /// fold the events log, then resumes them where their first command is.
    async fn finish_restores(&mut self) -> Result<()> {
        let finished: Vec<i32> = self
            .restoring
            .iter()
            .filter(|(_, restore)| restore.is_finished())
            .map(|(&partition, _)| partition)
            .collect();
        for partition in finished {
            let Some(restore) = self.restoring.remove(&partition) else {
                continue;
            };
            let (restored, read) = restore.await.expect("a restore panicked")?;
            self.metrics.restored_changelog.increment(read.changelog);
            self.metrics.restored_events.increment(read.events);
            self.metrics.restored_verdicts.increment(read.verdicts);
            if restored.needs_seed {
                self.seed(partition).await?;
            }
            self.resume(partition).await?;
            self.owned.insert(partition);
        }
        Ok(())
    }

    /// Resumes fetching `partition`, from the first command fetched before its pause, if any.
    async fn resume(&mut self, partition: i32) -> Result<()> {
        let topic = self.settings.topics.commands.clone();
        if let Some(offset) = self.fetched_early.remove(&partition) {
            let consumer = self.consumer.clone();
            let topic = topic.clone();
            blocking(move || consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(10))).await?;
        }
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, partition);
        self.consumer.resume(&list)?;
        info!(partition, "partition restored; deciding");
        Ok(())
    }

    /// Commits `offsets` of the commands topic within the open transaction, with the group's
    /// metadata: a decider that no longer owns them is fenced.
    async fn send_offsets(&self, offsets: TopicPartitionList) -> Result<()> {
        let group = self.consumer.group_metadata().ok_or(DeciderError::NoGroupMetadata)?;
        let producer = self.producer.clone();
        transactional("send_offsets_to_transaction", move || {
            producer.send_offsets_to_transaction(&offsets, &group, TRANSACTION_TIMEOUT)
        })
        .await
    }

    async fn abort(&self) {
        let producer = self.producer.clone();
        if let Err(abort) = transactional("abort_transaction", move || {
            producer.abort_transaction(TRANSACTION_TIMEOUT)
        })
        .await
        {
            warn!(error = %abort, "could not abort the transaction");
        }
    }

    /// Drops the verdicts past the horizon from the store, once a minute.
    async fn forget_old_verdicts(&mut self) -> Result<()> {
        if self.last_forget.elapsed() < FORGET_EVERY {
            return Ok(());
        }
        self.last_forget = Instant::now();
        let cutoff = state::horizon_cutoff(chrono::Utc::now().timestamp_millis());
        let (store, partitions) = (self.store.clone(), self.owned.iter().copied().collect::<Vec<_>>());
        blocking_store(move || store.forget_verdicts_before(&partitions, cutoff)).await
    }

    /// Decides a batch in one transaction; on any failure the transaction is aborted.
    async fn decide(&mut self, batch: Vec<OwnedMessage>) -> Result<()> {
        let batch = self.owned_commands(batch);
        if batch.is_empty() {
            return Ok(());
        }
        let span = info_span!(parent: None, "decide", commands = batch.len());
        if telemetry::is_exported() {
            let commands: Vec<TraceContext> = batch.iter().map(trace_context).collect();
            TraceContext::follow_all(&span, &commands);
        }
        self.decide_batch(&batch).instrument(span).await
    }

    async fn decide_batch(&mut self, batch: &[OwnedMessage]) -> Result<()> {
        let producer = self.producer.clone();
        blocking(move || producer.begin_transaction()).await?;
        match self
            .decide_in_transaction(batch)
            .instrument(info_span!("transaction"))
            .await
        {
            Ok(()) => {
                self.metrics.batch_size.record(batch.len() as f64);
                Ok(())
            }
            Err(err) => {
                self.abort().await;
                Err(err)
            }
        }
    }

    /// The commands of `batch` on partitions this decider decides. A command of a partition still
    /// restoring (fetched before its pause) is left for later: its partition resumes from it.
    fn owned_commands(&mut self, batch: Vec<OwnedMessage>) -> Vec<OwnedMessage> {
        batch
            .into_iter()
            .filter(|message| {
                let partition = message.partition();
                if self.restoring.contains_key(&partition) {
                    let first = self.fetched_early.entry(partition).or_insert(message.offset());
                    *first = (*first).min(message.offset());
                }
                // Revoked meanwhile: its new owner decides it.
                self.owned.contains(&partition)
            })
            .collect()
    }
}

/// The aggregate a record is about, read without decoding it: its key, else `ce_subject`.
fn aggregate_of(record: &impl Message) -> Option<Uuid> {
    record
        .key()
        .and_then(|key| std::str::from_utf8(key).ok())
        .and_then(|key| key.parse().ok())
        .or_else(|| header(record, "ce_subject").and_then(|subject| subject.parse().ok()))
}

/// A transactional call off the async workers, given up as [`DeciderError::Hung`] after
/// [`HUNG_AFTER`].
async fn transactional<T: Send + 'static>(
    call: &'static str,
    run: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T> {
    tokio::time::timeout(HUNG_AFTER, blocking(run))
        .await
        .unwrap_or(Err(DeciderError::Hung {
            call,
            after: HUNG_AFTER,
        }))
}

/// Runs a blocking librdkafka call off the async workers.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .expect("blocking Kafka call panicked")
        .map_err(DeciderError::from)
}
