//! Which command partitions this decider owns, as told by the consumer group's rebalances.
//!
//! The group uses the cooperative-sticky assignor: a rebalance revokes only the partitions that
//! change owner and assigns only the new ones (rust-rdkafka's default `ConsumerContext::rebalance`
//! calls `incremental_assign`/`incremental_unassign` under the cooperative protocol, and hands
//! these hooks just the partitions that changed), so every other partition keeps being decided.
//! A newly assigned partition is paused at once: its state is restored off the poll loop, and
//! the decider resumes it once restored.

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;
use tracing::warn;

/// A change of ownership, recorded in the rebalance callback and acted on by the decider loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnershipChange {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

#[derive(Debug, Default)]
pub(crate) struct OwnershipContext {
    changes: Mutex<Vec<OwnershipChange>>,
}

impl OwnershipContext {
    /// The changes since the last call, oldest first.
    pub(crate) fn take_changes(&self) -> Vec<OwnershipChange> {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn record(&self, change: OwnershipChange) {
        self.changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(change);
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for OwnershipContext {}

impl ConsumerContext for OwnershipContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.record(OwnershipChange::Revoked(partitions(list)));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            // Paused before its first fetch, so no command of a partition still restoring is
            // handed to the loop (one fetched anyway is sought back to on resume).
            if let Err(error) = consumer.pause(list) {
                warn!(%error, "could not pause newly assigned partitions");
            }
            self.record(OwnershipChange::Assigned(partitions(list)));
        }
    }
}
