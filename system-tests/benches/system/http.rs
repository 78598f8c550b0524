//! HTTP load: a closed loop (a fixed number of requests in flight, one client alone being the
//! case of one) and an open loop (requests sent on a fixed schedule whatever the answers do).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::{ms, wait_until, Rate};

/// What a run of HTTP requests measured.
pub(crate) struct HttpRun {
    pub rate: Rate,
    pub p50: Duration,
    pub p99: Duration,
    pub failures: usize,
}

impl HttpRun {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration, failures: usize) -> Self {
        latencies.sort();
        let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        HttpRun {
            rate: Rate {
                count: latencies.len(),
                elapsed,
            },
            p50: percentile(0.50),
            p99: percentile(0.99),
            failures,
        }
    }
}

impl std::fmt::Display for HttpRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  p50 {:.1} ms  p99 {:.1} ms  failures {}",
            self.rate,
            ms(self.p50),
            ms(self.p99),
            self.failures
        )
    }
}

/// What every request of a run sends and expects back.
#[derive(Clone)]
pub(crate) struct Requests {
    pub client: reqwest::Client,
    /// The `i`th request goes to `urls[i % urls.len()]`.
    pub urls: Vec<String>,
    pub body: fn(usize) -> serde_json::Value,
    /// Any other status counts as a failure.
    pub expected: u16,
}

impl Requests {
    /// POSTs the `i`th body; whether the answer was the one expected.
    fn send(&self, i: usize) -> impl std::future::Future<Output = bool> + Send + 'static {
        let request = self.client.post(&self.urls[i % self.urls.len()]).json(&(self.body)(i));
        let expected = self.expected;
        async move { request.send().await.is_ok_and(|r| r.status().as_u16() == expected) }
    }

    /// Sends `total` requests with `in_flight` at a time, each sent as soon as one answers.
    pub(crate) async fn closed_loop(&self, total: usize, in_flight: usize) -> HttpRun {
        let next = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..in_flight)
            .map(|_| {
                let (requests, next, failures) = (self.clone(), next.clone(), failures.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break latencies;
                        }
                        let sent = Instant::now();
                        let ok = requests.send(i).await;
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
            latencies.extend(worker.await.expect("worker"));
        }
        HttpRun::of(latencies, started.elapsed(), failures.load(Ordering::Relaxed))
    }

    /// Sends `rate` requests per second for `duration`, each at its appointed time whether or not
    /// the earlier ones have been answered. A request's latency counts from its appointed time,
    /// not from when it left: a server that stalls is charged for every request it held up
    /// (no coordinated omission).
    pub(crate) async fn open_loop(&self, rate: u32, duration: Duration) -> HttpRun {
        let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let started = Instant::now();
        let mut sent = Vec::with_capacity(total);
        for i in 0..total {
            let due = started + interval * i as u32;
            tokio::time::sleep_until(due).await;
            let request = self.send(i);
            sent.push(tokio::spawn(async move {
                let ok = request.await;
                (due.elapsed(), ok)
            }));
        }
        let mut latencies = Vec::with_capacity(total);
        let mut failures = 0;
        for request in sent {
            let (latency, ok) = request.await.expect("request task");
            latencies.push(latency);
            failures += usize::from(!ok);
        }
        HttpRun::of(latencies, started.elapsed(), failures)
    }
}

/// Waits until the command-api at `base` is ready.
pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_until(
        &format!("command-api at {base} to be ready"),
        Duration::from_secs(120),
        || async {
            let ready = client.get(format!("{base}/ready")).send().await.ok()?;
            ready.status().is_success().then_some(())
        },
    )
    .await;
}

/// An HTTP client sending `authorization` with every request.
pub(crate) fn authorized_client(authorization: &str, in_flight: usize) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, authorization.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(in_flight)
        .build()
        .unwrap()
}
