//! orderstream's Kafka plumbing (feature `kafka`), shared by the decider, the projectors and the
//! tests.
//!
//! - [`config`]: broker address, topic prefix and partition count from the environment, and the
//!   client settings every producer and consumer starts from.
//! - [`topics`]: the topic names and their idempotent creation, refusing mismatched partitions.
//! - [`envelope`]: the CloudEvents 1.0 binary-mode envelope around commands and events.
//! - [`ownership`]: the partitions a consumer group member owns, recorded at each rebalance.
//! - [`recv`]: the next record, read past the errors a consumer recovers from by itself.
//! - [`watch`]: partitions' log ends and consumer groups' assignments, for operators.

pub mod config;
pub mod envelope;
pub mod ownership;
pub mod recv;
pub mod topics;
pub mod watch;

pub use config::KafkaArgs;
pub use envelope::Envelope;
pub use recv::recv;
pub use topics::Topics;

use thiserror::Error;

/// What can go wrong between orderstream and Kafka.
#[derive(Debug, Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic `{topic}` could not be created: {reason}")]
    TopicCreation { topic: String, reason: String },
    #[error("topic `{topic}` is missing from the cluster metadata")]
    TopicMissing { topic: String },
    #[error("`{commands}` has {command_partitions} partitions but `{other}` has {other_partitions}: commands, events, verdicts and the decider state must be co-partitioned")]
    PartitionMismatch {
        commands: String,
        command_partitions: usize,
        /// The events, verdicts or decider state topic.
        other: String,
        other_partitions: usize,
    },
    #[error("message at {topic}/{partition}@{offset} has no `{header}` header")]
    MissingHeader {
        topic: String,
        partition: i32,
        offset: i64,
        header: &'static str,
    },
    #[error("message at {topic}/{partition}@{offset} has an invalid `{header}` header")]
    InvalidHeader {
        topic: String,
        partition: i32,
        offset: i64,
        header: &'static str,
    },
    #[error("message at {topic}/{partition}@{offset} could not be decoded: {source}")]
    Decode {
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: domain::DecodeError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
