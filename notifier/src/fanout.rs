//! The fan-out: the events log turned into delivery rows.
//!
//! A member of the consumer group `orderstream-notifier-<schema>` (several replicas share the
//! partitions) reads batches of events, inserts every matching webhook's delivery in one
//! PostgreSQL transaction, and only then commits the batch's Kafka offsets. So a crash between
//! the two reads the batch again, and the unique key `(webhook_id, event_id)` makes the second
//! insert a no-op: at least once into the table, exactly once in it. A record that does not
//! decode (not JSON, an unknown type, whoever wrote it) is logged, counted and passed over.

use std::collections::HashMap;
use std::time::Duration;

use domain::Event;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::stream::{Backoff, Batching, CancellationToken};
use service_kit::telemetry::{self, TraceContext};
use sqlx::PgPool;
use thiserror::Error;
use tokio::sync::Notify;
use tracing::{debug, info_span, warn, Instrument};

use crate::notification::Notification;
use crate::store::deliveries::{self, Fanned};

/// Retrying a batch whose transaction failed (PostgreSQL away): the batch stays in hand.
const STORE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

#[derive(Debug, Error)]
pub enum FanoutError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Topics(#[from] service_kit::kafka::Error),
}

/// What the fan-out needs besides its pool.
#[derive(Debug, Clone)]
pub struct FanoutSettings {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    /// The consumer group, before the topic prefix: one per database schema, since the rows of
    /// one schema are what its offsets account for.
    pub group: String,
    pub batching: Batching,
}

impl FanoutSettings {
    pub fn new(kafka: KafkaArgs, schema: &str, batching: Batching) -> Self {
        Self {
            topics: Topics::new(&kafka.topic_prefix),
            kafka,
            group: format!("orderstream-notifier-{schema}"),
            batching,
        }
    }
}

service_kit::metric_set! {
    /// The fan-out's counters.
    pub struct FanoutMetrics {
        pub events: Counter("notifier_events_total", "Events read from the events log"),
        pub skipped: Counter(
            "notifier_records_skipped_total",
            "Records on the events topic that did not decode and were passed over",
        ),
        pub deliveries: Counter("notifier_deliveries_created_total", "Delivery rows inserted"),
    }
}

/// Consumes until `shutdown`, after the batch in hand is stored and committed. Wakes
/// `dispatcher` after each batch that created deliveries.
#[tracing::instrument(skip_all, fields(group = %settings.group))]
pub async fn run(
    settings: &FanoutSettings,
    pool: &PgPool,
    metrics: &FanoutMetrics,
    dispatcher: &Notify,
    shutdown: &CancellationToken,
) -> Result<(), FanoutError> {
    settings.topics.ensure(&settings.kafka).await?;
    let consumer: StreamConsumer = settings.kafka.member_config(&settings.group).create()?;
    consumer.subscribe(&[&settings.topics.events])?;
    loop {
        let Some(batch) = shutdown
            .run_until_cancelled(settings.batching.next(|| service_kit::kafka::recv(&consumer)))
            .await
        else {
            return Ok(());
        };
        let batch: Vec<BorrowedMessage<'_>> = batch?;
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut traces = Vec::new();
        for record in &batch {
            next_offsets.insert(record.partition(), record.offset() + 1);
            metrics.events.increment(1);
            match Envelope::<Event>::from_kafka(record) {
                Ok(envelope) => {
                    if let Some(notification) = Notification::of(&envelope.message) {
                        events.push(Fanned {
                            event_id: envelope.id,
                            notification,
                        });
                        if telemetry::is_exported() {
                            traces.push(envelope.trace);
                        }
                    }
                }
                Err(error) => {
                    metrics.skipped.increment(1);
                    warn!(%error, "a record on the events topic does not decode; passing over it");
                }
            }
        }
        if !events.is_empty() {
            let span = info_span!(parent: None, "fan_out", records = batch.len(), deliveries = events.len());
            TraceContext::follow_all(&span, &traces);
            let stored = STORE_BACKOFF
                .retry("fan-out", shutdown, || deliveries::fan_out(pool, &events))
                .instrument(span)
                .await;
            let Some(inserted) = stored else {
                // Shut down before the batch was stored: its offsets stay uncommitted.
                return Ok(());
            };
            metrics.deliveries.increment(inserted);
            if inserted > 0 {
                dispatcher.notify_one();
            }
        }
        commit(&consumer, &settings.topics.events, &next_offsets);
        debug!(records = batch.len(), events = events.len(), "batch fanned out");
    }
}

/// Commits the offsets after a stored batch, asynchronously: no blocking librdkafka call on an
/// async worker. A commit that fails (a rebalance under way) costs nothing but a second reading:
/// whoever reads those records again inserts nothing new.
fn commit(consumer: &StreamConsumer, topic: &str, next_offsets: &HashMap<i32, i64>) {
    let mut offsets = TopicPartitionList::new();
    for (&partition, &offset) in next_offsets {
        if let Err(error) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            warn!(%error, partition, "offset not added to the commit");
        }
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        warn!(%error, "offsets not committed; the records will be read again and add nothing");
    }
}
