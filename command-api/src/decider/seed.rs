//! Seeding the state changelog of a partition restored by folding the events log: every
//! aggregate's state, then the marker that says the changelog is complete, so the next restore of
//! the partition reads the changelog instead of the log.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use tracing::info;
use uuid::Uuid;

use super::restore::{blocking_store, COMPLETE_MARKER};
use super::store::{Changes, Mirrored, StoreError, Stored};
use super::{blocking, transactional, Decider, DeciderError, Result, TRANSACTION_TIMEOUT};

/// Changelog records per seeding transaction: well within the transaction timeout.
const SEED_CHUNK: usize = 20_000;

impl Decider<'_> {
    /// Writes the state of every aggregate of `partition` (from the store, just folded from the
    /// events log) to the changelog, then its marker, in transactions fenced like the decisions:
    /// if the partition moved meanwhile, the commit fails and the new owner seeds it itself.
    pub(super) async fn seed(&mut self, partition: i32) -> Result<()> {
        let topic = self.settings.topics.decider_state.clone();
        let mut after = None;
        let mut seeded = 0usize;
        loop {
            let store = self.store.clone();
            let chunk = blocking_store(move || store.aggregates_after(partition, after, SEED_CHUNK)).await?;
            let last_chunk = chunk.len() < SEED_CHUNK;
            let producer = self.producer.clone();
            blocking(move || producer.begin_transaction()).await?;
            let written = self.seed_chunk(partition, &topic, &chunk, last_chunk).await;
            let marker_offset = match written {
                Ok(marker_offset) => marker_offset,
                Err(err) => {
                    self.abort().await;
                    return Err(err);
                }
            };
            seeded += chunk.len();
            after = chunk.last().map(|(id, _)| *id);
            if let Some(offset) = marker_offset {
                let mut changes = Changes::default();
                changes.advance(Mirrored::Changelog, partition, offset + 1);
                let store = self.store.clone();
                blocking_store(move || store.write(&changes)).await?;
                info!(partition, aggregates = seeded, "seeded the state changelog");
                return Ok(());
            }
        }
    }

    /// One seeding transaction; the offset of the marker when it wrote it.
    async fn seed_chunk(
        &self,
        partition: i32,
        topic: &str,
        chunk: &[(Uuid, Stored)],
        with_marker: bool,
    ) -> Result<Option<i64>> {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for (aggregate_id, stored) in chunk {
            let payload = serde_json::to_vec(stored).map_err(StoreError::from)?;
            deliveries.push(self.send(topic, Some(partition), &aggregate_id.to_string(), &payload, None)?);
        }
        let marker = with_marker
            .then(|| self.send(topic, Some(partition), COMPLETE_MARKER, b"{}", None))
            .transpose()?;
        for delivery in deliveries {
            delivery
                .await
                .map_err(|_| DeciderError::DeliveryCancelled)?
                .map_err(|(err, _)| err)?;
        }
        let marker_offset = match marker {
            Some(marker) => Some(
                marker
                    .await
                    .map_err(|_| DeciderError::DeliveryCancelled)?
                    .map_err(|(err, _)| err)?
                    .offset,
            ),
            None => None,
        };
        let commands = self.settings.topics.commands.clone();
        let consumer = self.consumer.clone();
        let mut list = TopicPartitionList::new();
        list.add_partition(&commands, partition);
        let committed = blocking(move || consumer.committed_offsets(list, Duration::from_secs(10))).await?;
        let at = committed
            .find_partition(&commands, partition)
            .map(|element| element.offset());
        if let Some(Offset::Offset(offset)) = at {
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset(&commands, partition, Offset::Offset(offset))?;
            self.send_offsets(offsets).await?;
        }
        let producer = self.producer.clone();
        transactional("commit_transaction", move || {
            producer.commit_transaction(TRANSACTION_TIMEOUT)
        })
        .await?;
        Ok(marker_offset)
    }
}
