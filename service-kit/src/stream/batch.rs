//! Batches of records: up to a size, or what arrives within a linger time after the first.

use std::future::Future;
use std::time::Duration;

use tokio::time::{timeout, timeout_at, Instant};

/// How a consume loop gathers records into one batch (one transaction, one commit): a bigger
/// batch amortises the commit, the linger bounds how long the first record waits for company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    size: usize,
    linger: Duration,
    first_within: Option<Duration>,
}

impl Batching {
    /// At most `size` records (at least one), gathered for at most `linger` after the first.
    pub const fn new(size: usize, linger: Duration) -> Self {
        Self {
            size: if size == 0 { 1 } else { size },
            linger,
            first_within: None,
        }
    }

    /// Waits at most `wait` for a first record and hands over an empty batch without one, so
    /// the caller gets a turn (to follow a rebalance, or to notice it reached the head).
    pub const fn first_within(self, wait: Duration) -> Self {
        Self {
            first_within: Some(wait),
            ..self
        }
    }

    /// The next batch from `recv`: a first record, then what `recv` gives within the linger
    /// time, up to the size. An error from `recv` ends the batch with that error; the records
    /// taken so far were handed to no one, so none of them is committed.
    pub async fn next<B, T, E, Fut>(&self, mut recv: impl FnMut() -> Fut) -> Result<B, E>
    where
        B: Default + Extend<T>,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut batch = B::default();
        let first = match self.first_within {
            None => recv().await?,
            Some(wait) => match timeout(wait, recv()).await {
                Ok(first) => first?,
                Err(_elapsed) => return Ok(batch),
            },
        };
        batch.extend(Some(first));
        let deadline = Instant::now() + self.linger;
        for _ in 1..self.size {
            match timeout_at(deadline, recv()).await {
                Ok(record) => batch.extend(Some(record?)),
                Err(_elapsed) => break,
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::{self, Receiver};
    use tokio::sync::Mutex;

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Closed;

    /// A source of records as a consumer is: `recv` through a shared reference.
    fn source(records: Receiver<u32>) -> Mutex<Receiver<u32>> {
        Mutex::new(records)
    }

    async fn next(batching: Batching, records: &Mutex<Receiver<u32>>) -> Result<Vec<u32>, Closed> {
        batching
            .next(|| async { records.lock().await.recv().await.ok_or(Closed) })
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_at_once_and_the_rest_after_the_linger() {
        let (tx, rx) = mpsc::channel(16);
        for record in 0..10 {
            tx.send(record).await.unwrap();
        }
        let records = source(rx);
        let batching = Batching::new(4, Duration::from_secs(3600));
        let started = Instant::now();
        assert_eq!(next(batching, &records).await, Ok(vec![0, 1, 2, 3]));
        assert_eq!(next(batching, &records).await, Ok(vec![4, 5, 6, 7]));
        assert_eq!(started.elapsed(), Duration::ZERO, "full batches wait for nothing");
        assert_eq!(next(batching, &records).await, Ok(vec![8, 9]));
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(3600),
            "a short batch waits out the linger"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_linger_counts_from_the_first_record() {
        let (tx, rx) = mpsc::channel(16);
        let records = source(rx);
        let _open = tx.clone();
        tokio::spawn(async move {
            for (record, after_ms) in [(1, 1000), (2, 50), (3, 40), (4, 20)] {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                tx.send(record).await.unwrap();
            }
        });
        let batching = Batching::new(100, Duration::from_millis(100));
        assert_eq!(
            next(batching, &records).await,
            Ok(vec![1, 2, 3]),
            "waits as long as it takes for the first, then 100 ms"
        );
        assert_eq!(next(batching, &records).await, Ok(vec![4]));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_first_record_in_time_the_batch_is_empty() {
        let (tx, rx) = mpsc::channel(16);
        let records = source(rx);
        let batching = Batching::new(10, Duration::from_millis(5)).first_within(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(next(batching, &records).await, Ok(vec![]));
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        tx.send(7).await.unwrap();
        assert_eq!(next(batching, &records).await, Ok(vec![7]));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_ends_the_batch() {
        let (tx, rx) = mpsc::channel(16);
        tx.send(1).await.unwrap();
        drop(tx);
        let records = source(rx);
        let batching = Batching::new(10, Duration::from_secs(1));
        assert_eq!(next(batching, &records).await, Err(Closed));
    }

    #[test]
    fn a_batch_holds_at_least_one_record() {
        assert_eq!(Batching::new(0, Duration::ZERO), Batching::new(1, Duration::ZERO));
    }
}
