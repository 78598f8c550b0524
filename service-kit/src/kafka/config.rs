//! Where Kafka is and how orderstream's clients talk to it.

use std::time::Duration;

use clap::builder::NonEmptyStringValueParser;
use clap::Args;
use rdkafka::ClientConfig;
use thiserror::Error;

/// Kafka settings shared by every service (`--help` lists them with their environment names).
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Comma-separated bootstrap brokers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092", value_parser = NonEmptyStringValueParser::new())]
    pub kafka_brokers: String,

    /// Prefix for every topic and consumer group name, to run several isolated stacks on one cluster.
    #[arg(long, env = "TOPIC_PREFIX", default_value = "", value_parser = topic_prefix)]
    pub topic_prefix: String,

    /// Partitions of the commands and events topics when this service creates them.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    /// Partitions of the outcomes topic when this service creates it: each command-api edge
    /// reads the verdicts of its own reply partition, so one per edge replica at least. An
    /// existing topic keeps its count (edges then share partitions).
    #[arg(long, env = "OUTCOME_PARTITIONS", default_value_t = 12, value_parser = clap::value_parser!(i32).range(1..))]
    pub outcome_partitions: i32,

    /// Replicas of every topic this service creates: 1 on a single broker, 3 on a cluster that
    /// must survive the loss of a broker.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=i64::from(i16::MAX)))]
    pub replication_factor: i32,

    /// Replicas that must hold a write before an `acks=all` producer hears it succeeded (the
    /// topic's `min.insync.replicas`): 2 of 3 lets a cluster lose a broker without losing an
    /// acknowledged event. At most KAFKA_REPLICATION_FACTOR, or no write could ever succeed.
    #[arg(long, env = "KAFKA_MIN_INSYNC_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub min_insync_replicas: i32,
}

/// The longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;

/// The longest of orderstream's topic names without a prefix.
const LONGEST_TOPIC: &str = "orderstream.decider-state";

/// Parses a topic prefix: only what Kafka accepts in a topic name, short enough for the longest
/// topic; for clap's `value_parser`. The broker would refuse such a topic on every attempt.
fn topic_prefix(text: &str) -> Result<String, String> {
    let longest = MAX_TOPIC_NAME - LONGEST_TOPIC.len();
    if text.len() > longest {
        return Err(format!(
            "at most {longest} characters, so that `{LONGEST_TOPIC}` still fits in a topic name"
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{bad:?} cannot be in a Kafka topic name: only ASCII letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(text.to_owned())
}

/// How long a group waits for a silent member (killed, hung, cut off) before moving its
/// partitions to the others. librdkafka's default, 45 s, would hold a dead replica's commands,
/// payments or projections back for as long.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the Kafka settings cannot be used; reported at start-up.
#[derive(Debug, Error)]
pub enum KafkaConfigError {
    /// Every `acks=all` write would be refused with `NOT_ENOUGH_REPLICAS`, forever.
    #[error("KAFKA_MIN_INSYNC_REPLICAS ({min_insync}) is above KAFKA_REPLICATION_FACTOR ({replicas}): no write could ever succeed")]
    MinInsyncAboveReplicas { min_insync: i32, replicas: i32 },
}

impl KafkaArgs {
    /// The settings of the topics this service creates, checked together: each alone is checked
    /// as it is read.
    pub fn check_topic_settings(&self) -> Result<(), KafkaConfigError> {
        if self.min_insync_replicas > self.replication_factor {
            return Err(KafkaConfigError::MinInsyncAboveReplicas {
                min_insync: self.min_insync_replicas,
                replicas: self.replication_factor,
            });
        }
        Ok(())
    }

    /// Settings every client starts from.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.kafka_brokers)
            .set("socket.keepalive.enable", "true")
            // A command's path is a chain of small requests on connections that carry others
            // meanwhile; Nagle's algorithm would hold each behind the previous one's ack.
            .set("socket.nagle.disable", "true")
            .set("log_level", "4");
        config
    }

    /// A producer that never duplicates or reorders, with acks from all replicas, partitioning
    /// by key exactly as Java clients do.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .set("compression.type", "lz4");
        config
    }

    /// A consumer that only sees committed transactions and never commits offsets itself.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", self.group(group))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A consumer whose local queue is full (`queued.max.messages.kbytes`) waits this long
            // before fetching again. librdkafka's default, 1 s, stalled a reader that empties the
            // queue in a fraction of that: a rebuild sat idle 0.6 s in every 150,000 records.
            .set("fetch.queue.backoff.ms", "10");
        config
    }

    /// A member of a consumer group that divides partitions among replicas: incremental
    /// (cooperative-sticky) rebalances, so a joining or leaving member moves only the partitions
    /// that change owner, and a dead member's partitions move after [`SESSION_TIMEOUT`].
    pub fn member_config(&self, group: &str) -> ClientConfig {
        let mut config = self.consumer_config(group);
        config
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", SESSION_TIMEOUT.as_millis().to_string())
            .set("heartbeat.interval.ms", "1000");
        config
    }

    /// The consumer group name for `name`, with the topic prefix applied.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::refused::assert_settings_refused;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    fn parse(args: &[&str]) -> Result<KafkaArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied())).map(|cli| cli.kafka)
    }

    #[test]
    fn settings_that_could_never_work_are_refused_as_they_are_read() {
        assert_settings_refused::<KafkaArgs>(&[
            ("--kafka-brokers", ""),
            ("--topic-prefix", "my stack/"),
            ("--topic-prefix", &"p".repeat(225)),
            ("--partitions", "0"),
            ("--outcome-partitions", "-1"),
            ("--replication-factor", "0"),
            ("--replication-factor", "40000"),
            ("--min-insync-replicas", "0"),
        ]);
        assert!(parse(&["--partitions", "1", "--replication-factor", "3"]).is_ok());
        assert!(parse(&["--topic-prefix", "Team-A_2.staging."]).is_ok());
        assert!(parse(&["--topic-prefix", &"p".repeat(224)]).is_ok());
    }

    #[test]
    fn more_in_sync_replicas_than_replicas_is_refused_at_start_up() {
        let topics = |args: &[&str]| parse(args).expect("parses").check_topic_settings();
        assert!(topics(&["--replication-factor", "3", "--min-insync-replicas", "2"]).is_ok());
        assert!(topics(&["--replication-factor", "3", "--min-insync-replicas", "3"]).is_ok());
        let error = topics(&["--replication-factor", "1", "--min-insync-replicas", "2"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "KAFKA_MIN_INSYNC_REPLICAS (2) is above KAFKA_REPLICATION_FACTOR (1): no write could ever succeed"
        );
    }
}
