//! Which partitions a consumer owns, as its group's rebalances tell.
//!
//! The rebalance callback runs inside a poll and can do no I/O of its own, so it only records
//! the change; the consume loop acts on it between batches (claims or restores the assigned
//! partitions before using any of their records, forgets the revoked ones).

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;

/// A change of ownership, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// A consumer context recording each rebalance of its group.
#[derive(Debug, Default)]
pub struct Ownership {
    changes: Mutex<Vec<OwnershipChange>>,
}

impl Ownership {
    /// The changes since the last call, oldest first.
    pub fn take_changes(&self) -> Vec<OwnershipChange> {
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

impl ClientContext for Ownership {}

impl ConsumerContext for Ownership {
    // Revocations are recorded before the partitions leave, assignments once they are in, both
    // within the poll that delivers the records: a loop that acts on the changes before using a
    // batch never uses a record of a partition it has not taken up, nor of one it gave away.
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
