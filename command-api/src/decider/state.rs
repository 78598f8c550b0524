//! The decider's memory of its partitions, rebuilt from the log: the state of every aggregate
//! from the events topic, and the verdicts given within the idempotency horizon from the
//! verdicts topic.
//!
//! Commands, events and verdicts are co-partitioned, so the state of every aggregate whose
//! commands arrive on partition p is the fold of events partition p, and the verdicts on those
//! commands are verdicts partition p; only p's owner writes either.
//!
//! No record stops a restore: an event that does not decode quarantines its aggregate (its
//! state is unknown), and one whose aggregate cannot even be named is skipped; both are logged
//! and counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use domain::{Aggregates, Decider, Event, Message as _, State};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::topics::COMMAND_RETENTION;
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use tracing::{info, warn};
use uuid::Uuid;

use super::{aggregate_of, DeciderError, DeciderMetrics};
use crate::outcome::Outcome;

/// How long a verdict is remembered: as long as the verdicts topic keeps it, which is as long as
/// the commands topic keeps the commands.
pub(crate) const IDEMPOTENCY_HORIZON: Duration = COMMAND_RETENTION;

/// One aggregate's state and version (the `ce_sequence` of its last event).
#[derive(Debug, Clone, Default)]
pub(crate) struct AggregateEntry {
    pub(crate) state: State,
    pub(crate) version: u64,
}

/// Everything the decider knows about one partition.
#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    pub(crate) aggregates: HashMap<Uuid, AggregateEntry>,
    /// Aggregates whose history holds an event that does not decode: their state is unknown, so
    /// their commands are refused while every other aggregate of the partition carries on.
    pub(crate) quarantined: HashSet<Uuid>,
    /// Accepted and rejected verdicts, so a repeated command gets its first answer.
    pub(crate) decided: Decided,
}

impl PartitionState {
    /// Folds one event read back from the log.
    fn apply(&mut self, envelope: Envelope<Event>) {
        let aggregate_id = envelope.message.aggregate_id();
        if self.quarantined.contains(&aggregate_id) {
            return;
        }
        let entry = self.aggregates.entry(aggregate_id).or_default();
        entry.version = envelope.sequence.unwrap_or(entry.version + 1);
        entry.state = Aggregates::evolve(std::mem::take(&mut entry.state), &envelope.message);
    }

    fn quarantine(&mut self, aggregate_id: Uuid) {
        self.aggregates.remove(&aggregate_id);
        self.quarantined.insert(aggregate_id);
    }
}

/// Verdicts by command id, forgotten once older than [`IDEMPOTENCY_HORIZON`].
#[derive(Debug, Default)]
pub(crate) struct Decided {
    by_id: HashMap<Uuid, Outcome>,
    /// Command ids in the order they were decided, with when (milliseconds since the epoch).
    by_age: VecDeque<(i64, Uuid)>,
}

impl Decided {
    pub(crate) fn get(&self, command_id: &Uuid) -> Option<&Outcome> {
        self.by_id.get(command_id)
    }

    /// Remembers `outcome`, decided at `at_ms`.
    pub(crate) fn remember(&mut self, outcome: Outcome, at_ms: i64) {
        self.by_age.push_back((at_ms, outcome.command_id));
        self.by_id.insert(outcome.command_id, outcome);
    }

    /// Forgets the verdicts decided before `cutoff_ms`.
    pub(crate) fn forget_before(&mut self, cutoff_ms: i64) {
        while let Some(&(at, command_id)) = self.by_age.front() {
            if at >= cutoff_ms {
                break;
            }
            self.by_age.pop_front();
            self.by_id.remove(&command_id);
        }
    }
}

/// The oldest decision time still within the horizon, at `now_ms`.
pub(crate) fn horizon_cutoff(now_ms: i64) -> i64 {
    now_ms - IDEMPOTENCY_HORIZON.as_millis() as i64
}

/// Rebuilds the state of `partitions`: folds their events and reads back their verdicts, each
/// from the beginning to the committed end.
#[tracing::instrument(skip(kafka, topics, metrics))]
pub(crate) async fn restore(
    kafka: &KafkaArgs,
    topics: &Topics,
    partitions: &[i32],
    metrics: &DeciderMetrics,
) -> Result<HashMap<i32, PartitionState>, DeciderError> {
    let mut states: HashMap<i32, PartitionState> = partitions.iter().map(|&p| (p, PartitionState::default())).collect();
    let events = read_to_end(kafka, &topics.events, partitions, |message| {
        let Some(state) = states.get_mut(&message.partition()) else {
            return;
        };
        match Envelope::<Event>::from_kafka(message) {
            Ok(envelope) => state.apply(envelope),
            Err(err) => {
                metrics.undecodable_events.add(1);
                match aggregate_of(message) {
                    Some(aggregate_id) => {
                        warn!(%aggregate_id, error = %err, "quarantining an aggregate: one of its events does not decode");
                        state.quarantine(aggregate_id);
                    }
                    None => warn!(error = %err, "skipping an event that does not decode and names no aggregate"),
                }
            }
        }
    })
    .await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let cutoff = horizon_cutoff(now_ms);
    let verdicts = read_to_end(kafka, &topics.verdicts, partitions, |message| {
        let Some(state) = states.get_mut(&message.partition()) else {
            return;
        };
        // Retention deletes whole segments, so older verdicts may still be there.
        let at = message.timestamp().to_millis().unwrap_or(now_ms);
        if at < cutoff {
            return;
        }
        match message.payload().map(serde_json::from_slice::<Outcome>) {
            Some(Ok(outcome)) => state.decided.remember(outcome, at),
            _ => {
                metrics.undecodable_verdicts.add(1);
                warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "skipping a verdict that does not decode"
                );
            }
        }
    })
    .await?;
    let quarantined: usize = states.values().map(|s| s.quarantined.len()).sum();
    info!(events, verdicts, quarantined, "restored decider state");
    Ok(states)
}

/// Reads `partitions` of `topic` from the beginning to their last stable offset, handing every
/// record to `each`; returns how many it read.
async fn read_to_end(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: &[i32],
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<u64, DeciderError> {
    let consumer: StreamConsumer = kafka
        .consumer_config("orderstream-decider-restore")
        .set("enable.partition.eof", "true")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut unfinished = Vec::new();
    for &partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
            unfinished.push(partition);
        }
    }
    if unfinished.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment)?;
    let mut records = 0u64;
    // With read_committed, end-of-partition is reported at the last stable offset: everything
    // committed so far has been read.
    while !unfinished.is_empty() {
        match consumer.recv().await {
            Ok(message) => {
                each(&message);
                records += 1;
            }
            Err(KafkaError::PartitionEOF(partition)) => unfinished.retain(|&p| p != partition),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Refusal, Verdict};

    fn outcome(id: u128) -> Outcome {
        Outcome {
            command_id: Uuid::from_u128(id),
            aggregate_id: Uuid::from_u128(id),
            request_digest: None,
            verdict: Verdict::Refused {
                refusal: Refusal::Undecodable,
            },
        }
    }

    #[test]
    fn verdicts_are_forgotten_past_the_horizon_and_not_before() {
        let mut decided = Decided::default();
        decided.remember(outcome(1), 1_000);
        decided.remember(outcome(2), 2_000);
        decided.forget_before(1_000);
        assert!(
            decided.get(&Uuid::from_u128(1)).is_some(),
            "a verdict exactly at the cutoff is kept"
        );
        decided.forget_before(1_500);
        assert!(decided.get(&Uuid::from_u128(1)).is_none());
        assert!(decided.get(&Uuid::from_u128(2)).is_some());
        assert_eq!(
            horizon_cutoff(IDEMPOTENCY_HORIZON.as_millis() as i64 + 5),
            5,
            "the horizon is the commands' retention"
        );
    }
}
