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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{Aggregates, Command, Decider as _, Message as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::envelope::{header, trace_context, trace_headers};
use service_kit::kafka::ownership::{Ownership, OwnershipChange};
use service_kit::kafka::topics::DECIDER_GROUP as GROUP;
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::stream::{Batching, CancellationToken};
use service_kit::telemetry::{self, TraceContext};
use service_kit::ConsistencyToken;
use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{info, info_span, warn, Instrument};
use uuid::Uuid;

use self::restore::{blocking_store, Restored};
use self::state::AggregateEntry;
use self::store::{Changes, Mirrored, Store, Stored};
use crate::catalog::{self, CATALOG_PARTITION};
use crate::outcome::{same_request, Outcome, Refusal, Verdict, WrittenEvent, REQUEST_DIGEST_HEADER};
use crate::reply::ReplyRoutes;

pub use self::metrics::DeciderMetrics;
pub use self::restore::Read as RestoreRead;
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

/// What deciding a batch reads from the store.
struct Loaded {
    /// The aggregates the batch's records name (by key or `ce_subject`).
    looked_up: HashSet<Uuid>,
    aggregates: HashMap<Uuid, Stored>,
    /// Verdicts on the batch's command ids within the horizon.
    decided: HashMap<Uuid, Outcome>,
}

/// A verdict waiting to be written.
enum Pending {
    /// Remembered; waits for its events' positions.
    Accepted {
        command_id: Uuid,
        aggregate_id: Uuid,
        request_digest: Option<String>,
        partition: i32,
        events: Vec<(&'static str, u64, DeliveryFuture)>,
    },
    /// A domain rejection: remembered, so a retry answers the same.
    Rejected { partition: i32, outcome: Outcome },
    /// Answered only: a repeated command's first verdict, or a refusal.
    Answered(Outcome),
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

    /// Decides `batch` in the transaction already begun, each command in a span continuing its
    /// trace.
    async fn decide_in_transaction(&mut self, batch: &[OwnedMessage]) -> Result<()> {
        let topics = &self.settings.topics;
        let Loaded {
            looked_up,
            aggregates: loaded,
            decided,
        } = self.load(batch).await?;
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut changed: HashMap<Uuid, (i32, AggregateEntry)> = HashMap::new();
        // Request digests of the commands seen in this batch, by command id.
        let mut seen: HashMap<Uuid, Option<String>> = HashMap::new();
        // Each command's trace context as its verdict should carry it: its `decide_command` span
        // while traces are exported, else the command's own.
        let mut traces: HashMap<Uuid, TraceContext> = HashMap::new();
        let mut pending = Vec::new();
        // Products whose name or price this batch changed: their catalog entries go out with it.
        let mut recatalogued = HashSet::new();
        for message in batch {
            let partition = message.partition();
            next_offsets.insert(partition, message.offset() + 1);
            let request_digest = header(message, REQUEST_DIGEST_HEADER).map(str::to_owned);
            let command = match Envelope::<Command>::from_kafka(message) {
                Ok(command) => command,
                Err(err) => {
                    self.metrics.undecodable_commands.increment(1);
                    match header(message, "ce_id").and_then(|id| id.parse().ok()) {
                        Some(command_id) => {
                            warn!(%command_id, error = %err, "refusing a command that does not decode");
                            self.metrics.refusals.increment(1);
                            pending.push(Pending::Answered(Outcome {
                                command_id,
                                aggregate_id: aggregate_of(message).unwrap_or_else(Uuid::nil),
                                request_digest,
                                verdict: Verdict::Refused {
                                    refusal: Refusal::Undecodable,
                                },
                            }));
                        }
                        None => warn!(error = %err, "skipping a command that does not decode and has no readable id"),
                    }
                    continue;
                }
            };
            let command_span = command.trace.child_span(
                || info_span!("decide_command", command_id = %command.id, command = command.message.message_type()),
            );
            let _in_command = command_span.enter();
            traces.insert(command.id, command.trace.to_send().into_owned());
            let aggregate_id = command.message.aggregate_id();
            let refused = |refusal| {
                self.metrics.refusals.increment(1);
                Pending::Answered(Outcome {
                    command_id: command.id,
                    aggregate_id,
                    request_digest: request_digest.clone(),
                    verdict: Verdict::Refused { refusal },
                })
            };
            match seen.entry(command.id) {
                Entry::Occupied(first) => {
                    // The same request earlier in this batch already has its verdict coming.
                    if !same_request(first.get().as_deref(), request_digest.as_deref()) {
                        pending.push(refused(Refusal::IdempotencyKeyReused));
                    }
                    continue;
                }
                Entry::Vacant(slot) => {
                    slot.insert(request_digest.clone());
                }
            }
            self.metrics.commands.increment(1);
            if let Some(first) = decided.get(&command.id) {
                pending.push(if first.answers(request_digest.as_deref()) {
                    Pending::Answered(first.clone())
                } else {
                    refused(Refusal::IdempotencyKeyReused)
                });
                continue;
            }
            if !looked_up.contains(&aggregate_id) {
                // Its record names another aggregate (key and `ce_subject`) than its body does.
                warn!(command_id = %command.id, %aggregate_id, "refusing a command whose record names another aggregate");
                self.metrics.undecodable_commands.increment(1);
                pending.push(refused(Refusal::Undecodable));
                continue;
            }
            if loaded.get(&aggregate_id) == Some(&Stored::Quarantined) {
                pending.push(refused(Refusal::AggregateQuarantined { aggregate_id }));
                continue;
            }
            let entry = changed
                .get(&aggregate_id)
                .map(|(_, entry)| entry)
                .or_else(|| match loaded.get(&aggregate_id) {
                    Some(Stored::Live(entry)) => Some(entry),
                    _ => None,
                })
                .cloned()
                .unwrap_or_default();
            match Aggregates::decide(&entry.state, &command.message) {
                Err(rejection) => {
                    self.metrics.rejections.increment(1);
                    pending.push(Pending::Rejected {
                        partition,
                        outcome: Outcome {
                            command_id: command.id,
                            aggregate_id,
                            request_digest,
                            verdict: Verdict::Rejected { rejection },
                        },
                    });
                }
                Ok(events) => {
                    let mut entry = entry;
                    let mut written = Vec::with_capacity(events.len());
                    for (index, event) in events.into_iter().enumerate() {
                        if catalog::changes_entry(&event) {
                            recatalogued.insert(aggregate_id);
                        }
                        entry.version += 1;
                        entry.state = Aggregates::evolve(entry.state, &event);
                        let envelope = Envelope {
                            id: event_id(command.id, index),
                            time: command.time,
                            sequence: Some(entry.version),
                            causation_id: Some(command.id),
                            correlation_id: command.correlation_id,
                            trace: command.trace.clone(),
                            message: event,
                        };
                        let delivery = self.send(
                            &topics.events,
                            Some(partition),
                            &envelope.key(),
                            &envelope.payload(),
                            Some(envelope.headers()),
                        )?;
                        written.push((envelope.message.message_type(), entry.version, delivery));
                    }
                    changed.insert(aggregate_id, (partition, entry));
                    pending.push(Pending::Accepted {
                        command_id: command.id,
                        aggregate_id,
                        request_digest,
                        partition,
                        events: written,
                    });
                }
            }
        }

        let replies = ReplyRoutes::of(batch, self.settings.outcome_partitions);
        // The new state of each changed aggregate, for a replica that restores from the changelog.
        let mut mirrored = Vec::new();
        let mut stored = Vec::with_capacity(changed.len());
        let mut catalogued = Vec::new();
        for (aggregate_id, (partition, entry)) in changed {
            if let Some((key, payload)) = recatalogued
                .contains(&aggregate_id)
                .then(|| catalog::record(&entry.state))
                .flatten()
            {
                catalogued.push(self.send(&topics.catalog, Some(CATALOG_PARTITION), &key, &payload, None)?);
            }
            let state = Stored::Live(entry);
            let payload = serde_json::to_vec(&state).map_err(StoreError::from)?;
            let key = aggregate_id.to_string();
            mirrored.push((
                Mirrored::Changelog,
                partition,
                self.send(&topics.decider_state, Some(partition), &key, &payload, None)?,
            ));
            stored.push((partition, aggregate_id, state));
        }

        let mut remembered = Vec::new();
        let mut verdicts = Vec::new();
        for verdict in pending {
            let (outcome, remember_in) = match verdict {
                Pending::Answered(outcome) => (outcome, None),
                Pending::Rejected { partition, outcome } => (outcome, Some(partition)),
                Pending::Accepted {
                    command_id,
                    aggregate_id,
                    request_digest,
                    partition,
                    events,
                } => {
                    let mut written = Vec::with_capacity(events.len());
                    for (event_type, sequence, delivery) in events {
                        let delivered = delivery
                            .await
                            .map_err(|_| DeciderError::DeliveryCancelled)?
                            .map_err(|(err, _)| err)?;
                        written.push(WrittenEvent {
                            event_type: event_type.to_owned(),
                            sequence,
                            partition: delivered.partition,
                            offset: delivered.offset,
                        });
                    }
                    let last = written.last().map_or(0, |e| e.offset + 1);
                    let outcome = Outcome {
                        command_id,
                        aggregate_id,
                        request_digest,
                        verdict: Verdict::Accepted {
                            events: written,
                            consistency_token: ConsistencyToken::at(partition, last).encode(),
                        },
                    };
                    (outcome, Some(partition))
                }
            };
            let key = outcome.command_id.to_string();
            let payload = outcome.encode();
            let trace = traces.get(&outcome.command_id);
            for reply in replies.to(outcome.command_id) {
                verdicts.push(self.send(&topics.outcomes, reply, &key, &payload, trace.and_then(trace_headers))?);
            }
            if let Some(partition) = remember_in {
                let delivery = self.send(
                    &topics.verdicts,
                    Some(partition),
                    &key,
                    &payload,
                    trace.and_then(trace_headers),
                )?;
                mirrored.push((Mirrored::Verdicts, partition, delivery));
                remembered.push((partition, outcome));
            }
        }
        // Await the verdicts' acks here rather than leave them to the commit: commit's internal
        // flush waits for outstanding deliveries in 100 ms polling steps, a floor under every batch.
        for verdict in verdicts.into_iter().chain(catalogued) {
            verdict
                .await
                .map_err(|_| DeciderError::DeliveryCancelled)?
                .map_err(|(err, _)| err)?;
        }
        let mut changes = Changes {
            aggregates: stored,
            ..Changes::default()
        };
        for (log, partition, delivery) in mirrored {
            let delivered = delivery
                .await
                .map_err(|_| DeciderError::DeliveryCancelled)?
                .map_err(|(err, _)| err)?;
            changes.advance(log, partition, delivered.offset + 1);
        }

        if !next_offsets.is_empty() {
            let mut offsets = TopicPartitionList::new();
            for (&partition, &offset) in &next_offsets {
                offsets.add_partition_offset(&topics.commands, partition, Offset::Offset(offset))?;
            }
            self.send_offsets(offsets).await?;
        }
        let producer = self.producer.clone();
        let committing = Instant::now();
        transactional("commit_transaction", move || {
            producer.commit_transaction(TRANSACTION_TIMEOUT)
        })
        .await?;
        self.metrics.commit_seconds.record(committing.elapsed());
        self.metrics.transactions.increment(1);

        // Committed: the store follows. Should this fail or the process die first, the store
        // catches up from the changelog and verdicts on the next restore.
        let now_ms = chrono::Utc::now().timestamp_millis();
        changes.verdicts = remembered
            .into_iter()
            .map(|(partition, outcome)| (partition, now_ms, outcome))
            .collect();
        let store = self.store.clone();
        blocking_store(move || store.write(&changes)).await
    }

    /// The stored state of the aggregates `batch` addresses and the verdicts on its commands
    /// still within the horizon: all that deciding it reads.
    async fn load(&self, batch: &[OwnedMessage]) -> Result<Loaded> {
        let mut aggregates = Vec::with_capacity(batch.len());
        let mut commands = Vec::with_capacity(batch.len());
        for message in batch {
            let partition = message.partition();
            let key = message
                .key()
                .and_then(|key| std::str::from_utf8(key).ok())
                .and_then(|key| key.parse().ok());
            let subject = header(message, "ce_subject").and_then(|subject| subject.parse().ok());
            aggregates.extend([key, subject].into_iter().flatten().map(|id| (partition, id)));
            commands.extend(
                header(message, "ce_id")
                    .and_then(|id| id.parse().ok())
                    .map(|id| (partition, id)),
            );
        }
        let cutoff = state::horizon_cutoff(chrono::Utc::now().timestamp_millis());
        let store = self.store.clone();
        let looked_up = aggregates.iter().map(|&(_, id)| id).collect();
        let (aggregates, decided) = blocking_store(move || store.load(&aggregates, &commands, cutoff)).await?;
        Ok(Loaded {
            looked_up,
            aggregates,
            decided,
        })
    }

    fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &str,
        payload: &[u8],
        headers: Option<rdkafka::message::OwnedHeaders>,
    ) -> Result<DeliveryFuture> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        self.producer.send_result(record).map_err(|(err, _)| err.into())
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

/// Event ids derive from the command, so the same decision always names its events the same.
fn event_id(command_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&command_id, &index.to_be_bytes())
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
