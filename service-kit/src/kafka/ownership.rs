//! Which partitions a consumer owns, as its group's rebalances tell.
//!
//! Groups use the cooperative-sticky assignor: a rebalance revokes only the partitions that
//! change owner and assigns only the new ones (rust-rdkafka's default `ConsumerContext::rebalance`
//! calls `incremental_assign`/`incremental_unassign` under the cooperative protocol, and hands
//! these hooks just the partitions that changed), so every other partition keeps being consumed.
//!
//! The rebalance callback runs inside a poll and can do no I/O of its own, so it only records
//! the change and pauses the assigned partitions; the consume loop acts on it between batches:
//! it finds where each assigned partition starts (a checkpoint, a restored state), seeks there
//! and resumes it, and forgets the revoked ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;
use tracing::warn;

/// A change of ownership, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// A consumer context recording each rebalance of its group. By default newly assigned
/// partitions are paused until the loop has found where they start; see [`Ownership::unpaused`].
#[derive(Debug, Default)]
pub struct Ownership {
    changes: Mutex<Vec<OwnershipChange>>,
    joined: AtomicBool,
    unpaused: bool,
}

impl Ownership {
    /// Records the changes but leaves assigned partitions running from the group's committed
    /// offsets, for a loop that starts each partition where the group resumes it.
    pub fn unpaused() -> Self {
        Self {
            unpaused: true,
            ..Self::default()
        }
    }

    /// Whether the group has given this member an assignment yet, even an empty one: a member
    /// of a group with more members than partitions owns none and is still a full member.
    pub fn has_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    /// The changes since the last call, oldest first.
    pub fn take_changes(&self) -> Vec<OwnershipChange> {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn record(&self, change: OwnershipChange) {
        // The cooperative protocol also calls back with empty lists: nothing changed hands.
        let (OwnershipChange::Assigned(partitions) | OwnershipChange::Revoked(partitions)) = &change;
        if partitions.is_empty() {
            return;
        }
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

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            // Paused before its first fetch: the group's committed offset is not where the loop
            // starts, and nothing should be fetched from there.
            if !self.unpaused {
                if let Err(error) = consumer.pause(list) {
                    warn!(%error, "could not pause newly assigned partitions");
                }
            }
            self.record(OwnershipChange::Assigned(partitions(list)));
            self.joined.store(true, Ordering::Release);
        }
    }
}
