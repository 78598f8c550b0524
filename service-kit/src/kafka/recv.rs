//! Reading on through the errors a consumer recovers from by itself.
//!
//! librdkafka hands a consume loop error events beside records: most say that something went
//! wrong and that it is already being retried (a broker connection lost, a partition's leader
//! moved, a coordinator changed). Ending the loop on one of them would restart a whole task:
//! rejoin the group, restore partitions, and for an edge lose the verdicts written to its reply
//! partition meanwhile. That is what the death of one broker of three looked like before: every
//! service restarted its loops while the cluster itself carried on.

use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use tracing::warn;

/// The next record of `consumer`, or the first error librdkafka does not recover from itself.
/// The errors it does recover from are logged and read past.
pub async fn recv<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
) -> Result<BorrowedMessage<'_>, KafkaError> {
    loop {
        match consumer.recv().await {
            Err(error) if is_transient(&error) => {
                warn!(%error, "consumer error that the client retries on its own; reading on");
            }
            other => return other,
        }
    }
}

/// Whether `error` is a consumer error event about a connection, a leader or a coordinator that
/// librdkafka retries on its own. Fatal errors, partition ends and everything else are not.
pub fn is_transient(error: &KafkaError) -> bool {
    matches!(error, KafkaError::MessageConsumption(code) if is_transient_code(*code))
}

/// Whether `code` says a connection, a leader or a coordinator is moving, which librdkafka
/// follows by itself (it refreshes its metadata and reconnects): asking again shortly succeeds.
pub fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        BrokerTransportFailure
            | AllBrokersDown
            | Resolve
            | OperationTimedOut
            | RequestTimedOut
            | NetworkException
            | LeaderNotAvailable
            | NotLeaderForPartition
            | BrokerNotAvailable
            | ReplicaNotAvailable
            | FencedLeaderEpoch
            | UnknownLeaderEpoch
            | OffsetNotAvailable
            | CoordinatorLoadInProgress
            | CoordinatorNotAvailable
            | NotCoordinator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_broker_or_a_moved_leader_is_read_past() {
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::NotCoordinator,
        ] {
            assert!(is_transient(&KafkaError::MessageConsumption(code)), "{code:?}");
        }
    }

    #[test]
    fn fatal_errors_partition_ends_and_unknown_topics_end_the_loop() {
        for error in [
            KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::BrokerTransportFailure),
            KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition),
            KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed),
            KafkaError::PartitionEOF(0),
            KafkaError::Canceled,
        ] {
            assert!(!is_transient(&error), "{error:?}");
        }
    }
}
