//! Restoring one partition into the local store, off the decider's poll loop.
//!
//! Commands, events, verdicts and the state changelog are co-partitioned, so everything the
//! decider needs to decide the commands of partition p is in partition p of the others, and only
//! p's owner writes there. A restore brings the store up to the end of p of two compacted topics:
//!
//! - the state changelog, from the position the store recorded (near zero when the same replica
//!   restarts), or from the beginning for an empty store: one record per aggregate, never the
//!   whole events log;
//! - the verdicts topic, the same way, skipping verdicts past the idempotency horizon.
//!
//! A changelog partition is complete once it holds its marker record, which the decider writes
//! after seeding it. One without the marker (a log written before the changelog existed, or a
//! seeding cut short) is not trusted: the partition is folded from the events log into the store
//! instead, and the decider then seeds the changelog from the store ([`Restored::needs_seed`]).
//!
//! A restore reads each log to its end as it stands when the restore begins, open transactions
//! included: it waits until the last stable offset has reached the high watermark it saw first.
//! Reading only to the last stable offset would miss a transaction still open there that commits
//! later: one of a previous owner the group took the partition from while it could not be
//! reached, whose offsets were already sent. Its commands are then committed as decided, so their
//! state must be here. A transaction begun after the restore by such a replica has its offsets
//! fenced (its generation is gone) and aborts.
//!
//! No record stops a restore: an event or changelog record that does not decode quarantines its
//! aggregate (its state is unknown), and one whose aggregate cannot even be named is skipped;
//! both are logged and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{Event, Message as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs};
use tracing::{info, warn};
use uuid::Uuid;

use super::state::{horizon_cutoff, AggregateEntry};
use super::store::{Changes, Mirrored, Store, Stored};
use super::{aggregate_of, blocking, DeciderError, DeciderMetrics, DeciderSettings};
use crate::outcome::Outcome;

/// The key of the record that closes a seeded changelog partition.
pub(crate) const COMPLETE_MARKER: &str = "orderstream.decider-state.complete";
/// Records read before the store is written: what a restore holds in memory at most.
const CHUNK: usize = 10_000;
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a restore asks again whether the open transactions it waits for have ended.
const SETTLE_POLL: Duration = Duration::from_millis(100);
/// How often a restore waiting for open transactions says so (at once, then this often).
const SETTLE_REPORT: Duration = Duration::from_secs(10);

/// A partition brought up to date in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restored {
    pub(crate) partition: i32,
    /// Folded from the events log: the changelog must be seeded from the store before deciding.
    pub(crate) needs_seed: bool,
}

/// What a restore read, for its log line and the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// State changelog records.
    pub changelog: u64,
    /// Events, when the changelog was not complete and the events log was folded instead.
    pub events: u64,
    /// Verdict records.
    pub verdicts: u64,
}

/// Brings `partition` up to date in `store`; with [`DeciderSettings::rebuild_state`], from the
/// events log and every verdict, whatever the store and the changelog hold.
#[tracing::instrument(skip(settings, store, metrics))]
pub(crate) async fn restore(
    settings: &DeciderSettings,
    store: &Arc<Store>,
    partition: i32,
    metrics: &DeciderMetrics,
) -> Result<(Restored, Read), DeciderError> {
    let restore = Partition {
        kafka: &settings.kafka,
        store,
        partition,
        metrics,
    };
    let topics = &settings.topics;
    let mut read = Read::default();
    let complete = if settings.rebuild_state {
        restore.clear(Mirrored::Changelog).await?;
        restore.clear(Mirrored::Verdicts).await?;
        false
    } else {
        let (complete, changelog) = restore.catch_up_changelog(&topics.decider_state).await?;
        read.changelog = changelog;
        complete
    };
    if !complete {
        read.events = restore.fold_events(&topics.events).await?;
    }
    read.verdicts = restore.catch_up_verdicts(&topics.verdicts).await?;
    info!(
        changelog = read.changelog,
        events = read.events,
        verdicts = read.verdicts,
        "restored decider state"
    );
    Ok((
        Restored {
            partition,
            needs_seed: !complete,
        },
        read,
    ))
}

/// One partition being restored: where it is read from and written to.
struct Partition<'a> {
    kafka: &'a KafkaArgs,
    store: &'a Arc<Store>,
    partition: i32,
    metrics: &'a DeciderMetrics,
}

impl Partition<'_> {
    /// Reads the changelog from the store's position to the end. Returns whether the partition's
    /// changelog is complete (the store already held it whole, or the marker was read) and how many
    /// records were read. An incomplete one leaves nothing in the store.
    async fn catch_up_changelog(&self, topic: &str) -> Result<(bool, u64), DeciderError> {
        let (partition, metrics) = (self.partition, self.metrics);
        let mut reader = Reader::open(self, topic, Mirrored::Changelog).await?;
        // Positions are only recorded for a complete partition, so a known position means complete.
        let mut complete = reader.resumed;
        let mut read = 0;
        while let Some(chunk) = reader.next_chunk().await? {
            read += chunk.len() as u64;
            let mut changes = Changes::default();
            for record in &chunk {
                let key = record.key().and_then(|key| std::str::from_utf8(key).ok());
                if key == Some(COMPLETE_MARKER) {
                    complete = true;
                    continue;
                }
                let Some(aggregate_id) = key.and_then(|key| key.parse::<Uuid>().ok()) else {
                    metrics.undecodable_events.increment(1);
                    warn!(
                        offset = record.offset(),
                        "skipping a changelog record that names no aggregate"
                    );
                    continue;
                };
                let stored = match record.payload().map(serde_json::from_slice::<Stored>) {
                    Some(Ok(stored)) => stored,
                    _ => {
                        metrics.undecodable_events.increment(1);
                        warn!(%aggregate_id, offset = record.offset(), "quarantining an aggregate: its changelog record does not decode");
                        Stored::Quarantined
                    }
                };
                changes.aggregates.push((partition, aggregate_id, stored));
            }
            if complete {
                if let Some(last) = chunk.last() {
                    changes.advance(Mirrored::Changelog, partition, last.offset() + 1);
                }
            }
            self.write(changes).await?;
        }
        if !complete {
            self.clear(Mirrored::Changelog).await?;
        }
        Ok((complete, read))
    }

    /// Folds the events log of `partition` into the store, a chunk at a time.
    async fn fold_events(&self, topic: &str) -> Result<u64, DeciderError> {
        let (store, partition, metrics) = (self.store, self.partition, self.metrics);
        let mut reader = Reader::from_beginning(self, topic).await?;
        let mut read = 0;
        while let Some(chunk) = reader.next_chunk().await? {
            read += chunk.len() as u64;
            let envelopes: Vec<(Option<Uuid>, Result<Envelope<Event>, _>)> = chunk
                .iter()
                .map(|record| (aggregate_of(record), Envelope::<Event>::from_kafka(record)))
                .collect();
            let ids: Vec<(i32, Uuid)> = envelopes
                .iter()
                .filter_map(|(id, envelope)| match envelope {
                    Ok(envelope) => Some(envelope.message.aggregate_id()),
                    Err(_) => *id,
                })
                .map(|id| (partition, id))
                .collect();
            let loader = store.clone();
            let (mut states, _) = blocking_store(move || loader.load(&ids, &[], 0)).await?;
            for (named, envelope) in envelopes {
                match envelope {
                    Ok(envelope) => {
                        let entry = states
                            .entry(envelope.message.aggregate_id())
                            .or_insert_with(|| Stored::Live(AggregateEntry::default()));
                        if let Stored::Live(entry) = entry {
                            entry.apply(&envelope);
                        }
                    }
                    Err(err) => {
                        metrics.undecodable_events.increment(1);
                        match named {
                            Some(aggregate_id) => {
                                warn!(%aggregate_id, error = %err, "quarantining an aggregate: one of its events does not decode");
                                states.insert(aggregate_id, Stored::Quarantined);
                            }
                            None => {
                                warn!(error = %err, "skipping an event that does not decode and names no aggregate")
                            }
                        }
                    }
                }
            }
            let changes = Changes {
                aggregates: states.into_iter().map(|(id, stored)| (partition, id, stored)).collect(),
                ..Changes::default()
            };
            self.write(changes).await?;
        }
        Ok(read)
    }

    /// Reads the verdicts of `partition` from the store's position to the end.
    async fn catch_up_verdicts(&self, topic: &str) -> Result<u64, DeciderError> {
        let (partition, metrics) = (self.partition, self.metrics);
        let mut reader = Reader::open(self, topic, Mirrored::Verdicts).await?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let cutoff = horizon_cutoff(now_ms);
        let mut read = 0;
        while let Some(chunk) = reader.next_chunk().await? {
            read += chunk.len() as u64;
            let mut changes = Changes::default();
            for record in &chunk {
                // Retention deletes whole segments, so older verdicts may still be there.
                let at = record.timestamp().to_millis().unwrap_or(now_ms);
                if at < cutoff {
                    continue;
                }
                match record.payload().map(serde_json::from_slice::<Outcome>) {
                    Some(Ok(outcome)) => changes.verdicts.push((partition, at, outcome)),
                    _ => {
                        metrics.undecodable_verdicts.increment(1);
                        warn!(
                            partition,
                            offset = record.offset(),
                            "skipping a verdict that does not decode"
                        );
                    }
                }
            }
            if let Some(last) = chunk.last() {
                changes.advance(Mirrored::Verdicts, partition, last.offset() + 1);
            }
            self.write(changes).await?;
        }
        Ok(read)
    }

    async fn write(&self, changes: Changes) -> Result<(), DeciderError> {
        if changes.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        blocking_store(move || store.write(&changes)).await
    }

    async fn clear(&self, log: Mirrored) -> Result<(), DeciderError> {
        let (store, partition) = (self.store.clone(), self.partition);
        blocking_store(move || store.clear(log, partition)).await
    }
}

/// Runs a blocking store call off the async workers.
pub(crate) async fn blocking_store<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, super::store::StoreError> + Send + 'static,
) -> Result<T, DeciderError> {
    tokio::task::spawn_blocking(call)
        .await
        .expect("blocking store call panicked")
        .map_err(DeciderError::from)
}

/// One partition of one topic read to its last stable offset, in chunks.
struct Reader {
    consumer: Arc<StreamConsumer>,
    /// Whether reading resumes from a position the store recorded.
    resumed: bool,
    done: bool,
}

impl Reader {
    /// A reader of `partition` from where the store left `log`, or from the beginning (with what
    /// the store held of it cleared) when the store's position is unknown or no longer on the
    /// topic.
    async fn open(restore: &Partition<'_>, topic: &str, log: Mirrored) -> Result<Self, DeciderError> {
        let partition = restore.partition;
        let consumer = restore_consumer(restore.kafka)?;
        let (low, high) = settled_watermarks(restore.kafka, &consumer, topic, partition).await?;
        let position = {
            let store = restore.store.clone();
            blocking_store(move || store.position(log, partition)).await?
        };
        let resume_at = position.filter(|&at| (low..=high).contains(&at));
        if resume_at.is_none() {
            restore.clear(log).await?;
        }
        let mut reader = Self::starting_at(consumer, topic, partition, resume_at.unwrap_or(low), high)?;
        reader.resumed = resume_at.is_some();
        Ok(reader)
    }

    async fn from_beginning(restore: &Partition<'_>, topic: &str) -> Result<Self, DeciderError> {
        let partition = restore.partition;
        let consumer = restore_consumer(restore.kafka)?;
        let (low, high) = settled_watermarks(restore.kafka, &consumer, topic, partition).await?;
        Self::starting_at(consumer, topic, partition, low, high)
    }

    fn starting_at(
        consumer: Arc<StreamConsumer>,
        topic: &str,
        partition: i32,
        from: i64,
        high: i64,
    ) -> Result<Self, DeciderError> {
        if from < high {
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
            consumer.assign(&assignment)?;
        }
        Ok(Self {
            consumer,
            resumed: false,
            done: from >= high,
        })
    }

    /// The next records, up to [`CHUNK`]; `None` once the end was reached. With
    /// `read_committed`, the end is the last stable offset: everything committed so far.
    async fn next_chunk(&mut self) -> Result<Option<Vec<OwnedMessage>>, DeciderError> {
        if self.done {
            return Ok(None);
        }
        let mut chunk = Vec::new();
        while chunk.len() < CHUNK {
            match service_kit::kafka::recv(&self.consumer).await {
                Ok(record) => chunk.push(record.detach()),
                Err(KafkaError::PartitionEOF(_)) => {
                    self.done = true;
                    break;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Some(chunk))
    }
}

fn restore_consumer(kafka: &KafkaArgs) -> Result<Arc<StreamConsumer>, DeciderError> {
    let consumer: StreamConsumer = kafka
        .consumer_config("orderstream-decider-restore")
        .set("enable.partition.eof", "true")
        .create()?;
    Ok(Arc::new(consumer))
}

/// The low and high watermarks of `partition`, asked off the async workers.
async fn watermarks(consumer: &Arc<StreamConsumer>, topic: &str, partition: i32) -> Result<(i64, i64), DeciderError> {
    let (consumer, topic) = (consumer.clone(), topic.to_owned());
    blocking(move || service_kit::kafka::topics::watermarks(&*consumer, &topic, partition, WATERMARKS_TIMEOUT)).await
}

/// The low watermark of `partition` and its end once every transaction open on it now has ended:
/// waits until the last stable offset (what `consumer`, reading committed records only, sees as
/// its high watermark) reaches the high watermark a reader of uncommitted records sees now.
async fn settled_watermarks(
    kafka: &KafkaArgs,
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), DeciderError> {
    let uncommitted: Arc<StreamConsumer> = Arc::new(
        kafka
            .consumer_config("orderstream-decider-restore")
            .set("isolation.level", "read_uncommitted")
            .create()?,
    );
    let (_, high) = watermarks(&uncommitted, topic, partition).await?;
    let waiting_since = Instant::now();
    let mut report_at = waiting_since;
    loop {
        let (low, stable) = watermarks(consumer, topic, partition).await?;
        if stable >= high {
            return Ok((low, stable));
        }
        if Instant::now() >= report_at {
            report_at += SETTLE_REPORT;
            warn!(
                topic,
                partition,
                stable,
                high,
                waited = ?waiting_since.elapsed(),
                "waiting for a transaction open on the partition to end before restoring it"
            );
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}
