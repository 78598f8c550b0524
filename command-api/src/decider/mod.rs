//! The exactly-once decider.
//!
//! It consumes commands in a consumer group (`read_committed`), decides each against the state
//! folded from its partition's events, and writes the events (to the same partition number), the
//! verdicts and the consumed offsets in ONE Kafka transaction per batch, committing the offsets
//! with the group's metadata (KIP-447) so that a zombie left over from a rebalance is fenced by
//! Kafka. Any transactional failure aborts, drops all in-memory state and starts over from the
//! committed offsets: restoring from the log is the one recovery path.
//!
//! Accepted and rejected verdicts also go, in the same transaction, to the verdicts topic (keyed
//! by command id, on the command's partition number): a repeated command gets its first answer,
//! even after a restart, for as long as that topic keeps it (the idempotency horizon). The same
//! command id with another request digest is refused as a reused idempotency key.
//!
//! No record stops a partition: a command that does not decode is refused at once when its id
//! can be read (else skipped), and a command for a quarantined aggregate (see [`state`]) is
//! refused; both are logged and counted.

mod ownership;
mod state;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::{Aggregates, Command, Decider as _, Message as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::envelope::header;
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::metrics::{Counter, Registry};
use service_kit::stream::{Batching, CancellationToken};
use service_kit::ConsistencyToken;
use thiserror::Error;
use tracing::{info, warn};
use uuid::Uuid;

use self::ownership::{OwnershipChange, OwnershipContext};
use self::state::{AggregateEntry, PartitionState};
use crate::outcome::{same_request, Outcome, Refusal, Verdict, WrittenEvent, REQUEST_DIGEST_HEADER};
use crate::reply::ReplyRoutes;

/// Short on purpose: a crashed decider's open transaction holds back every `read_committed`
/// reader of its partitions until it expires.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
const GROUP: &str = "orderstream-decider";

#[derive(Debug, Error)]
pub enum DeciderError {
    #[error(transparent)]
    Log(#[from] service_kit::kafka::Error),
    #[error("event delivery was cancelled")]
    DeliveryCancelled,
    #[error("the consumer has no group metadata (not in a group)")]
    NoGroupMetadata,
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

/// How the decider batches and names itself.
#[derive(Debug, Clone)]
pub struct DeciderSettings {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    pub instance_id: String,
    pub batching: Batching,
    /// Partitions of the outcomes topic: a verdict goes to the reply partition its command
    /// names when the topic has it (see [`crate::reply`]).
    pub outcome_partitions: i32,
}

/// Counts that `/metrics` reports.
#[derive(Debug, Clone)]
pub struct DeciderMetrics {
    commands: Arc<Counter>,
    rejections: Arc<Counter>,
    refusals: Arc<Counter>,
    undecodable_commands: Arc<Counter>,
    undecodable_events: Arc<Counter>,
    undecodable_verdicts: Arc<Counter>,
    transactions: Arc<Counter>,
}

impl DeciderMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            commands: registry.counter("orderstream_decider_commands_total", "", "Commands decided"),
            rejections: registry.counter("orderstream_decider_rejections_total", "", "Commands rejected"),
            refusals: registry.counter(
                "orderstream_decider_refusals_total",
                "",
                "Commands refused undecided: idempotency key reused, aggregate quarantined, or undecodable",
            ),
            undecodable_commands: registry.counter(
                "orderstream_decider_undecodable_commands_total",
                "",
                "Commands that did not decode (refused when their id was readable, else skipped)",
            ),
            undecodable_events: registry.counter(
                "orderstream_decider_undecodable_events_total",
                "",
                "Events that did not decode on restore (their aggregate quarantined when named, else skipped)",
            ),
            undecodable_verdicts: registry.counter(
                "orderstream_decider_undecodable_verdicts_total",
                "",
                "Verdict records that did not decode on restore (skipped)",
            ),
            transactions: registry.counter(
                "orderstream_decider_transactions_total",
                "",
                "Kafka transactions committed",
            ),
        }
    }
}

/// Runs one incarnation of the decider until `shutdown` (between batches) or the first error.
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
    // A turn at least this often, to follow a rebalance while no command comes.
    let batching = settings.batching.first_within(Duration::from_millis(200));
    loop {
        let recv = || async { decider.consumer.recv().await.map(|message| message.detach()) };
        let Some(batch) = shutdown.run_until_cancelled(batching.next(recv)).await else {
            return Ok(());
        };
        let batch: Vec<OwnedMessage> = batch?;
        ready.store(false, Ordering::Release);
        decider.follow_ownership().await?;
        ready.store(decider.has_assignment, Ordering::Release);
        if !batch.is_empty() {
            decider.decide(batch).await?;
        }
    }
}

struct Decider<'a> {
    settings: &'a DeciderSettings,
    metrics: DeciderMetrics,
    consumer: StreamConsumer<OwnershipContext>,
    producer: FutureProducer,
    partitions: HashMap<i32, PartitionState>,
    has_assignment: bool,
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
        let consumer: StreamConsumer<OwnershipContext> = kafka
            .consumer_config(GROUP)
            .set("fetch.wait.max.ms", "10")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .create_with_context(OwnershipContext::default())?;
        consumer.subscribe(&[&settings.topics.commands])?;
        info!(instance = %settings.instance_id, "decider started");
        Ok(Self {
            settings,
            metrics,
            consumer,
            producer,
            partitions: HashMap::new(),
            has_assignment: false,
        })
    }

    /// Drops state of revoked partitions and restores newly assigned ones from the events topic.
    async fn follow_ownership(&mut self) -> Result<()> {
        let mut to_restore = Vec::new();
        for change in self.consumer.context().take_changes() {
            match change {
                OwnershipChange::Revoked(partitions) => {
                    for partition in partitions {
                        self.partitions.remove(&partition);
                        to_restore.retain(|&p| p != partition);
                    }
                }
                OwnershipChange::Assigned(partitions) => {
                    self.has_assignment = true;
                    to_restore.extend(partitions);
                }
            }
        }
        if !to_restore.is_empty() {
            info!(partitions = ?to_restore, "restoring partitions");
            let restored =
                state::restore(&self.settings.kafka, &self.settings.topics, &to_restore, &self.metrics).await?;
            self.partitions.extend(restored);
        }
        Ok(())
    }

    /// Decides a batch in one transaction; on any failure the transaction is aborted.
    #[tracing::instrument(skip_all, fields(commands = batch.len()))]
    async fn decide(&mut self, batch: Vec<OwnedMessage>) -> Result<()> {
        let cutoff = state::horizon_cutoff(chrono::Utc::now().timestamp_millis());
        for partition in self.partitions.values_mut() {
            partition.decided.forget_before(cutoff);
        }
        let producer = self.producer.clone();
        blocking(move || producer.begin_transaction()).await?;
        match self.decide_in_transaction(&batch).await {
            Ok(()) => Ok(()),
            Err(err) => {
                let producer = self.producer.clone();
                if let Err(abort) = blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT)).await {
                    warn!(error = %abort, "could not abort the transaction");
                }
                Err(err)
            }
        }
    }

    async fn decide_in_transaction(&mut self, batch: &[OwnedMessage]) -> Result<()> {
        let topics = &self.settings.topics;
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut changed: HashMap<Uuid, (i32, AggregateEntry)> = HashMap::new();
        // Request digests of the commands seen in this batch, by command id.
        let mut seen: HashMap<Uuid, Option<String>> = HashMap::new();
        let mut pending = Vec::new();
        for message in batch {
            let partition = message.partition();
            let Some(partition_state) = self.partitions.get(&partition) else {
                continue; // revoked meanwhile: its new owner decides it
            };
            next_offsets.insert(partition, message.offset() + 1);
            let request_digest = header(message, REQUEST_DIGEST_HEADER).map(str::to_owned);
            let command = match Envelope::<Command>::from_kafka(message) {
                Ok(command) => command,
                Err(err) => {
                    self.metrics.undecodable_commands.add(1);
                    match header(message, "ce_id").and_then(|id| id.parse().ok()) {
                        Some(command_id) => {
                            warn!(%command_id, error = %err, "refusing a command that does not decode");
                            self.metrics.refusals.add(1);
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
            let aggregate_id = command.message.aggregate_id();
            let refused = |refusal| {
                self.metrics.refusals.add(1);
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
            self.metrics.commands.add(1);
            if let Some(first) = partition_state.decided.get(&command.id) {
                pending.push(if first.answers(request_digest.as_deref()) {
                    Pending::Answered(first.clone())
                } else {
                    refused(Refusal::IdempotencyKeyReused)
                });
                continue;
            }
            if partition_state.quarantined.contains(&aggregate_id) {
                pending.push(refused(Refusal::AggregateQuarantined { aggregate_id }));
                continue;
            }
            let entry = changed
                .get(&aggregate_id)
                .map(|(_, entry)| entry)
                .or_else(|| partition_state.aggregates.get(&aggregate_id))
                .cloned()
                .unwrap_or_default();
            match Aggregates::decide(&entry.state, &command.message) {
                Err(rejection) => {
                    self.metrics.rejections.add(1);
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
                        entry.version += 1;
                        entry.state = Aggregates::evolve(entry.state, &event);
                        let envelope = Envelope {
                            id: event_id(command.id, index),
                            time: command.time,
                            sequence: Some(entry.version),
                            causation_id: Some(command.id),
                            correlation_id: command.correlation_id,
                            traceparent: command.traceparent.clone(),
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
            for reply in replies.to(outcome.command_id) {
                verdicts.push(self.send(&topics.outcomes, reply, &key, &payload, None)?);
            }
            if let Some(partition) = remember_in {
                verdicts.push(self.send(&topics.verdicts, Some(partition), &key, &payload, None)?);
                remembered.push((partition, outcome));
            }
        }
        // Await the verdicts' acks here rather than leave them to the commit: commit's internal
        // flush waits for outstanding deliveries in 100 ms polling steps, a floor under every batch.
        for verdict in verdicts {
            verdict
                .await
                .map_err(|_| DeciderError::DeliveryCancelled)?
                .map_err(|(err, _)| err)?;
        }

        if !next_offsets.is_empty() {
            let mut offsets = TopicPartitionList::new();
            for (&partition, &offset) in &next_offsets {
                offsets.add_partition_offset(&topics.commands, partition, Offset::Offset(offset))?;
            }
            let group = self.consumer.group_metadata().ok_or(DeciderError::NoGroupMetadata)?;
            let producer = self.producer.clone();
            blocking(move || producer.send_offsets_to_transaction(&offsets, &group, TRANSACTION_TIMEOUT)).await?;
        }
        let producer = self.producer.clone();
        blocking(move || producer.commit_transaction(TRANSACTION_TIMEOUT)).await?;
        self.metrics.transactions.add(1);

        for (aggregate_id, (partition, entry)) in changed {
            if let Some(state) = self.partitions.get_mut(&partition) {
                state.aggregates.insert(aggregate_id, entry);
            }
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (partition, outcome) in remembered {
            if let Some(state) = self.partitions.get_mut(&partition) {
                state.decided.remember(outcome, now_ms);
            }
        }
        Ok(())
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

/// Runs a blocking librdkafka call off the async workers.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .expect("blocking Kafka call panicked")
        .map_err(DeciderError::from)
}
