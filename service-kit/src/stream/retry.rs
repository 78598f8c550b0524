//! Retrying a failed task with exponential backoff and jitter, until it succeeds or the service
//! shuts down.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The waits between attempts: doubling from `first` up to `cap`, each drawn at random between
/// half of its nominal length and all of it, so that tasks (and replicas) that failed together,
/// say when PostgreSQL went away, do not all come back in the same instant.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    delays: ExponentialBuilder,
}

impl Backoff {
    pub const fn new(first: Duration, cap: Duration) -> Self {
        // The jitter adds up to the delay once more: from half the bounds, each wait falls
        // between half of the nominal delay and all of it, and never beyond `cap`.
        Self {
            delays: ExponentialBuilder::new()
                .with_min_delay(half(first))
                .with_max_delay(half(cap))
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
        }
    }

    /// Runs `attempt` until it succeeds, logging each failure as `task` and waiting before the
    /// next attempt. `None` when `shutdown` is cancelled during a wait.
    ///
    /// A running attempt is not interrupted: one that should stop at shutdown watches
    /// `shutdown` itself (and finishes what it is in the middle of), or the caller wraps the
    /// whole retry in [`CancellationToken::run_until_cancelled`]. An outcome no retry will
    /// change is not an error: the attempt returns it as a success.
    pub async fn retry<T, E, Fut>(
        &self,
        task: &str,
        shutdown: &CancellationToken,
        mut attempt: impl FnMut() -> Fut,
    ) -> Option<T>
    where
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let mut delays = self.delays.build();
        loop {
            let error = match attempt().await {
                Ok(done) => return Some(done),
                Err(error) => error,
            };
            // Without a maximum number of attempts the delays never run out.
            let delay = delays.next()?;
            warn!(task, %error, retry_in = ?delay, "failed; retrying");
            shutdown.run_until_cancelled(tokio::time::sleep(delay)).await?;
        }
    }
}

const fn half(delay: Duration) -> Duration {
    match delay.checked_div(2) {
        Some(half) => half,
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::time::Instant;

    use super::*;

    const BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

    #[test]
    fn waits_double_up_to_the_cap_each_between_half_and_all_of_it() {
        let nominal = [200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(Duration::from_millis);
        for _ in 0..50 {
            for (delay, nominal) in BACKOFF.delays.build().zip(nominal) {
                // Within a microsecond: the delays are computed in f32 seconds.
                let slack = Duration::from_micros(1);
                assert!(
                    delay + slack >= nominal / 2 && delay <= nominal + slack,
                    "{delay:?} not within half of {nominal:?} and all of it"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_recovers_succeeds_after_backing_off() {
        let attempts = AtomicUsize::new(0);
        let started = Instant::now();
        let done = BACKOFF
            .retry("flaky", &CancellationToken::new(), || async {
                match attempts.fetch_add(1, Ordering::Relaxed) {
                    0 | 1 => Err("not yet"),
                    _ => Ok("done"),
                }
            })
            .await;
        assert_eq!(done, Some("done"));
        assert_eq!(attempts.load(Ordering::Relaxed), 3);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited <= Duration::from_millis(600),
            "waited {waited:?} over two failures"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_up_waiting_for_the_next_attempt() {
        let shutdown = CancellationToken::new();
        let attempts = AtomicUsize::new(0);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            stop.cancel();
        });
        let started = Instant::now();
        let done: Option<()> = BACKOFF
            .retry("broken", &shutdown, || async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err("still broken")
            })
            .await;
        assert_eq!(done, None);
        assert_eq!(started.elapsed(), Duration::from_secs(60), "stops as soon as shut down");
        let attempts = attempts.load(Ordering::Relaxed);
        assert!((12..=30).contains(&attempts), "{attempts} attempts in a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_the_running_attempt_finish() {
        let shutdown = CancellationToken::new();
        let done = BACKOFF
            .retry("graceful", &shutdown, || async {
                shutdown.cancel();
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, &str>("finished")
            })
            .await;
        assert_eq!(done, Some("finished"));
    }
}
