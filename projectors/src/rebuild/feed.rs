//! The log read and decoded ahead of the fold, on tasks of their own, so that decoding the next
//! batch overlaps writing the last: a replay spends most of its time decoding records.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::runner::Batch;

/// Batches read ahead of the one being folded: enough to keep the reader busy while a batch is
/// written, few enough to bound the memory they take.
const AHEAD: usize = 1;

/// Why the feed has no next batch.
#[derive(Debug, Error)]
pub(super) enum FeedError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("the log reader stopped")]
    Stopped,
}

/// Decoded batches from a consumer, in log order.
#[derive(Debug)]
pub(super) struct Feed {
    batches: mpsc::Receiver<Result<Batch, KafkaError>>,
    recycled: mpsc::Sender<Batch>,
    reader: JoinHandle<()>,
}

/// How the reader cuts the log into batches.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cut {
    /// At most this many records.
    pub(super) size: usize,
    /// A batch ends when no record came within this time; no record within `first_within`
    /// makes an empty batch, which tells the fold it has reached the head.
    pub(super) gap: Duration,
    pub(super) first_within: Duration,
}

impl Feed {
    pub(super) fn start(consumer: Arc<StreamConsumer>, cut: Cut) -> Self {
        let (sender, batches) = mpsc::channel(AHEAD);
        // Two batches' buffers go round, so the reader seldom allocates.
        let (recycled, spare) = mpsc::channel(AHEAD + 2);
        let reader = tokio::spawn(read(consumer, cut, sender, spare));
        Self {
            batches,
            recycled,
            reader,
        }
    }

    /// The next batch; an empty one when the log had nothing new for a while.
    pub(super) async fn next(&mut self) -> Result<Batch, FeedError> {
        // The reader only stops when told to, or by panicking.
        Ok(self.batches.recv().await.ok_or(FeedError::Stopped)??)
    }

    /// Gives a folded batch's buffers back to the reader.
    pub(super) fn recycle(&self, batch: Batch) {
        let _ = self.recycled.try_send(batch);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read(
    consumer: Arc<StreamConsumer>,
    cut: Cut,
    batches: mpsc::Sender<Result<Batch, KafkaError>>,
    mut spare: mpsc::Receiver<Batch>,
) {
    let mut second_half = Batch::default();
    loop {
        let mut batch = spare.try_recv().unwrap_or_default();
        batch.clear();
        let read = gather(&consumer, cut).await;
        let batch = read.map(|messages| {
            batch.decode(messages, &mut second_half);
            batch
        });
        if batches.send(batch).await.is_err() {
            return;
        }
    }
}

/// The records of one batch, still undecoded.
async fn gather(consumer: &StreamConsumer, cut: Cut) -> Result<Vec<BorrowedMessage<'_>>, KafkaError> {
    let mut messages = Vec::new();
    match timeout(cut.first_within, service_kit::kafka::recv(consumer)).await {
        Ok(first) => messages.push(first?),
        Err(_elapsed) => return Ok(messages),
    }
    while messages.len() < cut.size {
        // What the client already holds is taken without a timer: most records are.
        let next = match service_kit::kafka::recv(consumer).now_or_never() {
            Some(next) => next,
            None => match timeout(cut.gap, service_kit::kafka::recv(consumer)).await {
                Ok(next) => next,
                Err(_elapsed) => break,
            },
        };
        messages.push(next?);
    }
    Ok(messages)
}
