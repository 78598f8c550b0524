//! HTTP load: a closed loop (a fixed number of requests in flight, one client alone being the
//! case of one) and an open loop (requests sent on a fixed schedule whatever the answers do).

use std::time::Duration;

use system_tests::load::{closed_loop, Latencies};
use tokio::time::Instant;

use crate::{ms, wait_until, Rate};

/// What a run of HTTP requests measured.
pub(crate) struct HttpRun {
    pub rate: Rate,
    pub p50: Duration,
    pub p99: Duration,
    pub failures: usize,
}

impl From<Latencies> for HttpRun {
    fn from(run: Latencies) -> Self {
        HttpRun {
            rate: Rate {
                count: run.count(),
                elapsed: run.elapsed,
            },
            p50: run.percentile(0.50),
            p99: run.percentile(0.99),
            failures: run.failures,
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
        let requests = self.clone();
        closed_loop(total, in_flight, move |i| requests.send(i)).await.into()
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
        Latencies::new(latencies, started.elapsed(), failures).into()
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
