//! How the benchmark's HTTP load and the peer drive their work: a closed loop of concurrent
//! tasks, and the latencies it measured.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The latencies of one run, with its wall time and how many of its operations failed.
#[derive(Debug, Clone)]
pub struct Latencies {
    sorted: Vec<Duration>,
    pub elapsed: Duration,
    pub failures: usize,
}

impl Latencies {
    pub fn new(mut latencies: Vec<Duration>, elapsed: Duration, failures: usize) -> Self {
        latencies.sort();
        Self {
            sorted: latencies,
            elapsed,
            failures,
        }
    }

    /// How many operations the run measured.
    pub fn count(&self) -> usize {
        self.sorted.len()
    }

    /// The latency that a share `p` (0 to 1) of the operations took at most; the run measured
    /// at least one.
    pub fn percentile(&self, p: f64) -> Duration {
        self.sorted[((self.sorted.len() as f64 * p) as usize).min(self.sorted.len() - 1)]
    }
}

/// Runs `operation(0)` to `operation(total - 1)` from `tasks` concurrent tasks, each task taking
/// the next as soon as its last is done; `operation` says whether it succeeded.
pub async fn closed_loop<F, Fut>(total: usize, tasks: usize, operation: F) -> Latencies
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (operation, next, failures) = (operation.clone(), next.clone(), failures.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break latencies;
                    }
                    let sent = Instant::now();
                    let ok = operation(i).await;
                    latencies.push(sent.elapsed());
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await.expect("a closed-loop task"));
    }
    Latencies::new(latencies, started.elapsed(), failures.load(Ordering::Relaxed))
}
