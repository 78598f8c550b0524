//! The decider's memory of its partitions, rebuilt from the events topic.
//!
//! Commands and events are co-partitioned, so the state of every aggregate whose commands arrive
//! on partition p is the fold of events partition p, which only p's owner writes.

use std::collections::HashMap;
use std::time::Duration;

use domain::{Aggregates, Decider, Event, Message as _, State};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::ConsistencyToken;
use tracing::info;
use uuid::Uuid;

use crate::outcome::{Outcome, Verdict, WrittenEvent};

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
    /// Verdicts of accepted commands by command id, so a repeated command gets its first answer.
    pub(crate) decided: HashMap<Uuid, Outcome>,
}

impl PartitionState {
    /// Folds one event read back from the log at `partition`/`offset`.
    fn apply(&mut self, envelope: Envelope<Event>, partition: i32, offset: i64) {
        let aggregate_id = envelope.message.aggregate_id();
        let entry = self.aggregates.entry(aggregate_id).or_default();
        entry.version = envelope.sequence.unwrap_or(entry.version + 1);
        entry.state = Aggregates::evolve(std::mem::take(&mut entry.state), &envelope.message);
        let Some(command_id) = envelope.causation_id else {
            return;
        };
        let written = WrittenEvent {
            event_type: envelope.message.message_type().to_owned(),
            sequence: entry.version,
            partition,
            offset,
        };
        let token = ConsistencyToken::at(partition, offset + 1).encode();
        let outcome = self.decided.entry(command_id).or_insert_with(|| Outcome {
            command_id,
            aggregate_id,
            verdict: Verdict::Accepted {
                events: Vec::new(),
                consistency_token: String::new(),
            },
        });
        if let Verdict::Accepted {
            events,
            consistency_token,
        } = &mut outcome.verdict
        {
            events.push(written);
            *consistency_token = token;
        }
    }
}

/// Reads events `partitions` from the beginning to their committed end and folds them.
#[tracing::instrument(skip(kafka, topics))]
pub(crate) async fn restore(
    kafka: &KafkaArgs,
    topics: &Topics,
    partitions: &[i32],
) -> Result<HashMap<i32, PartitionState>, crate::decider::DeciderError> {
    let mut states: HashMap<i32, PartitionState> = partitions.iter().map(|&p| (p, PartitionState::default())).collect();
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", kafka.group("orderstream-decider-restore"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut unfinished = Vec::new();
    for &partition in partitions {
        let (low, high) = consumer.fetch_watermarks(&topics.events, partition, Duration::from_secs(10))?;
        if high > low {
            assignment.add_partition_offset(&topics.events, partition, Offset::Beginning)?;
            unfinished.push(partition);
        }
    }
    if unfinished.is_empty() {
        return Ok(states);
    }
    consumer.assign(&assignment)?;
    let mut events = 0u64;
    // With read_committed, end-of-partition is reported at the last stable offset: everything
    // committed so far has been folded.
    while !unfinished.is_empty() {
        match consumer.recv().await {
            Ok(message) => {
                let partition = message.partition();
                let envelope = Envelope::<Event>::from_kafka(&message)?;
                if let Some(state) = states.get_mut(&partition) {
                    state.apply(envelope, partition, message.offset());
                    events += 1;
                }
            }
            Err(KafkaError::PartitionEOF(partition)) => unfinished.retain(|&p| p != partition),
            Err(err) => return Err(err.into()),
        }
    }
    info!(events, "restored decider state");
    Ok(states)
}
