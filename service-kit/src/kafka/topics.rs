//! Topic names and their creation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, DefaultClientContext};
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::info;

use super::{Error, KafkaArgs, Result};

/// How long commands and verdicts are kept: the audit trail's depth and the idempotency horizon.
pub const COMMAND_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const ONE_HOUR_MS: &str = "3600000";
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The names of orderstream's topics under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Every command, accepted or not; the audit trail.
    pub commands: String,
    /// The log of record, kept forever.
    pub events: String,
    /// Verdicts for the HTTP edge: each on the reply partition its command names, else by
    /// command id.
    pub outcomes: String,
    /// The decider's memory of what it decided (keyed by command id, co-partitioned with
    /// commands), read back on restore so a retry gets its first answer within the horizon.
    pub verdicts: String,
    /// The decider's state changelog: one record per changed aggregate (keyed by aggregate id,
    /// co-partitioned with commands), compacted to the latest state of each, so a decider
    /// restores from it instead of folding the whole events log.
    pub decider_state: String,
    /// The latest name and price of every product (keyed by SKU, one partition, compacted),
    /// written by the decider with the product's events and read whole by every edge replica.
    pub catalog: String,
}

/// The deciders' consumer group (under the topic prefix): its members' assignments of the
/// commands topic say which decider instance owns which partition.
pub const DECIDER_GROUP: &str = "orderstream-decider";

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self {
            commands: format!("{prefix}orderstream.commands"),
            events: format!("{prefix}orderstream.events"),
            outcomes: format!("{prefix}orderstream.outcomes"),
            verdicts: format!("{prefix}orderstream.verdicts"),
            decider_state: format!("{prefix}orderstream.decider-state"),
            catalog: format!("{prefix}orderstream.catalog"),
        }
    }

    /// Creates any missing topic, then checks commands, events, verdicts and the decider state
    /// changelog are co-partitioned.
    /// Returns the partition count of the events topic.
    #[tracing::instrument(skip_all, fields(events = %self.events))]
    pub async fn ensure(&self, kafka: &KafkaArgs) -> Result<usize> {
        let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
        let seven_days = COMMAND_RETENTION.as_millis().to_string();
        // Verdicts are compacted (one per command id) and deleted after the commands' retention:
        // that age is the idempotency horizon.
        let partitioned = [
            (&self.commands, kafka.partitions, seven_days.as_str(), "delete"),
            (&self.events, kafka.partitions, "-1", "delete"),
            (&self.outcomes, kafka.outcome_partitions, ONE_HOUR_MS, "delete"),
            (&self.verdicts, kafka.partitions, seven_days.as_str(), "compact,delete"),
            // Kept forever, compacted: the latest state of every aggregate.
            (&self.decider_state, kafka.partitions, "-1", "compact"),
            (&self.catalog, 1, "-1", "compact"),
        ];
        let min_insync = kafka.min_insync_replicas.to_string();
        let new_topics: Vec<NewTopic<'_>> = partitioned
            .iter()
            .map(|(name, partitions, retention, cleanup)| {
                NewTopic::new(name, *partitions, TopicReplication::Fixed(kafka.replication_factor))
                    .set("retention.ms", retention)
                    .set("cleanup.policy", cleanup)
                    .set("min.insync.replicas", &min_insync)
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
        for result in admin.create_topics(&new_topics, &options).await? {
            match result {
                Ok(topic) => info!(%topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::TopicCreation {
                        topic,
                        reason: code.to_string(),
                    })
                }
            }
        }
        let command_partitions = settled_partition_count(admin.inner(), &self.commands).await?;
        let event_partitions = settled_partition_count(admin.inner(), &self.events).await?;
        let verdict_partitions = settled_partition_count(admin.inner(), &self.verdicts).await?;
        let state_partitions = settled_partition_count(admin.inner(), &self.decider_state).await?;
        for (topic, partitions) in [
            (&self.events, event_partitions),
            (&self.verdicts, verdict_partitions),
            (&self.decider_state, state_partitions),
        ] {
            if partitions != command_partitions {
                return Err(Error::PartitionMismatch {
                    commands: self.commands.clone(),
                    command_partitions,
                    other: topic.clone(),
                    other_partitions: partitions,
                });
            }
        }
        Ok(event_partitions)
    }

    /// The partition count of the outcomes topic as it is (it may predate
    /// `OUTCOME_PARTITIONS`).
    pub fn outcome_partitions(&self, kafka: &KafkaArgs) -> Result<i32> {
        let client: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
        Ok(partition_count(client.inner(), &self.outcomes)? as i32)
    }
}

/// The partition count of a topic just created: the broker answers CreateTopics before its
/// metadata shows the topic, so a missing topic is asked for again for a few seconds.
async fn settled_partition_count<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<usize> {
    let deadline = tokio::time::Instant::now() + METADATA_TIMEOUT;
    loop {
        match partition_count(client, topic) {
            Err(Error::TopicMissing { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The partition count of `topic` from fresh cluster metadata.
pub fn partition_count<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<usize> {
    let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|&count| count > 0)
        .ok_or_else(|| Error::TopicMissing {
            topic: topic.to_owned(),
        })
}

/// How long [`watermarks`] waits before asking again while a partition's leader moves.
const WATERMARKS_RETRY: Duration = Duration::from_millis(200);

/// The offset `at` each of `partitions` of `topic`: [`Offset::Beginning`] for the first offset
/// (its low watermark), [`Offset::End`] for the offset after the last record (its high
/// watermark, or for a `read_committed` consumer its last stable offset). Asked of each leader
/// in one request for all its partitions: the broker answers a connection's requests in order,
/// so on a consumer that is fetching every request waits out its long-poll fetch
/// (`fetch.wait.max.ms`), and asking partition by partition pays that wait once per partition
/// (a rebuild's progress and a projection's lag did, every second or two). Asked again while a
/// leader moves, until `within` has passed, as [`watermarks`]. Blocks the calling thread.
pub fn offsets_at<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    topic: &str,
    partitions: &[i32],
    at: Offset,
    within: Duration,
) -> KafkaResult<BTreeMap<i32, i64>> {
    let mut asked = TopicPartitionList::new();
    for &partition in partitions {
        asked.add_partition_offset(topic, partition, at)?;
    }
    asking_again_while_leaders_move(topic, within, |left| {
        consumer
            .offsets_for_times(asked.clone(), left)?
            .elements()
            .iter()
            .map(|element| {
                element.error()?;
                match element.offset() {
                    Offset::Offset(offset) => Ok((element.partition(), offset)),
                    _ => Err(KafkaError::OffsetFetch(RDKafkaErrorCode::InvalidArgument)),
                }
            })
            .collect()
    })
}

/// The low and high watermarks of `partition` of `topic`, asked again while its leader moves (a
/// broker died or came back) until `within` has passed. librdkafka refreshes its metadata
/// meanwhile, so the caller waits out a leader election instead of failing on it: a one-shot
/// command (a rebuild, a census) has nobody to retry it, and a service's loop would otherwise
/// restart whole. Blocks the calling thread.
pub fn watermarks<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    topic: &str,
    partition: i32,
    within: Duration,
) -> KafkaResult<(i64, i64)> {
    asking_again_while_leaders_move(topic, within, |left| consumer.fetch_watermarks(topic, partition, left))
}

/// `ask`, given the time left, asked again every [`WATERMARKS_RETRY`] while it fails on a
/// moving leader or connection, until `within` has passed.
fn asking_again_while_leaders_move<T>(
    topic: &str,
    within: Duration,
    mut ask: impl FnMut(Duration) -> KafkaResult<T>,
) -> KafkaResult<T> {
    let deadline = Instant::now() + within;
    loop {
        match ask(deadline.saturating_duration_since(Instant::now())) {
            Err(KafkaError::OffsetFetch(code) | KafkaError::MetadataFetch(code))
                if super::recv::is_transient_code(code) && Instant::now() + WATERMARKS_RETRY < deadline =>
            {
                tracing::debug!(topic, %code, "a partition's leader moving; asking again");
                std::thread::sleep(WATERMARKS_RETRY);
            }
            answer => return answer,
        }
    }
}
