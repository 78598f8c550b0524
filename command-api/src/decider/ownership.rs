//! Which command partitions this decider owns, as told by the consumer group's rebalances.

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;

/// A change of ownership, recorded in the rebalance callback and acted on by the decider loop,
/// which restores state for assigned partitions before deciding any of their commands.
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

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            self.record(OwnershipChange::Assigned(partitions(list)));
        }
    }
}
